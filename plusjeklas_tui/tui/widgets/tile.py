"""A dashboard tile line: a figure with a label that opens the list it summarises."""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from plusjeklas_tui.tui.filters import OrganisationFilter
from plusjeklas_tui.tui.i18n import translate_bindings


class Tile(Static, can_focus=True):
    """Focusable; Enter or a click posts :class:`Tile.Opened` with the tile's filter."""

    BINDINGS = [Binding("enter", "open", "dashboard.open_tile")]  # noqa: RUF012

    class Opened(Message):
        def __init__(self, tile: Tile, target: str, filter: OrganisationFilter | None) -> None:
            super().__init__()
            self.tile = tile
            self.target = target
            self.filter = filter

    def __init__(
        self,
        label: str,
        *,
        target: str = "organisations",
        filter: OrganisationFilter | None = None,
        id: str | None = None,
        classes: str = "",
    ) -> None:
        super().__init__("", id=id, classes=f"tile {classes}".strip(), markup=False)
        self.label = label
        self.target = target
        self.filter = filter
        self.set_value(None)
        translate_bindings(self)

    def set_value(self, value: int | str | None) -> None:
        shown = "…" if value is None else str(value)
        self.update(Content.assemble((f"{shown:>7}", "bold"), "  ", self.label))

    def action_open(self) -> None:
        self.post_message(self.Opened(self, self.target, self.filter))

    def on_click(self) -> None:
        self.action_open()
