"""The Record screen's service: one organisation with everything around it, and the audited
IBAN reveal. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import AuditEvent, ProviderLink
from plusjeklas_tui.services import records
from plusjeklas_tui.services.deadlines import RetentionRule
from plusjeklas_tui.services.record_view import AUDIT_LIMIT, RecordView, load_record, reveal_iban

TODAY = dt.date(2026, 3, 2)
RULE = RetentionRule(months=24)
PURPOSES = ("newsletter", "analytics", "feedback")
IBAN = "NL91ABNA0417164300"
SCHOOL = {
    "name": "OBS De Klimop",
    "street": "Kerkstraat 1",
    "postcode": "1234 AB",
    "city": "Utrecht",
    "brin": "05KO",
    "phone": "030 123 4567",
    "email": "info@klimop.example",
    "iban": IBAN,
    "notes": "Belt liever op dinsdag",
}


def make_school(ctx: AppContext, **changes: str) -> int:
    with session_scope(ctx.engine) as s:
        org = records.create_organisation(
            s, ctx.staff, records.validate_organisation({**SCHOOL, **changes})
        )
        assert org.id is not None
        return org.id


def add_person(ctx: AppContext, org_id: int, name: str, email: str) -> int:
    data = records.validate_administrator({"name": name, "email": email, "phones": "0612345678"})
    with session_scope(ctx.engine) as s:
        person = records.add_administrator(s, ctx.staff, org_id, data)
        assert person.id is not None
        return person.id


def add_subscription(ctx: AppContext, org_id: int, start: str, end: str, status: str) -> int:
    data = records.validate_subscription(
        {"plan": "basis", "start_date": start, "end_date": end, "status": status}, today=TODAY
    )
    with session_scope(ctx.engine) as s:
        sub = records.add_subscription(s, ctx.staff, org_id, data)
        assert sub.id is not None
        return sub.id


def consent(ctx: AppContext, person: int, purpose: str, action: str, when: dt.datetime) -> None:
    with session_scope(ctx.engine) as s:
        records.record_consent(
            s,
            ctx.staff,
            person,
            purpose,
            action,
            "e-mail van 1 maart",
            None,
            when,
            purposes=PURPOSES,
        )


def load(ctx: AppContext, org_id: int, audit_limit: int = AUDIT_LIMIT) -> RecordView:
    return load_record(
        ctx.engine, org_id, rule=RULE, today=TODAY, purposes=PURPOSES, audit_limit=audit_limit
    )


def test_record_holds_the_school_with_a_masked_iban(ctx: AppContext) -> None:
    org_id = make_school(ctx)
    view = load(ctx, org_id)
    org = view.organisation
    assert (org.name, org.postcode, org.brin, org.phone) == (
        "OBS De Klimop",
        "1234 AB",
        "05KO",
        "+31301234567",
    )
    assert org.email == "info@klimop.example"
    assert org.notes == "Belt liever op dinsdag"
    assert org.iban_masked == "NL** **** **** **43 00"
    assert org.version == 1
    # the full IBAN is nowhere in what the screen receives
    assert IBAN not in repr(view) and "0417 1643" not in repr(view)


def test_school_without_iban(ctx: AppContext) -> None:
    view = load(ctx, make_school(ctx, iban=""))
    assert view.organisation.iban_masked is None and not view.organisation.has_iban


def test_unknown_organisation_is_not_found(ctx: AppContext) -> None:
    with pytest.raises(NotFound):
        load(ctx, 4242)


def test_retention_names_the_rule_and_what_started_the_clock(ctx: AppContext) -> None:
    never = make_school(ctx, brin="01AA")
    ended = make_school(ctx, brin="02AA")
    add_subscription(ctx, ended, "2020-08-01", "2024-07-31", "ended")
    add_subscription(ctx, ended, "2018-08-01", "2020-07-31", "ended")
    running = make_school(ctx, brin="03AA")
    add_subscription(ctx, running, "2020-08-01", "2024-07-31", "ended")
    add_subscription(ctx, running, "2024-08-01", "", "active")

    view = load(ctx, ended)
    retention = view.retention
    assert (retention.reason, retention.clock_start, retention.deadline) == (
        "ended",
        dt.date(2024, 7, 31),
        dt.date(2026, 7, 31),
    )
    assert (retention.rule_name, retention.months, retention.urgency) == ("general", 24, "later")
    assert [s.start_date for s in view.subscriptions] == [
        dt.date(2020, 8, 1),
        dt.date(2018, 8, 1),
    ]
    assert view.subscriptions[0].status == "ended"

    running_view = load(ctx, running).retention
    assert (running_view.reason, running_view.deadline, running_view.urgency) == (
        "running",
        None,
        "none",
    )
    created = load(ctx, never).retention
    assert created.reason == "created" and created.deadline is not None


def test_people_consent_and_history(ctx: AppContext) -> None:
    org_id = make_school(ctx)
    anna = add_person(ctx, org_id, "Anna de Vries", "anna@klimop.example")
    bert = add_person(ctx, org_id, "Bert Smit", "bert@klimop.example")
    other_school = make_school(ctx, brin="09ZZ")
    stranger = add_person(ctx, other_school, "Carla", "carla@elders.example")
    t0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    consent(ctx, anna, "newsletter", "granted", t0)
    consent(ctx, anna, "newsletter", "withdrawn", t0 + dt.timedelta(days=3))
    consent(ctx, bert, "analytics", "granted", t0)
    consent(ctx, stranger, "newsletter", "granted", t0)

    view = load(ctx, org_id)
    assert [a.name for a in view.administrators] == ["Anna de Vries", "Bert Smit"]
    first = view.administrators[0]
    assert first.phones == ("+31612345678",)
    assert first.email == "anna@klimop.example"
    assert first.version == 1
    assert first.consent_for("newsletter") == "withdrawn"
    assert first.consent_for("analytics") is None
    assert view.administrator(bert) is not None
    assert view.administrator(bert).consent_for("analytics") == "granted"  # type: ignore[union-attr]

    history = [(e.administrator_name, e.purpose, e.action) for e in view.consent_events]
    assert history == [
        ("Anna de Vries", "newsletter", "granted"),
        ("Anna de Vries", "newsletter", "withdrawn"),
        ("Bert Smit", "analytics", "granted"),
    ]
    assert {e.source for e in view.consent_events} == {f"staff:{ctx.staff.username}"}
    assert view.consent_events[0].evidence == "e-mail van 1 maart"
    assert view.purposes == PURPOSES


def test_provider_links_of_the_school_and_its_people_only(ctx: AppContext) -> None:
    org_id = make_school(ctx)
    anna = add_person(ctx, org_id, "Anna de Vries", "anna@klimop.example")
    other = make_school(ctx, brin="09ZZ")
    synced = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
    with session_scope(ctx.engine) as s:
        s.add(
            ProviderLink(
                provider="mailchimp",
                subject_type="administrator",
                subject_id=anna,
                external_id="abc123",
                last_synced_at=synced,
            )
        )
        s.add(
            ProviderLink(
                provider="mollie",
                subject_type="organisation",
                subject_id=org_id,
                external_id="cst_1",
            )
        )
        s.add(
            ProviderLink(
                provider="mollie",
                subject_type="organisation",
                subject_id=other,
                external_id="cst_2",
            )
        )
    links = load(ctx, org_id).provider_links
    assert [(p.provider, p.subject_name, p.external_id, p.last_synced_at) for p in links] == [
        ("mailchimp", "Anna de Vries", "abc123", synced),
        ("mollie", "OBS De Klimop", "cst_1", None),
    ]


def test_audit_trail_covers_the_school_its_people_and_subscriptions(ctx: AppContext) -> None:
    org_id = make_school(ctx)
    anna = add_person(ctx, org_id, "Anna de Vries", "anna@klimop.example")
    sub = add_subscription(ctx, org_id, "2024-08-01", "", "active")
    other = make_school(ctx, brin="09ZZ")
    add_person(ctx, other, "Carla", "carla@elders.example")

    trail = load(ctx, org_id).audit
    seen = {(e.entity, e.entity_id, e.action) for e in trail}
    assert seen == {
        ("organisation", org_id, "create"),
        ("administrator", anna, "create"),
        ("subscription", sub, "create"),
    }
    assert trail[0].entity == "subscription"  # newest first
    assert all(e.actor == ctx.staff.username for e in trail)
    assert "fields=" in trail[-1].detail

    limited = load(ctx, org_id, audit_limit=2)
    assert len(limited.audit) == 2 and limited.audit_truncated
    assert not load(ctx, org_id).audit_truncated


def test_admin_reveals_the_iban_and_the_reveal_is_audited(ctx: AppContext) -> None:
    org_id = make_school(ctx)
    assert reveal_iban(ctx.engine, ctx.staff, org_id) == IBAN
    with Session(ctx.engine) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "reveal")).one()
    assert (event.entity, event.entity_id, event.actor) == (
        "organisation",
        org_id,
        ctx.staff.username,
    )
    assert json.loads(event.detail) == {"field": "iban"}
    assert IBAN not in event.detail and "0417" not in event.detail
    # and the record's trail shows it
    assert load(ctx, org_id).audit[0].action == "reveal"


@pytest.mark.parametrize("user", ["vera", "eddie"])
def test_only_admins_reveal(
    ctx: AppContext, open_as: Callable[[str], AppContext], user: str
) -> None:
    org_id = make_school(ctx)
    other = open_as(user)
    with pytest.raises(PermissionDenied) as refused:
        reveal_iban(other.engine, other.staff, org_id)
    assert "reveal" in str(refused.value)
    with Session(ctx.engine) as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "reveal")).all() == []


def test_reveal_without_iban_or_school_is_not_found_and_not_audited(ctx: AppContext) -> None:
    org_id = make_school(ctx, iban="")
    with pytest.raises(NotFound):
        reveal_iban(ctx.engine, ctx.staff, org_id)
    with pytest.raises(NotFound):
        reveal_iban(ctx.engine, ctx.staff, 4242)
    with Session(ctx.engine) as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "reveal")).all() == []
