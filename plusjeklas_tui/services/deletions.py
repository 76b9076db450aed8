"""Delivering erasures to the providers: the deletion outbox, as staff and callers see it.

The local erasure (``services/erasure.py``) writes one :class:`DeletionTask` per provider that
holds the subject, in the same transaction as the erasure, with a :func:`make_locator` value
(the provider's id for the subject and, for providers that find people by address, the
address), encrypted. The API the CLI, the sweep and the app use::

    report = run_once(engine, providers.available, problems=providers.problems)
    report.ok                  # nothing failed and nothing was left for an unavailable provider
    run_forever(engine, providers.available, cancel=event)   # until ``event`` is set
    list_tasks(engine, available=..., problems=...)          # what `deletions list` shows
    retry(engine, task_id, staff)                            # due now, audited
    receipt_deliveries(session, [receipt_id])                # which providers confirmed, when

This module reads and retries tasks, and re-exports the rest; each part has a module of its
own, with its explanation:

* :mod:`~plusjeklas_tui.services.deletion_locators` — what a task carries to find the subject;
* :mod:`~plusjeklas_tui.services.deletion_leases` — claiming, releasing and completing tasks
  (the SQL of leases, and why it is safe with several workers on either engine);
* :mod:`~plusjeklas_tui.services.deletion_attempt` — one attempt at a provider (done means
  confirmed) and the backoff after a failure;
* :mod:`~plusjeklas_tui.services.deletion_worker` — the runs: lanes per provider, the writer,
  pausing a failing provider, :func:`run_once` and :func:`run_forever`.

Which providers confirmed an erasure is derived from the done tasks when read
(:func:`receipt_deliveries`); the receipt needs no column for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import DeletionState, DeletionTask
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.deletion_attempt import (
    MAX_RETRY_AFTER_SECONDS,
    Attempt,
    Backoff,
    attempt,
)
from plusjeklas_tui.services.deletion_leases import (
    TASKS,
    ClaimedTask,
    Clock,
    TaskResult,
    claim_tasks,
    defer_due,
    free_lease,
    new_owner,
    release,
    result_statement,
    write_result,
)
from plusjeklas_tui.services.deletion_locators import (
    LOCATOR_CONTEXT,
    make_locator,
    subject_from_locator,
)
from plusjeklas_tui.services.deletion_worker import (
    CLAIM_BATCH,
    LEASE_MARGIN_SECONDS,
    WRITE_BATCH,
    ProviderResult,
    RunReport,
    WorkerOptions,
    due_counts,
    next_due,
    run_forever,
    run_once,
    unavailable_reason,
)
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember

__all__ = [
    "CLAIM_BATCH",
    "LEASE_MARGIN_SECONDS",
    "LOCATOR_CONTEXT",
    "MAX_RETRY_AFTER_SECONDS",
    "TASKS",
    "WRITE_BATCH",
    "Attempt",
    "Backoff",
    "ClaimedTask",
    "Clock",
    "Confirmation",
    "ProviderResult",
    "ReceiptDelivery",
    "RunReport",
    "TaskCounts",
    "TaskNotPending",
    "TaskResult",
    "TaskView",
    "WorkerOptions",
    "attempt",
    "claim_tasks",
    "defer_due",
    "due_counts",
    "free_lease",
    "list_tasks",
    "make_locator",
    "new_owner",
    "next_due",
    "receipt_deliveries",
    "release",
    "result_statement",
    "retry",
    "run_forever",
    "run_once",
    "subject_from_locator",
    "task_counts",
    "unavailable_reason",
    "write_result",
]


class TaskNotPending(PlusjeklasError):
    """A retry was asked for a task that is already done."""


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskView:
    """One task as staff see it (no locator: that is for the provider only)."""

    id: int
    receipt_id: int
    provider: str
    subject_type: str
    subject_id: int
    state: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    outcome: str | None
    verified: bool | None
    done_at: dt.datetime | None
    created_at: dt.datetime | None
    leased_by: str | None
    """The worker delivering it right now (an unexpired lease), if any."""
    blocked: str | None
    """``provider not available: <reason>`` when this process cannot deliver it."""

    @property
    def reason(self) -> str:
        """What to show in a list's reason column: why it is blocked, else its last error."""
        return self.blocked or self.last_error or ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("next_attempt_at", "done_at", "created_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def list_tasks(
    engine: Engine,
    *,
    include_done: bool = False,
    available: Collection[str] | None = None,
    problems: Mapping[str, str] | None = None,
    limit: int | None = None,
    clock: Clock = utcnow,
) -> list[TaskView]:
    """Pending tasks (and done ones with ``include_done``), the next to be tried first.

    With ``available`` (the names this process can deliver to), a pending task for another
    provider carries ``blocked`` = ``provider not available: <reason>``.
    """
    now = clock()
    columns = [column for column in TASKS.c if column.name != "locator"]
    statement = select(*columns)
    if not include_done:
        statement = statement.where(TASKS.c.state == DeletionState.PENDING.value)
    statement = statement.order_by(
        (TASKS.c.state == DeletionState.DONE.value).asc(),
        TASKS.c.next_attempt_at,
        TASKS.c.id,
    )
    if limit is not None:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    views = []
    for row in rows:
        pending = row.state == DeletionState.PENDING.value
        blocked = None
        if pending and available is not None:
            reason = unavailable_reason(row.provider, available, problems)
            blocked = f"provider not available: {reason}" if reason else None
        leased = (
            row.lease_owner
            if row.lease_owner and row.lease_expires_at and row.lease_expires_at > now
            else None
        )
        views.append(
            TaskView(
                id=row.id,
                receipt_id=row.receipt_id,
                provider=row.provider,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                state=row.state,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at if pending else None,
                last_error=row.last_error,
                outcome=row.outcome,
                verified=row.verified,
                done_at=row.done_at,
                created_at=row.created_at,
                leased_by=leased,
                blocked=blocked,
            )
        )
    return views


