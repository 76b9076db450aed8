"""The organisations list: every school, filtered as you type, sorted by any column.

Dashboard tiles arrive here through :meth:`OrganisationsScreen.apply_filter` and show as
chips; `x` clears them. The retention deadline column is coloured by urgency; a school on
legal hold shows a hold marker there instead (its deletion is paused).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual.binding import Binding, BindingType

from plusjeklas_tui.services.organisation_list import OrganisationList
from plusjeklas_tui.tui.filters import OrganisationFilter
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.list_base import ListScreen
from plusjeklas_tui.tui.sources import organisation_row, status_text
from plusjeklas_tui.tui.widgets.filter_bar import FilterBar
from plusjeklas_tui.tui.widgets.virtual_table import Cell, Column, Row, VirtualTable

HOLD_STYLE = "bold cyan"
"""A legal hold is neither urgent nor calm: its own colour, not one of the urgency colours."""


def chip_label(name: str, value: str) -> str:
    if name == "status":
        return t("lists.chip.status", status=status_text(value))
    if name == "urgency":
        return t(f"lists.chip.urgency.{value}")
    return t("lists.chip.due_month", month=value)


class OrganisationsScreen(ListScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "clear_filters", "lists.clear_filters", id="lists.clear_filters"),
    ]

    placeholder_key = "lists.organisations.placeholder"
    count_key = "lists.organisations.count"
    empty_key = "lists.organisations.empty"

    def __init__(self) -> None:
        super().__init__(id="organisations")
        self.filter = OrganisationFilter()
        self.sort: tuple[str, bool] = ("name", False)

    def make_columns(self) -> list[Column]:
        return [
            Column("name", t("lists.col.name"), 24),
            Column("city", t("lists.col.city"), 14),
            Column("brin", t("lists.col.brin"), 6),
            Column("postcode", t("lists.col.postcode"), 8),
            Column("status", t("lists.col.status"), 9),
            Column("deadline", t("lists.col.deadline"), 11),
        ]

    def on_mount(self) -> None:
        # Textual calls ListScreen.on_mount as well (handlers run for every class in the MRO)
        self.table.set_sort(*self.sort)

    def make_query(self) -> OrganisationList:
        return OrganisationList(
            self.plusjeklas.context.engine,
            self.plusjeklas.retention_rule,
            self.plusjeklas.today(),
            text=self.filter.text,
            status=self.filter.status,
            urgency=self.filter.urgency,
            due_month=self.filter.due_month,
            sort=self.sort[0],
            descending=self.sort[1],
        )

    def to_row(self, item: object) -> Row:
        row = organisation_row(item)  # type: ignore[arg-type]
        if getattr(item, "on_hold", False):  # a legal hold pauses the deadline: say so instead
            *cells, _deadline = row.cells
            row = Row(row.key, (*cells, Cell(t("lists.deadline.hold"), HOLD_STYLE)))
        return row

    async def open_row(self, row: Row) -> None:
        await self.plusjeklas.open_organisation(row.key)

    def filtered(self) -> bool:
        return bool(self.filter.text.strip() or self.filter.chips())

    # ------------------------------------------------------------------ filters

    def apply_filter(self, filter: OrganisationFilter) -> None:
        """A dashboard tile's filter: replaces the current one, shown as chips."""
        self._set_filter(filter)
        self.bar.set_text(filter.text)

    def _set_filter(self, filter: OrganisationFilter) -> None:
        chips_changed = filter.chips() != self.filter.chips()
        self.filter = filter
        if chips_changed:
            self.bar.set_chips([(name, chip_label(name, value)) for name, value in filter.chips()])
            self.refresh_bindings()
        self.reload(reset=True)

    def on_filter_bar_text_changed(self, event: FilterBar.TextChanged) -> None:
        event.stop()
        self._set_filter(replace(self.filter, text=event.text))

    def on_filter_bar_chip_removed(self, event: FilterBar.ChipRemoved) -> None:
        event.stop()
        self._set_filter(self.filter.without(event.filter_name))

    def action_clear_filters(self) -> None:
        self._set_filter(OrganisationFilter(text=self.filter.text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filters":
            return bool(self.filter.chips())
        return True

    def on_virtual_table_sort_changed(self, event: VirtualTable.SortChanged) -> None:
        event.stop()
        self.sort = (event.column_key, event.descending)
        self.reload(reset=True)
