"""The note form of the Feedback screen: marking a school asked, or answered.

A note is required (how and whom was asked; what the school said): it answers the note, or
None when cancelled (Escape). The form of the ``retention_modals`` (an inline error, two
buttons); the names in it come from the database and are shown as plain text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Label

from plusjeklas_tui.services.feedback import NOTE_MAX_LENGTH
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.retention_modals import MODAL_CSS, _TypedModal
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

if TYPE_CHECKING:
    from plusjeklas_tui.services.feedback import FeedbackEntry


class FeedbackNoteForm(_TypedModal):
    """*kind* ``ask`` or ``answer``; *people*: who may be asked, as shown (ask only)."""

    DEFAULT_CSS = MODAL_CSS.format(name="FeedbackNoteForm")

    def __init__(self, kind: str, entry: FeedbackEntry, people: list[str]) -> None:
        super().__init__()
        self.kind = kind
        self.entry = entry
        self.people = people

    def compose(self) -> ComposeResult:
        entry = self.entry
        with Vertical():
            yield Label(Content(t(f"feedback.form.{self.kind}_title")), classes="modal-title")
            explain = t(
                f"feedback.form.{self.kind}_explain",
                name=entry.name,
                brin=entry.brin,
                ended=entry.ended_on.isoformat(),
            )
            yield Label(Content(plain_text(explain)), classes="modal-text")
            if self.kind == "ask":
                if self.people:
                    who = t("feedback.form.who", people="; ".join(self.people))
                else:
                    who = t("feedback.form.who_school")
                yield Label(Content(plain_text(who)), classes="modal-text", id="feedback-who")
                if entry.objected:
                    yield Label(
                        Content(t("feedback.form.objected", count=entry.objected)),
                        classes="modal-text",
                        id="feedback-objected",
                    )
            yield Input(
                placeholder=t("feedback.form.placeholder"),
                max_length=NOTE_MAX_LENGTH + 1,
                id="feedback-note",
            )
            yield Label("", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button(
                    Content(t("feedback.form.save")), variant="primary", classes="modal-ok"
                )
                yield Button(Content(t("feedback.form.cancel")), classes="modal-cancel")

    def on_mount(self) -> None:
        self.query_one("#feedback-note", Input).focus()

    def submit(self) -> None:
        note = self.query_one("#feedback-note", Input).value.strip()
        if not note:
            self.show_error(t("feedback.form.required"))
        elif len(note) > NOTE_MAX_LENGTH:
            self.show_error(t("feedback.form.too_long", max=NOTE_MAX_LENGTH))
        else:
            self.dismiss(note)