def retry(engine: Engine, task_id: int, staff: StaffMember, clock: Clock = utcnow) -> dt.datetime:
    """Make a pending task due now (the next worker run takes it); audited.

    Changes nothing else: its attempts and last error stay as the record of what happened.
    """
    staff.require(Permission.ERASE, "retry a provider erasure")
    now = clock()
    with db.session_scope(engine) as session:
        row = session.execute(select(TASKS.c.state).where(TASKS.c.id == task_id)).one_or_none()
        if row is None:
            raise NotFound(f"deletion task {task_id} does not exist")
        if row.state != DeletionState.PENDING.value:
            raise TaskNotPending(f"deletion task {task_id} is already done; nothing to retry")
        session.execute(
            update(TASKS)
            .where(TASKS.c.id == task_id, TASKS.c.state == DeletionState.PENDING.value)
            .values(next_attempt_at=now)
        )
        audit.record(session, staff, "deletion_retry", "deletion_task", task_id)
    return now


@dataclass(frozen=True)
class Confirmation:
    provider: str
    outcome: str | None
    verified: bool | None
    done_at: dt.datetime | None


@dataclass(frozen=True)
class ReceiptDelivery:
    """Where an erasure stands at the providers, derived from its tasks."""

    receipt_id: int
    confirmed: tuple[Confirmation, ...]
    pending: tuple[str, ...]
    """Providers that have not confirmed yet."""

    @property
    def complete(self) -> bool:
        return not self.pending

    @property
    def completed_at(self) -> dt.datetime | None:
        """When the last provider confirmed (None while pending or with no provider)."""
        if self.pending or not self.confirmed:
            return None
        times = [c.done_at for c in self.confirmed if c.done_at is not None]
        return max(times) if times else None


def receipt_deliveries(session: Session, receipt_ids: Iterable[int]) -> dict[int, ReceiptDelivery]:
    """For each receipt: which providers confirmed (and when, how), which are pending.

    A receipt with no tasks (no provider held the subject) is complete with no confirmations.
    """
    ids = list(dict.fromkeys(receipt_ids))
    confirmed: dict[int, list[Confirmation]] = {i: [] for i in ids}
    pending: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(
                TASKS.c.receipt_id,
                TASKS.c.provider,
                TASKS.c.state,
                TASKS.c.outcome,
                TASKS.c.verified,
                TASKS.c.done_at,
            )
            .where(TASKS.c.receipt_id.in_(ids))
            .order_by(TASKS.c.provider, TASKS.c.id)
        ).all()
        for row in rows:
            if row.state == DeletionState.DONE.value:
                confirmed[row.receipt_id].append(
                    Confirmation(row.provider, row.outcome, row.verified, row.done_at)
                )
            else:
                pending[row.receipt_id].append(row.provider)
    return {i: ReceiptDelivery(i, tuple(confirmed[i]), tuple(pending[i])) for i in ids}


# --- counts, for the dashboard -------------------------------------------------------------


@dataclass(frozen=True)
class TaskCounts:
    pending: int
    """Not confirmed by the provider yet (failed ones included)."""
    failed: int
    """Pending after at least one failed attempt: they are retried with backoff."""


def task_counts(engine: Engine) -> TaskCounts:
    """Pending and failed deletion tasks, counted in SQL (the dashboard asks every 5 s)."""
    tasks = DeletionTask.__table__
    with engine.connect() as conn:
        pending, failed = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((tasks.c.attempts > 0, 1), else_=0)), 0),
            ).where(tasks.c.state == DeletionState.PENDING.value)
        ).one()
    return TaskCounts(int(pending), int(failed))
