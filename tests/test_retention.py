"""Retention rules and the plan: general data, renewal, leaving administrators, legal holds,
expired fiscal records; the sweep (dry run equal to the real run); legal holds as a service.

Every test runs on SQLite and PostgreSQL (``engine_name``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from retention_world import PLUGINS_TOML, TARGETS, TODAY, add_school, months_ago
from sqlalchemy import func, select, text

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    AuditEvent,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
    RestrictedRecord,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services import dashboard, legal_hold, retention
from plusjeklas_tui.services.deadlines import deadline_for
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.validation import FieldError

HOLD_REASON = "Geschil met mevrouw De Vries over factuur 2024-17"


@pytest.fixture
def world_config(write_config: Callable[..., Path]) -> Path:
    path = write_config(extra=PLUGINS_TOML)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def world(world_config: Path) -> Iterator[AppContext]:
    context = open_context(world_config)
    yield context
    context.close()


@pytest.fixture
def as_user(world_config: Path) -> Iterator[Callable[[str], AppContext]]:
    opened: list[AppContext] = []

    def open_(user: str) -> AppContext:
        context = open_context(world_config, user)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()


def plan_ids(the_plan: retention.RetentionPlan, kind: str = "organisation") -> set[int]:
    return {item.subject_id for item in the_plan.items if item.kind == kind}


# --- general data ------------------------------------------------------------------------------


def test_general_rule_due_upcoming_running_and_renewed(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        due = add_school(s, 1, ended=months_ago(25))
        soon = add_school(s, 2, ended=months_ago(24) + dt.timedelta(days=10))
        recent = add_school(s, 3, ended=months_ago(6))
        running = add_school(s, 4, subscriptions=[(dt.date(2020, 1, 1), None)])
        renewed = add_school(
            s, 5, subscriptions=[(dt.date(2018, 1, 1), months_ago(30)), (months_ago(1), None)]
        )
    now = retention.plan(world.engine, world.settings, TODAY)
    assert plan_ids(now) == {due.id}
    (item,) = now.items
    assert item.due and item.rule == "general" and item.brin == due.brin
    assert item.deadline == dt.date(2026, 5, 15)

    ahead = retention.plan(world.engine, world.settings, TODAY, within_days=30)
    assert plan_ids(ahead) == {due.id, soon.id}
    upcoming = next(i for i in ahead.items if i.subject_id == soon.id)
    assert not upcoming.due and upcoming.deadline == TODAY + dt.timedelta(days=10)
    assert [i.subject_id for i in ahead.to_sweep] == [due.id]
    for untouched in (recent, running, renewed):
        assert untouched.id not in plan_ids(ahead)


def test_renewal_stops_the_clock_from_data(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30))
    assert plan_ids(retention.plan(world.engine, world.settings, TODAY)) == {school.id}
    with db.session_scope(world.engine) as s:
        s.add(
            Subscription(
                organisation_id=school.id,
                plan="plus",
                start_date=TODAY,
                end_date=None,
                status=SubscriptionStatus.ACTIVE,
            )
        )
    assert retention.plan(world.engine, world.settings, TODAY).items == ()


def test_deadline_day_is_kept_and_the_next_day_due(world: AppContext) -> None:
    """The deadline is the last day kept: due from the day after, like 'overdue'."""
    with db.session_scope(world.engine) as s:
        on_deadline = add_school(s, 1, ended=months_ago(24))
        day_after = add_school(s, 2, ended=months_ago(24) - dt.timedelta(days=1))
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    assert plan_ids(the_plan) == {day_after.id}
    assert (
        deadline_for(
            world.engine, on_deadline.id, retention.general_rule(world.settings.retention), TODAY
        )
        == TODAY
    )


def test_without_subscription_the_clock_starts_at_creation(world: AppContext) -> None:
    old = dt.datetime(2024, 1, 10, 9, 0, tzinfo=dt.UTC)
    with db.session_scope(world.engine) as s:
        prospect = add_school(s, 1, created_at=old)
        fresh = add_school(s, 2)
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    assert plan_ids(the_plan) == {prospect.id}
    assert the_plan.items[0].deadline == dt.date(2026, 1, 10)
    assert fresh.id not in plan_ids(the_plan)


def test_plan_agrees_with_deadlines_and_dashboard(world: AppContext) -> None:
    rule = retention.general_rule(world.settings.retention)
    ids = []
    with db.session_scope(world.engine) as s:
        for n in range(1, 25):
            ids.append(add_school(s, n, ended=months_ago(18 + n) - dt.timedelta(days=n % 3)).id)
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    for organisation_id in ids:
        deadline = deadline_for(world.engine, organisation_id, rule, TODAY)
        assert (organisation_id in plan_ids(the_plan)) == (
            deadline is not None and deadline < TODAY
        )
    for item in the_plan.items:
        assert item.deadline == deadline_for(world.engine, item.subject_id, rule, TODAY)
    stats = dashboard.collect(world.engine, rule, TODAY)
    assert stats.overdue == len(the_plan.items)


def test_general_months_come_from_config(
    write_config: Callable[..., Path], engine_name: str
) -> None:
    path = write_config(extra="[retention]\ngeneral_after_end_months = 12\n" + PLUGINS_TOML)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    context = open_context(path)
    try:
        with db.session_scope(context.engine) as s:
            school = add_school(s, 1, ended=months_ago(13))
        assert plan_ids(retention.plan(context.engine, context.settings, TODAY)) == {school.id}
    finally:
        context.close()


# --- administrators who left ---------------------------------------------------------------


def test_administrator_who_left_is_due_while_the_school_stays(world: AppContext) -> None:
    days = world.settings.retention.administrator_after_leaving_days
    with db.session_scope(world.engine) as s:
        left_long_ago = add_school(
            s,
            1,
            subscriptions=[(dt.date(2020, 1, 1), None)],
            people=2,
            left_on=TODAY - dt.timedelta(days=days + 1),
        )
        left_exactly = add_school(
            s,
            2,
            subscriptions=[(dt.date(2020, 1, 1), None)],
            left_on=TODAY - dt.timedelta(days=days),
        )
        staying = add_school(s, 3, subscriptions=[(dt.date(2020, 1, 1), None)])
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    assert plan_ids(the_plan, "organisation") == set()
    assert plan_ids(the_plan, "administrator") == {left_long_ago.admin_ids[0]}
    item = the_plan.items[0]
    assert item.rule == "administrator_left" and item.brin == left_long_ago.brin
    assert item.providers == ("mailchimp",)  # matomo is disabled; mollie holds the school
    ahead = retention.plan(world.engine, world.settings, TODAY, within_days=1)
    assert plan_ids(ahead, "administrator") == {
        left_long_ago.admin_ids[0],
        left_exactly.admin_ids[0],
    }
    assert staying.admin_ids[0] not in plan_ids(ahead, "administrator")


def test_person_who_left_goes_with_a_due_school(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30), left_on=dt.date(2020, 1, 1))
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    assert [(i.kind, i.subject_id) for i in the_plan.items] == [("organisation", school.id)]
    assert the_plan.items[0].providers == ("mailchimp", "mollie")


# --- legal holds ---------------------------------------------------------------------------


def test_legal_hold_pauses_and_shows_who_not_why(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        held = add_school(s, 1, ended=months_ago(30))
        other = add_school(
            s, 2, subscriptions=[(dt.date(2020, 1, 1), None)], left_on=dt.date(2020, 1, 1)
        )
        free = add_school(s, 3, ended=months_ago(30))
    with db.session_scope(world.engine) as s:
        legal_hold.set_hold(s, world.staff, held.id, HOLD_REASON)
        legal_hold.set_hold(s, world.staff, other.id, "Onderzoek AP")
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    flags = {(i.kind, i.subject_id): i.on_hold for i in the_plan.items}
    assert flags == {
        ("organisation", held.id): True,
        ("administrator", other.admin_ids[0]): True,
        ("organisation", free.id): False,
    }
    item = next(i for i in the_plan.items if i.subject_id == held.id)
    assert item.hold_set_by == world.staff.username and item.hold_set_at is not None
    assert [i.subject_id for i in the_plan.to_sweep] == [free.id]
    assert HOLD_REASON not in json.dumps(the_plan.as_dict(), default=str)

    report = retention.sweep(world.engine, world.settings, world.staff, TODAY, targets=TARGETS)
    assert report.ok and len(report.actions) == 1
    with db.session_scope(world.engine) as s:
        assert s.get(Organisation, held.id) is not None
        assert s.get(Administrator, other.admin_ids[0]) is not None
        assert s.get(Organisation, free.id) is None
        legal_hold.lift_hold(s, world.staff, held.id)
    assert [i.subject_id for i in retention.plan(world.engine, world.settings, TODAY).to_sweep] == [
        held.id
    ]


def test_legal_hold_is_for_admins_audited_and_encrypted(
    world: AppContext, as_user: Callable[[str], AppContext], engine_name: str
) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(30))
    for user in ("vera", "eddie"):
        other = as_user(user)
        with db.session_scope(other.engine) as s, pytest.raises(PermissionDenied, match="erase"):
            legal_hold.set_hold(s, other.staff, school.id, HOLD_REASON)
    with db.session_scope(world.engine) as s, pytest.raises(FieldError, match="reason"):
        legal_hold.set_hold(s, world.staff, school.id, "   ")
    with db.session_scope(world.engine) as s:
        legal_hold.set_hold(s, world.staff, school.id, HOLD_REASON)
    with db.session_scope(world.engine) as s, pytest.raises(legal_hold.HoldError, match="already"):
        legal_hold.set_hold(s, world.staff, school.id, "again")
    with world.engine.connect() as conn:
        stored = conn.execute(text("SELECT reason FROM legal_hold")).scalar_one()
    assert "Vries" not in stored
    viewer = as_user("vera")
    with db.session_scope(viewer.engine) as s:
        assert legal_hold.current_hold(s, school.id).set_by == world.staff.username  # type: ignore[union-attr]
        with pytest.raises(PermissionDenied):
            legal_hold.hold_reason(s, viewer.staff, school.id)
        assert legal_hold.hold_reason(s, world.staff, school.id) == HOLD_REASON
    with db.session_scope(world.engine) as s:
        legal_hold.lift_hold(s, world.staff, school.id)
    with (
        db.session_scope(world.engine) as s,
        pytest.raises(legal_hold.HoldError, match="not on hold"),
    ):
        legal_hold.lift_hold(s, world.staff, school.id)
    with db.session_scope(world.engine) as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "legal_hold").order_by(AuditEvent.id)
        ).all()
        assert [json.loads(r.detail)["hold"] for r in rows] == ["set", "lifted"]
        assert all(r.entity_id == school.id and "Vries" not in r.detail for r in rows)
        assert s.scalar(select(func.count()).select_from(LegalHold)) == 0
        with pytest.raises(NotFound):
            legal_hold.organisation_id_for_brin(s, "99ZZ")


# --- restricted records --------------------------------------------------------------------


def test_expired_restricted_records_are_planned_and_swept(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        receipt = ErasureReceipt(
            subject_type="organisation",
            subject_id=999,
            erased_at=utcnow(),
            basis="general",
            rule="general",
            actor="x",
            retained=json.dumps([{"category": "payment record: name, address and IBAN"}]),
        )
        s.add(receipt)
        s.flush()
        for keep_until in (TODAY - dt.timedelta(days=1), TODAY):
            s.add(
                RestrictedRecord(
                    receipt_id=receipt.id,
                    category="payment record: name, address and IBAN",
                    legal_basis="fiscal",
                    keep_until=keep_until,
                    payload="{}",
                )
            )
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    assert [(i.kind, i.rule, i.due) for i in the_plan.items] == [
        ("restricted_record", "payment_records_expired", True)
    ]
    report = retention.sweep(world.engine, world.settings, world.staff, TODAY, targets=TARGETS)
    assert report.ok and len(report.actions) == 1
    with db.session_scope(world.engine) as s:
        kept = s.scalars(select(RestrictedRecord)).all()
        assert [r.keep_until for r in kept] == [TODAY]
        entries = json.loads(s.get(ErasureReceipt, receipt.id).retained)  # type: ignore[union-attr]
        assert entries[0]["deleted_on"] == TODAY.isoformat()


# --- the sweep -----------------------------------------------------------------------------


def _population(world: AppContext) -> dict[str, list]:
    with db.session_scope(world.engine) as s:
        due = [add_school(s, n, ended=months_ago(25 + n), people=2) for n in range(1, 6)]
        keep = [add_school(s, n, ended=months_ago(n)) for n in range(10, 14)]
        left = add_school(
            s,
            20,
            subscriptions=[(dt.date(2020, 1, 1), None)],
            people=2,
            left_on=dt.date(2024, 1, 1),
        )
    return {"due": due, "keep": keep, "left": [left]}


def test_dry_run_prints_exactly_what_the_real_run_does(world: AppContext) -> None:
    people = _population(world)
    dry = retention.sweep(
        world.engine, world.settings, world.staff, TODAY, dry_run=True, targets=TARGETS
    )
    with db.session_scope(world.engine) as s:
        assert s.scalar(select(func.count()).select_from(ErasureReceipt)) == 0
        assert s.scalar(select(func.count()).select_from(Organisation)) == 10
    real = retention.sweep(world.engine, world.settings, world.staff, TODAY, targets=TARGETS)
    assert real.ok and dry.ok
    assert dry.actions == real.actions
    assert len(real.actions) == 6 and dry.tasks == real.tasks == 5 * (1 + 2) + 1
    assert any("administrator #" in line for line in real.actions)
    for line in real.actions:
        assert "@" not in line and "Persoon" not in line
    with db.session_scope(world.engine) as s:
        remaining = set(s.scalars(select(Organisation.id)))
        assert remaining == {x.id for x in people["keep"] + people["left"]}
        assert s.get(Administrator, people["left"][0].admin_ids[0]) is None
        assert s.get(Administrator, people["left"][0].admin_ids[1]) is not None
        assert s.scalar(select(func.count()).select_from(DeletionTask)) == real.tasks
    again = retention.sweep(world.engine, world.settings, world.staff, TODAY, targets=TARGETS)
    assert again.actions == [] and again.ok


def test_sweep_permissions(world: AppContext, as_user: Callable[[str], AppContext]) -> None:
    _population(world)
    editor = as_user("eddie")
    with pytest.raises(PermissionDenied, match="sweep"):
        retention.sweep(editor.engine, editor.settings, editor.staff, TODAY, targets=TARGETS)
    viewer = as_user("vera")
    preview = retention.sweep(
        viewer.engine, viewer.settings, viewer.staff, TODAY, dry_run=True, targets=TARGETS
    )
    assert len(preview.actions) == 6
    with db.session_scope(world.engine) as s:
        assert s.scalar(select(func.count()).select_from(Organisation)) == 10


def test_sweep_skips_what_was_renewed_after_planning(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        renewed = add_school(s, 1, ended=months_ago(30))
        gone = add_school(s, 2, ended=months_ago(30))
    the_plan = retention.plan(world.engine, world.settings, TODAY)
    with db.session_scope(world.engine) as s:
        s.add(
            Subscription(
                organisation_id=renewed.id,
                plan="plus",
                start_date=TODAY,
                end_date=None,
                status=SubscriptionStatus.ACTIVE,
            )
        )
    report = retention.sweep(
        world.engine, world.settings, world.staff, TODAY, the_plan=the_plan, targets=TARGETS
    )
    assert report.ok
    assert len(report.actions) == 1 and gone.brin in report.actions[0]
    assert len(report.skipped) == 1 and "subscription runs" in report.skipped[0]
    with db.session_scope(world.engine) as s:
        assert s.get(Organisation, renewed.id) is not None


def test_indexed_clocks_equal_the_shared_clock_query(world: AppContext) -> None:
    """The plan's index-friendly clock query answers exactly what ``clock_starts`` answers."""
    from plusjeklas_tui.services.deadlines import as_date, clock_starts

    shapes: list[dict] = [
        {"created_at": dt.datetime(2023, 5, 1, 23, 30, tzinfo=dt.UTC)},
        {"created_at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC)},
        {"subscriptions": [(dt.date(2020, 1, 1), None)]},
        {"subscriptions": [(dt.date(2020, 1, 1), TODAY)]},
        {"subscriptions": [(dt.date(2020, 1, 1), TODAY - dt.timedelta(days=1))]},
        {
            "subscriptions": [
                (dt.date(2018, 1, 1), dt.date(2019, 1, 1)),
                (dt.date(2019, 1, 2), None),
            ]
        },
        {
            "subscriptions": [
                (dt.date(2018, 1, 1), dt.date(2019, 1, 1)),
                (dt.date(2019, 1, 2), dt.date(2023, 3, 3)),
            ]
        },
        {"subscriptions": [(dt.date(2018, 1, 1), dt.date(2030, 1, 1))]},
    ]
    with db.session_scope(world.engine) as s:
        for n, shape in enumerate(shapes, start=1):
            add_school(s, n, **shape)
    with world.engine.connect() as conn:
        every = {
            r.organisation_id: as_date(r.clock_start) for r in conn.execute(clock_starts(TODAY))
        }
        for cut in (
            dt.date(2019, 1, 1),
            dt.date(2023, 3, 3),
            dt.date(2023, 5, 1),
            TODAY,
            dt.date(2030, 1, 1),
        ):
            indexed = {
                r.organisation_id: as_date(r.clock_start)
                for r in conn.execute(retention.organisation_clocks(TODAY, cut))
            }
            expected = {k: v for k, v in every.items() if v is not None and v <= cut}
            assert indexed == expected, cut
    assert sum(v is not None for v in every.values()) == 4  # two prospects, two ended
