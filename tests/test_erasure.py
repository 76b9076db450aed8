"""Local erasure: destroyed not flagged, a non-personal receipt, one task per enabled provider
that holds the subject, the fiscal exception, erasure on request, a fresh start for a school
that comes back, and the tasks' locators read by the deletion worker.

Every test runs on SQLite and PostgreSQL (``engine_name``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from retention_world import PLUGINS_TOML, TARGETS, TODAY, add_school, months_ago
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from plusjeklas_tui import db, events
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    AuditEvent,
    ConsentEvent,
    DeletionTask,
    ErasureReceipt,
    Organisation,
    ProviderLink,
    RestrictedRecord,
    Subscription,
)
from plusjeklas_tui.services import deletions, erasure, legal_hold, records, retention
from plusjeklas_tui.validation import FieldError

IBAN = "NL91ABNA0417164300"


def _context(write_config: Callable[..., Path], extra: str = "") -> AppContext:
    path = write_config(extra=extra + PLUGINS_TOML)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return open_context(path)


@pytest.fixture
def world(write_config: Callable[..., Path]) -> Iterator[AppContext]:
    context = _context(write_config)
    yield context
    context.close()


@pytest.fixture
def fiscal_world(write_config: Callable[..., Path]) -> Iterator[AppContext]:
    context = _context(write_config, "[retention]\nkeep_local_iban_as_payment_record = true\n")
    yield context
    context.close()


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def erase_due(context: AppContext, organisation_id: int) -> erasure.ErasureResult:
    with db.session_scope(context.engine) as s:
        return erasure.erase_organisation(
            s,
            context.staff,
            context.settings.retention,
            TARGETS,
            organisation_id,
            basis=retention.GENERAL,
            today=TODAY,
        )


def test_organisation_erasure_destroys_rows_and_queues_one_task_per_holder(
    world: AppContext,
) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30), people=2, iban=IBAN)
        neighbour = add_school(s, 2, ended=months_ago(30))
    result = erase_due(world, school.id)

    assert result.administrators == tuple(school.admin_ids)
    assert [(t.provider, t.subject_type) for t in result.tasks] == [
        ("mailchimp", "administrator"),
        ("mailchimp", "administrator"),
        ("mollie", "organisation"),
    ]
    assert result.not_told == ("matomo",)
    with db.session_scope(world.engine) as s:
        assert s.get(Organisation, school.id) is None
        for person in school.admin_ids:
            assert s.get(Administrator, person) is None
            assert (
                s.scalar(select(func.count()).where(ConsentEvent.administrator_id == person)) == 0
            )
        assert s.scalar(select(func.count()).where(Subscription.organisation_id == school.id)) == 0
        left = s.scalars(select(ProviderLink)).all()
        owners = {(link.subject_type, link.subject_id) for link in left}
        assert ("organisation", school.id) not in owners
        assert not owners & {("administrator", p) for p in school.admin_ids}
        assert s.get(Organisation, neighbour.id) is not None  # nothing else touched
        assert len(left) == 3  # the neighbour's links

        receipt = s.get(ErasureReceipt, result.receipt_id)
        assert receipt is not None
        assert (receipt.subject_type, receipt.subject_id, receipt.basis) == (
            "organisation",
            school.id,
            "general",
        )
        assert receipt.actor == world.staff.username and "24 months" in receipt.rule
        retained = json.loads(receipt.retained)
        assert retained == [
            {
                "category": "payment records",
                "legal_basis": world.settings.retention.payment_records_legal_basis,
                "kept_until": f"{months_ago(30).year + 7}-12-31",
                "where": "mollie",
            }
        ]
        flat = json.dumps([receipt.rule, receipt.retained, receipt.actor])
        for secret in [*school.emails, *school.people, IBAN, school.name]:
            assert secret not in flat
        assert s.scalar(select(func.count()).select_from(RestrictedRecord)) == 0

        tasks = s.scalars(select(DeletionTask).order_by(DeletionTask.id)).all()
        assert {t.receipt_id for t in tasks} == {receipt.id}
        assert all(t.state == "pending" and t.attempts == 0 for t in tasks)
        subjects = {
            (t.provider, t.subject_id): deletions.subject_from_locator(
                t.subject_type, t.subject_id, t.locator
            )
            for t in tasks
        }
        mollie = subjects[("mollie", school.id)]
        assert mollie.external_id == "cst_1" and mollie.email is None  # payment: id only
        chimp = subjects[("mailchimp", school.admin_ids[0])]
        assert chimp.external_id == "mailchimp-1-0" and chimp.email == school.emails[0]

        audits = s.scalars(select(AuditEvent).where(AuditEvent.action == "erase")).all()
        assert sorted((a.entity, a.entity_id) for a in audits) == sorted(
            [("organisation", school.id)] + [("administrator", p) for p in school.admin_ids]
        )
        told = [events.event_for(a) for a in audits]
        assert all(e is not None and e[0] == "subject_erased" for e in told)
        assert {e[1]["reason"] for e in told if e} == {"general"}
    with world.engine.connect() as conn:
        raw_tasks = " ".join(r[0] for r in conn.execute(text("SELECT locator FROM deletion_task")))
    assert school.emails[0] not in raw_tasks  # the locator is encrypted


def test_fiscal_exception_keeps_a_restricted_payment_record(fiscal_world: AppContext) -> None:
    ended = dt.date(2023, 3, 31)
    with db.session_scope(fiscal_world.engine) as s:
        school = add_school(s, 1, ended=ended, iban=IBAN)
        without_iban = add_school(s, 2, ended=ended)
        prospect = add_school(s, 3, created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), iban=IBAN)
    result = erase_due(fiscal_world, school.id)
    assert [entry["category"] for entry in result.retained] == [
        "payment records",
        "payment record: name, address and IBAN",
    ]
    with db.session_scope(fiscal_world.engine) as s:
        (record,) = s.scalars(select(RestrictedRecord)).all()
        assert record.receipt_id == result.receipt_id
        assert record.keep_until == dt.date(2030, 12, 31)
        assert json.loads(record.payload) == {
            "name": school.name,
            "street": "Schoolstraat 1",
            "postcode": "1234 AB",
            "city": "Utrecht",
            "iban": IBAN,
        }
        receipt = s.get(ErasureReceipt, result.receipt_id)
        assert "2030-12-31" in receipt.retained and IBAN not in receipt.retained  # type: ignore[union-attr]
    with fiscal_world.engine.connect() as conn:
        assert IBAN not in conn.execute(text("SELECT payload FROM restricted_record")).scalar_one()
    erase_due(fiscal_world, without_iban.id)  # nothing to keep here: no IBAN
    assert count(fiscal_world.engine, RestrictedRecord) == 1
    never_paid = erase_due(fiscal_world, prospect.id)  # never subscribed: no payment records
    assert never_paid.retained == ()
    assert count(fiscal_world.engine, RestrictedRecord) == 1


def test_default_config_erases_the_iban_with_the_rest(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30), iban=IBAN)
    result = erase_due(world, school.id)
    assert [entry["where"] for entry in result.retained] == ["mollie"]
    assert count(world.engine, RestrictedRecord) == 0
    assert count(world.engine, Organisation) == 0


def test_erasure_refuses_what_is_not_due_or_held(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        running = add_school(s, 1, subscriptions=[(dt.date(2020, 1, 1), None)])
        recent = add_school(s, 2, ended=months_ago(3))
        held = add_school(s, 3, ended=months_ago(30))
        legal_hold.set_hold(s, world.staff, held.id, "dispute")
    with pytest.raises(erasure.NotDue, match="subscription runs"):
        erase_due(world, running.id)
    with pytest.raises(erasure.NotDue, match="kept until"):
        erase_due(world, recent.id)
    with pytest.raises(erasure.OnHold, match="legal hold"):
        erase_due(world, held.id)
    with pytest.raises(erasure.SubjectGone):
        erase_due(world, 424242)
    assert count(world.engine, Organisation) == 3
    assert count(world.engine, ErasureReceipt) == 0


def test_erasure_on_request_needs_erase_and_a_reason_category(
    world: AppContext, write_config: Callable[..., Path]
) -> None:
    with db.session_scope(world.engine) as s:
        customer = add_school(s, 1, subscriptions=[(dt.date(2022, 1, 1), None)], people=2)
    editor = open_context(world.settings.source, "eddie")
    try:
        with db.session_scope(editor.engine) as s, pytest.raises(PermissionDenied, match="erase"):
            erasure.request_erasure(
                s,
                editor.staff,
                editor.settings.retention,
                TARGETS,
                "organisation",
                customer.id,
                "objection",
                TODAY,
            )
    finally:
        editor.close()
    with db.session_scope(world.engine) as s, pytest.raises(FieldError, match="one of"):
        erasure.request_erasure(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            "organisation",
            customer.id,
            "mevrouw Jansen belde",
            TODAY,
        )
    # one person asks: only they go, the school stays
    with db.session_scope(world.engine) as s:
        person = erasure.request_erasure(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            "administrator",
            customer.admin_ids[1],
            "consent_withdrawn",
            TODAY,
        )
    assert [(t.provider, t.subject_id) for t in person.tasks] == [
        ("mailchimp", customer.admin_ids[1])
    ]
    assert person.not_told == ("matomo",)
    # then the school asks, while its subscription runs
    with db.session_scope(world.engine) as s:
        school = erasure.request_erasure(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            "organisation",
            customer.id,
            erasure.RequestReason.NO_LONGER_NEEDED,
            TODAY,
        )
    assert school.administrators == (customer.admin_ids[0],)
    assert school.retained[0]["kept_until"] == f"{TODAY.year + 7}-12-31"  # still paying
    with db.session_scope(world.engine) as s:
        receipts = s.scalars(select(ErasureReceipt).order_by(ErasureReceipt.id)).all()
        assert [(r.subject_type, r.basis) for r in receipts] == [
            ("administrator", "request"),
            ("organisation", "request"),
        ]
        assert "art. 17(1)(b)" in receipts[0].rule and "art. 17(1)(a)" in receipts[1].rule
        audits = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "erase").order_by(AuditEvent.id)
        ).all()
        assert [json.loads(a.detail)["reason"] for a in audits] == [
            "consent_withdrawn",
            "no_longer_needed",
            "no_longer_needed",
        ]
        assert s.get(Organisation, customer.id) is None


def test_request_on_held_organisation_is_refused(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(2))
        legal_hold.set_hold(s, world.staff, school.id, "claim")
    for subject_type, subject_id in (
        ("organisation", school.id),
        ("administrator", school.admin_ids[0]),
    ):
        with db.session_scope(world.engine) as s, pytest.raises(erasure.OnHold):
            erasure.request_erasure(
                s,
                world.staff,
                world.settings.retention,
                TARGETS,
                subject_type,
                subject_id,
                "objection",
                TODAY,
            )
    assert count(world.engine, Administrator) == 1


def test_a_school_that_returns_is_a_fresh_record(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        add_school(s, 2, ended=months_ago(3))
        school = add_school(s, 1, ended=months_ago(30), people=2)  # the newest ids
        first_person = school.admin_ids[-1]
    erase_due(world, school.id)
    with db.session_scope(world.engine) as s:
        again = records.create_organisation(
            s,
            world.staff,
            records.validate_organisation(
                {
                    "name": "Nieuw",
                    "street": "Laan 1",
                    "postcode": "1234 AB",
                    "city": "Utrecht",
                    "brin": school.brin,
                    "phone": "030 123 4567",
                }
            ),
        )
        person = records.add_administrator(
            s,
            world.staff,
            again.id,  # type: ignore[arg-type]
            records.validate_administrator(
                {"name": "Nieuwe Persoon", "email": "nieuw@school.nl", "phones": "06 12345678"}
            ),
        )
        # ids are never reused, so no receipt, task or audit row of before points at them
        assert again.id != school.id and person.id != first_person
        assert person.id not in school.admin_ids
        links = s.scalars(
            select(ProviderLink).where(
                ProviderLink.subject_type == "organisation", ProviderLink.subject_id == again.id
            )
        ).all()
        assert links == []
        assert (
            s.scalar(
                select(func.count()).where(
                    ErasureReceipt.subject_type == "organisation",
                    ErasureReceipt.subject_id == again.id,
                )
            )
            == 0
        )
        history = s.scalars(
            select(AuditEvent).where(
                AuditEvent.entity == "organisation", AuditEvent.entity_id == again.id
            )
        ).all()
        assert [a.action for a in history] == ["create"]


def test_dry_run_writes_nothing_and_says_the_same(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30), people=2)
    with db.session_scope(world.engine) as s:
        dry = erasure.erase_organisation(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            school.id,
            basis=retention.GENERAL,
            today=TODAY,
            dry_run=True,
        )
        s.rollback()
    assert count(world.engine, Organisation) == 1 and count(world.engine, ErasureReceipt) == 0
    real = erase_due(world, school.id)
    assert dry.summary() == real.summary()
    assert dataclasses.replace(dry, receipt_id=None) == dataclasses.replace(real, receipt_id=None)


def test_failed_erasure_leaves_the_subject_untouched(
    world: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault after every row was deleted rolls everything back: no half erasure."""
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30), people=2)

    class Boom(Exception):
        pass

    original = erasure.audit.record
    calls = {"n": 0}

    def failing_record(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the first administrator's audit row: after every delete
            raise Boom()
        return original(*args, **kwargs)

    monkeypatch.setattr(erasure.audit, "record", failing_record)
    with pytest.raises(Boom), db.session_scope(world.engine) as s:
        erasure.erase_organisation(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            school.id,
            basis=retention.GENERAL,
            today=TODAY,
        )
    assert calls["n"] == 2
    assert count(world.engine, Organisation) == 1
    assert count(world.engine, Administrator) == 2
    assert count(world.engine, ConsentEvent) == 2
    assert count(world.engine, ProviderLink) == 5
    assert count(world.engine, ErasureReceipt) == 0 and count(world.engine, DeletionTask) == 0
