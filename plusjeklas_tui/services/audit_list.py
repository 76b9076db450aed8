"""The audit log as a list: newest first, filtered by staff member, action, entity and date.

Filters are typed in one line, ``actor:vera action:export since:2026-11-01 until:2026-11-30``
(see :func:`parse_audit_filter`). Dates are days in Europe/Amsterdam, as staff think of them;
the log stores UTC.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from plusjeklas_tui.models import Administrator, AuditEvent, Subscription
from plusjeklas_tui.validation import FieldError, parse_date

LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
FILTER_KEYS = ("actor", "action", "entity", "since", "until")
SORT_COLUMNS = ("occurred_at", "actor", "action", "entity")

_audit = AuditEvent.__table__


class AuditFilterError(ValueError):
    """A filter line that cannot be read. ``problem`` is a code the UI turns into words.

    Problems: ``unknown_key`` (``key`` is the word before the colon), ``empty_value``,
    ``bad_date``, ``bad_range`` (until before since), ``bad_quotes``.
    """

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(f"audit filter: {problem} {key}".strip())
        self.problem = problem
        self.key = key


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    """Staff member, exact (case-insensitive)."""
    action: str | None = None
    """Action, exact, or a family: ``keys`` matches ``keys.rotate``."""
    entity: str | None = None
    """Kind of record, exact: ``organisation``, ``administrator``, ``subscription``, ..."""
    since: dt.date | None = None
    """First day, inclusive (Europe/Amsterdam)."""
    until: dt.date | None = None
    """Last day, inclusive (Europe/Amsterdam)."""
    words: tuple[str, ...] = field(default=())
    """Free words: each must appear in actor, action or entity."""


def parse_audit_filter(text: str) -> AuditFilter:
    """Read ``key:value`` words (keys in :data:`FILTER_KEYS`) and free words.

    Values with spaces may be quoted. Raises :class:`AuditFilterError`.
    """
    try:
        tokens = shlex.split(text)
    except ValueError:
        raise AuditFilterError("bad_quotes") from None
    values: dict[str, Any] = {}
    words: list[str] = []
    for token in tokens:
        key, colon, value = token.partition(":")
        if not colon:
            words.append(token)
            continue
        key = key.lower()
        if key not in FILTER_KEYS:
            raise AuditFilterError("unknown_key", key)
        if not value:
            raise AuditFilterError("empty_value", key)
        if key in ("since", "until"):
            try:
                values[key] = parse_date(value, key)
            except FieldError:
                raise AuditFilterError("bad_date", key) from None
        else:
            values[key] = value
    result = AuditFilter(words=tuple(words), **values)
    if result.since and result.until and result.until < result.since:
        raise AuditFilterError("bad_range", "until")
    return result


def _start_of(day: dt.date) -> dt.datetime:
    """The UTC moment the local day *day* begins."""
    return dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_ZONE).astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class AuditListRow:
    id: int
    occurred_at: dt.datetime
    """Aware, UTC."""
    actor: str
    action: str
    entity: str
    entity_id: int | None
    detail: str
    """JSON of non-personal facts."""


class AuditList:
    """Audit events matching *filter*, newest first unless sorted otherwise."""

    def __init__(
        self,
        engine: Engine,
        filter: AuditFilter | None = None,
        *,
        sort: str = "occurred_at",
        descending: bool = True,
    ) -> None:
        if sort not in SORT_COLUMNS:
            raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
        self.engine = engine
        self.filter = filter or AuditFilter()
        self.sort = sort
        self.descending = descending

    def _filtered(self, *columns: Any) -> Select:
        query = select(*columns).select_from(_audit)
        wanted = self.filter
        if wanted.actor is not None:
            query = query.where(func.lower(_audit.c.actor) == wanted.actor.lower())
        if wanted.action is not None:
            action = wanted.action.lower()
            query = query.where(
                or_(
                    func.lower(_audit.c.action) == action,
                    func.lower(_audit.c.action).startswith(action + ".", autoescape=True),
                )
            )
        if wanted.entity is not None:
            query = query.where(func.lower(_audit.c.entity) == wanted.entity.lower())
        if wanted.since is not None:
            query = query.where(_audit.c.occurred_at >= _start_of(wanted.since))
        if wanted.until is not None:
            query = query.where(
                _audit.c.occurred_at < _start_of(wanted.until + dt.timedelta(days=1))
            )
        for word in wanted.words:
            term = word.lower()
            query = query.where(
                or_(
                    *(
                        func.lower(column).contains(term, autoescape=True)
                        for column in (_audit.c.actor, _audit.c.action, _audit.c.entity)
                    )
                )
            )
        return query

    def _order(self) -> list[Any]:
        def direction(expression: Any) -> Any:
            return expression.desc() if self.descending else expression.asc()

        tail = [direction(_audit.c.occurred_at), direction(_audit.c.id)]
        if self.sort == "occurred_at":
            return tail
        return [direction(_audit.c[self.sort]), *tail]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._filtered(func.count(_audit.c.id))).scalar_one())

    def fetch(self, offset: int, limit: int) -> list[AuditListRow]:
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if limit == 0:
            return []
        query = (
            self._filtered(
                _audit.c.id,
                _audit.c.occurred_at,
                _audit.c.actor,
                _audit.c.action,
                _audit.c.entity,
                _audit.c.entity_id,
                _audit.c.detail,
            )
            .order_by(*self._order())
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                AuditListRow(
                    id=row.id,
                    occurred_at=row.occurred_at,
                    actor=row.actor,
                    action=row.action,
                    entity=row.entity,
                    entity_id=row.entity_id,
                    detail=row.detail,
                )
                for row in conn.execute(query)
            ]


def organisation_of_event(engine: Engine, entity: str, entity_id: int | None) -> int | None:
    """The organisation an event's record belongs to, if it still exists and has one."""
    if entity_id is None:
        return None
    if entity == "organisation":
        return entity_id
    table = {"administrator": Administrator, "subscription": Subscription}.get(entity)
    if table is None:
        return None
    with engine.connect() as conn:
        return conn.execute(
            select(table.organisation_id).where(table.id == entity_id)  # type: ignore[attr-defined]
        ).scalar_one_or_none()
