"""A table that pages its rows from a source on demand, for lists of 100,000 records.

Textual's ``DataTable`` keeps every row and measures column widths as rows are added (about
10 s for 100k rows). :class:`VirtualTable` holds only the row count, a cursor and a few
cached pages: it draws with the line API (``render_line``), asking its :class:`RowSource` for
the page that holds a visible row the first time that row is drawn. Sources are expected to
be fast SQL (``LIMIT``/``OFFSET`` or keyset), so pages are fetched synchronously from
``render_line``; anything slow belongs in the source's owner, which calls
:meth:`VirtualTable.refresh_data` when it has new data.

Cells come from the database and from providers, so they are untrusted: they are drawn as
plain text segments (never parsed as markup), control and bidirectional-override characters
are shown escaped, and text is cut and padded by terminal cell width.

``RowSource``, ``Row``, ``Cell`` and ``Column`` use no Textual types; the adapter from a
service's query to a ``RowSource`` lives in ``tui/`` next to the screen that shows it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, Self, runtime_checkable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, clamp
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from plusjeklas_tui.tui.i18n import CATALOGUE, t, translate_bindings

Align = Literal["left", "right", "center"]

SORT_ASCENDING = "▲"
SORT_DESCENDING = "▼"
ELLIPSIS = "…"
_NO_ROW = object()  # "past the end of the list", as opposed to None, "not loaded"


# --------------------------------------------------------------------------- data (no Textual)


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell's text with a Rich style string chosen by code (never by data).

    Use named ANSI colours ("red", "yellow", "green", "bold red") so the colour survives
    256- and 16-colour terminals.
    """

    text: str
    style: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One record as the table shows it: ``key`` is the record id, ``cells`` one per column."""

    key: int
    cells: Sequence[str | Cell]


@runtime_checkable
class RowSource(Protocol):
    """Where a :class:`VirtualTable` gets its rows; both calls must be quick (indexed SQL)."""

    def count(self) -> int:
        """How many rows the list has now."""
        ...

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        """Rows ``offset`` to ``offset + limit - 1`` in display order (fewer at the end)."""
        ...


@dataclass(frozen=True, slots=True)
class Column:
    """A column: ``key`` identifies it in :class:`VirtualTable.SortChanged`; ``width`` in cells."""

    key: str
    label: str
    width: int
    align: Align = "left"
    sortable: bool = True

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"column {self.key!r}: width must be at least 1, got {self.width}")
        if self.align not in ("left", "right", "center"):
            raise ValueError(f"column {self.key!r}: align must be left, right or center")


# --------------------------------------------------------------------------- text helpers


def _escape_table() -> dict[int, str]:
    """Control characters (C0, DEL, C1) and bidi/invisible format characters -> visible escapes.

    A terminal would act on ESC, BEL, CR and friends; bidi overrides reorder what staff read
    ("Trojan Source"). Showing them as ``\\x1b`` or ``\\u202e`` keeps the data honest.
    """
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    table: dict[int, str] = {}
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]:
        table[code] = named.get(code, f"\\x{code:02x}")
    for code in [0x061C, 0x200B, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        table[code] = f"\\u{code:04x}"
    table[0xFEFF] = "\\ufeff"
    return table


_ESCAPES = _escape_table()


def plain_text(text: str) -> str:
    """*text* with every control or bidi-override character replaced by a visible escape."""
    if text.isprintable():  # fast path: no control (Cc) or format (Cf) characters at all
        return text
    return text.translate(_ESCAPES)


def fit(text: str, width: int, align: Align = "left") -> str:
    """*text* made exactly *width* terminal cells wide: cut with an ellipsis, or padded."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length > width:
        # set_cell_size pads with a space where a wide character would be split
        return set_cell_size(text, width - 1) + ELLIPSIS
    pad = width - length
    if align == "right":
        return " " * pad + text
    if align == "center":
        left = pad // 2
        return " " * left + text + " " * (pad - left)
    return text + " " * pad


def _label(key: str) -> str:
    """Catalogue text for *key*; the key itself until the catalogue has it."""
    return t(key) if key in CATALOGUE else key


# --------------------------------------------------------------------------- the widget


