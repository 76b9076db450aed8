"""A yes/no question in a small modal: ``push_screen(ConfirmScreen(question), callback)``.

The answer is ``True`` only for an explicit yes (``y`` or the Yes button); ``n``, Escape and
the No button answer ``False``. No is focused first, so an absent-minded Enter never confirms
something that loses work.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from plusjeklas_tui.tui.i18n import t, translate_bindings


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "confirm.yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "confirm.no", id="confirm.no"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    ConfirmScreen {
        align: center middle;
    }
    #confirm-box {
        width: 56;
        max-width: 95%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    #confirm-question {
        width: 100%;
        margin-bottom: 1;
    }
    #confirm-buttons {
        height: auto;
        align-horizontal: right;
    }
    #confirm-buttons Button {
        margin-left: 2;
    }
    """

    def __init__(self, question: str, *, yes: str | None = None, no: str | None = None) -> None:
        """*question* may hold data (a name): it is shown as plain text."""
        super().__init__()
        self.question = question
        self.yes_label = yes if yes is not None else t("confirm.yes")
        self.no_label = no if no is not None else t("confirm.no")
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(Content(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(Content(self.yes_label), id="confirm-yes", variant="error")
                yield Button(Content(self.no_label), id="confirm-no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)
