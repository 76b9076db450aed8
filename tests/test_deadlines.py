"""Retention deadlines follow the subscriptions on every read; the dashboard counts them."""

from __future__ import annotations

import datetime as dt

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
)
from plusjeklas_tui.services import dashboard
from plusjeklas_tui.services.deadlines import RetentionRule, deadline_for, urgency

TODAY = dt.date(2026, 11, 27)
RULE = RetentionRule(months=24)


def _org(session, brin: str, *subs: tuple[str | None, str]) -> int:
    org = Organisation(
        name=f"School {brin}",
        street="Kerkstraat 1",
        postcode="1234 AB",
        city="Utrecht",
        brin=brin,
        phone="+31201234567",
        created_at=dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC),
    )
    session.add(org)
    session.flush()
    for end, status in subs:
        session.add(
            Subscription(
                organisation_id=org.id,
                plan="basis",
                start_date=dt.date(2020, 1, 1),
                end_date=dt.date.fromisoformat(end) if end else None,
                status=status,
            )
        )
    session.flush()
    return org.id


def test_deadline_is_two_years_after_the_last_subscription_ended(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        ended = _org(s, "01AA", ("2023-05-01", "ended"), ("2024-06-30", "cancelled"))
        running = _org(s, "02AA", ("2022-01-01", "ended"), (None, "active"))
        ends_later = _org(s, "03AA", ("2027-01-31", "active"))
        never = _org(s, "04AA")
    assert deadline_for(ctx.engine, ended, RULE, TODAY) == dt.date(2026, 6, 30)
    assert deadline_for(ctx.engine, running, RULE, TODAY) is None
    assert deadline_for(ctx.engine, ends_later, RULE, TODAY) is None
    assert deadline_for(ctx.engine, never, RULE, TODAY) == dt.date(2026, 3, 1)


def test_renewal_stops_the_clock(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        org = _org(s, "05AA", ("2024-01-31", "ended"))
    assert deadline_for(ctx.engine, org, RULE, TODAY) == dt.date(2026, 1, 31)
    with session_scope(ctx.engine) as s:
        s.add(Subscription(organisation_id=org, plan="basis", start_date=TODAY, status="active"))
    assert deadline_for(ctx.engine, org, RULE, TODAY) is None


def test_two_years_are_calendar_months() -> None:
    assert RULE.deadline(dt.date(2024, 2, 29)) == dt.date(2026, 2, 28)
    assert RULE.deadline(dt.date(2024, 1, 31)) == dt.date(2026, 1, 31)
    for day in (dt.date(2026, 3, 1), dt.date(2026, 2, 28), dt.date(2027, 1, 1)):
        cutoff = RULE.latest_clock_due_before(day)
        assert RULE.deadline(cutoff) < day <= RULE.deadline(cutoff + dt.timedelta(days=1))


def test_urgency_bands() -> None:
    assert urgency(None, TODAY) == "none"
    assert urgency(TODAY - dt.timedelta(days=1), TODAY) == "overdue"
    assert urgency(TODAY, TODAY) == "soon"
    assert urgency(TODAY + dt.timedelta(days=30), TODAY) == "soon"
    assert urgency(TODAY + dt.timedelta(days=31), TODAY) == "near"
    assert urgency(TODAY + dt.timedelta(days=91), TODAY) == "later"


def test_dashboard_counts(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        _org(s, "01AB", ("2024-01-01", "ended"))  # deadline 2025-12-31: overdue
        _org(s, "02AB", ("2024-12-10", "ended"))  # 2026-12-10: within 30 days
        _org(s, "03AB", ("2025-02-01", "cancelled"))  # 2027-02-01: within 90 days
        _org(s, "04AB", ("2025-08-15", "ended"))  # 2027-08-15: month 9 of the chart
        admin_org = _org(s, "05AB", (None, "active"), (None, "trial"))
        admin = Administrator(organisation_id=admin_org, name="A", email="a@example.nl")
        s.add(admin)
        s.flush()
        for day, action in ((2, "granted"), (20, "granted"), (21, "withdrawn")):
            s.add(
                ConsentEvent(
                    administrator_id=admin.id,
                    purpose="newsletter",
                    action=ConsentAction(action),
                    occurred_at=dt.datetime(2026, 11, day, tzinfo=dt.UTC),
                    source="web-form",
                )
            )
        s.add(
            ConsentEvent(
                administrator_id=admin.id,
                purpose="newsletter",
                action=ConsentAction.GRANTED,
                occurred_at=dt.datetime(2026, 10, 31, tzinfo=dt.UTC),
                source="web-form",
            )
        )
    stats = dashboard.collect(ctx.engine, RULE, TODAY)
    assert stats.subscriptions_by_status == {"trial": 1, "active": 1, "cancelled": 1, "ended": 3}
    assert (stats.overdue, stats.due_within_30, stats.due_within_90) == (1, 1, 2)
    per_month = {m.month: m.count for m in stats.due_per_month}
    assert len(stats.due_per_month) == 12
    assert per_month[dt.date(2026, 12, 1)] == 1
    assert per_month[dt.date(2027, 2, 1)] == 1
    assert per_month[dt.date(2027, 8, 1)] == 1
    assert per_month[dt.date(2026, 11, 1)] == 0  # the overdue one is not "due this month"
    assert sum(per_month.values()) == 3
    assert stats.newsletter_granted_this_month == 2
    assert stats.newsletter_withdrawn_this_month == 1