class VirtualTable(ScrollView, can_focus=True):
    """A keyboard-driven list over a :class:`RowSource` that never holds all rows.

    Line 0 is the header (it scrolls sideways, never down); line ``y`` below it shows row
    ``scroll_y + y - 1``, so the virtual height is ``row_count + 1``.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "table.down", show=False, id="table.down"),
        Binding("k,up", "cursor_up", "table.up", show=False, id="table.up"),
        Binding("g,home", "first", "table.first", show=False, id="table.first"),
        Binding("G,end", "last", "table.last", show=False, id="table.last"),
        Binding("pageup", "page_up", "table.page_up", show=False, id="table.page_up"),
        Binding("pagedown", "page_down", "table.page_down", show=False, id="table.page_down"),
        Binding("left", "column_left", "table.column_left", show=False, id="table.column_left"),
        Binding("right", "column_right", "table.column_right", show=False, id="table.column_right"),
        Binding("enter", "select", "table.open", id="table.open"),
        Binding("s", "sort", "table.sort", id="table.sort"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--header-cursor",
        "virtual-table--cursor",
        "virtual-table--even-row",
        "virtual-table--empty",
    }

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;

        & > .virtual-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .virtual-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .virtual-table--header-cursor {
            text-style: bold underline;
        }
        & > .virtual-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .virtual-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .virtual-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .virtual-table--empty {
            color: $text-muted;
            text-style: italic;
        }
    }
    """

    empty_text: reactive[str] = reactive("")
    """Shown centred when the source has no rows (plain text, never markup)."""

    error_text: reactive[str] = reactive("")
    """Shown centred when counting the rows failed (plain text, never markup)."""

    zebra_stripes: reactive[bool] = reactive(False)

    # ------------------------------------------------------------------ messages

    class RowSelected(Message):
        """Enter, or a click on the highlighted row: open record ``key``."""

        def __init__(self, table: VirtualTable, key: int, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> VirtualTable:
            return self.table

    class CursorMoved(Message):
        """The highlighted record changed (``key`` is None when the list became empty)."""

        def __init__(self, table: VirtualTable, key: int | None, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> VirtualTable:
            return self.table

    class SortChanged(Message):
        """The user asked for another order; apply it to the source, then ``refresh_data``."""

        def __init__(self, table: VirtualTable, column_key: str, descending: bool) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key
            self.descending = descending

        @property
        def control(self) -> VirtualTable:
            return self.table

    class LoadFailed(Message):
        """The source raised; posted once per :meth:`VirtualTable.refresh_data`.

        The table stays usable (rows that failed draw blank and are retried after the next
        refresh). The exception may carry query parameters: show a generic message and do
        not log ``error`` verbatim.
        """

        def __init__(self, table: VirtualTable, error: Exception) -> None:
            super().__init__()
            self.table = table
            self.error = error

        @property
        def control(self) -> VirtualTable:
            return self.table

    # ------------------------------------------------------------------ construction

    def __init__(
        self,
        source: RowSource,
        columns: Sequence[Column],
        *,
        page_size: int = 200,
        max_cached_pages: int = 4,
        empty_text: str | None = None,
        error_text: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        if not columns:
            raise ValueError("a VirtualTable needs at least one column")
        if page_size < 1 or max_cached_pages < 2:
            raise ValueError("page_size must be >= 1 and max_cached_pages >= 2")
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._source = source
        self._columns: tuple[Column, ...] = tuple(columns)
        self._page_size = page_size
        self._max_pages = max_cached_pages
        self._pages: OrderedDict[int, Sequence[Row]] = OrderedDict()
        self._failed_pages: set[int] = set()
        self._row_count: int | None = None
        self._count_failed = False
        self._error_reported = False
        self._cursor_index = 0
        self._cursor_column = 0
        self._sort: tuple[str, bool] | None = None
        self._announced: tuple[int | None] | None = None  # last key sent in CursorMoved
        self._offsets = self._column_offsets()
        self._batch_style: Style | None = None
        self._laid_out_as: tuple[Size, Size, Size, Size] | None = None
        self._bindings_have_rows: bool | None = None  # what the bindings were refreshed for
        self._restyling_for_focus = False
        self.set_reactive(
            VirtualTable.empty_text, _label("table.empty") if empty_text is None else empty_text
        )
        self.set_reactive(
            VirtualTable.error_text,
            _label("table.load_failed") if error_text is None else error_text,
        )
        translate_bindings(self)

    def _column_offsets(self) -> tuple[int, ...]:
        """x of each column's first text cell; every column is preceded by one space."""
        offsets, x = [], 0
        for column in self._columns:
            offsets.append(x + 1)
            x += column.width + 1
        return tuple(offsets)

    @property
    def table_width(self) -> int:
        return sum(column.width + 1 for column in self._columns)

    # ------------------------------------------------------------------ public state

    @property
    def source(self) -> RowSource:
        return self._source

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @property
    def row_count(self) -> int:
        if self._row_count is None:
            self._recount()
        assert self._row_count is not None
        return self._row_count

    @property
    def cursor_index(self) -> int:
        return self._cursor_index

    @property
    def cursor_row(self) -> Row | None:
        """The highlighted row, or None when the list is empty (or its page failed)."""
        if self.row_count == 0:
            return None
        return self._row_at(self._cursor_index)

    @property
    def cursor_key(self) -> int | None:
        row = self.cursor_row
        return None if row is None else row.key

    @property
    def cursor_column(self) -> int:
        return self._cursor_column

    @property
    def sort_column(self) -> str | None:
        return None if self._sort is None else self._sort[0]

    @property
    def sort_descending(self) -> bool:
        return self._sort is not None and self._sort[1]

    @property
    def cached_pages(self) -> tuple[int, ...]:
        """Page numbers held in the cache, least recently used first."""
        return tuple(self._pages)

    @property
    def body_height(self) -> int:
        """How many rows fit below the header."""
        return max(0, self.scrollable_content_region.height - 1)

    def set_sort(self, column_key: str | None, descending: bool = False) -> None:
        """Show the sort indicator on *column_key* (None: no sort) without posting a message."""
        if column_key is not None and column_key not in {c.key for c in self._columns}:
            raise ValueError(f"unknown column {column_key!r}")
        self._sort = None if column_key is None else (column_key, descending)
        self._refresh_header()

    def set_source(self, source: RowSource, keep_key: int | None = None) -> None:
        """Show another source (a new filter, say) and reload; see :meth:`refresh_data`."""
        self._source = source
        self.refresh_data(keep_key)

    def update_count(self, count: int) -> None:
        """The source's count is now known better (a capped count made exact).

        Keeps the cached pages, the cursor and the scroll position: only the scroll range
        (and the cursor, if the list turned out shorter) changes, so nothing is fetched or
        repainted apart from the scrollbar.
        """
        count = max(0, int(count))
        if count == self._row_count:
            return
        self._row_count = count
        self._count_failed = False
        self._update_virtual_size()
        if self._cursor_index >= count:
            self.move_cursor(count - 1)
        self.call_later(self._refresh_bindings_if_needed)

    # ------------------------------------------------------------------ data

    def _report(self, error: Exception) -> None:
        if not self._error_reported:
            self._error_reported = True
            self.post_message(self.LoadFailed(self, error))

    def _recount(self) -> None:
        try:
            count = self._source.count()
        except Exception as error:  # a database problem must not take the app down
            self._count_failed = True
            self._row_count = 0
            self._report(error)
            return
        self._count_failed = False
        self._row_count = max(0, int(count))

    def _page(self, number: int) -> Sequence[Row] | None:
        """Page *number* from the cache, or fetched now (None if the source failed)."""
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        if number in self._failed_pages:
            return None
        try:
            page = self._source.fetch(number * self._page_size, self._page_size)
        except Exception as error:  # a database problem must not take the app down
            self._failed_pages.add(number)
            self._report(error)
            return None
        self._pages[number] = page
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)
        return page

    def _row_at(self, index: int) -> Row | None:
        page = self._page(index // self._page_size)
        offset = index % self._page_size
        if page is None or offset >= len(page):
            return None  # the source shrank since it was counted, or failed
        return page[offset]

    def _cached_row(self, index: int) -> Row | None:
        """Row *index* if its page is cached; never fetches."""
        page = self._pages.get(index // self._page_size)
        offset = index % self._page_size
        return page[offset] if page is not None and offset < len(page) else None

    def _find_near(self, key: int, index: int) -> int | None:
        """Index of *key* in the page holding *index* or a page next to it."""
        home = index // self._page_size
        for number in (home, home + 1, home - 1):
            if number < 0 or number * self._page_size >= self.row_count:
                continue
            page = self._page(number)
            for offset, row in enumerate(page or ()):
                if row.key == key:
                    return number * self._page_size + offset
        return None

    def refresh_data(self, keep_key: int | None = None) -> None:
        """Re-count, drop the cached pages and redraw what changed.

        With *keep_key* (usually ``table.cursor_key`` from before the change) the cursor
        follows that record if it is still near its old place, and stays on the same screen
        line; otherwise it keeps its index, clamped to the new count. Lines whose rows did
        not change are not repainted, so a periodic refresh of an idle list sends nothing.
        """
        old_index = self._cursor_index
        old_top = round(self.scroll_y)
        old_count = self._row_count or 0
        old_failed = self._count_failed
        old_lines = [
            self._cached_row(i) if i < old_count else _NO_ROW
            for i in range(old_top, old_top + self.body_height)
        ]

        self._pages.clear()
        self._failed_pages.clear()
        self._error_reported = False
        self._recount()
        count = self.row_count

        new_index = clamp(old_index, 0, max(count - 1, 0))
        if keep_key is not None and count:
            found = self._find_near(keep_key, old_index)
            if found is not None:
                new_index = found
        self._cursor_index = new_index
        self._update_virtual_size()
        self.scroll_to(y=old_top + (new_index - old_index), animate=False, force=True)
        self._scroll_cursor_into_view()

        new_top = round(self.scroll_y)
        if (new_top, new_index, self._count_failed) == (old_top, old_index, old_failed):
            for line, old in enumerate(old_lines):  # None: was not cached, so unknown
                index = new_top + line
                new = self._row_at(index) if index < count else _NO_ROW
                if old is None or new != old:
                    self.refresh_line(index + 1)
        else:
            self.refresh()
        self.call_later(self._refresh_bindings_if_needed)
        self._announce_cursor()

    def _refresh_bindings_if_needed(self) -> None:
        """Refresh the bindings ("open" needs rows) only when having rows changed.

        A refresh of the bindings can make the footer compose itself again, two or three
        frames (about 1 KB over SSH) for a footer that looks the same. A new order or filter
        swaps the source twice (through an empty one); called later, that counts once.
        """
        has_rows = bool(self._row_count)
        if has_rows != self._bindings_have_rows:
            self._bindings_have_rows = has_rows
            self.refresh_bindings()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.table_width, self.row_count + 1)
        if self.is_mounted and self.show_vertical_scrollbar:
            # Size the scrollbar's thumb now, so it is drawn with the rows that changed it;
            # left to the next layout it would be drawn again in a frame of its own.
            self.vertical_scrollbar.window_virtual_size = self.virtual_size.height

    # ------------------------------------------------------------------ lifecycle

    def _on_mount(self, _: events.Mount) -> None:
        self._recount()
        self._update_virtual_size()
        self._announce_cursor()

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        """Ignore a layout that leaves this table's sizes as they were.

        Textual's ``ScrollView`` compares its own container size with its parent's, which
        never match, so it repaints its scrollbar at every layout of the screen (a footer
        update, a focus change): about 1 KB down the line each time, several times a key.
        The table's own virtual size (its row count) is part of the state: a layout is how
        ``ScrollView`` passes it on to the scrollbar.
        """
        state = (size, virtual_size, container_size, self.virtual_size)
        if state == self._laid_out_as:
            return False
        self._laid_out_as = state
        return super()._size_updated(size, virtual_size, container_size, layout)

    def _scroll_update(self, virtual_size: Size) -> None:
        """``Widget._scroll_update`` without its unconditional scrollbar repaint.

        The scrollbar's sizes are reactive and repaint it when they change; repainting it
        regardless sent the unchanged scrollbar again (about 700 bytes) after every filter.
        """
        self._refresh_scrollbars()
        width, height = self.container_size
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            self.vertical_scrollbar.window_virtual_size = virtual_size.height
            self.vertical_scrollbar.window_size = height - self.scrollbar_size_horizontal
        if self.show_horizontal_scrollbar and self.styles.scrollbar_size_horizontal:
            self.horizontal_scrollbar.window_virtual_size = virtual_size.width
            self.horizontal_scrollbar.window_size = width - self.scrollbar_size_vertical
        self.scroll_x = self.validate_scroll_x(self.scroll_x)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)

    def _on_resize(self, _: events.Resize) -> None:
        self.call_after_refresh(self._scroll_cursor_into_view)

    # Focus changes only the cursor row's colours, but Textual repaints the whole widget for it
    # (``Widget._on_focus``, and again when the ``:focus`` component styles are re-applied):
    # about 3.5 KB for a full list over SSH, at every `/` and Escape. Here only the cursor
    # line is repainted.

    def _on_focus(self, event: events.Focus) -> None:
        event.prevent_default()  # instead of Widget._on_focus
        self._set_focus_state(True)
        if self.parent is not None:
            self.parent.post_message(events.DescendantFocus(self))

    def _on_blur(self, event: events.Blur) -> None:
        event.prevent_default()  # instead of Widget._on_blur
        self._set_focus_state(False)
        if self.parent is not None:
            self.parent.post_message(events.DescendantBlur(self))

    def focus(self, scroll_visible: bool = True) -> Self:
        self._restyling_for_focus = True  # Widget.focus repaints everything before focusing
        try:
            return super().focus(scroll_visible)
        finally:
            self._restyling_for_focus = False

    def _set_focus_state(self, focused: bool) -> None:
        self._restyling_for_focus = True
        try:
            self.has_focus = focused  # re-applies the styles (synchronously)
        finally:
            self._restyling_for_focus = False
        self.refresh_line(self._cursor_index + 1)

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if self._restyling_for_focus and not (regions or layout or recompose):
            return self  # a whole-widget repaint for the cursor's focus colours: see above
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    # ------------------------------------------------------------------ cursor

    def _announce_cursor(self) -> None:
        key = self.cursor_key
        if self._announced != (key,):
            self._announced = (key,)
            self.post_message(self.CursorMoved(self, key, self._cursor_index))

    def move_cursor(self, index: int, *, scroll: bool = True) -> None:
        """Highlight row *index* (clamped), scrolling it into view."""
        new = clamp(index, 0, max(self.row_count - 1, 0))
        old = self._cursor_index
        if new != old:
            self._cursor_index = new
            self.refresh_line(old + 1)
            self.refresh_line(new + 1)
        if scroll:
            self._scroll_cursor_into_view()
        self._announce_cursor()

    def _scroll_cursor_into_view(self) -> None:
        body = self.body_height
        if body <= 0:
            return
        top = round(self.scroll_y)
        index = self._cursor_index
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif index >= top + body:
            self.scroll_to(y=index - body + 1, animate=False, force=True)

    def _refresh_header(self) -> None:
        self.refresh(Region(0, 0, max(self.size.width, 1), 1))

    def _move_column(self, delta: int) -> None:
        self._cursor_column = clamp(self._cursor_column + delta, 0, len(self._columns) - 1)
        start = self._offsets[self._cursor_column] - 1
        end = start + self._columns[self._cursor_column].width + 1
        width = self.scrollable_content_region.width
        if start < self.scroll_x:
            self.scroll_to(x=start, animate=False)
        elif width and end > self.scroll_x + width:
            self.scroll_to(x=end - width, animate=False)
        self._refresh_header()
        self.refresh_bindings()

    def _toggle_sort(self, column_index: int) -> None:
        column = self._columns[column_index]
        if not column.sortable:
            self.app.bell()
            return
        descending = self._sort is not None and self._sort[0] == column.key and not self._sort[1]
        self._sort = (column.key, descending)
        self._refresh_header()
        self.post_message(self.SortChanged(self, column.key, descending))

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sort":
            return self._columns[self._cursor_column].sortable or None
        if action == "select":
            return self._row_count != 0 or None
        return True

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor_index + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor_index - 1)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_page_down(self) -> None:
        body = max(1, self.body_height)
        self.scroll_to(y=round(self.scroll_y) + body, animate=False, force=True)
        self.move_cursor(self._cursor_index + body)

    def action_page_up(self) -> None:
        body = max(1, self.body_height)
        self.scroll_to(y=round(self.scroll_y) - body, animate=False, force=True)
        self.move_cursor(self._cursor_index - body)

    def action_column_left(self) -> None:
        self._move_column(-1)

    def action_column_right(self) -> None:
        self._move_column(+1)

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, key, self._cursor_index))

    def action_sort(self) -> None:
        self._toggle_sort(self._cursor_column)

    def _column_at(self, x: int) -> int | None:
        for index, column in enumerate(self._columns):
            start = self._offsets[index] - 1
            if start <= x < start + column.width + 1:
                return index
        return None

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:  # header: sort by the clicked column
            column = self._column_at(offset.x + round(self.scroll_x))
            if column is not None:
                self._cursor_column = column
                self._toggle_sort(column)
                self.refresh_bindings()
            return
        index = round(self.scroll_y) + offset.y - 1
        if index >= self.row_count:
            return
        if index == self._cursor_index or event.chain > 1:
            self.move_cursor(index)
            self.action_select()
        else:
            self.move_cursor(index)

    # ------------------------------------------------------------------ drawing

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style costs more to look up than a line costs to draw: once per batch.
        self._batch_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._batch_style = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = round(self.scroll_x)
        base = self._batch_style or self.rich_style
        if y == 0:
            header = self._header_strip(base)
            style = base + self.get_component_rich_style("virtual-table--header")
            return header.crop_extend(scroll_x, scroll_x + width, style).simplify()
        count = self.row_count
        if count == 0:
            return self._message_line(y, width, base)
        index = round(self.scroll_y) + y - 1
        if index >= count:
            return Strip.blank(width, base)
        line_style = base
        if self.zebra_stripes and index % 2 == 0:
            line_style = self.get_component_rich_style("virtual-table--even-row")
        cursor = None
        if index == self._cursor_index:
            cursor = self.get_component_rich_style("virtual-table--cursor")
            line_style = line_style + cursor
        strip = self._row_strip(self._row_at(index), line_style, cursor)
        # one segment per run of equal style: fewer escape sequences on a slow link
        return strip.crop_extend(scroll_x, scroll_x + width, line_style).simplify()

    def _header_strip(self, base: Style) -> Strip:
        header = base + self.get_component_rich_style("virtual-table--header")
        marked = header + self.get_component_rich_style(
            "virtual-table--header-cursor", partial=True
        )
        segments: list[Segment] = []
        for index, column in enumerate(self._columns):
            label = plain_text(column.label)
            if self._sort is not None and self._sort[0] == column.key:
                arrow = SORT_DESCENDING if self._sort[1] else SORT_ASCENDING
                if column.width >= 3:
                    label = fit(label, column.width - 2).rstrip() + " " + arrow
                else:
                    label = arrow
            segments.append(Segment(" ", header))
            style = marked if index == self._cursor_column else header
            segments.append(Segment(fit(label, column.width, column.align), style))
        return Strip(segments, self.table_width)

    def _row_strip(self, row: Row | None, line_style: Style, cursor: Style | None) -> Strip:
        if row is None:
            return Strip([Segment(" " * self.table_width, line_style)], self.table_width)
        segments: list[Segment] = []
        cells = row.cells
        for index, column in enumerate(self._columns):
            cell = cells[index] if index < len(cells) else ""
            if isinstance(cell, Cell):
                text, style = cell.text, line_style
                if cell.style:
                    style = line_style + Style.parse(cell.style)
                    if cursor is not None:  # the cursor's colours win, the cell's emphasis stays
                        style += cursor
            else:
                text, style = cell, line_style
            segments.append(Segment(" ", line_style))
            segments.append(Segment(fit(plain_text(str(text)), column.width, column.align), style))
        return Strip(segments, self.table_width)

    def _message_line(self, y: int, width: int, base: Style) -> Strip:
        """The empty (or error) message, centred in the body."""
        if y - 1 != (self.body_height - 1) // 2:
            return Strip.blank(width, base)
        text = self.error_text if self._count_failed else self.empty_text
        style = base + self.get_component_rich_style("virtual-table--empty")
        return Strip([Segment(fit(plain_text(text), width, "center"), style)], width)
