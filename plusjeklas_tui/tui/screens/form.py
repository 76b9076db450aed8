"""What every record form shares: check on blur, check all on save, write in a worker.

A form is a modal over the record. Its life:

1. each :class:`FormField` checks itself as the user leaves it (the message shows inline);
2. Save (``f2`` or the button) checks every field again, then :meth:`FormScreen.prepare`
   builds the services' input (``records.validate_*``, which raises
   :class:`ValidationErrors` for the whole form) — nothing is written while anything is wrong;
3. :meth:`FormScreen.write` runs in a thread worker inside one transaction (after checking
   the database was not migrated by another version meanwhile); a
   :class:`ValidationErrors` from the database side (BRIN taken, e-mail used) goes back to the
   fields, a :class:`ConflictError` (someone else saved first) shows a message and keeps every
   edit on screen, a database problem (locked, gone, newer) is said above the fields with
   the edits kept, any other error is reported without its text;
4. on success the form closes with the saved record's id; Escape closes it with ``None``,
   asking first when there are unsaved changes.

``f2`` saves because ``ctrl+s`` never reaches the app through many terminals and tmux.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label
from textual.worker import get_current_worker

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.services.records import ConflictError
from plusjeklas_tui.tui.database import (
    check_database,
    database_message,
    database_problem,
    forget_connections,
)
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.screens.confirm import ConfirmScreen
from plusjeklas_tui.tui.validation_text import error_text
from plusjeklas_tui.tui.widgets.form_field import FormField
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text
from plusjeklas_tui.validation import FieldError, ValidationErrors


def deliver(app: Any, callback: Callable[..., object], *args: Any) -> None:
    """Hand a worker thread's result to the UI thread; once the app has stopped, drop it."""
    with contextlib.suppress(RuntimeError):  # "App is not running"
        app.call_from_thread(callback, *args)


class FormProblem(Exception):
    """Raised by :meth:`FormScreen.prepare` for a problem of the whole form (catalogue text)."""


