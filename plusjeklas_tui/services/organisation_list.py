"""The organisations list: filtered, sorted and paged in SQL, so 100,000 schools stay quick.

A query object answers two questions, both cheap: how many organisations match
(:meth:`OrganisationList.count`) and which ones are on a page (:meth:`OrganisationList.fetch`).
Nothing here holds more than one page.

The page itself is read in two steps. The first selects the page's ids and plain columns in the
requested order (an indexed ``ORDER BY name, id`` for the default list); the second computes the
current subscription status and the retention clock for *those ids only*. The retention
aggregate over every organisation is joined only when the list is filtered or sorted by it.

Retention bands and due months are compared on the clock start, with the cut-offs from
:meth:`RetentionRule.latest_clock_due_before`, exactly as :mod:`plusjeklas_tui.services.dashboard`
counts them, so a list opened from a dashboard tile shows as many rows as the tile says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from plusjeklas_tui.models import Administrator, Organisation, Subscription, index_value
from plusjeklas_tui.services.deadlines import RetentionRule, as_date, clock_starts, urgency
from plusjeklas_tui.sqltypes import keyring_of
from plusjeklas_tui.validation import FieldError, email_lookup_key

SORT_COLUMNS = ("name", "city", "brin", "postcode", "status", "deadline")
URGENCY_BANDS = ("overdue", "soon", "near")
"""'overdue': deadline passed; 'soon': within 30 days; 'near': within 90 days (soon included,
as the dashboard's "due within 90 days" tile counts)."""
STATUS_ORDER = ("trial", "active", "cancelled", "ended")
"""Sorting by status follows a subscription's life, not the alphabet of either language."""

_org = Organisation.__table__
_sub = Subscription.__table__
_adm = Administrator.__table__


@dataclass(frozen=True, slots=True)
class OrganisationListRow:
    id: int
    name: str
    city: str
    brin: str
    postcode: str
    status: str | None
    """Status of the organisation's latest subscription (by start date); None: it has none."""
    deadline: dt.date | None
    """Retention deadline; None while a subscription runs."""
    urgency: str
    """'overdue', 'soon', 'near', 'later' or 'none', from :func:`deadlines.urgency`."""


def email_index_candidates(engine: Engine, text: str) -> list[str] | None:
    """Blind-index values to look *text* up by, or None when it is not an e-mail address.

    One value per loaded key, so a lookup works halfway through a key rotation.
    """
    if "@" not in text:
        return None
    try:
        key = email_lookup_key(text)
    except FieldError:
        return None
    return keyring_of(engine.dialect).blind_index_candidates(index_value("email", key))


_POSTCODE_WITHOUT_SPACE = re.compile(r"([0-9]{4})([A-Za-z]{1,2})")
LIKE_ESCAPE = "/"


def escape_like(text: str) -> str:
    """*text* for a LIKE pattern in which it matches only itself (``%``, ``_`` literal)."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def _contains(engine: Engine, column: Any, pattern: str) -> ColumnElement[bool]:
    """Case-insensitive LIKE without ``lower()`` on every row.

    SQLite's LIKE already ignores ASCII case (it leaves other letters as typed); PostgreSQL
    has ILIKE. Calling ``lower()`` per row made a keystroke over 100,000 schools twice as slow.
    """
    if engine.dialect.name == "postgresql":
        return column.ilike(pattern, escape=LIKE_ESCAPE)
    return column.like(pattern, escape=LIKE_ESCAPE)


def parse_month(value: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month; ValueError naming the rule otherwise."""
    try:
        if len(value) != 7 or value[4] != "-":
            raise ValueError
        return dt.date(int(value[:4]), int(value[5:]), 1)
    except ValueError:
        raise ValueError("due_month must be a month written as YYYY-MM, e.g. 2026-03") from None


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def latest_status() -> Any:
    """Correlated scalar subquery: the status of an organisation's latest subscription.

    Uses its own alias of ``subscription`` so it can sit in a query that already joins it.
    """
    latest = _sub.alias("latest_subscription")
    return (
        select(latest.c.status)
        .where(latest.c.organisation_id == _org.c.id)
        .order_by(latest.c.start_date.desc(), latest.c.id.desc())
        .limit(1)
        .correlate(_org)
        .scalar_subquery()
    )


class OrganisationList:
    """Organisations matching a filter, in one order; ``count()`` and ``fetch()`` query afresh.

    ``text``: case-insensitive substring of name, city, BRIN or postcode (``%`` and ``_`` are
    literal; the postcode also matches without its space), or, when it is an e-mail address,
    the exact contact e-mail of the organisation or of one of its administrators (through the
    blind index). ``status``: has a subscription in that state. ``urgency``: a band of
    :data:`URGENCY_BANDS`. ``due_month``: ``YYYY-MM``, deadline in that month and not before
    *today* (as the dashboard's chart counts).
    """

    def __init__(
        self,
        engine: Engine,
        rule: RetentionRule,
        today: dt.date,
        *,
        text: str = "",
        status: str | None = None,
        urgency: str | None = None,
        due_month: str | None = None,
        sort: str = "name",
        descending: bool = False,
    ) -> None:
        if sort not in SORT_COLUMNS:
            raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
        if status is not None and status not in STATUS_ORDER:
            raise ValueError(f"status must be one of {', '.join(STATUS_ORDER)}, got {status!r}")
        if urgency is not None and urgency not in URGENCY_BANDS:
            raise ValueError(f"urgency must be one of {', '.join(URGENCY_BANDS)}, got {urgency!r}")
        self.engine = engine
        self.rule = rule
        self.today = today
        self.text = text.strip()
        self.status = status
        self.urgency = urgency
        self.month = None if due_month is None else parse_month(due_month)
        self.sort = sort
        self.descending = descending
        self._needs_clock = urgency is not None or due_month is not None or sort == "deadline"

    # ------------------------------------------------------------------ query building

    def _text_condition(self) -> ColumnElement[bool] | None:
        if not self.text:
            return None
        pattern = f"%{escape_like(self.text)}%"
        columns = [_org.c.name, _org.c.city, _org.c.brin, _org.c.postcode]
        postcode = _POSTCODE_WITHOUT_SPACE.fullmatch(self.text)
        # '3511ab' finds '3511 AB': the stored form has the space
        patterns = [(column, pattern) for column in columns]
        if postcode:
            patterns.append((_org.c.postcode, f"%{postcode[1]} {postcode[2]}%"))
        conditions: list[ColumnElement[bool]] = [
            _contains(self.engine, column, value) for column, value in patterns
        ]
        candidates = email_index_candidates(self.engine, self.text)
        if candidates:
            conditions.append(_org.c.email_index.in_(candidates))
            conditions.append(
                exists().where(
                    _adm.c.organisation_id == _org.c.id, _adm.c.email_index.in_(candidates)
                )
            )
        return or_(*conditions)

    def _clock_condition(self, clock: Any) -> ColumnElement[bool] | None:
        rule, today = self.rule, self.today
        conditions: list[ColumnElement[bool]] = []

        def between(start: dt.date, end: dt.date) -> ColumnElement[bool]:
            """Deadlines in [start, end)."""
            if start >= end:
                return false()
            low = rule.latest_clock_due_before(start)
            high = rule.latest_clock_due_before(end)
            return and_(clock > low, clock <= high)

        if self.urgency == "overdue":
            conditions.append(clock <= rule.latest_clock_due_before(today))
        elif self.urgency == "soon":
            conditions.append(between(today, today + dt.timedelta(days=31)))
        elif self.urgency == "near":
            conditions.append(between(today, today + dt.timedelta(days=91)))
        if self.month is not None:
            conditions.append(between(max(self.month, today), _next_month(self.month)))
        return and_(*conditions) if conditions else None

    def _filtered(self, *columns: Any, order: bool = False) -> Select:
        """SELECT *columns* FROM the matching organisations (ordered when *order*)."""
        query = select(*columns).select_from(_org)
        clock = None
        if self._needs_clock:
            clocks = clock_starts(self.today).subquery("clocks")
            clock = clocks.c.clock_start
            query = query.join(clocks, clocks.c.organisation_id == _org.c.id)
            condition = self._clock_condition(clock)
            if condition is not None:
                query = query.where(condition)
        text_condition = self._text_condition()
        if text_condition is not None:
            query = query.where(text_condition)
        if self.status is not None:
            query = query.where(
                exists().where(_sub.c.organisation_id == _org.c.id, _sub.c.status == self.status)
            )
        if order:
            query = query.order_by(*self._order(clock))
        return query

    def _order(self, clock: Any) -> list[Any]:
        def direction(expression: Any) -> Any:
            return expression.desc() if self.descending else expression.asc()

        tail = [direction(_org.c.name), direction(_org.c.id)]
        if self.sort == "name":
            return tail
        if self.sort in ("city", "brin", "postcode"):
            # (column, id) is exactly the column's index order: a page deep in the list is
            # read from the index, not sorted afresh.
            return [direction(_org.c[self.sort]), direction(_org.c.id)]
        if self.sort == "status":
            key: Any = case(
                {status: n for n, status in enumerate(STATUS_ORDER)},
                value=latest_status(),
                else_=None,
            )
        else:
            key = clock  # the deadline grows with the clock start
        # Organisations without a value (no subscription; deadline not running) go last
        # in either direction.
        return [case((key.is_(None), 1), else_=0), direction(key), *tail]

    # ------------------------------------------------------------------ answers

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._filtered(func.count(_org.c.id))).scalar_one())

    def fetch(self, offset: int, limit: int) -> list[OrganisationListRow]:
        """Rows ``offset`` to ``offset + limit - 1`` in list order."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if limit == 0:
            return []
        query = (
            self._filtered(
                _org.c.id, _org.c.name, _org.c.city, _org.c.brin, _org.c.postcode, order=True
            )
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            page = conn.execute(query).all()
            details = self._details(conn, [row.id for row in page])
        rows = []
        for row in page:
            status, clock = details.get(row.id, (None, None))
            deadline = self.rule.deadline(clock)
            rows.append(
                OrganisationListRow(
                    id=row.id,
                    name=row.name,
                    city=row.city,
                    brin=row.brin,
                    postcode=row.postcode,
                    status=status,
                    deadline=deadline,
                    urgency=urgency(deadline, self.today),
                )
            )
        return rows

    def _details(
        self, conn: Any, ids: Sequence[int]
    ) -> dict[int, tuple[str | None, dt.date | None]]:
        """Status and clock start of just these organisations."""
        if not ids:
            return {}
        query = (
            clock_starts(self.today)
            .add_columns(latest_status().label("status"))
            .where(Organisation.id.in_(ids))  # type: ignore[union-attr]
        )
        return {
            row.organisation_id: (row.status, as_date(row.clock_start))
            for row in conn.execute(query)
        }
