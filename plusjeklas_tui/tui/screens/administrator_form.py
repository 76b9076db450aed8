"""Add or edit a school's administrator: name, work e-mail and phone numbers.

Errors use the record services' field names (``admin_name``, ``admin_email``,
``admin_phones``), so the same message appears on blur, on save and in the CSV import.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.app import ComposeResult

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services import records
from plusjeklas_tui.services.record_view import AdministratorView
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.form import FormScreen
from plusjeklas_tui.tui.widgets.form_field import FormField
from plusjeklas_tui.validation import (
    FieldError,
    Rule,
    RuleSpec,
    format_phone,
    normalize_email,
    normalize_name,
    normalize_phone,
)

PHONE_SEPARATOR = ";"


def check_phones(value: str) -> list[str]:
    """Numbers separated by ``;``, each a valid phone; at least one (as the services demand)."""
    numbers = [part for part in value.split(PHONE_SEPARATOR) if part.strip()]
    if not numbers:
        raise FieldError("admin_phones", "", Rule("phones.required"))
    checked = []
    for position, number in enumerate(numbers, start=1):
        try:
            checked.append(normalize_phone(number, "admin_phones"))
        except FieldError as error:
            rule: RuleSpec = error.parts or error.rule
            if len(numbers) > 1:
                rule = Rule("phones.item", {"position": position, "rule": rule})
            raise FieldError("admin_phones", number, rule, show_value=False) from None
    return checked


class AdministratorForm(FormScreen):
    """``AdministratorForm(org_id)`` adds a person; ``AdministratorForm(org_id, view)`` edits.

    Closes with the administrator's id when saved, ``None`` when cancelled.
    """

    def __init__(
        self,
        organisation_id: int,
        administrator: AdministratorView | None = None,
        *,
        organisation_name: str = "",
    ) -> None:
        title = (
            t("form.administrator.new_title", school=organisation_name)
            if administrator is None
            else t("form.administrator.edit_title", name=administrator.name)
        )
        super().__init__(title)
        self.organisation_id = organisation_id
        self.administrator = administrator

    def compose_fields(self) -> ComposeResult:
        person = self.administrator
        yield FormField(
            "admin_name",
            t("form.administrator.name"),
            "" if person is None else person.name,
            check=partial(normalize_name, field="admin_name", max_length=200),
        )
        yield FormField(
            "admin_email",
            t("form.administrator.email"),
            "" if person is None else person.email,
            check=partial(normalize_email, field="admin_email"),
        )
        yield FormField(
            "admin_phones",
            t("form.administrator.phones"),
            ""
            if person is None
            else f"{PHONE_SEPARATOR} ".join(format_phone(p) for p in person.phones),
            check=check_phones,
            placeholder=t("form.administrator.phones_hint"),
        )

    def prepare(self) -> records.AdministratorInput:
        return records.validate_administrator(
            {
                "name": self.form_field("admin_name").value,
                "email": self.form_field("admin_email").value,
                "phones": self.form_field("admin_phones").value,
            }
        )

    def write(self, context: AppContext, payload: Any) -> int:
        with session_scope(context.engine) as session:
            if self.administrator is None:
                added = records.add_administrator(
                    session, context.staff, self.organisation_id, payload
                )
                assert added.id is not None
                return added.id
            records.update_administrator(
                session,
                context.staff,
                self.administrator.id,
                payload,
                expected_version=self.administrator.version,
            )
        return self.administrator.id
