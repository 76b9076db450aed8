"""The record services: validation collects every error, writes are permissioned, versioned,
audited without personal values, and consent is derived from its history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    AuditEvent,
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services import records
from plusjeklas_tui.services.records import ConflictError
from plusjeklas_tui.validation import BSN_RULE, ValidationErrors

PURPOSES = ("newsletter", "analytics", "feedback")
TODAY = dt.date(2026, 3, 2)

SCHOOL: dict[str, str] = {
    "name": "  OBS De Klimop ",
    "street": "Kerkstraat 1",
    "postcode": "1234ab",
    "city": "Utrecht",
    "brin": "05 ko",
    "phone": "030 123 4567",
    "email": "Info@Klimop.Example",
    "iban": "NL91 ABNA 0417 1643 00",
    "notes": "Prefers calls on Tuesday",
}
PERSON: dict[str, Any] = {
    "name": "Annelies Zwart-Verhoeven",
    "phones": "06 12345678; 030 765 4321",
    "email": "a.zwart@klimop.example",
}


def school(**changes: str) -> records.OrganisationInput:
    return records.validate_organisation({**SCHOOL, **changes})


def count(engine: Any, model: Any) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# --- validation (no database) --------------------------------------------------------------


def test_validate_organisation_normalises() -> None:
    data = school()
    assert data == records.OrganisationInput(
        name="OBS De Klimop",
        street="Kerkstraat 1",
        postcode="1234 AB",
        city="Utrecht",
        brin="05KO",
        phone="+31301234567",
        email="info@klimop.example",
        iban="NL91ABNA0417164300",
        notes="Prefers calls on Tuesday",
    )
    bare = records.validate_organisation({**SCHOOL, "email": " ", "iban": "", "notes": ""})
    assert (bare.email, bare.iban, bare.notes) == (None, None, None)


def test_validate_organisation_collects_every_error() -> None:
    raw = {
        "name": "",
        "street": "Kerkstraat 1",
        "postcode": "0123 AB",
        "city": "Utrecht",
        "brin": "05K0",
        "phone": "06-1234abcd",
        "email": "jan@",
        "iban": "NL91ABNA0417164301",
        "notes": "BSN of the head: 111222333",
    }
    with pytest.raises(ValidationErrors) as caught:
        records.validate_organisation(raw)
    errors = caught.value.by_field()
    assert set(errors) == {"name", "postcode", "brin", "phone", "email", "iban", "notes"}
    assert str(errors["brin"]).startswith("BRIN '05K0': ")
    assert errors["notes"].rule == BSN_RULE
    message = str(caught.value)
    for secret in ("jan@", "NL91ABNA0417164301", "111222333"):
        assert secret not in message


def test_validate_administrator_collects_and_hides_values() -> None:
    data = records.validate_administrator(PERSON)
    assert data.phones == ["+31612345678", "+31307654321"]
    assert records.validate_administrator({**PERSON, "phones": ["0612345678", "06 12345678"]})
    with pytest.raises(ValidationErrors) as caught:
        records.validate_administrator(
            {"name": "Kees 123.456.782 Bakker", "phones": "0612345678;06123456", "email": "kees@"}
        )
    by_field = caught.value.by_field()
    assert set(by_field) == {"admin_name", "admin_phones", "admin_email"}
    assert by_field["admin_phones"].rule.startswith("number 2: ")
    assert by_field["admin_name"].rule == BSN_RULE
    message = str(caught.value)
    assert "Kees" not in message and "kees@" not in message and "06123456" not in message
    with pytest.raises(ValidationErrors) as no_phone:
        records.validate_administrator({**PERSON, "phones": " ; "})
    assert no_phone.value.errors[0].field == "admin_phones"


@pytest.mark.parametrize(
    ("status", "start", "end", "field"),
    [
        ("active", "2025-08-01", "2025-07-31", "end_date"),  # end before start
        ("ended", "2025-08-01", "", "end_date"),  # ended needs an end date
        ("cancelled", "2025-08-01", "", "end_date"),
        ("ended", "2025-08-01", "2026-07-31", "status"),  # ended but ends in the future
        ("active", "2024-08-01", "2025-07-31", "status"),  # active but already over
        ("trial", "2024-08-01", "2026-03-01", "status"),
        ("paused", "2024-08-01", "", "status"),
        ("active", "", "", "start_date"),
        ("active", "2024-02-30", "", "start_date"),
    ],
)
def test_subscription_status_must_agree_with_dates(
    status: str, start: str, end: str, field: str
) -> None:
    raw = {"plan": "basis", "start_date": start, "end_date": end, "status": status}
    with pytest.raises(ValidationErrors) as caught:
        records.validate_subscription(raw, today=TODAY)
    assert field in caught.value.by_field()


@pytest.mark.parametrize(
    ("status", "end"),
    [
        ("active", ""),
        ("active", "2026-03-02"),  # last day is today
        ("trial", "2026-09-01"),
        ("cancelled", "2026-07-31"),  # cancelled, runs out at the end of the term
        ("cancelled", "2025-07-31"),
        ("ended", "2026-03-02"),
        ("ended", "2025-07-31"),
    ],
)
def test_subscription_consistent_cases(status: str, end: str) -> None:
    raw = {"plan": " basis ", "start_date": "2025-03-01", "end_date": end, "status": status}
    data = records.validate_subscription(raw, today=TODAY)
    assert data.status == SubscriptionStatus(status)
    assert data.plan == "basis"
    assert data.end_date == (dt.date.fromisoformat(end) if end else None)


def test_status_for_dates() -> None:
    assert records.status_for_dates(None, TODAY) == SubscriptionStatus.ACTIVE
    assert records.status_for_dates(dt.date(2026, 3, 1), TODAY) == SubscriptionStatus.ENDED
    future = dt.date(2026, 7, 31)
    assert records.status_for_dates(future, TODAY, SubscriptionStatus.CANCELLED) == "cancelled"
    assert records.status_for_dates(None, TODAY, SubscriptionStatus.CANCELLED) == "active"
    assert records.status_for_dates(None, TODAY, SubscriptionStatus.TRIAL) == "trial"


# --- organisations -------------------------------------------------------------------------


def test_create_and_update_organisation(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(session, ctx.staff, school())
        org_id = org.id
    assert org.version == 1
    with session_scope(ctx.engine) as session:
        updated = records.update_organisation(
            session, ctx.staff, org_id, school(city="Amersfoort", iban=""), expected_version=1
        )
        assert updated.version == 2
    with Session(ctx.engine) as session:
        stored = session.get(Organisation, org_id)
        assert stored is not None
        assert (stored.city, stored.iban, stored.version) == ("Amersfoort", None, 2)
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.entity, e.entity_id) for e in events] == [
        ("create", "organisation", org_id),
        ("update", "organisation", org_id),
    ]
    assert '"fields": ["city", "iban"]' in events[1].detail
    assert events[1].actor == ctx.staff.username


def test_saving_identical_data_changes_nothing(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
    with session_scope(ctx.engine) as session:
        same = records.update_organisation(session, ctx.staff, org_id, school(), 1)
        assert same.version == 1
    assert count(ctx.engine, AuditEvent) == 1


def test_stale_version_is_a_conflict(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
    with session_scope(ctx.engine) as first:
        records.update_organisation(first, ctx.staff, org_id, school(city="Zeist"), 1)
    with (
        pytest.raises(ConflictError, match=r"organisation #\d+ was changed by someone else"),
        session_scope(ctx.engine) as second,
    ):
        records.update_organisation(second, ctx.staff, org_id, school(city="Baarn"), 1)
    with Session(ctx.engine) as session:
        stored = session.get(Organisation, org_id)
        assert stored is not None and (stored.city, stored.version) == ("Zeist", 2)


def test_conflict_detected_in_the_database_when_the_session_is_stale(ctx: AppContext) -> None:
    """A session that read version 1 before someone else saved: the guarded UPDATE catches it."""
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
    with Session(ctx.engine, expire_on_commit=False) as stale:
        loaded = stale.get(Organisation, org_id)
        assert loaded is not None and loaded.version == 1
        stale.commit()  # ends the read; the object (version 1) stays in the identity map
        with session_scope(ctx.engine) as other:
            records.update_organisation(other, ctx.staff, org_id, school(city="Zeist"), 1)
        with pytest.raises(ConflictError, match="while you were editing"):
            records.update_organisation(stale, ctx.staff, org_id, school(city="Baarn"), 1)
        stale.rollback()
    with Session(ctx.engine) as session:
        stored = session.get(Organisation, org_id)
        assert stored is not None and (stored.city, stored.version) == ("Zeist", 2)


def test_duplicate_brin_is_a_field_error(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        first_id = records.create_organisation(session, ctx.staff, school()).id
        second_id = records.create_organisation(session, ctx.staff, school(brin="07NU00")).id
    with pytest.raises(ValidationErrors) as caught, session_scope(ctx.engine) as session:
        records.create_organisation(session, ctx.staff, school(brin="05ko"))
    assert str(caught.value) == f"BRIN '05KO': already used by organisation #{first_id}"
    assert caught.value.errors[0].field == "brin"
    with pytest.raises(ValidationErrors) as moved, session_scope(ctx.engine) as session:
        records.update_organisation(session, ctx.staff, second_id, school(brin="05KO"), 1)
    assert str(moved.value) == f"BRIN '05KO': already used by organisation #{first_id}"
    assert count(ctx.engine, Organisation) == 2


def test_brin_taken_between_check_and_write_is_a_conflict(ctx: AppContext) -> None:
    """The unique constraint is recognised by name on both engines (a concurrent save)."""
    with session_scope(ctx.engine) as session:
        records.create_organisation(session, ctx.staff, school())
    taken = pytest.raises(ConflictError, match="BRIN 05KO was saved at the same moment")
    with taken, session_scope(ctx.engine) as session:
        session.add(records_organisation(school()))  # skips the check, as a race would
        records._flush_organisation(session, "05KO")
    assert count(ctx.engine, Organisation) == 1


def records_organisation(data: records.OrganisationInput) -> Organisation:
    return Organisation(**{f: getattr(data, f) for f in records.ORGANISATION_FIELDS})


def test_unknown_organisation_is_not_found(ctx: AppContext) -> None:
    with pytest.raises(NotFound, match="organisation #999"), session_scope(ctx.engine) as s:
        records.update_organisation(s, ctx.staff, 999, school(), 1)


def test_viewer_is_refused_and_nothing_is_written(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
        admin_id = records.add_administrator(
            session, ctx.staff, org_id, records.validate_administrator(PERSON)
        ).id
    before = {m: count(ctx.engine, m) for m in (Organisation, Administrator, AuditEvent)}
    viewer = open_as("vera")
    attempts: list[Callable[[Session], object]] = [
        lambda s: records.create_organisation(s, viewer.staff, school(brin="07NU")),
        lambda s: records.update_organisation(s, viewer.staff, org_id, school(city="X"), 1),
        lambda s: records.add_administrator(
            s, viewer.staff, org_id, records.validate_administrator(PERSON)
        ),
        lambda s: records.record_consent(
            s,
            viewer.staff,
            admin_id,
            "newsletter",
            "granted",
            "asked by mail",
            purposes=PURPOSES,
        ),
    ]
    for attempt in attempts:
        with (
            pytest.raises(PermissionDenied, match="vera \\(viewer\\) may not"),
            session_scope(viewer.engine) as session,
        ):
            attempt(session)
    assert {m: count(ctx.engine, m) for m in before} == before
    assert count(ctx.engine, ConsentEvent) == 0


# --- administrators and subscriptions ------------------------------------------------------


def test_administrators_add_update_and_unique_email(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
        admin = records.add_administrator(
            session, ctx.staff, org_id, records.validate_administrator(PERSON)
        )
        admin_id = admin.id
    with pytest.raises(ValidationErrors) as caught, session_scope(ctx.engine) as session:
        again = records.validate_administrator({**PERSON, "email": "A.Zwart@KLIMOP.example"})
        records.add_administrator(session, ctx.staff, org_id, again)
    assert caught.value.errors[0].field == "admin_email"
    assert f"already used by administrator #{admin_id}" in str(caught.value)
    assert "zwart" not in str(caught.value).lower()
    with session_scope(ctx.engine) as session:
        changed = records.validate_administrator({**PERSON, "phones": "0687654321"})
        updated = records.update_administrator(session, ctx.staff, admin_id, changed, 1)
        assert updated.version == 2
    with Session(ctx.engine) as session:
        stored = session.get(Administrator, admin_id)
        assert stored is not None and records.administrator_phones(stored) == ["+31687654321"]
        found = records.find_administrator_by_email(session, org_id, "A.ZWART@klimop.example")
        assert found is not None and found.id == admin_id
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()  # type: ignore[union-attr]
    assert last is not None and '"fields": ["phones"]' in last.detail
    with pytest.raises(ConflictError), session_scope(ctx.engine) as session:
        records.update_administrator(session, ctx.staff, admin_id, changed, 1)


def test_subscriptions_add_and_duplicate(ctx: AppContext) -> None:
    data = records.validate_subscription(
        {"plan": "basis", "start_date": "2025-08-01", "end_date": "", "status": "active"},
        today=TODAY,
    )
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
        sub_id = records.add_subscription(session, ctx.staff, org_id, data).id
    with (
        pytest.raises(ValidationErrors, match="already has a 'basis' subscription"),
        session_scope(ctx.engine) as session,
    ):
        records.add_subscription(session, ctx.staff, org_id, data)
    ended = records.validate_subscription(
        {"plan": "basis", "start_date": "2025-08-01", "end_date": "2026-02-28", "status": "ended"},
        today=TODAY,
    )
    with session_scope(ctx.engine) as session:
        records.update_subscription(session, ctx.staff, sub_id, ended)
    with Session(ctx.engine) as session:
        stored = session.get(Subscription, sub_id)
        assert stored is not None
        assert (stored.status, stored.end_date) == ("ended", dt.date(2026, 2, 28))
    assert count(ctx.engine, Subscription) == 1


# --- consent -------------------------------------------------------------------------------


def _admin(ctx: AppContext) -> int:
    with session_scope(ctx.engine) as session:
        org_id = records.create_organisation(session, ctx.staff, school()).id
        admin = records.add_administrator(
            session, ctx.staff, org_id, records.validate_administrator(PERSON)
        )
        assert admin.id is not None
        return admin.id


def test_consent_is_derived_from_history(ctx: AppContext) -> None:
    admin_id = _admin(ctx)
    t0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    with session_scope(ctx.engine) as session:
        assert records.current_consent(session, admin_id) == dict.fromkeys(PURPOSES)
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            ConsentAction.GRANTED,
            "reply to mailing of 2026-01-05",
            occurred_at=t0,
            purposes=PURPOSES,
        )
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "analytics",
            "granted",
            None,
            source="web-form",
            occurred_at=t0,
            purposes=PURPOSES,
        )
        assert records.current_consent(session, admin_id)["newsletter"] == "granted"
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            "withdrawn",
            "phoned to unsubscribe",
            occurred_at=t0 + dt.timedelta(days=3),
            purposes=PURPOSES,
        )
        # recorded later, but happened before the withdrawal: history order is by time
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            "granted",
            "paper form found later",
            occurred_at=t0 + dt.timedelta(days=1),
            purposes=PURPOSES,
        )
    with Session(ctx.engine) as session:
        state = records.current_consent(session, admin_id)
        history = records.consent_history(session, admin_id)
    assert state == {"newsletter": "withdrawn", "analytics": "granted", "feedback": None}
    assert [e.action for e in history if e.purpose == "newsletter"] == [
        "granted",
        "granted",
        "withdrawn",
    ]
    assert {e.source for e in history} == {ctx.staff.source_tag, "web-form"}
    # current consent is nowhere stored: the only consent table is the event history
    assert count(ctx.engine, ConsentEvent) == 4


def test_consent_input_is_checked(ctx: AppContext) -> None:
    admin_id = _admin(ctx)
    with pytest.raises(ValidationErrors) as caught, session_scope(ctx.engine) as session:
        records.record_consent(
            session, ctx.staff, admin_id, "marketing", "maybe", "", purposes=PURPOSES
        )
    assert set(caught.value.by_field()) == {"purpose", "action", "evidence"}
    with pytest.raises(ValidationErrors) as bsn, session_scope(ctx.engine) as session:
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            "granted",
            "asked by phone, BSN 123456782",
            purposes=PURPOSES,
        )
    assert bsn.value.errors[0].rule == BSN_RULE and "123456782" not in str(bsn.value)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with (
        pytest.raises(ValidationErrors, match="cannot be in the future"),
        session_scope(ctx.engine) as session,
    ):
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            "granted",
            "form v3",
            source="web-form",
            occurred_at=future,
            purposes=PURPOSES,
        )
    with pytest.raises(ValidationErrors, match="source"), session_scope(ctx.engine) as session:
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "newsletter",
            "granted",
            "x",
            source="somewhere",
            purposes=PURPOSES,
        )
    # a purpose the config adds is accepted when passed in
    with session_scope(ctx.engine) as session:
        records.record_consent(
            session,
            ctx.staff,
            admin_id,
            "workshops",
            "granted",
            "form v3",
            source="web-form",
            purposes=(*PURPOSES, "workshops"),
        )
        assert records.current_consent(session, admin_id)["workshops"] == "granted"
    assert count(ctx.engine, ConsentEvent) == 1


# --- audit contains no personal values -----------------------------------------------------


def test_audit_events_hold_no_personal_values(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(session, ctx.staff, school())
        admin = records.add_administrator(
            session, ctx.staff, org.id, records.validate_administrator(PERSON)
        )
        records.update_organisation(
            session,
            ctx.staff,
            org.id,
            school(email="finance@klimop.example", notes="Contact Mr Vlaskamp"),
            1,
        )
        records.update_administrator(
            session,
            ctx.staff,
            admin.id,
            records.validate_administrator({**PERSON, "name": "Annelies Verhoeven"}),
            1,
        )
        records.record_consent(
            session,
            ctx.staff,
            admin.id,
            "newsletter",
            "granted",
            "mail from Annelies of 3 March",
            purposes=PURPOSES,
        )
    personal = [
        "Annelies",
        "Zwart",
        "Verhoeven",
        "a.zwart@klimop.example",
        "klimop.example",
        "+31612345678",
        "0612345678",
        "NL91ABNA0417164300",
        "0417164300",
        "Vlaskamp",
        "Tuesday",
        "finance@",
        "3 March",
    ]
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, action, entity, detail FROM audit_event")).all()
    assert len(rows) == 5
    dump = "\n".join(" ".join(str(v) for v in row) for row in rows).lower()
    for value in personal:
        assert value.lower() not in dump, value
