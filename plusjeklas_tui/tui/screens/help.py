"""`?`: every binding of the screen underneath, with what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

from plusjeklas_tui.tui.i18n import t, translate_bindings


def _key_label(screen: Screen, key: str) -> str:
    return screen.app.get_key_display(Binding(key, ""))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [  # noqa: RUF012 - Textual API
        Binding("escape", "dismiss", "nav.back"),
        Binding("question_mark", "dismiss", "nav.back", show=False),
        Binding("q", "dismiss", "nav.back", show=False),
    ]

    def __init__(self, underneath: Screen) -> None:
        super().__init__()
        self.underneath = underneath
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label(t("help.title"), id="help-title", markup=False)
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Label(t("help.close"), id="help-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(t("help.key"), t("help.action"))
        seen: set[tuple[str, str]] = set()
        for binding in self.rows():
            row = (_key_label(self.underneath, binding.key), binding.description)
            if row in seen:
                continue
            seen.add(row)
            table.add_row(Text(row[0]), Text(row[1]))

    def rows(self) -> list[Binding]:
        """Bindings active on the screen underneath: its focused widgets, itself, the app."""
        active = self.underneath.active_bindings  # key -> ActiveBinding(node, binding, enabled)
        entries = [
            entry
            for entry in active.values()
            if entry.enabled and entry.binding.description and not entry.binding.system
        ]

        def owner_rank(entry: object) -> int:
            node = entry.node  # type: ignore[attr-defined]
            return 0 if node is self.app else 1 if node is self.underneath else 2

        return [entry.binding for entry in sorted(entries, key=owner_rank)]
