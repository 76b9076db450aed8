"""Retention deadlines of organisations, derived from their subscriptions on every read.

The privacy statement: general data is kept two years after the subscription ends. An
organisation's clock starts when its *last* subscription ended; while any subscription runs (no
end date, or an end date today or later) it has no deadline. An organisation that never had a
subscription (a prospect, an import without one) counts from the day it was created. The
deadline is never stored: a renewed subscription stops the clock the moment it is saved.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Date, case, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from plusjeklas_tui.models import Organisation, Subscription


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months later, clamped to the month's last day (2024-02-29 + 24 = 2026-02-28)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


@dataclass(frozen=True)
class RetentionRule:
    """The general-data rule: ``months`` calendar months after the last subscription ended.

    "Two years" is counted in calendar months, not 730 days, so a leap day never moves a
    deadline a day early.
    """

    months: int
    name: str = "general"

    def deadline(self, clock_start: dt.date | None) -> dt.date | None:
        return None if clock_start is None else add_months(clock_start, self.months)

    def latest_clock_due_before(self, day: dt.date) -> dt.date:
        """The last clock start whose deadline falls before *day*.

        ``deadline(c) < day`` exactly when ``c <= latest_clock_due_before(day)``, because
        adding months is monotonic; SQL can then compare plain dates on either engine.
        """
        candidate = add_months(day, -self.months)
        while add_months(candidate, self.months) >= day:
            candidate -= dt.timedelta(days=1)
        while add_months(candidate + dt.timedelta(days=1), self.months) < day:
            candidate += dt.timedelta(days=1)
        return candidate


def clock_starts(today: dt.date) -> Select:
    """One row per organisation: ``(organisation_id, clock_start)``; NULL clock while running."""
    running = func.sum(
        case(
            (Subscription.end_date.is_(None), 1),
            (Subscription.end_date >= today, 1),
            else_=0,
        )
    )
    last_end = func.max(Subscription.end_date)
    created = func.date(Organisation.created_at, type_=Date)  # date() casts on both engines
    clock = case(
        (func.count(Subscription.id) == 0, created),
        (running > 0, literal(None, Date)),
        else_=last_end,
    )
    return (
        select(Organisation.id.label("organisation_id"), clock.label("clock_start"))
        .select_from(Organisation)
        .outerjoin(Subscription, Subscription.organisation_id == Organisation.id)
        .group_by(Organisation.id, Organisation.created_at)
    )


def deadline_for(
    engine: Engine, organisation_id: int, rule: RetentionRule, today: dt.date
) -> dt.date | None:
    query = clock_starts(today).where(Organisation.id == organisation_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else rule.deadline(as_date(row.clock_start))


def as_date(value: object) -> dt.date | None:
    """A clock value as a date: SQLite's ``date()`` answers text, PostgreSQL a date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def urgency(deadline: dt.date | None, today: dt.date) -> str:
    """'overdue', 'soon' (30 days), 'near' (90 days), 'later' or 'none' (subscription running)."""
    if deadline is None:
        return "none"
    days = (deadline - today).days
    if days < 0:
        return "overdue"
    if days <= 30:
        return "soon"
    if days <= 90:
        return "near"
    return "later"
