"""The filter line above a list: a `/` input that filters as you type, and removable chips.

Typing is debounced (:attr:`FilterBar.debounce_seconds`) so a list is asked again only when
the typist pauses, not once per key. Chips show filters that came from elsewhere (a dashboard
tile); each is focusable and removed with Enter, Delete or Backspace.

All text shown here is plain (``markup=False``): a filter typed by a person or a value from
the database never becomes markup.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from plusjeklas_tui.tui.i18n import translate_bindings


class Chip(Static, can_focus=True):
    """One active filter; removing it posts :class:`Chip.Removed`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,delete,backspace", "remove", "lists.chip.remove", id="chip.remove"),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    DEFAULT_CSS = """
    Chip {
        width: auto;
        height: 1;
        margin-right: 1;
        padding: 0 1;
        background: $primary-muted;
        color: $text-primary;
        &:focus {
            background: $accent;
            color: $text-accent;
            text-style: bold;
        }
        &:hover {
            background: $primary;
        }
    }
    """

    class Removed(Message):
        def __init__(self, chip: Chip, filter_name: str) -> None:
            super().__init__()
            self.chip = chip
            self.filter_name = filter_name

    def __init__(self, name: str, label: str, *, id: str | None = None) -> None:
        super().__init__(f"{label} ✕", markup=False, id=id)
        self.filter_name = name
        translate_bindings(self)

    def action_remove(self) -> None:
        self.post_message(self.Removed(self, self.filter_name))

    def on_click(self) -> None:
        self.action_remove()


class FilterBar(Vertical):
    """The filter input, a status text (row count or "searching"), chips and an error line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "done", "lists.filter.done", show=False, id="filter.done"),
    ]

    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        padding: 0 1;
        & > #filter-line {
            height: 1;
        }
        & #filter-input {
            width: 1fr;
            background: $boost;
            &:focus {
                background: $accent 30%;
            }
        }
        & #filter-status {
            width: auto;
            min-width: 8;
            padding-left: 1;
            color: $text-muted;
        }
        & > #filter-chips {
            height: auto;
            display: none;
        }
        & > #filter-chips.-has-chips {
            display: block;
            height: 1;
        }
        & > #filter-error {
            display: none;
            color: $text-error;
        }
        & > #filter-error.-shown {
            display: block;
        }
    }
    """

    debounce_seconds: float = 0.15

    class TextChanged(Message):
        """The filter text settled (after the debounce, or at once on Enter)."""

        def __init__(self, bar: FilterBar, text: str) -> None:
            super().__init__()
            self.bar = bar
            self.text = text

    class Done(Message):
        """Enter or Down in the input: the user wants to go to the list."""

        def __init__(self, bar: FilterBar) -> None:
            super().__init__()
            self.bar = bar

    class ChipRemoved(Message):
        def __init__(self, bar: FilterBar, filter_name: str) -> None:
            super().__init__()
            self.bar = bar
            self.filter_name = filter_name

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.placeholder = placeholder
        self._reported = ""  # the text the owner last heard about (or set)
        self._timer: Timer | None = None
        self._status = ""
        self._error = ""
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-line"):
            field = Input(
                placeholder=self.placeholder,
                id="filter-input",
                compact=True,
                select_on_focus=False,
            )
            field.cursor_blink = False  # a blinking cursor repaints twice a second over SSH
            yield field
            yield Label("", id="filter-status", markup=False)
        yield Horizontal(id="filter-chips")
        yield Label("", id="filter-error", markup=False)

    # ------------------------------------------------------------------ owner's API

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    @property
    def text(self) -> str:
        return self._reported

    def focus_input(self) -> None:
        self.input.focus()

    def set_text(self, text: str) -> None:
        """Show *text* in the input without reporting it back as a change."""
        self._cancel_timer()
        self._reported = text
        if self.input.value != text:
            self.input.value = text
            self.input.cursor_position = len(text)

    @property
    def status(self) -> str:
        return self._status

    @property
    def error(self) -> str:
        return self._error

    def set_status(self, text: str) -> None:
        """The text right of the input (row count, "searching…"); unchanged text sends nothing."""
        if text != self._status:
            self._status = text
            self.query_one("#filter-status", Label).update(text)

    def set_error(self, text: str) -> None:
        """Show a problem with the typed filter ('' hides it)."""
        if text != self._error:
            self._error = text
            label = self.query_one("#filter-error", Label)
            label.update(text)
            label.set_class(bool(text), "-shown")

    def set_chips(self, chips: list[tuple[str, str]]) -> None:
        """Replace the chips: ``(filter name, label)`` pairs."""
        row = self.query_one("#filter-chips", Horizontal)
        focused = self.app.focused
        had_focus = focused is not None and focused in row.children
        row.remove_children()
        new = [Chip(name, label) for name, label in chips]
        if new:
            row.mount_all(new)
        row.set_class(bool(chips), "-has-chips")
        if had_focus:  # removing a chip with the keyboard keeps the keyboard in the chips
            target = new[0] if new else self.input
            self.call_after_refresh(target.focus)

    # ------------------------------------------------------------------ events

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _report(self) -> None:
        self._cancel_timer()
        value = self.input.value
        if value != self._reported:
            self._reported = value
            self.post_message(self.TextChanged(self, value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._cancel_timer()
        if event.value != self._reported:
            self._timer = self.set_timer(self.debounce_seconds, self._report)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._report()
        self.post_message(self.Done(self))

    def action_done(self) -> None:
        self._report()
        self.post_message(self.Done(self))

    def on_chip_removed(self, event: Chip.Removed) -> None:
        event.stop()
        self.post_message(self.ChipRemoved(self, event.filter_name))
