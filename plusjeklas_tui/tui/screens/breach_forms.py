"""Forms of the breach register: record or edit a breach, mark it reported or not reportable.

Each field is checked as it is left, by the same function the service uses
(:data:`~plusjeklas_tui.services.breaches.FIELD_CHECKS`), so a rule reads the same under the
field as in the CLI; saving checks the whole breach again (the rules between fields) and routes
every error to its field. Choices are typed as their codes (``read, copied``), flags as ja/nee
or yes/no: every field is a plain input, so the form works the same over any terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services import breaches
from plusjeklas_tui.tui.i18n import language, t
from plusjeklas_tui.tui.screens.form import FormScreen
from plusjeklas_tui.tui.widgets.form_field import FormField
from plusjeklas_tui.validation import (
    FieldError,
    ValidationErrors,
    check_free_text,
    normalize_text,
)

MULTILINE = {
    "summary",
    "cause",
    "consequences",
    "measures",
    "informed_how",
    "late_reason",
    "groups",
    "data_types_other",
}
TIMES = {"started_at", "ended_at", "discovered_at"}
FLAGS = {"follow_up", "processor_involved", "ongoing", "vulnerable_groups"}
CHOICES: dict[str, tuple[str, ...]] = {
    "nature": breaches.NATURES,
    "data_types": breaches.DATA_TYPES,
    "encrypted": breaches.ENCRYPTED_CHOICES,
    "informed": breaches.INFORMED_CHOICES,
}

FIRST = ("discovered_at", "summary", "nature", "data_types", "people_min", "people_max")
FORM_ORDER = (*FIRST, *(field for field in breaches.FIELDS if field not in FIRST))
"""What is required comes first (the countdown starts at discovery); then the regulator's
form in its own order."""


def _field_check(field: str) -> Callable[[str], object]:
    check = breaches.FIELD_CHECKS[field]
    return lambda value: check(value, field)


def _placeholder(field: str) -> str:
    if field in TIMES:
        return t("breaches.form.time_hint")
    if field in FLAGS:
        return t("breaches.form.flag_hint")
    if field in CHOICES:
        return ", ".join(CHOICES[field])
    return ""


def form_text(field: str, value: Any) -> str:
    """A stored value as it is typed in the form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        words = ("ja", "nee") if language() == "nl" else ("yes", "no")
        return words[0] if value else words[1]
    if isinstance(value, dt.datetime):
        return value.astimezone(breaches.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


class BreachForm(FormScreen):
    """``BreachForm()`` records a new breach; ``BreachForm(id, values, version)`` edits one.

    Closes with the breach's id when saved, ``None`` when cancelled.
    """

    def __init__(
        self,
        breach_id: int | None = None,
        values: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> None:
        title = (
            t("breaches.form.new_title")
            if breach_id is None
            else t("breaches.form.edit_title", id=breach_id)
        )
        super().__init__(title)
        self.breach_id = breach_id
        self.values = values or {}
        self.version = version

    def compose_fields(self) -> ComposeResult:
        for field in FORM_ORDER:
            yield FormField(
                field,
                t(f"breaches.field.{field}"),
                form_text(field, self.values.get(field)),
                check=_field_check(field),
                placeholder=_placeholder(field),
                multiline=field in MULTILINE,
            )

    def prepare(self) -> dict[str, Any]:
        raw = {field.field: field.value for field in self.form_fields}
        breaches.validate(raw)  # every rule, also between fields, before the worker starts
        if self.breach_id is not None:
            before = {key: form_text(key, self.values.get(key)) for key in raw}
            return {key: value for key, value in raw.items() if value != before[key]}
        return raw

    def write(self, context: AppContext, payload: Any) -> int:
        with session_scope(context.engine) as session:
            if self.breach_id is None:
                breach = breaches.register(session, context.staff, payload)
                assert breach.id is not None
                return breach.id
            try:
                breaches.update_breach(
                    session,
                    context.staff,
                    self.breach_id,
                    payload,
                    expected_version=self.version,
                )
            except FieldError as error:  # a reported breach's late reason, checked on save
                raise ValidationErrors([error]) from None
        return self.breach_id


class ReportForm(FormScreen):
    """Record the report to the regulator: its number, when, and (if late) why."""

    def __init__(self, breach_id: int, late_reason: str | None = None) -> None:
        super().__init__(t("breaches.form.report_title", id=breach_id))
        self.breach_id = breach_id
        self.late_reason = late_reason or ""

    def compose_fields(self) -> ComposeResult:
        yield FormField(
            "ap_reference",
            t("breaches.field.ap_reference"),
            check=lambda value: normalize_text(value, "ap_reference", 50),
        )
        yield FormField(
            "reported_at",
            t("breaches.field.reported_at"),
            dt.datetime.now(breaches.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
            check=lambda value: breaches.parse_moment(value, "reported_at"),
            placeholder=t("breaches.form.time_hint"),
        )
        yield FormField(
            "late_reason",
            t("breaches.field.late_reason"),
            self.late_reason,
            check=_field_check("late_reason"),
            multiline=True,
        )

    def prepare(self) -> dict[str, str]:
        return {field.field: field.value for field in self.form_fields}

    def write(self, context: AppContext, payload: Any) -> int:
        with session_scope(context.engine) as session:
            try:
                breaches.mark_reported(
                    session,
                    context.staff,
                    self.breach_id,
                    ap_reference=payload["ap_reference"],
                    reported_at=payload["reported_at"],
                    late_reason=payload["late_reason"],
                )
            except FieldError as error:
                raise ValidationErrors([error]) from None
        return self.breach_id


class NotReportableForm(FormScreen):
    """Judge a breach not reportable: the reason is required."""

    def __init__(self, breach_id: int) -> None:
        super().__init__(t("breaches.form.not_reportable_title", id=breach_id))
        self.breach_id = breach_id

    def compose_fields(self) -> ComposeResult:
        yield FormField(
            "not_reportable_reason",
            t("breaches.field.not_reportable_reason"),
            check=_reason_check,
            multiline=True,
        )

    def prepare(self) -> str:
        reason = self.form_field("not_reportable_reason").value
        try:
            _reason_check(reason)
        except FieldError as error:
            raise ValidationErrors([error]) from None
        return reason

    def write(self, context: AppContext, payload: Any) -> int:
        with session_scope(context.engine) as session:
            try:
                breaches.mark_not_reportable(session, context.staff, self.breach_id, payload)
            except FieldError as error:
                raise ValidationErrors([error]) from None
        return self.breach_id


def _reason_check(value: str) -> None:
    """The reason is required; checked as free text (no BSN, no control characters)."""
    text = check_free_text(value, "not_reportable_reason", breaches.TEXT_MAX_LENGTH)
    if not text:
        raise FieldError(
            "not_reportable_reason",
            "",
            breaches.breach_rule("not_reportable_needs_reason"),
            show_value=False,
        )
