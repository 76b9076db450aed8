"""What the three list screens share: a filter bar over a lazily paged table, loaded off-thread.

Every load (first show, a settled filter, a new order, Ctrl+R, the periodic refresh) builds a
fresh query and primes it in one *exclusive* thread worker: a newer load cancels an older
one, and only the newest load (by generation number) ever reaches the screen, so typing never
queues stale work. The
table then reads the count and the pages it is about to draw from the primed source; pages
further away are fetched one at a time as the user scrolls there.

A refresh keeps the cursor on the same record (``keep_key``); a new filter or order starts at
the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import Reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Header
from textual.worker import get_current_worker

from plusjeklas_tui.tui.i18n import language, t, translate_bindings
from plusjeklas_tui.tui.sources import EmptySource, PagedQuery, QuerySource
from plusjeklas_tui.tui.widgets.filter_bar import FilterBar
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import Column, Row, RowSource, VirtualTable

if TYPE_CHECKING:
    from plusjeklas_tui.tui.app import PlusjeklasApp

SLOW_LOAD_SECONDS = 0.2
"""Loads slower than this show "searching…" next to the filter."""

COUNT_WHILE_TYPING = 1000
"""A load the user asked for (a new filter or order) counts up to this many rows before it
shows them ("more than 1.000 schools"); the exact count follows from the same worker."""


def format_count(count: int) -> str:
    """1234567 as '1.234.567' (nl) or '1,234,567' (en)."""
    text = f"{count:,}"
    return text.replace(",", ".") if language() == "nl" else text


class ListScreen(Screen[None]):
    """A filter bar, a :class:`VirtualTable` and a footer; subclasses say what to list."""

    AUTO_FOCUS = "#list-table"  # keys go to the list; `/` moves to the filter

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "focus_list", "lists.focus_list", show=False, id="lists.focus_list"),
    ]

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
    """As :attr:`Screen.focused`, without repainting the whole screen on every focus change
    (the widgets gaining and losing focus repaint themselves): `/` and Escape stay cheap."""

    PAGE_SIZE: ClassVar[int] = 100
    MAX_CACHED_PAGES: ClassVar[int] = 4
    placeholder_key: ClassVar[str]
    count_key: ClassVar[str]
    empty_key: ClassVar[str]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self._reset_pending = True
        self._generation = 0
        self._failing = False
        self._slow_timer: Timer | None = None
        self.loads = 0
        """Loads shown so far (tests wait on it)."""
        self.counts = 0
        """Exact counts shown after capped loads (tests wait on it)."""
        translate_bindings(self)

    # ------------------------------------------------------------------ for subclasses

    def make_columns(self) -> list[Column]:
        raise NotImplementedError

    def make_query(self) -> PagedQuery[Any] | None:
        """The query for the current filter and order; None: show nothing (input incomplete)."""
        raise NotImplementedError

    def to_row(self, item: Any) -> Row:
        """Turn one service row into a table row (runs in the worker thread)."""
        raise NotImplementedError

    async def open_row(self, row: Row) -> None:
        """Enter on *row*."""
        raise NotImplementedError

    def filtered(self) -> bool:
        """Whether any filter is active (chooses the empty-list message)."""
        return bool(self.bar.text.strip())

    # ------------------------------------------------------------------ layout

    @property
    def plusjeklas(self) -> PlusjeklasApp:
        return self.app  # type: ignore[return-value]

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#list-table", VirtualTable)

    @property
    def bar(self) -> FilterBar:
        return self.query_one("#list-filter", FilterBar)

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterBar(t(self.placeholder_key), id="list-filter")
        yield VirtualTable(
            EmptySource(),
            self.make_columns(),
            page_size=self.PAGE_SIZE,
            max_cached_pages=self.MAX_CACHED_PAGES,
            empty_text=t("lists.loading"),
            id="list-table",
        )
        yield QuietFooter()

    def on_mount(self) -> None:
        self.title = t("lists.title", app=t("app.title"), screen=t(f"nav.{self.id}"))
        self.table.focus()
        self.set_interval(self.plusjeklas.auto_refresh_seconds, self._periodic_refresh)

    def on_screen_resume(self) -> None:
        """Shown (again): load, so a list seen earlier is never stale."""
        self.reload(reset=self.loads == 0)

    def _periodic_refresh(self) -> None:
        # (not ``_auto_refresh``: Widget uses that name for its own refresh interval)
        if self.is_active:
            self.refresh_data()

    # ------------------------------------------------------------------ app API

    def focus_filter(self) -> None:
        """`/`: type into the filter."""
        self.bar.focus_input()

    def refresh_data(self) -> None:
        """Ctrl+R and the periodic refresh: reload, keeping the cursor on the same record."""
        self.reload(reset=False)

    # ------------------------------------------------------------------ loading

    def reload(self, *, reset: bool) -> None:
        """Load the list again in a worker; *reset* moves the cursor to the first row."""
        self._reset_pending = self._reset_pending or reset
        self._generation += 1
        query = self.make_query()
        if query is None:
            self.workers.cancel_group(self, "list-load")  # a load still running is stale now
            self._stop_slow_timer()
            self._show(EmptySource(), None, self._generation)
            self.bar.set_status("")
            return
        table = self.table
        if self._reset_pending:
            pages, keep = {0}, None
        else:
            keep = table.cursor_key
            size = self.PAGE_SIZE
            top = round(table.scroll_y)
            home = table.cursor_index // size
            pages = {home - 1, home, home + 1}
            pages.update(range(top // size, (top + table.body_height) // size + 1))
        if self._reset_pending and self._slow_timer is None:
            # only when the user changed something: a background refresh stays silent
            self._slow_timer = self.set_timer(SLOW_LOAD_SECONDS, self._show_searching)
        self._load(query, pages, keep, self._generation, capped=self._reset_pending)

    def _show_searching(self) -> None:
        self._slow_timer = None
        self.bar.set_status(t("lists.searching"))

    def _stop_slow_timer(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.stop()
            self._slow_timer = None

    @work(thread=True, exclusive=True, group="list-load", exit_on_error=False)
    def _load(
        self,
        query: PagedQuery[Any],
        pages: set[int],
        keep: int | None,
        generation: int,
        *,
        capped: bool = False,
    ) -> None:
        """Prime a source and show it; a capped count is made exact right after it is shown.

        *capped* (a load the user asked for): the rows reach the screen without waiting for
        the whole count, which is the slow part of a common single letter; a background
        refresh counts exactly at once, as it changes nothing the user is waiting for.
        """
        worker = get_current_worker()
        source = QuerySource(query, self.to_row, page_size=self.PAGE_SIZE)
        try:
            source.prime(pages, count_up_to=COUNT_WHILE_TYPING if capped else None)
            if worker.is_cancelled:
                return
            self.app.call_from_thread(self._show, source, keep, generation)
            if source.exact or worker.is_cancelled:
                return
            count = source.count_exactly()
        except Exception as error:  # a database problem must not take the app down
            if not worker.is_cancelled:
                self.app.call_from_thread(self._load_failed, error, generation)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_count, count, generation)

    def _show(self, source: RowSource, keep: int | None, generation: int) -> None:
        if generation != self._generation:
            return  # a newer load was asked for after this one was on its way
        self._stop_slow_timer()
        table = self.table
        if self._reset_pending:
            self._reset_pending = False
            table.set_source(EmptySource())  # back to the top before the new rows are drawn
            keep = None
        table.empty_text = t("lists.nothing_found" if self.filtered() else self.empty_key)
        table.set_source(source, keep_key=keep)
        exact = not isinstance(source, QuerySource) or source.exact
        self._set_count_status(table.row_count, exact=exact)
        self._failing = False
        self.loads += 1

    def _show_count(self, count: int, generation: int) -> None:
        """The exact count after a capped load: the scroll range and the status follow."""
        if generation != self._generation:
            return
        self.table.update_count(count)
        self._set_count_status(count, exact=True)
        self.counts += 1

    def _set_count_status(self, count: int, *, exact: bool) -> None:
        if not exact:  # counting stopped at *count*: there are more
            self.bar.set_status(t(f"{self.count_key}.more", count=format_count(count - 1)))
        elif count == 1:
            self.bar.set_status(t(f"{self.count_key}.one"))
        else:
            self.bar.set_status(t(self.count_key, count=format_count(count)))

    def _load_failed(self, error: Exception, generation: int) -> None:
        if generation != self._generation:
            return
        self._stop_slow_timer()
        self.bar.set_status(t("lists.load_failed"))
        if not self._failing:  # once, not again at every periodic refresh
            self._failing = True
            self.plusjeklas.report_error(error)

    # ------------------------------------------------------------------ events

    def on_filter_bar_done(self, event: FilterBar.Done) -> None:
        event.stop()
        self.table.focus()

    def action_focus_list(self) -> None:
        self.table.focus()

    def on_virtual_table_load_failed(self, event: VirtualTable.LoadFailed) -> None:
        event.stop()
        self.plusjeklas.report_error(event.error)

    async def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        row = self.table.cursor_row
        if row is not None and row.key == event.key:
            await self.open_row(row)
