"""The audit log: newest first, filtered with ``actor:``, ``action:``, ``entity:``, ``since:``
and ``until:`` words typed in the filter (the placeholder shows an example).

Enter on an event about a school, or about one of its administrators or subscriptions, opens
that school's record.
"""

from __future__ import annotations

from textual import work

from plusjeklas_tui.services.audit_list import (
    AuditFilter,
    AuditFilterError,
    AuditList,
    organisation_of_event,
    parse_audit_filter,
)
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.list_base import ListScreen
from plusjeklas_tui.tui.sources import AuditRow, audit_row
from plusjeklas_tui.tui.widgets.filter_bar import FilterBar
from plusjeklas_tui.tui.widgets.virtual_table import Column, Row, VirtualTable


class AuditScreen(ListScreen):
    placeholder_key = "lists.audit.placeholder"
    count_key = "lists.audit.count"
    empty_key = "lists.audit.empty"

    def __init__(self) -> None:
        super().__init__(id="audit")
        self.filter = AuditFilter()
        self.sort: tuple[str, bool] = ("occurred_at", True)

    def make_columns(self) -> list[Column]:
        return [
            Column("occurred_at", t("lists.col.when"), 16),
            Column("actor", t("lists.col.actor"), 10),
            Column("action", t("lists.col.action"), 14),
            Column("entity", t("lists.col.entity"), 13),
            Column("entity_id", t("lists.col.entity_id"), 7, align="right", sortable=False),
            Column("detail", t("lists.col.detail"), 30, sortable=False),
        ]

    def on_mount(self) -> None:
        # Textual calls ListScreen.on_mount as well (handlers run for every class in the MRO)
        self.table.set_sort(*self.sort)

    def make_query(self) -> AuditList:
        return AuditList(
            self.plusjeklas.context.engine,
            self.filter,
            sort=self.sort[0],
            descending=self.sort[1],
        )

    def to_row(self, item: object) -> Row:
        return audit_row(item)  # type: ignore[arg-type]

    def filtered(self) -> bool:
        return self.filter != AuditFilter()

    def on_filter_bar_text_changed(self, event: FilterBar.TextChanged) -> None:
        event.stop()
        try:
            wanted = parse_audit_filter(event.text)
        except AuditFilterError as error:
            # Keep showing the last list that could be read; say what is wrong with this one.
            self.bar.set_error(t(f"lists.audit.error.{error.problem}", word=error.key))
            return
        self.bar.set_error("")
        self.filter = wanted
        self.reload(reset=True)

    def on_virtual_table_sort_changed(self, event: VirtualTable.SortChanged) -> None:
        event.stop()
        self.sort = (event.column_key, event.descending)
        self.reload(reset=True)

    async def open_row(self, row: Row) -> None:
        if isinstance(row, AuditRow):
            self._find_organisation(row.entity, row.entity_id)

    @work(thread=True, exclusive=True, group="audit-open", exit_on_error=False)
    def _find_organisation(self, entity: str, entity_id: int | None) -> None:
        try:
            organisation_id = organisation_of_event(
                self.plusjeklas.context.engine, entity, entity_id
            )
        except Exception as error:  # a database problem must not take the app down
            self.app.call_from_thread(self.plusjeklas.report_error, error)
            return
        self.app.call_from_thread(self._open, organisation_id)

    async def _open(self, organisation_id: int | None) -> None:
        if organisation_id is None:
            self.app.bell()
            self.notify(t("lists.audit.no_record"), markup=False)
            return
        await self.plusjeklas.open_organisation(organisation_id)
