"""A labelled form field that checks its value as you leave it and shows the rule inline.

The check is one of :mod:`plusjeklas_tui.validation`'s normalisers (or a small wrapper around
one): it raises :class:`~plusjeklas_tui.validation.FieldError` and the field shows that error's
rule right under the input, in the interface language (its codes looked up in the catalogue),
so staff see what is wrong while their attention is still on it.
Nothing here writes anything: the form that holds the fields validates them all again and
saves through the record services.

Values and rules may contain brackets (a school's name, a rule quoting the characters it
refused), so every text is shown as plain :class:`~textual.content.Content`, never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Input, Label, TextArea

from plusjeklas_tui.tui.validation_text import rule_text
from plusjeklas_tui.tui.widgets.virtual_table import plain_text
from plusjeklas_tui.validation import FieldError

Check = Callable[[str], object]
"""Raises :class:`FieldError` when the text is not acceptable; the result is ignored."""


def optional(check: Check) -> Check:
    """*check*, but an empty (or blank) value is fine: for optional fields."""

    def checked(value: str) -> object:
        return check(value) if value.strip() else None

    return checked


class FormField(Vertical):
    """A label, an input (one line, or several with ``multiline``) and an error line.

    ``field`` is the name the record services use in their errors (``postcode``,
    ``admin_email``...), so a form can route a :class:`ValidationErrors` to its fields.
    """

    DEFAULT_CSS: ClassVar[str] = """
    FormField {
        height: auto;

        & > .form-field--row {
            height: auto;
        }
        & .form-field--label {
            width: 16;
            padding-right: 1;
            color: $text-muted;
        }
        & Input, & TextArea {
            width: 1fr;
        }
        & Input {
            background: $boost;
        }
        & Input:focus, & TextArea:focus {
            background: $primary 25%;
        }
        &:focus-within .form-field--label {
            color: $text-primary;
            text-style: bold;
        }
        & TextArea {
            height: 4;
        }
        & .form-field--error {
            display: none;
            padding-left: 16;
            color: $text-error;
        }
        &.-invalid > .form-field--error {
            display: block;
        }
        &.-invalid .form-field--label {
            color: $text-error;
            text-style: bold;
        }
    }
    """

    def __init__(
        self,
        field: str,
        label: str,
        value: str = "",
        *,
        check: Check | None = None,
        placeholder: str = "",
        multiline: bool = False,
        max_length: int = 0,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id or f"field-{field}")
        self.field = field
        self.label = label
        self.initial_value = value
        self.check = check
        self.placeholder = placeholder
        self.multiline = multiline
        self.max_length = max_length
        self.error: FieldError | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form-field--row"):
            yield Label(Content(self.label), classes="form-field--label")
            if self.multiline:
                yield TextArea(
                    self.initial_value,
                    compact=True,
                    soft_wrap=True,
                    show_line_numbers=False,
                    id=f"input-{self.field}",
                )
            else:
                yield Input(
                    self.initial_value,
                    placeholder=self.placeholder,
                    max_length=self.max_length,
                    compact=True,
                    id=f"input-{self.field}",
                )
        yield Label("", classes="form-field--error", markup=False)

    # --- value -----------------------------------------------------------------------------

    @property
    def input(self) -> Input | TextArea:
        return self.query_one(f"#input-{self.field}", (Input, TextArea))  # type: ignore[arg-type]

    @property
    def value(self) -> str:
        widget = self.input
        return widget.text if isinstance(widget, TextArea) else widget.value

    @value.setter
    def value(self, text: str) -> None:
        widget = self.input
        if isinstance(widget, TextArea):
            widget.load_text(text)
        else:
            widget.value = text

    @property
    def changed(self) -> bool:
        return self.value != self.initial_value

    def focus_input(self) -> None:
        self.input.focus()

    # --- checking --------------------------------------------------------------------------

    @property
    def error_text(self) -> str:
        """The rule shown under the input ("" when the value is fine)."""
        return "" if self.error is None else plain_text(rule_text(self.error))

    def show_error(self, error: FieldError | None) -> None:
        """Show *error*'s rule under the input (``None`` clears it)."""
        self.error = error
        self.set_class(error is not None, "-invalid")
        if self.is_mounted:
            self.query_one(".form-field--error", Label).update(Content(self.error_text))

    def validate(self) -> bool:
        """Run the check now; show (or clear) its message. True when the value is fine."""
        if self.check is None:
            self.show_error(None)
            return True
        try:
            self.check(self.value)
        except FieldError as error:
            self.show_error(error)
            return False
        self.show_error(None)
        return True

    @on(Input.Blurred)
    def _input_left(self, event: Input.Blurred) -> None:
        event.stop()
        if self.is_mounted and self.is_attached:
            self.validate()

    def _on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # TextArea has no Blurred message of its own.
        widget: Widget = event.widget
        if isinstance(widget, TextArea) and self.is_attached:
            self.validate()
