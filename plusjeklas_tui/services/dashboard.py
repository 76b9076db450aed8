"""The figures on the dashboard, computed in SQL so they stay quick at 100,000 organisations."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from plusjeklas_tui.models import ConsentAction, ConsentEvent, Subscription, SubscriptionStatus
from plusjeklas_tui.services.deadlines import RetentionRule, clock_starts


@dataclass(frozen=True)
class MonthCount:
    month: dt.date  # first day of the month
    count: int


@dataclass(frozen=True)
class DashboardStats:
    today: dt.date
    subscriptions_by_status: dict[str, int]
    overdue: int
    due_within_30: int
    due_within_90: int
    due_per_month: list[MonthCount]
    newsletter_granted_this_month: int
    newsletter_withdrawn_this_month: int
    providers: list[dict[str, object]] = field(default_factory=list)
    """Filled by the provider plugins (a later issue); empty means none is configured yet."""


def _month_starts(today: dt.date, count: int) -> list[dt.date]:
    first = today.replace(day=1)
    months = []
    for n in range(count + 1):
        year, month = divmod(first.month - 1 + n, 12)
        months.append(dt.date(first.year + year, month + 1, 1))
    return months


def collect(engine: Engine, rule: RetentionRule, today: dt.date) -> DashboardStats:
    by_status = {status.value: 0 for status in SubscriptionStatus}
    with engine.connect() as conn:
        for status, count in conn.execute(
            select(Subscription.status, func.count()).group_by(Subscription.status)
        ):
            by_status[str(status)] = count

        clocks = clock_starts(today).subquery()
        clock = clocks.c.clock_start
        months = _month_starts(today, 12)

        def before(day: dt.date) -> object:
            return func.sum(case((clock <= rule.latest_clock_due_before(day), 1), else_=0))

        def between(start: dt.date, end: dt.date) -> object:
            """Deadlines in [start, end)."""
            low = rule.latest_clock_due_before(start)
            high = rule.latest_clock_due_before(end)
            return func.sum(case((and_(clock > low, clock <= high), 1), else_=0))

        columns = [
            before(today),
            between(today, today + dt.timedelta(days=31)),
            between(today, today + dt.timedelta(days=91)),
            *(between(max(start, today), end) for start, end in itertools.pairwise(months)),
        ]
        row = conn.execute(select(*columns).select_from(clocks)).one()
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
    return DashboardStats(
        today=today,
        subscriptions_by_status=by_status,
        overdue=overdue,
        due_within_30=due30,
        due_within_90=due90,
        due_per_month=[MonthCount(m, c) for m, c in zip(months[:-1], per_month, strict=True)],
        newsletter_granted_this_month=int(consent.get(ConsentAction.GRANTED.value, 0)),
        newsletter_withdrawn_this_month=int(consent.get(ConsentAction.WITHDRAWN.value, 0)),
    )
