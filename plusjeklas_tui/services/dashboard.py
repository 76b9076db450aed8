"""The figures on the dashboard, computed in SQL so they stay quick at 100,000 organisations.

Every figure reads an index, not a table (migration 0002 adds them): subscriptions by status,
newsletter consent events by purpose and time, and the retention bands from the
subscriptions' ``(organisation_id, end_date)`` index plus, for organisations that never had a
subscription, their creation time. The retention figures count exactly what
:func:`~plusjeklas_tui.services.deadlines.clock_starts` would give, without reading every
organisation row: only clocks that can fall in a band (on or before the last cut-off, the end
of the chart's twelfth month) are looked at. All figures come back in one row (see
:func:`_counted` for why that matters).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    String,
    bindparam,
    case,
    cast,
    exists,
    func,
    select,
    union_all,
)
from sqlalchemy.engine import Engine

from plusjeklas_tui.models import (
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services.deadlines import RetentionRule

# Core columns, not the ORM's attributes: the first dashboard of a session runs beside the
# app's first frame, and an ORM attribute would make it configure every mapper first.
_org = Organisation.__table__
_sub = Subscription.__table__
_consent = ConsentEvent.__table__
NEVER = dt.date(9999, 12, 31)
"""Stands in for a missing end date: a subscription without one is still running."""


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


def clocks_until(today: dt.date, horizon: dt.date) -> CompoundSelect:
    """Clock starts (one row per organisation, column ``clock_start``) on or before *horizon*.

    The same values :func:`~plusjeklas_tui.services.deadlines.clock_starts` gives, for just
    the organisations whose clock started by *horizon*:

    * with subscriptions: stopped (every subscription has an end date before *today*), at the
      last end date. ``max(coalesce(end_date, 9999-12-31))`` is that date when the clock
      runs, and on or after *today* when a subscription still runs, so one aggregate over the
      ``(organisation_id, end_date)`` index answers both;
    * without any: the day the organisation was created, found through the ``created_at``
      index (the range is widened by two days so a time zone cannot move a day out of it;
      ``date()`` then decides, as in ``clock_starts``).
    """
    # NEVER is written into the SQL, not bound: with one placeholder in the SELECT and
    # another in the HAVING, SQLite would not see one aggregate and would compute it twice
    never = bindparam("never", NEVER, type_=Date, literal_execute=True)
    last_end = func.max(func.coalesce(_sub.c.end_date, never))
    stopped = (
        select(last_end.label("clock_start"))
        .group_by(_sub.c.organisation_id)
        .having(last_end <= min(horizon, today - dt.timedelta(days=1)))
    )
    created = func.date(_org.c.created_at, type_=Date)
    widened = dt.datetime.combine(horizon + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    never_subscribed = (
        select(created.label("clock_start"))
        .where(_org.c.created_at < widened)
        .where(created <= horizon)
        .where(~exists().where(_sub.c.organisation_id == _org.c.id))
    )
    return union_all(stopped, never_subscribed)


def _counted(key: Any, *, where: Any = None, from_: Any = None) -> Any:
    """Scalar subquery: ``key=count`` for each *key* value, one per line, in one string.

    The dashboard's figures come back as one row of three such strings: it is computed in a
    worker beside the app's first frame, and every row fetched there waits for the interface
    thread to let go of the interpreter (up to 5 ms each), so a handful of rows cost more
    than the queries.
    """
    grouped = select(key.label("key"), func.count().label("n"))
    if from_ is not None:
        grouped = grouped.select_from(from_)
    if where is not None:
        grouped = grouped.where(*where)
    counts = grouped.group_by(key).subquery()
    pair = cast(counts.c.key, String) + "=" + cast(counts.c.n, String)
    return select(func.aggregate_strings(pair, "\n")).select_from(counts).scalar_subquery()


def _parse_counts(text: str | None) -> dict[str, int]:
    return {
        key: int(count)
        for key, _, count in (line.rpartition("=") for line in (text or "").splitlines() if line)
    }


def collect(engine: Engine, rule: RetentionRule, today: dt.date) -> DashboardStats:
    months = _month_starts(today, 12)
    # every band ends by the chart's last month; later clocks count nowhere
    horizon = rule.latest_clock_due_before(max(months[-1], today + dt.timedelta(days=91)))

    # Each figure counts the clocks in (low, high]: deadlines in [start, end) have their
    # clock in (latest_clock_due_before(start), latest_clock_due_before(end)]; overdue ones
    # up to latest_clock_due_before(today).
    def clock_range(start: dt.date | None, end: dt.date) -> tuple[dt.date | None, dt.date]:
        low = None if start is None else rule.latest_clock_due_before(start)
        return low, rule.latest_clock_due_before(end)

    ranges = [
        clock_range(None, today),
        clock_range(today, today + dt.timedelta(days=31)),
        clock_range(today, today + dt.timedelta(days=91)),
        *(clock_range(max(start, today), end) for start, end in itertools.pairwise(months)),
    ]
    # SQL puts each clock in the slot between two neighbouring bounds (one CASE, which stops
    # at the first bound the clock is under) and counts per slot; a range is the sum of the
    # slots inside it.
    bounds = sorted({bound for low, high in ranges for bound in (low, high) if bound is not None})
    clocks = clocks_until(today, horizon).subquery("clocks")
    clock = clocks.c.clock_start
    slot = case(*((clock <= bound, n) for n, bound in enumerate(bounds)), else_=len(bounds))
    month_start = dt.datetime.combine(today.replace(day=1), dt.time(), tzinfo=dt.UTC)
    query = select(
        _counted(_sub.c.status),
        _counted(slot, from_=clocks),
        _counted(
            _consent.c.action,
            where=[_consent.c.purpose == "newsletter", _consent.c.occurred_at >= month_start],
        ),
    )
    with engine.connect() as conn:
        statuses, slots, consent = (_parse_counts(text) for text in conn.execute(query).one())

    by_status = {status.value: statuses.get(status.value, 0) for status in SubscriptionStatus}
    by_status.update(statuses)
    per_range = []
    for low, high in ranges:
        # slot n holds (bounds[n - 1], bounds[n]]; slot 0 everything up to bounds[0]
        first = 0 if low is None else bounds.index(low) + 1
        last = bounds.index(high)
        per_range.append(sum(slots.get(str(n), 0) for n in range(first, last + 1)))
    overdue, due30, due90, *per_month = per_range
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
