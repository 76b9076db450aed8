"""Record that a person gave or withdrew consent for a purpose, with the evidence for it.

Staff record consent on someone's behalf only with proof (GDPR art. 7(1)): the evidence note
(the e-mail that asked, the call and its date) is required and is free text, so a BSN in it is
refused. The event's source is the staff member (``staff:<user>``), its time is now; the
history is append-only, so a mistake is corrected by recording the opposite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, Select

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import ConsentAction
from plusjeklas_tui.services import records
from plusjeklas_tui.services.record_view import AdministratorView
from plusjeklas_tui.services.records import EVIDENCE_MAX_LENGTH
from plusjeklas_tui.tui.i18n import CATALOGUE, t
from plusjeklas_tui.tui.screens.form import FormProblem, FormScreen
from plusjeklas_tui.tui.widgets.form_field import FormField
from plusjeklas_tui.tui.widgets.virtual_table import plain_text
from plusjeklas_tui.validation import REQUIRED_RULE, FieldError, check_free_text


def check_evidence(value: str) -> str:
    """Free text without a BSN, at most the services' length, and not empty."""
    text = check_free_text(value, "evidence", EVIDENCE_MAX_LENGTH)
    if not text:
        raise FieldError("evidence", value, REQUIRED_RULE, show_value=False)
    return text


def consent_label(action: str | None) -> str:
    """``granted`` / ``withdrawn`` / never asked, in the interface language."""
    return t(f"record.consent.{action or 'none'}")


def purpose_label(purpose: str) -> str:
    """The default purposes in the interface language; configured extra ones as they are."""
    key = f"record.purpose.{purpose}"
    return t(key) if key in CATALOGUE else plain_text(purpose)


class ConsentForm(FormScreen):
    """Grant or withdraw one purpose for one of the school's people.

    Closes with the new consent event's id when saved, ``None`` when cancelled.
    """

    DEFAULT_CSS: ClassVar[str] = """
    ConsentForm .form-row {
        height: auto;
    }
    ConsentForm .form-row > Label {
        width: 16;
        padding-right: 1;
        color: $text-muted;
    }
    ConsentForm .form-row > Select {
        width: 1fr;
    }
    ConsentForm #consent-now {
        padding-left: 16;
        color: $text-muted;
    }
    """

    def __init__(
        self,
        people: Sequence[AdministratorView],
        purposes: Sequence[str],
        *,
        person_id: int | None = None,
        purpose: str | None = None,
    ) -> None:
        if not people:
            raise ValueError("a consent form needs at least one person")
        super().__init__(t("form.consent.title"))
        self.people = tuple(people)
        self.purposes = tuple(purposes)
        known = {person.id for person in self.people}
        self.initial_person = person_id if person_id in known else self.people[0].id
        self.initial_purpose = purpose if purpose in self.purposes else self.purposes[0]

    def compose_fields(self) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(Content(t("form.consent.person")))
            yield Select(
                [(Content(plain_text(p.name)), p.id) for p in self.people],
                allow_blank=False,
                value=self.initial_person,
                compact=True,
                id="consent-person",
            )
        with Horizontal(classes="form-row"):
            yield Label(Content(t("form.consent.purpose")))
            yield Select(
                [(Content(purpose_label(p)), p) for p in self.purposes],
                allow_blank=False,
                value=self.initial_purpose,
                compact=True,
                id="consent-purpose",
            )
        with Horizontal(classes="form-row"):
            yield Label(Content(t("form.consent.action")))
            yield Select(
                [(Content(consent_label(a.value)), a.value) for a in ConsentAction],
                prompt=t("form.consent.choose_action"),
                compact=True,
                id="consent-action",
            )
        yield Label("", id="consent-now", markup=False)
        yield FormField(
            "evidence",
            t("form.consent.evidence"),
            check=check_evidence,
            placeholder=t("form.consent.evidence_hint"),
            max_length=EVIDENCE_MAX_LENGTH,
        )

    def on_mount(self) -> None:
        self._show_current()

    # --- choices -----------------------------------------------------------------------------

    def _choice(self, select_id: str) -> Any:
        value = self.query_one(f"#{select_id}", Select).value
        return None if value is Select.NULL else value

    @property
    def person_id(self) -> int | None:
        return self._choice("consent-person")

    @property
    def purpose(self) -> str | None:
        return self._choice("consent-purpose")

    @property
    def action(self) -> str | None:
        return self._choice("consent-action")

    def _show_current(self) -> None:
        person = next((p for p in self.people if p.id == self.person_id), None)
        state = None if person is None or self.purpose is None else person.consent_for(self.purpose)
        self.query_one("#consent-now", Label).update(
            Content(t("form.consent.now", state=consent_label(state)))
        )

    @on(Select.Changed, "#consent-person, #consent-purpose")
    def _choice_changed(self) -> None:
        self._show_current()

    def other_changes(self) -> bool:
        return (self.person_id, self.purpose, self.action) != (
            self.initial_person,
            self.initial_purpose,
            None,
        )

    # --- saving ------------------------------------------------------------------------------

    def prepare(self) -> tuple[int, str, str, str]:
        if self.action is None:
            self.query_one("#consent-action", Select).focus()
            raise FormProblem(t("form.consent.choose_action_first"))
        assert self.person_id is not None and self.purpose is not None
        return self.person_id, self.purpose, self.action, self.form_field("evidence").value

    def write(self, context: AppContext, payload: Any) -> int:
        person_id, purpose, action, evidence = payload
        with session_scope(context.engine) as session:
            event = records.record_consent(
                session,
                context.staff,
                person_id,
                purpose,
                action,
                evidence,
                purposes=context.settings.consent_purposes,
            )
            assert event.id is not None
            return event.id
