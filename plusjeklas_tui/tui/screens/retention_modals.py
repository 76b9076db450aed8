"""Small modals for deleting and for not deleting: the sweep's typed confirmation, a legal
hold's reason, and an erasure on request (its GDPR ground and the BRIN typed to confirm).

Each asks for something typed, not just a key: deleting is final, so an absent-minded Enter
or ``y`` must not do it. A wrong answer is refused on the spot with a sentence saying nothing
was deleted; Escape cancels. Names in the questions come from the database and are shown as
plain text (:class:`Content`), never as markup.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet

from plusjeklas_tui.services.erasure import RequestReason
from plusjeklas_tui.services.legal_hold import REASON_MAX_LENGTH
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

MODAL_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 64;
    max-width: 95%;
    height: auto;
    max-height: 95%;
    border: thick $warning;
    background: $surface;
    padding: 0 1;
}}
{name} .modal-title {{
    text-style: bold;
    width: 100%;
}}
{name} .modal-text {{
    width: 100%;
    margin-bottom: 1;
}}
{name} .modal-error {{
    display: none;
    color: $text-error;
    text-style: bold;
    width: 100%;
}}
{name} .modal-error.-shown {{
    display: block;
}}
{name} .modal-buttons {{
    height: auto;
    align-horizontal: right;
}}
{name} .modal-buttons Button {{
    margin-left: 2;
}}
{name} RadioSet {{
    width: 100%;
    height: auto;
}}
"""


class _TypedModal(ModalScreen[Any]):
    """A question, an input that must be answered right, an inline error, two buttons."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "confirm.no", id="modal.cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    def show_error(self, text: str) -> None:
        error = self.query_one(".modal-error", Label)
        error.update(Content(text))
        error.add_class("-shown")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, ".modal-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, ".modal-ok")
    def _ok_pressed(self) -> None:
        self.submit()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        raise NotImplementedError


class SweepConfirmScreen(_TypedModal):
    """Answers True only when the number typed is *expected* (the organisations to be erased,
    or the subjects when no organisation is due), as ``plusjeklas retention sweep`` asks."""

    DEFAULT_CSS = MODAL_CSS.format(name="SweepConfirmScreen")

    def __init__(self, due: int, organisations: int) -> None:
        super().__init__()
        self.due = due
        self.organisations = organisations
        self.expected = organisations if organisations else due

    def compose(self) -> ComposeResult:
        what = "organisations" if self.organisations else "subjects"
        with Vertical():
            yield Label(Content(t("retention.confirm.title")), classes="modal-title")
            yield Label(
                Content(
                    t(
                        "retention.confirm.question",
                        due=self.due,
                        organisations=self.organisations,
                        what=t(f"retention.confirm.what.{what}"),
                        expected=self.expected,
                    )
                ),
                classes="modal-text",
            )
            yield Input(
                placeholder=t("retention.confirm.placeholder"),
                type="integer",
                id="sweep-count",
            )
            yield Label("", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button(
                    Content(t("retention.confirm.delete")), variant="error", classes="modal-ok"
                )
                yield Button(
                    Content(t("retention.confirm.cancel")),
                    variant="primary",
                    classes="modal-cancel",
                )

    def on_mount(self) -> None:
        self.query_one("#sweep-count", Input).focus()

    def submit(self) -> None:
        if self.query_one("#sweep-count", Input).value.strip() == str(self.expected):
            self.dismiss(True)
        else:
            self.show_error(t("retention.confirm.wrong", expected=self.expected))


class HoldForm(_TypedModal):
    """The reason for a legal hold (required, at most the service's limit); answers it."""

    DEFAULT_CSS = MODAL_CSS.format(name="HoldForm")

    def __init__(self, organisation_name: str) -> None:
        super().__init__()
        self.organisation_name = organisation_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(t("record.hold.title")), classes="modal-title")
            yield Label(
                Content(plain_text(t("record.hold.explain", name=self.organisation_name))),
                classes="modal-text",
            )
            yield Input(
                placeholder=t("record.hold.placeholder"),
                max_length=REASON_MAX_LENGTH + 1,
                id="hold-reason",
            )
            yield Label("", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button(Content(t("record.hold.save")), variant="warning", classes="modal-ok")
                yield Button(
                    Content(t("record.hold.cancel")), variant="primary", classes="modal-cancel"
                )

    def on_mount(self) -> None:
        self.query_one("#hold-reason", Input).focus()

    def submit(self) -> None:
        reason = self.query_one("#hold-reason", Input).value.strip()
        if not reason:
            self.show_error(t("record.hold.required"))
        elif len(reason) > REASON_MAX_LENGTH:
            self.show_error(t("record.hold.too_long", max=REASON_MAX_LENGTH))
        else:
            self.dismiss(reason)


class EraseRequestScreen(_TypedModal):
    """The ground of an erasure request (GDPR art. 17(1)) and the school's BRIN typed to
    confirm; answers the ground."""

    DEFAULT_CSS = MODAL_CSS.format(name="EraseRequestScreen")

    def __init__(self, organisation_name: str, brin: str) -> None:
        super().__init__()
        self.organisation_name = organisation_name
        self.brin = brin

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(t("record.erase.title")), classes="modal-title")
            yield Label(
                Content(plain_text(t("record.erase.explain", name=self.organisation_name))),
                classes="modal-text",
            )
            with RadioSet(id="erase-reason"):
                for reason in RequestReason:
                    yield RadioButton(
                        Content(t(f"record.erase.reason.{reason.value}")), name=reason.value
                    )
            yield Label(
                Content(plain_text(t("record.erase.confirm", brin=self.brin))),
                classes="modal-text",
            )
            yield Input(placeholder=t("record.erase.placeholder"), id="erase-brin")
            yield Label("", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button(Content(t("record.erase.go")), variant="error", classes="modal-ok")
                yield Button(
                    Content(t("record.erase.cancel")), variant="primary", classes="modal-cancel"
                )

    def on_mount(self) -> None:
        self.query_one("#erase-reason", RadioSet).focus()

    def chosen(self) -> RequestReason | None:
        button = self.query_one("#erase-reason", RadioSet).pressed_button
        return None if button is None or button.name is None else RequestReason(button.name)

    def submit(self) -> None:
        reason = self.chosen()
        if reason is None:
            self.show_error(t("record.erase.no_reason"))
            return
        typed = self.query_one("#erase-brin", Input).value.strip().upper().replace(" ", "")
        if typed != self.brin.upper():
            self.show_error(plain_text(t("record.erase.wrong_brin", brin=self.brin)))
            return
        self.dismiss(reason)
