"""When the retention sweep erases a school or a person that an open data-subject request is
about, the request is settled in the erasure's own transaction: linked to the receipt, its
requester's details scrubbed, closed with outcome ``erased_by_retention``. Other requests, an
erasure on request and a dry run leave open requests as they were.

Every test runs on SQLite and PostgreSQL (``engine_name``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from retention_world import PLUGINS_TOML, TARGETS, TODAY, add_school, months_ago
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.models import (
    AuditEvent,
    DataSubjectRequest,
    ErasureReceipt,
    RequestKind,
    RequestStatus,
)
from plusjeklas_tui.services import erasure, retention
from plusjeklas_tui.services import requests as rq

RECEIVED = TODAY - dt.timedelta(days=10)
REQUESTER = "Mevrouw Jansen-de Vries"
REQUESTER_EMAIL = "jansen.devries@voorbeeld.nl"


@pytest.fixture
def world(write_config: Callable[..., Path]) -> Iterator[AppContext]:
    path = write_config(extra=PLUGINS_TOML)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    context = open_context(path)
    yield context
    context.close()


def new_request(
    context: AppContext,
    kind: RequestKind,
    *,
    organisation_id: int | None = None,
    administrator_id: int | None = None,
) -> int:
    with db.session_scope(context.engine) as session:
        request = rq.create_request(
            session,
            context.staff,
            rq.RequestInput(
                kind=kind,
                received_on=RECEIVED,
                organisation_id=organisation_id,
                administrator_id=administrator_id,
                requester_name=REQUESTER,
                requester_email=REQUESTER_EMAIL,
                identity_check="copy of staff pass shown on a video call",
                erasure_reason="no_longer_needed" if kind == RequestKind.ERASURE else None,
                note="belde op maandag",
            ),
        )
        assert request.id is not None
        return request.id


def load(context: AppContext, request_id: int) -> DataSubjectRequest:
    with db.session_scope(context.engine) as session:
        request = session.get(DataSubjectRequest, request_id)
        assert request is not None
        session.expunge(request)
        return request


def receipt_for(context: AppContext, subject_type: str, subject_id: int) -> int:
    with db.session_scope(context.engine) as session:
        receipt_id = session.scalars(
            select(ErasureReceipt.id)
            .where(ErasureReceipt.subject_type == subject_type)
            .where(ErasureReceipt.subject_id == subject_id)
        ).one()
        return receipt_id


def assert_settled(
    context: AppContext, request_id: int, receipt_id: int, school_kept: int | None = None
) -> None:
    request = load(context, request_id)
    assert request.status == RequestStatus.COMPLETED
    assert request.outcome == rq.ERASED_BY_RETENTION
    assert request.erasure_receipt_id == receipt_id
    assert request.scrubbed_at is not None and request.completed_by == context.staff.username
    assert request.administrator_id is None  # erased with its subject
    assert request.organisation_id == school_kept
    with context.engine.connect() as conn:  # gone from the table, not just unreadable
        row = conn.execute(
            text(
                "SELECT requester_name, requester_email, identity_check, note "
                "FROM data_subject_request WHERE id = :id"
            ),
            {"id": request_id},
        ).one()
    assert tuple(row) == (None, None, None, None)


def assert_untouched(context: AppContext, request_id: int) -> None:
    request = load(context, request_id)
    assert request.status == RequestStatus.OPEN and request.outcome is None
    assert request.erasure_receipt_id is None and request.scrubbed_at is None
    assert (request.requester_name, request.requester_email) == (REQUESTER, REQUESTER_EMAIL)
    assert request.note == "belde op maandag"


def test_the_sweep_settles_open_requests_about_what_it_erases(world: AppContext) -> None:
    days = world.settings.retention.administrator_after_leaving_days
    with db.session_scope(world.engine) as s:
        ended = add_school(s, 1, ended=months_ago(30), people=2)
        stays = add_school(
            s,
            2,
            subscriptions=[(dt.date(2020, 1, 1), None)],
            people=2,
            left_on=TODAY - dt.timedelta(days=days + 1),
        )
    about_school = new_request(world, RequestKind.ACCESS, organisation_id=ended.id)
    about_its_person = new_request(
        world, RequestKind.RECTIFICATION, administrator_id=ended.admin_ids[1]
    )
    leaver = stays.admin_ids[0]
    about_leaver = new_request(world, RequestKind.ERASURE, administrator_id=leaver)
    about_staying_school = new_request(world, RequestKind.ACCESS, organisation_id=stays.id)
    about_colleague = new_request(
        world, RequestKind.PORTABILITY, administrator_id=stays.admin_ids[1]
    )
    already_done = new_request(world, RequestKind.RESTRICTION, organisation_id=ended.id)
    with db.session_scope(world.engine) as session:
        rq.complete_request(session, world.staff, already_done)

    dry = retention.sweep(
        world.engine, world.settings, world.staff, TODAY, dry_run=True, targets=TARGETS
    )
    assert dry.ok and len(dry.actions) == 2
    for request_id in (about_school, about_its_person, about_leaver):
        assert_untouched(world, request_id)  # a dry run settles nothing

    report = retention.sweep(world.engine, world.settings, world.staff, TODAY, targets=TARGETS)

    assert report.ok and len(report.receipts) == 2
    school_receipt = receipt_for(world, "organisation", ended.id)
    leaver_receipt = receipt_for(world, "administrator", leaver)
    assert_settled(world, about_school, school_receipt)
    assert_settled(world, about_its_person, school_receipt)
    assert_settled(world, about_leaver, leaver_receipt, school_kept=stays.id)
    assert_untouched(world, about_staying_school)  # the school stays: so does its request
    assert_untouched(world, about_colleague)
    done = load(world, already_done)  # closed before: not closed again
    assert (done.status, done.outcome, done.erasure_receipt_id) == ("completed", "restricted", None)
    with db.session_scope(world.engine) as session:
        open_ids = {r.id for r in rq.open_requests_summary(session, TODAY).rows}
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity == rq.ENTITY)
                .where(AuditEvent.action == "request_complete")
                .order_by(AuditEvent.id)
            )
        )
    assert open_ids == {about_staying_school, about_colleague}
    settled = [e for e in events if json.loads(e.detail or "{}").get("outcome") != "restricted"]
    assert sorted(e.entity_id for e in settled) == sorted(
        [about_school, about_its_person, about_leaver]
    )
    for event in settled:
        detail = json.loads(event.detail or "{}")
        assert detail["outcome"] == rq.ERASED_BY_RETENTION
        assert detail["rule"] in ("general", "administrator_left")
        assert REQUESTER not in (event.detail or "") and "@" not in (event.detail or "")


def test_settling_is_part_of_the_erasure_transaction(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        ended = add_school(s, 3, ended=months_ago(30))
    request_id = new_request(world, RequestKind.ACCESS, administrator_id=ended.admin_ids[0])
    (item,) = retention.plan(world.engine, world.settings, TODAY).to_sweep
    with Session(world.engine) as session:
        result = erasure.erase_planned(
            session, world.staff, world.settings.retention, TARGETS, item, TODAY
        )
        assert result.receipt_id is not None
        settled = session.get(DataSubjectRequest, request_id)
        assert settled is not None and settled.outcome == rq.ERASED_BY_RETENTION
        session.rollback()  # a crash before commit: neither the erasure nor the settling
    assert_untouched(world, request_id)
    assert load(world, request_id).administrator_id == ended.admin_ids[0]


def test_an_erasure_on_request_leaves_other_open_requests_to_staff(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 4, subscriptions=[(dt.date(2020, 1, 1), None)], people=2)
    access = new_request(world, RequestKind.ACCESS, administrator_id=school.admin_ids[0])
    with db.session_scope(world.engine) as session:
        erasure.request_erasure(
            session,
            world.staff,
            world.settings.retention,
            TARGETS,
            "administrator",
            school.admin_ids[0],
            "consent_withdrawn",
            TODAY,
        )
    request = load(world, access)
    assert request.status == RequestStatus.OPEN and request.administrator_id is None
    assert request.requester_email == REQUESTER_EMAIL  # staff can still tell the person