class FormScreen(ModalScreen[int | None]):
    """Base of the record forms; subclasses fill in the fields, ``prepare`` and ``write``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "save", "form.save", id="form.save"),
        Binding("escape", "cancel", "form.cancel", id="form.cancel"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    FormScreen {
        align: center middle;
    }
    FormScreen #form-box {
        width: 78;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    FormScreen #form-title {
        text-style: bold;
        width: 100%;
    }
    FormScreen #form-message {
        display: none;
        width: 100%;
        color: $text-error;
    }
    FormScreen #form-message.-shown {
        display: block;
    }
    FormScreen #form-fields {
        height: auto;
        max-height: 16;
    }
    FormScreen #form-buttons {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    FormScreen #form-buttons Button {
        margin-left: 2;
    }
    """

    def __init__(self, title: str) -> None:
        """*title* may hold data (a school's name): it is shown as plain text."""
        super().__init__()
        self.form_title = title
        self.saving = False
        self.conflicted = False
        translate_bindings(self)

    # --- for subclasses ----------------------------------------------------------------------

    def compose_fields(self) -> ComposeResult:
        """The form's widgets (mostly :class:`FormField`)."""
        raise NotImplementedError
        yield

    def prepare(self) -> Any:
        """Build what :meth:`write` saves from the widgets.

        Raise :class:`ValidationErrors` (shown by field) or :class:`FormProblem`.
        """
        raise NotImplementedError

    def write(self, context: AppContext, payload: Any) -> int:
        """Save *payload* (in a worker thread); return the saved record's id."""
        raise NotImplementedError

    def other_changes(self) -> bool:
        """Unsaved changes outside the :class:`FormField` widgets (selects, check boxes)."""
        return False

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box"):
            yield Label(Content(plain_text(self.form_title)), id="form-title")
            yield Label("", id="form-message", markup=False)
            with VerticalScroll(id="form-fields"):
                yield from self.compose_fields()
            with Horizontal(id="form-buttons"):
                yield Button(
                    Content(t("form.save_button")), id="form-save", variant="primary", compact=True
                )
                yield Button(Content(t("form.cancel_button")), id="form-cancel", compact=True)
        yield QuietFooter()

    # --- state -------------------------------------------------------------------------------

    @property
    def form_fields(self) -> list[FormField]:
        return list(self.query(FormField))

    def form_field(self, name: str) -> FormField:
        return self.query_one(f"#field-{name}", FormField)

    def has_unsaved_changes(self) -> bool:
        """Whether closing now would lose something the user typed or chose."""
        return any(field.changed for field in self.form_fields) or self.other_changes()

    @property
    def message(self) -> str:
        """The message above the fields ("" when none): conflicts and errors of no field."""
        label = self.query_one("#form-message", Label)
        return str(label.render()) if label.has_class("-shown") else ""

    def show_message(self, text: str | None) -> None:
        label = self.query_one("#form-message", Label)
        label.update(Content(text or ""))
        label.set_class(bool(text), "-shown")

    def show_errors(self, errors: ValidationErrors) -> None:
        """Each error next to its field; errors of no field in the message above."""
        by_field = errors.by_field()
        first: FormField | None = None
        loose: list[FieldError] = []
        for name, error in by_field.items():
            matches = self.query(f"#field-{name}")
            if matches:
                field = matches.first(FormField)
                field.show_error(error)
                first = first or field
            else:
                loose.append(error)
        if loose:
            # the label and the rule, never the value
            self.show_message("\n".join(plain_text(error_text(e)) for e in loose))
        else:
            self.show_message(t("form.invalid"))
        if first is not None:
            first.focus_input()

    # --- saving ------------------------------------------------------------------------------

    def action_save(self) -> None:
        if self.saving:
            return
        invalid = [field for field in self.form_fields if not field.validate()]
        if invalid:
            self.show_message(t("form.invalid"))
            invalid[0].focus_input()
            return
        try:
            payload = self.prepare()
        except ValidationErrors as errors:
            self.show_errors(errors)
            return
        except FormProblem as problem:
            self.show_message(str(problem))
            return
        self.show_message(None)
        self.saving = True
        self._write(self.app.context, payload)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="form-save")
    def _write(self, context: AppContext, payload: Any) -> None:
        worker = get_current_worker()
        try:
            check_database(context.engine)  # never write into a database a newer version owns
            saved = self.write(context, payload)
        except ValidationErrors as errors:
            outcome, value = self._invalid, errors
        except ConflictError as error:
            outcome, value = self._conflict, error
        except Exception as error:
            if database_problem(error) is not None:
                forget_connections(context.engine)  # the next save opens it afresh
            outcome, value = self._failed, error
        else:
            outcome, value = self._saved, saved
        if not worker.is_cancelled:
            deliver(self.app, self._finish, outcome, value)

    def _finish(self, outcome: Callable[[Any], None], value: Any) -> None:
        if self.is_attached:  # not closed meanwhile
            outcome(value)

    def _saved(self, record_id: int) -> None:
        self.saving = False
        self.dismiss(record_id)

    def _invalid(self, errors: ValidationErrors) -> None:
        self.saving = False
        self.show_errors(errors)

    def _conflict(self, _error: ConflictError) -> None:
        """Someone else saved first: say so, write nothing, keep every edit on screen."""
        self.saving = False
        self.conflicted = True
        self.show_message(t("form.conflict"))
        self.app.bell()

    def _failed(self, error: Exception) -> None:
        """Nothing was written; every edit stays on screen, so saving again (F2) can work
        once the database is back. A database problem is also said above the fields."""
        self.saving = False
        problem = database_message(error)
        if problem is not None:
            self.show_message(t("db.not_saved", problem=problem))
        self.app.report_error(error)  # type: ignore[attr-defined]

    # --- leaving -----------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if not self.has_unsaved_changes():
            self.dismiss(None)
            return
        question = ConfirmScreen(
            t("form.discard_question"), yes=t("form.discard"), no=t("form.keep_editing")
        )
        self.app.push_screen(question, self._after_confirm)

    def _after_confirm(self, discard: bool | None) -> None:
        if discard:
            self.dismiss(None)

    @on(Button.Pressed, "#form-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#form-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
