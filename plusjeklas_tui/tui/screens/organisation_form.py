"""Edit a school (or add one): its public data, contact e-mail, IBAN and notes.

The IBAN is never put in the form: editors may change it but only admins may see it (and only
through the audited reveal). The input starts empty with the masked IBAN as a hint; left empty,
the stored IBAN is kept (read inside the saving transaction); a box removes it.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Checkbox

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation
from plusjeklas_tui.services import records
from plusjeklas_tui.services.record_view import OrganisationView
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.form import FormScreen
from plusjeklas_tui.tui.widgets.form_field import FormField, optional
from plusjeklas_tui.validation import (
    check_free_text,
    format_phone,
    normalize_brin,
    normalize_email,
    normalize_iban,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    normalize_text,
)


class OrganisationForm(FormScreen):
    """``OrganisationForm(view)`` edits a school; ``OrganisationForm()`` adds one.

    Closes with the organisation's id when saved, ``None`` when cancelled.
    """

    DEFAULT_CSS: ClassVar[str] = """
    OrganisationForm #iban-remove {
        margin-left: 16;
    }
    """

    def __init__(self, organisation: OrganisationView | None = None) -> None:
        title = (
            t("form.organisation.new_title")
            if organisation is None
            else t("form.organisation.edit_title", name=organisation.name)
        )
        super().__init__(title)
        self.organisation = organisation

    def _initial(self, attribute: str) -> str:
        if self.organisation is None:
            return ""
        value = getattr(self.organisation, attribute)
        return "" if value is None else str(value)

    def compose_fields(self) -> ComposeResult:
        org = self.organisation
        yield FormField(
            "name",
            t("form.organisation.name"),
            self._initial("name"),
            check=partial(normalize_name, field="name", max_length=200),
        )
        yield FormField(
            "street",
            t("form.organisation.street"),
            self._initial("street"),
            check=partial(normalize_text, field="street", max_length=200),
        )
        yield FormField(
            "postcode",
            t("form.organisation.postcode"),
            self._initial("postcode"),
            check=normalize_postcode,
            placeholder="1234 AB",
        )
        yield FormField(
            "city",
            t("form.organisation.city"),
            self._initial("city"),
            check=partial(normalize_text, field="city", max_length=100),
        )
        yield FormField(
            "brin",
            t("form.organisation.brin"),
            self._initial("brin"),
            check=normalize_brin,
            placeholder="05KO",
        )
        yield FormField(
            "phone",
            t("form.organisation.phone"),
            "" if org is None else format_phone(org.phone),
            check=partial(normalize_phone, field="phone"),
            placeholder="030 123 4567",
        )
        yield FormField(
            "email",
            t("form.organisation.email"),
            self._initial("email"),
            check=optional(normalize_email),
        )
        has_iban = org is not None and org.iban_masked is not None
        yield FormField(
            "iban",
            t("form.organisation.iban"),
            "",
            check=optional(normalize_iban),
            placeholder=t("form.organisation.iban_keep", masked=org.iban_masked)
            if has_iban and org is not None
            else "NL91 ABNA 0417 1643 00",
        )
        if has_iban:
            yield Checkbox(
                Content(t("form.organisation.iban_remove")), id="iban-remove", compact=True
            )
        yield FormField(
            "notes",
            t("form.organisation.notes"),
            self._initial("notes"),
            check=check_free_text,
            multiline=True,
        )

    def _remove_iban(self) -> bool:
        boxes = self.query("#iban-remove")
        return bool(boxes) and boxes.first(Checkbox).value

    def other_changes(self) -> bool:
        return self._remove_iban()

    def prepare(self) -> tuple[records.OrganisationInput, bool]:
        raw = {field.field: field.value for field in self.form_fields}
        data = records.validate_organisation(raw)
        keep_iban = (
            self.organisation is not None
            and self.organisation.iban_masked is not None
            and data.iban is None
            and not self._remove_iban()
        )
        return data, keep_iban

    def write(self, context: AppContext, payload: Any) -> int:
        data, keep_iban = payload
        with session_scope(context.engine) as session:
            if self.organisation is None:
                created = records.create_organisation(session, context.staff, data)
                assert created.id is not None
                return created.id
            if keep_iban:
                stored = session.get(Organisation, self.organisation.id)
                if stored is not None:
                    data = dataclasses.replace(data, iban=stored.iban)
            records.update_organisation(
                session,
                context.staff,
                self.organisation.id,
                data,
                expected_version=self.organisation.version,
            )
        return self.organisation.id
