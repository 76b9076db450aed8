"""The privacy office's figures for the dashboard: requests, breaches, feedback, promise audit.

Read in one session from the services that own each area; every figure is a count or a
time, never personal data. One area failing (a table another version has not made yet, a
slow query cancelled) leaves that figure unknown (None) and the others shown.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.db import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RequestFigures:
    open: int
    overdue: int
    tell_person: int
    """Extended requests whose person has not been told yet."""
    next_days_left: int | None
    """Days left on the open request due first (negative: overdue)."""


@dataclass(frozen=True)
class BreachFigures:
    open: int
    """Breaches neither reported nor marked not reportable."""
    overdue: int
    next_time_left: dt.timedelta | None
    """The 72-hour countdown of the breach discovered first (negative: past)."""


@dataclass(frozen=True)
class PromiseFigures:
    ran_at: dt.datetime
    passed: bool
    failures: int
    checks: int


@dataclass(frozen=True)
class OfficeSummary:
    requests: RequestFigures | None
    breaches: BreachFigures | None
    feedback_open: int | None
    """Schools to ask (or whose answer is awaited) how they look back on the lessons."""
    promises: PromiseFigures | None
    """The last promise audit; None when none has run (or it could not be read)."""
    promises_known: bool = True
    """False when the promise audit could not be read at all."""


def _part(name: str, read: Callable[[], T]) -> tuple[T | None, bool]:
    try:
        return read(), True
    except Exception as error:  # one area's trouble must not hide the others
        log.warning("dashboard: %s figures unavailable (%s)", name, type(error).__name__)
        return None, False


def _requests(session: Session, today: dt.date) -> RequestFigures:
    from plusjeklas_tui.services.requests import open_requests_summary

    summary = open_requests_summary(session, today)
    days = [row.days_left for row in summary.rows if row.days_left is not None]
    return RequestFigures(
        open=summary.open_count,
        overdue=summary.overdue_count,
        tell_person=summary.tell_person_count,
        next_days_left=min(days) if days else None,
    )


def _breaches(session: Session, now: dt.datetime) -> BreachFigures:
    from plusjeklas_tui.services.breaches import open_breaches_summary

    summary = open_breaches_summary(session, now)
    return BreachFigures(summary.open_count, summary.overdue_count, summary.next_time_left)


def _feedback(session: Session, today: dt.date, retention: RetentionSettings) -> int:
    from plusjeklas_tui.services.feedback import feedback_summary

    return feedback_summary(session, today, retention).open


def _promises(session: Session) -> PromiseFigures | None:
    from plusjeklas_tui.models.promises import last_promise_audit

    audit = last_promise_audit(session)
    if audit is None:
        return None
    return PromiseFigures(audit.ran_at, audit.passed, audit.failures, audit.checks)


def collect(
    engine: Engine, today: dt.date, now: dt.datetime, retention: RetentionSettings
) -> OfficeSummary:
    """Every figure of the privacy office panel, each read on its own (see the module doc)."""
    with session_scope(engine) as session:
        requests, _ = _part("requests", lambda: _requests(session, today))
        session.rollback()  # a failed read must not spoil the next one (PostgreSQL)
        breaches, _ = _part("breaches", lambda: _breaches(session, now))
        session.rollback()
        feedback, _ = _part("feedback", lambda: _feedback(session, today, retention))
        session.rollback()
        promises, known = _part("promises", lambda: _promises(session))
        session.rollback()
    return OfficeSummary(requests, breaches, feedback, promises, known)
