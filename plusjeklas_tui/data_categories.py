"""Which category of data every column holds: the link between the tables and the register.

Every column of every table in :data:`plusjeklas_tui.models.metadata` is listed here, either
with the data category it holds or with ``None`` for "explicitly not personal" (ids, foreign
keys, record bookkeeping, statuses, counts, provider names, non-personal error texts). A column
that is not listed is *unclassified*: the register's self-check (``plusjeklas register``)
reports it, so a table or column added later cannot slip into the database without someone
deciding what it holds and under which processing activity.

Blind-index columns (``*_index``) hold a keyed hash of a personal value: pseudonymised, still
personal, so they carry the category of the value they index.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import MetaData


class DataCategory(enum.StrEnum):
    SCHOOL_NAME_ADDRESS = "school_name_address"
    SCHOOL_PHONE = "school_phone"
    BRIN = "brin"
    CONTACT_EMAIL = "contact_email"
    IBAN = "iban"
    SUBSCRIPTION = "subscription"
    ADMINISTRATOR_NAME = "administrator_name"
    ADMINISTRATOR_EMAIL = "administrator_email"
    ADMINISTRATOR_PHONE = "administrator_phone"
    ADMINISTRATOR_ROLE = "administrator_role"
    FREE_TEXT_NOTES = "free_text_notes"
    CONSENT = "consent"
    NEWSLETTER_BASIS = "newsletter_basis"
    PROVIDER_IDS = "provider_ids"
    PAYMENT_RECORDS = "payment_records"
    FEEDBACK = "feedback"
    REQUESTS = "requests"
    BREACH_RECORDS = "breach_records"
    STAFF_ACCOUNTS = "staff_accounts"


@dataclass(frozen=True)
class CategoryInfo:
    nl: str
    en: str
    subjects: tuple[str, str]
    """Whose data it is (Dutch, English)."""


_SCHOOL = ("scholen en hun contactpersonen", "schools and their contact persons")
_ADMIN = ("beheerders van scholen", "school administrators")
_REQUESTER = ("personen die een AVG-verzoek doen", "people who make a GDPR request")
_STAFF = ("medewerkers van de verwerkingsverantwoordelijke", "the controller's staff")

CATEGORIES: Mapping[DataCategory, CategoryInfo] = {
    DataCategory.SCHOOL_NAME_ADDRESS: CategoryInfo(
        "naam en adres school", "school name and address", _SCHOOL
    ),
    DataCategory.SCHOOL_PHONE: CategoryInfo(
        "telefoonnummer school", "school phone number", _SCHOOL
    ),
    DataCategory.BRIN: CategoryInfo("BRIN-nummer school", "school BRIN number", _SCHOOL),
    DataCategory.CONTACT_EMAIL: CategoryInfo(
        "e-mailadres contactpersoon", "contact person's e-mail address", _SCHOOL
    ),
    DataCategory.IBAN: CategoryInfo(
        "bankrekeningnummer (IBAN)", "bank account number (IBAN)", _SCHOOL
    ),
    DataCategory.SUBSCRIPTION: CategoryInfo(
        "abonnement (pakket, looptijd, status)", "subscription (plan, term, status)", _SCHOOL
    ),
    DataCategory.ADMINISTRATOR_NAME: CategoryInfo("naam beheerder", "administrator's name", _ADMIN),
    DataCategory.ADMINISTRATOR_EMAIL: CategoryInfo(
        "e-mailadres beheerder", "administrator's e-mail address", _ADMIN
    ),
    DataCategory.ADMINISTRATOR_PHONE: CategoryInfo(
        "telefoonnummers beheerder", "administrator's phone numbers", _ADMIN
    ),
    DataCategory.ADMINISTRATOR_ROLE: CategoryInfo(
        "periode als beheerder (begin, vertrek)", "term as administrator (start, leaving)", _ADMIN
    ),
    DataCategory.FREE_TEXT_NOTES: CategoryInfo(
        "notities van medewerkers (school, juridische blokkade)",
        "staff notes (school, legal hold)",
        _SCHOOL,
    ),
    DataCategory.CONSENT: CategoryInfo(
        "toestemmingen en hun bewijs (doel, moment, bron, tekstversie)",
        "consents and their proof (purpose, time, source, text version)",
        _ADMIN,
    ),
    DataCategory.NEWSLETTER_BASIS: CategoryInfo(
        "bewijs klantuitzondering nieuwsbrief (art. 11.7 Tw)",
        "evidence of the newsletter customer exception (art. 11.7 Tw)",
        _ADMIN,
    ),
    DataCategory.PROVIDER_IDS: CategoryInfo(
        "kenmerken en status bij verwerkers", "identifiers and status at processors", _ADMIN
    ),
    DataCategory.PAYMENT_RECORDS: CategoryInfo(
        "betaalgegevens onder fiscale bewaarplicht (afgeschermd)",
        "payment records under fiscal retention (restricted)",
        _SCHOOL,
    ),
    DataCategory.FEEDBACK: CategoryInfo(
        "feedbackverzoeken en antwoorden", "feedback requests and answers", _SCHOOL
    ),
    DataCategory.REQUESTS: CategoryInfo(
        "AVG-verzoeken (verzoeker, identiteitscontrole, afhandeling)",
        "GDPR requests (requester, identity check, handling)",
        _REQUESTER,
    ),
    DataCategory.BREACH_RECORDS: CategoryInfo(
        "datalekregister (contactpersoon, omschrijving, gevolgen)",
        "breach register (contact person, description, consequences)",
        _STAFF,
    ),
    DataCategory.STAFF_ACCOUNTS: CategoryInfo(
        "accountnamen van medewerkers (audit log)", "staff account names (audit log)", _STAFF
    ),
}

C = DataCategory
_ID = {"id": None}
_CREATED = {"created_at": None}
_UPDATED = {"updated_at": None, "version": None}

COLUMNS: Mapping[str, Mapping[str, DataCategory | None]] = {
    "organisation": {
        **_ID,
        "name": C.SCHOOL_NAME_ADDRESS,
        "street": C.SCHOOL_NAME_ADDRESS,
        "postcode": C.SCHOOL_NAME_ADDRESS,
        "city": C.SCHOOL_NAME_ADDRESS,
        "brin": C.BRIN,
        "phone": C.SCHOOL_PHONE,
        "email": C.CONTACT_EMAIL,
        "email_index": C.CONTACT_EMAIL,
        "iban": C.IBAN,
        "notes": C.FREE_TEXT_NOTES,
        **_CREATED,
        **_UPDATED,
    },
    "administrator": {
        **_ID,
        "organisation_id": None,
        "name": C.ADMINISTRATOR_NAME,
        "email": C.ADMINISTRATOR_EMAIL,
        "email_index": C.ADMINISTRATOR_EMAIL,
        "phones": C.ADMINISTRATOR_PHONE,
        "started_on": C.ADMINISTRATOR_ROLE,
        "left_on": C.ADMINISTRATOR_ROLE,
        **_CREATED,
        **_UPDATED,
    },
    "subscription": {
        **_ID,
        "organisation_id": None,
        "plan": C.SUBSCRIPTION,
        "start_date": C.SUBSCRIPTION,
        "end_date": C.SUBSCRIPTION,
        "status": C.SUBSCRIPTION,
        **_CREATED,
        "updated_at": None,
    },
    "consent_event": {
        **_ID,
        "administrator_id": None,
        "purpose": C.CONSENT,
        "action": C.CONSENT,
        "occurred_at": C.CONSENT,
        "source": C.CONSENT,
        "evidence": C.CONSENT,
        "recorded_at": None,
        "text_version": C.CONSENT,
        "form_url": C.CONSENT,
        "confirmed_at": C.CONSENT,
        "channel": C.CONSENT,
    },
    "newsletter_customer_basis": {
        **_ID,
        "administrator_id": None,
        "organisation_id": None,
        "collected_at": C.NEWSLETTER_BASIS,
        "objection_text_version": C.NEWSLETTER_BASIS,
        "evidence": C.NEWSLETTER_BASIS,
        "recorded_by": C.STAFF_ACCOUNTS,
        "recorded_at": None,
    },
    "provider_link": {
        **_ID,
        "provider": None,
        "subject_type": None,
        "subject_id": None,
        "external_id": C.PROVIDER_IDS,
        "external_id_index": C.PROVIDER_IDS,
        "last_synced_at": C.PROVIDER_IDS,
        "status": C.PROVIDER_IDS,
        "detail": C.PROVIDER_IDS,
        **_CREATED,
    },
    "provider_state": {
        **_ID,
        "provider": None,
        # encrypted: a provider's resume point may be a cursor built from an address
        "sync_checkpoint": C.PROVIDER_IDS,
        "push_watermark": None,
        "contact_watermark": None,
        "last_started_at": None,
        "last_finished_at": None,
        "last_result": None,
        "last_error": None,
        "failures_in_a_row": None,
    },
    "sync_run": {
        **_ID,
        "provider": None,
        "actor": C.STAFF_ACCOUNTS,
        "started_at": None,
        "finished_at": None,
        "state": None,
        "fetched": None,
        "applied": None,
        "unknown": None,
        "pushed": None,
        "push_failed": None,
        "errors": None,
        "error": None,
    },
    "provider_failure": {
        **_ID,
        "provider": None,
        "operation": None,
        "occurred_at": None,
        "reason": None,
        "run_id": None,
    },
    "audit_event": {
        **_ID,
        "occurred_at": None,
        "actor": C.STAFF_ACCOUNTS,
        "action": None,
        "entity": None,
        "entity_id": None,
        "detail": None,
        # the tamper-evident chain: sequence numbers and MACs, no personal data
        "seq": None,
        "mac_key_id": None,
        "prev_mac": None,
        "mac": None,
    },
    "audit_chain_head": {
        **_ID,
        "seq": None,
        "mac": None,
        "mac_key_id": None,
        "legacy_max_id": None,
    },
    "audit_mac_key": {
        **_ID,
        "key_id": None,
        "secret": None,  # a key (encrypted), not data about anyone
    },
    "legal_hold": {
        **_ID,
        "organisation_id": None,
        "reason": C.FREE_TEXT_NOTES,
        "set_by": C.STAFF_ACCOUNTS,
        "set_at": None,
    },
    "erasure_receipt": {
        **_ID,
        "subject_type": None,
        "subject_id": None,
        "erased_at": None,
        "basis": None,
        "rule": None,
        "actor": C.STAFF_ACCOUNTS,
        "retained": None,
    },
    "deletion_task": {
        **_ID,
        "receipt_id": None,
        "provider": None,
        "subject_type": None,
        "subject_id": None,
        "locator": C.PROVIDER_IDS,
        "state": None,
        "attempts": None,
        "next_attempt_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": None,
        "outcome": None,
        "verified": None,
        **_CREATED,
        "done_at": None,
    },
    "restricted_record": {
        **_ID,
        "receipt_id": None,
        "category": None,
        "legal_basis": None,
        "keep_until": None,
        "payload": C.PAYMENT_RECORDS,
        **_CREATED,
    },
    "feedback_request": {
        **_ID,
        "organisation_id": None,
        "ended_on": None,
        "asked_at": C.FEEDBACK,
        "asked_by": C.STAFF_ACCOUNTS,
        "asked_note": C.FEEDBACK,
        "answered_at": C.FEEDBACK,
        "answered_by": C.STAFF_ACCOUNTS,
        "answered_note": C.FEEDBACK,
        **_CREATED,
    },
    "data_subject_request": {
        **_ID,
        "kind": C.REQUESTS,
        "status": C.REQUESTS,
        "received_on": C.REQUESTS,
        "due_on": C.REQUESTS,
        "subject_type": None,
        "organisation_id": None,
        "administrator_id": None,
        "requester_name": C.REQUESTS,
        "requester_email": C.REQUESTS,
        "identity_check": C.REQUESTS,
        "purpose": C.REQUESTS,
        "erasure_reason": C.REQUESTS,
        "extended_due_on": C.REQUESTS,
        "extended_on": C.REQUESTS,
        "extension_reason": C.REQUESTS,
        "extension_told_at": C.REQUESTS,
        "outcome": C.REQUESTS,
        "note": C.REQUESTS,
        "erasure_receipt_id": None,
        "consent_event_id": None,
        "restriction_lifted_on": C.REQUESTS,
        "created_by": C.STAFF_ACCOUNTS,
        "completed_by": C.STAFF_ACCOUNTS,
        "completed_at": C.REQUESTS,
        "scrubbed_at": None,
        **_CREATED,
        "updated_at": None,
    },
    "breach": {
        **_ID,
        "status": None,
        "follow_up": None,
        "earlier_reference": None,
        "contact_name": C.BREACH_RECORDS,
        "contact_function": C.BREACH_RECORDS,
        "contact_phone": C.BREACH_RECORDS,
        "contact_email": C.BREACH_RECORDS,
        "processor_involved": None,
        "processor_name": None,
        "started_at": None,
        "ended_at": None,
        "ongoing": None,
        "discovered_at": None,
        "summary": C.BREACH_RECORDS,
        "nature": None,
        "cause": C.BREACH_RECORDS,
        "data_types": None,
        "data_types_other": C.BREACH_RECORDS,
        "records_approx": None,
        "groups": C.BREACH_RECORDS,
        "people_min": None,
        "people_max": None,
        "vulnerable_groups": None,
        "encrypted": None,
        "consequences": C.BREACH_RECORDS,
        "informed": None,
        "informed_how": C.BREACH_RECORDS,
        "measures": C.BREACH_RECORDS,
        "reported_at": None,
        "ap_reference": None,
        "late_reason": C.BREACH_RECORDS,
        "not_reportable_reason": C.BREACH_RECORDS,
        "decided_by": C.STAFF_ACCOUNTS,
        "created_by": C.STAFF_ACCOUNTS,
        **_CREATED,
        **_UPDATED,
    },
    "promise_audit": {
        **_ID,
        "ran_at": None,
        "actor": C.STAFF_ACCOUNTS,
        "passed": None,
        "checks": None,
        "failures": None,
        "results": None,
    },
}
"""table -> column -> the category it holds, or None for explicitly not personal."""

Classification = Mapping[str, Mapping[str, DataCategory | None]]


def unclassified_columns(metadata: MetaData, columns: Classification = COLUMNS) -> list[str]:
    """``table.column`` for every column of *metadata* that :data:`COLUMNS` does not list."""
    return [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if column.name not in columns.get(table.name, {})
    ]


def stale_entries(metadata: MetaData, columns: Classification = COLUMNS) -> list[str]:
    """``table.column`` listed in :data:`COLUMNS` that *metadata* no longer has (a rename)."""
    return [
        f"{table}.{column}"
        for table, listed in columns.items()
        for column in listed
        if table not in metadata.tables or column not in metadata.tables[table].columns
    ]


def columns_of(
    category: DataCategory, columns: Classification = COLUMNS
) -> Iterable[tuple[str, str]]:
    for table, listed in columns.items():
        for column, held in listed.items():
            if held == category:
                yield table, column
