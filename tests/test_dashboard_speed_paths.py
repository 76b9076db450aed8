"""The dashboard's quick queries give exactly what the straightforward ones gave.

:func:`dashboard.collect` reads indexes only and looks at just the clocks that can fall in a
band. The reference here is the plain computation it replaced: every organisation's clock from
:func:`deadlines.clock_starts`, counted into the same bands. Both run over awkward data (ends
today and yesterday, open-ended subscriptions next to ended ones, organisations that never
subscribed created on both sides of every cut-off, late in the evening UTC), for several days
and retention rules, on both engines.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services import dashboard, demo
from plusjeklas_tui.services.deadlines import RetentionRule, clock_starts

TODAYS = [dt.date(2026, 11, 27), dt.date(2028, 2, 29), dt.date(2026, 1, 1)]
RULES = [RetentionRule(months=24), RetentionRule(months=1), RetentionRule(months=6)]


def reference(engine: Engine, rule: RetentionRule, today: dt.date) -> dashboard.DashboardStats:
    """The dashboard as it was computed before: every clock, every row, no index needed."""
    by_status = {status.value: 0 for status in SubscriptionStatus}
    months = dashboard._month_starts(today, 12)
    with engine.connect() as conn:
        for status, count in conn.execute(
            select(Subscription.status, func.count()).group_by(Subscription.status)
        ):
            by_status[str(status)] = count
        clocks = clock_starts(today).subquery()
        clock = clocks.c.clock_start

        def before(day: dt.date) -> object:
            return func.sum(case((clock <= rule.latest_clock_due_before(day), 1), else_=0))

        def between(start: dt.date, end: dt.date) -> object:
            low = rule.latest_clock_due_before(start)
            high = rule.latest_clock_due_before(end)
            return func.sum(case((and_(clock > low, clock <= high), 1), else_=0))

        row = conn.execute(
            select(
                before(today),
                between(today, today + dt.timedelta(days=31)),
                between(today, today + dt.timedelta(days=91)),
                *(between(max(start, today), end) for start, end in itertools.pairwise(months)),
            ).select_from(clocks)
        ).one()
        overdue, due30, due90, *per_month = (int(value or 0) for value in row)
        month_start = dt.datetime.combine(today.replace(day=1), dt.time(), tzinfo=dt.UTC)
        consent = dict(
            conn.execute(
                select(ConsentEvent.action, func.count())
                .where(ConsentEvent.purpose == "newsletter")
                .where(ConsentEvent.occurred_at >= month_start)
                .group_by(ConsentEvent.action)
            ).all()
        )
    return dashboard.DashboardStats(
        today=today,
        subscriptions_by_status=by_status,
        overdue=overdue,
        due_within_30=due30,
        due_within_90=due90,
        due_per_month=[
            dashboard.MonthCount(m, c) for m, c in zip(months[:-1], per_month, strict=True)
        ],
        newsletter_granted_this_month=int(consent.get(ConsentAction.GRANTED.value, 0)),
        newsletter_withdrawn_this_month=int(consent.get(ConsentAction.WITHDRAWN.value, 0)),
    )


def awkward_days(today: dt.date, rule: RetentionRule) -> list[dt.date]:
    """Days on and around every cut-off the dashboard uses, and a few far away."""
    months = dashboard._month_starts(today, 12)
    cut_offs = {rule.latest_clock_due_before(day) for day in months}
    cut_offs |= {
        rule.latest_clock_due_before(today + dt.timedelta(days=days)) for days in (0, 31, 91)
    }
    days = {today, today - dt.timedelta(days=1), today + dt.timedelta(days=1)}
    for cut_off in cut_offs:
        days |= {cut_off + dt.timedelta(days=delta) for delta in (-1, 0, 1)}
    days |= {dt.date(2015, 6, 1), dt.date(2031, 1, 1)}
    return sorted(days)


def build_world(ctx: AppContext) -> None:
    """Organisations with every kind of subscription history around every awkward day."""
    days = sorted({d for t, r in itertools.product(TODAYS, RULES) for d in awkward_days(t, r)})
    chooser = random.Random(7)
    with session_scope(ctx.engine) as session:
        number = 0

        def organisation(created: dt.datetime) -> int:
            nonlocal number
            number += 1
            org = Organisation(
                name=f"School {number}", street="Kerkstraat 1", postcode="1234 AB",
                city="Utrecht", brin=f"{number // 100:02d}AA{number % 100:02d}",
                phone="+31201234567", created_at=created,
            )  # fmt: skip
            session.add(org)
            session.flush()
            assert org.id is not None
            return org.id

        def subscription(org: int, end: dt.date | None, status: str) -> None:
            session.add(
                Subscription(
                    organisation_id=org,
                    plan="basis",
                    start_date=dt.date(2014, 1, 1),
                    end_date=end,
                    status=status,
                )
            )

        for day in days:
            # never subscribed, created that day at noon and late in the evening (UTC)
            organisation(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC))
            organisation(dt.datetime.combine(day, dt.time(23, 30), tzinfo=dt.UTC))
            # one subscription ending that day
            subscription(organisation(dt.datetime(2014, 1, 1, tzinfo=dt.UTC)), day, "ended")
            # ended that day, but another one still open
            org = organisation(dt.datetime(2014, 1, 1, tzinfo=dt.UTC))
            subscription(org, day, "cancelled")
            subscription(org, None, "active")
            # several ended ones; the last ends that day
            org = organisation(dt.datetime(2014, 1, 1, tzinfo=dt.UTC))
            subscription(org, day, "ended")
            subscription(org, day - dt.timedelta(days=chooser.randint(1, 900)), "ended")
            # ended that day, and one that ends some other awkward day
            org = organisation(dt.datetime(2014, 1, 1, tzinfo=dt.UTC))
            subscription(org, day, "ended")
            subscription(org, chooser.choice(days), chooser.choice(["trial", "active"]))
        session.flush()
        person = Administrator(organisation_id=1, name="Jan", email="jan@example.org", phones="[]")
        session.add(person)
        session.flush()
        for day in days:
            for action in ("granted", "withdrawn"):
                for purpose in ("newsletter", "analytics"):
                    session.add(
                        ConsentEvent(
                            administrator_id=person.id,
                            purpose=purpose,
                            action=ConsentAction(action),
                            occurred_at=dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC),
                            source="web-form",
                        )
                    )


@pytest.fixture
def world(ctx: AppContext) -> AppContext:
    build_world(ctx)
    return ctx


@pytest.mark.parametrize("today", TODAYS, ids=str)
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.months}-months")
def test_dashboard_equals_the_plain_computation(
    world: AppContext, today: dt.date, rule: RetentionRule
) -> None:
    expected = reference(world.engine, rule, today)
    assert expected.overdue > 0 and sum(m.count for m in expected.due_per_month) > 0
    assert dashboard.collect(world.engine, rule, today) == expected


def test_dashboard_on_demo_data_equals_the_plain_computation(ctx: AppContext) -> None:
    today = dt.date(2026, 3, 2)
    demo.generate(ctx.engine, ctx.keyring, schools=300, actor=ctx.staff, today=today)
    for rule in RULES:
        expected = reference(ctx.engine, rule, today)
        assert dashboard.collect(ctx.engine, rule, today) == expected
    assert reference(ctx.engine, RULES[0], today).newsletter_granted_this_month > 0


def test_clocks_until_leaves_out_only_what_no_band_counts(world: AppContext) -> None:
    """Every clock on or before the horizon is there, with its value; none after it."""
    today, horizon = dt.date(2026, 11, 27), dt.date(2025, 11, 30)
    with world.engine.connect() as conn:
        every = [
            value
            for value in conn.execute(
                select(clock_starts(today).subquery().c.clock_start)
            ).scalars()
            if value is not None
        ]
        quick = list(
            conn.execute(
                select(dashboard.clocks_until(today, horizon).subquery().c.clock_start)
            ).scalars()
        )

    def day(value: object) -> dt.date:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])

    assert sorted(map(day, quick)) == sorted(d for d in map(day, every) if d <= horizon)
    assert quick
