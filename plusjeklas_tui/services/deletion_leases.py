"""Leasing deletion tasks to a worker, and writing a worker's results: the SQL of leases.

Several workers may deliver at once (cron, each staff member's app, a second host on
PostgreSQL). A task is never delivered by two at the same time:

* **Lease, then call, then complete, each its own short transaction.** A worker claims a task
  by setting ``lease_owner``/``lease_expires_at`` in one short transaction. On PostgreSQL:
  ``SELECT id … WHERE due AND lease free or expired FOR UPDATE SKIP LOCKED LIMIT n``, then
  ``UPDATE … WHERE id IN (those)``; concurrent claimers skip each other's locked rows. On
  SQLite: one ``UPDATE … WHERE id IN (SELECT … LIMIT n) AND lease free … RETURNING``; as the
  transaction's first statement it holds the database's write lock from its first read, so two
  claimers are serialised. The provider call runs with no transaction open: no database lock
  is ever held across HTTP.
* **The completion write checks the lease is still ours** (``WHERE lease_owner = me``), so a
  worker whose lease expired and was taken over cannot overwrite the new holder's result.
* **A killed worker's task is taken up again** once its lease expires. The worker makes the
  lease longer than the erase and verify calls' deadlines together, so a live worker never
  loses one by waiting on a provider. A provider call abandoned at its deadline may still
  finish in its thread while another worker retries: erasure is idempotent (already gone counts
  as done).
* A done task's ``locator`` is set to NULL in the same update that marks it done: nothing is
  left that finds the subject.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, or_, select, type_coerce, update
from sqlalchemy.engine import Engine

from plusjeklas_tui.models import DeletionState, DeletionTask
from plusjeklas_tui.sqltypes import utcnow

TASKS = DeletionTask.__table__

Clock = Callable[[], dt.datetime]


def new_owner() -> str:
    """A worker's name in ``lease_owner``: host, process and a random tag (several per process)."""
    host = socket.gethostname()[:60] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class TaskResult:
    """How one delivery attempt ended (sent to ``on_result`` as it happens)."""

    task_id: int
    provider: str
    done: bool
    outcome: str | None = None
    verified: bool | None = None
    reason: str | None = None
    next_attempt_at: dt.datetime | None = None
    lease_lost: bool = False
    """The lease expired and another worker took the task: this result was not written."""
    at: dt.datetime | None = None
    """When the attempt ended."""


# --- claiming and completing ------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    provider: str
    subject_type: str
    subject_id: int
    attempts: int
    locator_token: str | None = field(repr=False)
    """The locator as stored (encrypted); decrypted only when the task is delivered."""


def free_lease(now: dt.datetime) -> Any:
    return or_(TASKS.c.lease_owner.is_(None), TASKS.c.lease_expires_at < now)


def claim_tasks(
    engine: Engine,
    provider: str,
    owner: str,
    *,
    limit: int = 1,
    lease_seconds: float,
    due_before: dt.datetime | None = None,
    clock: Clock = utcnow,
) -> list[ClaimedTask]:
    """Lease up to ``limit`` due, unleased pending tasks of ``provider`` to ``owner``.

    One short transaction (see the module docstring for why it is safe on both engines).
    ``due_before`` (default now) bounds ``next_attempt_at``; a run passes its start so a task
    it failed is not tried again in the same run.
    """
    now = clock()
    due = (
        select(TASKS.c.id)
        .where(
            TASKS.c.provider == provider,
            TASKS.c.state == DeletionState.PENDING.value,
            TASKS.c.next_attempt_at <= (due_before or now),
            free_lease(now),
        )
        .order_by(TASKS.c.next_attempt_at, TASKS.c.id)
        .limit(limit)
    )
    lease = update(TASKS).values(
        lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease_seconds)
    )
    returning = (
        TASKS.c.id,
        TASKS.c.provider,
        TASKS.c.subject_type,
        TASKS.c.subject_id,
        TASKS.c.attempts,
        type_coerce(TASKS.c.locator, Text).label("locator"),
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Lock first, then lease the locked rows. (In one statement, ``id IN (SELECT … FOR
            # UPDATE SKIP LOCKED LIMIT n)`` may be re-run per outer row, skip the rows this
            # very statement just updated, and so lease far more than n.)
            ids = conn.execute(due.with_for_update(skip_locked=True)).scalars().all()
            if not ids:
                return []
            statement = lease.where(TASKS.c.id.in_(ids))
        else:
            # SQLite: the UPDATE is the transaction's first statement, so it holds the write
            # lock from its first read; no second claimer can interleave.
            statement = lease.where(
                TASKS.c.id.in_(due.scalar_subquery()),
                TASKS.c.state == DeletionState.PENDING.value,
                free_lease(now),
            )
        rows = conn.execute(statement.returning(*returning)).all()
    claimed = [
        ClaimedTask(
            row.id, row.provider, row.subject_type, row.subject_id, row.attempts, row.locator
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda task: task.id)


def defer_due(
    engine: Engine,
    provider: str,
    due_before: dt.datetime,
    until: dt.datetime,
    reason: str,
    clock: Clock,
) -> int:
    """Move a paused provider's other due, unleased tasks to ``until``, saying why."""
    statement = (
        update(TASKS)
        .where(
            TASKS.c.provider == provider,
            TASKS.c.state == DeletionState.PENDING.value,
            TASKS.c.next_attempt_at <= due_before,
            free_lease(clock()),
        )
        .values(next_attempt_at=until, last_error=reason)
    )
    with engine.begin() as conn:
        return conn.execute(statement).rowcount


def result_statement(task: ClaimedTask, owner: str, event: TaskResult) -> Any:
    """The update that records *event* on *task*, if the lease is still *owner*'s."""
    mine = update(TASKS).where(
        TASKS.c.id == task.id,
        TASKS.c.lease_owner == owner,
        TASKS.c.state == DeletionState.PENDING.value,
    )
    if event.done:
        return mine.values(
            state=DeletionState.DONE.value,
            locator=None,
            outcome=event.outcome,
            verified=event.verified,
            done_at=event.at,
            attempts=TASKS.c.attempts + 1,
            last_error=None,
            lease_owner=None,
            lease_expires_at=None,
        )
    return mine.values(
        attempts=TASKS.c.attempts + 1,
        last_error=event.reason,
        next_attempt_at=event.next_attempt_at,
        lease_owner=None,
        lease_expires_at=None,
    )


def write_result(engine: Engine, task: ClaimedTask, owner: str, event: TaskResult) -> bool:
    """Record one result in its own transaction; False when the lease is no longer *owner*'s.

    (The worker writes many at once through its writer; this is the same update, alone.)
    """
    with engine.begin() as conn:
        return conn.execute(result_statement(task, owner, event)).rowcount == 1


def release(engine: Engine, tasks: Iterable[ClaimedTask], owner: str) -> None:
    """Give back leases on tasks this worker claimed but will not attempt (paused, cancelled)."""
    ids = [task.id for task in tasks]
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            update(TASKS)
            .where(TASKS.c.id.in_(ids), TASKS.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
