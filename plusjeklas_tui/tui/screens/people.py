"""The people list: administrators of every school, found by their exact e-mail address.

Names and addresses are encrypted in the database, so there is no substring search (the
filter's placeholder says so); only the rows on screen are decrypted. Enter opens the
person's school.
"""

from __future__ import annotations

from plusjeklas_tui.services.people_list import PeopleList
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.list_base import ListScreen
from plusjeklas_tui.tui.sources import PersonRow, person_row
from plusjeklas_tui.tui.widgets.filter_bar import FilterBar
from plusjeklas_tui.tui.widgets.virtual_table import Column, Row, VirtualTable
from plusjeklas_tui.validation import FieldError

SORT_KEYS = {"organisation": "organisation", "left_on": "left_on"}


class PeopleScreen(ListScreen):
    placeholder_key = "lists.people.placeholder"
    count_key = "lists.people.count"
    empty_key = "lists.people.empty"

    def __init__(self) -> None:
        super().__init__(id="people")
        self.sort: tuple[str, bool] = ("id", False)

    def make_columns(self) -> list[Column]:
        return [
            Column("name", t("lists.col.person"), 16, sortable=False),
            Column("email", t("lists.col.email"), 20, sortable=False),
            Column("phones", t("lists.col.phones"), 13, sortable=False),
            Column("organisation", t("lists.col.organisation"), 14),
            Column("left_on", t("lists.col.left_on"), 10),
        ]

    def make_query(self) -> PeopleList | None:
        try:
            query = PeopleList(
                self.plusjeklas.context.engine,
                email=self.bar.text,
                sort=self.sort[0],
                descending=self.sort[1],
            )
        except FieldError:
            self.bar.set_error(t("lists.people.need_email"))
            return None
        self.bar.set_error("")
        return query

    def to_row(self, item: object) -> Row:
        return person_row(item)  # type: ignore[arg-type]

    async def open_row(self, row: Row) -> None:
        if isinstance(row, PersonRow):
            await self.plusjeklas.open_organisation(row.organisation_id)

    def on_filter_bar_text_changed(self, event: FilterBar.TextChanged) -> None:
        event.stop()
        self.reload(reset=True)

    def on_virtual_table_sort_changed(self, event: VirtualTable.SortChanged) -> None:
        event.stop()
        self.sort = (SORT_KEYS[event.column_key], event.descending)
        self.reload(reset=True)
