"""A screen that is not built yet says so, in the app's language, instead of missing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Label

from plusjeklas_tui.tui.i18n import t


class PlaceholderScreen(Screen[None]):
    def __init__(self, name: str) -> None:
        super().__init__(id=name)
        self.screen_name = name

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(t("placeholder.soon", screen=t(f"nav.{self.screen_name}")), markup=False)
        yield Footer()
