"""Delivering erasures to the providers: the worker over the deletion outbox.

The local erasure (``services/erasure.py``) writes one :class:`DeletionTask` per provider that
holds the subject, in the same transaction as the erasure, with a :func:`make_locator` value
(the provider's id for the subject and, for providers that find people by address, the
address), encrypted. This module delivers those tasks. The API the CLI, the sweep and the app
use::

    report = run_once(engine, providers.available, problems=providers.problems)
    report.ok                  # nothing failed and nothing was left for an unavailable provider
    run_forever(engine, providers.available, cancel=event)   # until ``event`` is set
    list_tasks(engine, available=..., problems=...)          # what `deletions list` shows
    retry(engine, task_id, staff)                            # due now, audited
    receipt_deliveries(session, [receipt_id])                # which providers confirmed, when

How a task is delivered, and why it is safe with several workers at once (cron, each staff
member's app, a second host on PostgreSQL):

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
* **A killed worker's task is taken up again** once its lease expires. The lease is longer than
  the erase and verify calls' deadlines together, so a live worker never loses one by waiting
  on a provider. A provider call abandoned at its deadline may still finish in its thread
  while another worker retries: erasure is idempotent (already gone counts as done).
* **Nothing is dropped.** A failed attempt (the provider raised, hung past its deadline,
  returned garbage, or the read-back says the subject is still there) keeps the task pending
  with ``attempts`` + 1, a readable, non-personal ``last_error`` and ``next_attempt_at`` = now
  + an exponential backoff with full jitter (:class:`Backoff`), or the provider's
  ``retry_after`` when that is later.
* **Done means confirmed.** ``erase`` answering erased or already gone, then ``verify_erased``
  answering True (``verified`` = True) or None (the provider cannot tell; ``verified`` stays
  None). False is not done. A done task's ``locator`` is set to NULL: nothing is left that
  finds the subject.
* A task for a provider that is not available (disabled, no plugin, its key unset) is not
  attempted; the report and :func:`list_tasks` say why.

Providers are delivered to concurrently, and each provider up to its own concurrency
(:attr:`WorkerOptions.concurrency`, default: what the provider accepts at once,
:attr:`Provider.concurrency`). A provider that fails
:attr:`WorkerOptions.failures_to_pause` times in a row in one run is paused for the rest of the
run: its other due tasks wait as long as the failed ones (with that reason), instead of each
waiting out a hanging provider's deadline.

Which providers confirmed an erasure is derived from the done tasks when read
(:func:`receipt_deliveries`); the receipt needs no column for it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import queue
import random
import secrets
import socket
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Text, case, func, or_, select, type_coerce, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import DeletionState, DeletionTask
from plusjeklas_tui.plugins import call_with_deadline, deadline_for
from plusjeklas_tui.providers import (
    ErasureOutcome,
    ErasureStatus,
    Provider,
    ProviderError,
    Subject,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.sqltypes import keyring_of, utcnow
from plusjeklas_tui.staff import Permission, StaffMember

log = logging.getLogger(__name__)

TASKS = DeletionTask.__table__
LOCATOR_CONTEXT = "deletion_task.locator"
LEASE_MARGIN_SECONDS = 30.0
"""Added to the erase and verify deadlines to make a lease: DB waits, a slow thread start."""
MAX_RETRY_AFTER_SECONDS = 7 * 24 * 3600.0
"""A provider's Retry-After is honoured up to this; beyond it is a broken header."""

Clock = Callable[[], dt.datetime]


class TaskNotPending(PlusjeklasError):
    """A retry was asked for a task that is already done."""


# --- locators ---------------------------------------------------------------------------------


def make_locator(*, external_id: str | None = None, email: str | None = None) -> str:
    """The ``DeletionTask.locator`` value: only what one provider needs to find the subject.

    The erasure service writes it (encrypted by the column type); the worker reads it back
    into a :class:`Subject` and destroys it when the task is done.
    """
    data = {key: value for key, value in (("external_id", external_id), ("email", email)) if value}
    return json.dumps(data, sort_keys=True)


def subject_from_locator(subject_type: str, subject_id: int, locator: str | None) -> Subject:
    """The :class:`Subject` a task is about. Raises ValueError for an unreadable locator."""
    data = json.loads(locator) if locator else {}
    if not isinstance(data, dict):
        raise ValueError("the locator is not a JSON object")
    external_id, email = data.get("external_id"), data.get("email")
    if not (external_id is None or isinstance(external_id, str)) or not (
        email is None or isinstance(email, str)
    ):
        raise ValueError("the locator's external_id and email must be text")
    return Subject(
        subject_type=subject_type,  # type: ignore[arg-type]
        local_id=subject_id,
        external_id=external_id,
        email=email,
    )


# --- backoff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: after the n-th failed attempt, wait a uniformly
    random time in [0, min(cap, base·2ⁿ⁻¹)], at least ``floor_seconds``.

    Full jitter spreads the retries of many tasks (and of several workers) that failed together
    in one outage over the whole window, so a provider coming back is not hit by all at once.
    The floor keeps a retry out of the run that failed it.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    floor_seconds: float = 1.0

    def ceiling(self, attempts: int) -> float:
        exponent = min(max(attempts, 1) - 1, 60)
        return min(self.cap_seconds, self.base_seconds * 2.0**exponent)

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``attempts`` failed attempts (the provider's hint if later)."""
        wait = max(self.floor_seconds, rng.uniform(0.0, self.ceiling(attempts)))
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return wait


# --- options and reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: Mapping[str, int] = field(default_factory=dict)
    """Simultaneous deliveries per provider name (e.g. ``{"mailchimp": 10}``)."""
    default_concurrency: int | None = None
    """For providers not in :attr:`concurrency`; None: each provider's own limit
    (:attr:`Provider.concurrency`, what it accepts at once)."""
    lease_seconds: float | None = None
    """How long a claim holds; default: the erase and verify deadlines plus a margin, for each
    task of the claim (a thread claims :data:`CLAIM_BATCH` at a time)."""
    backoff: Backoff = field(default_factory=Backoff)
    failures_to_pause: int = 5
    """Failures in a row after which a provider is paused for the rest of the run; 0: never."""
    limit: int | None = None
    """Deliver at most this many tasks in one run (None: every due task)."""

    def concurrency_for(self, provider: Provider) -> int:
        value = self.concurrency.get(provider.info.name, self.default_concurrency)
        return max(1, int(provider.concurrency if value is None else value))


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


@dataclass
class ProviderResult:
    provider: str
    done: int = 0
    failed: int = 0
    lease_lost: int = 0
    not_attempted: int = 0
    """Due tasks left alone: provider unavailable, or paused after failures in a row."""
    reason: str | None = None
    """Why tasks were not attempted."""
    errors: list[str] = field(default_factory=list)
    """The distinct failure reasons of this run (at most a few)."""


@dataclass
class RunReport:
    owner: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    providers: dict[str, ProviderResult] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(result.done for result in self.providers.values())

    @property
    def failed(self) -> int:
        return sum(result.failed for result in self.providers.values())

    @property
    def not_attempted(self) -> int:
        return sum(result.not_attempted for result in self.providers.values())

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing due was left undelivered in this run."""
        return self.failed == 0 and self.not_attempted == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ok": self.ok,
            "done": self.done,
            "failed": self.failed,
            "not_attempted": self.not_attempted,
            "providers": [asdict(result) for _, result in sorted(self.providers.items())],
        }


MAX_DISTINCT_ERRORS = 5


def new_owner() -> str:
    """A worker's name in ``lease_owner``: host, process and a random tag (several per process)."""
    host = socket.gethostname()[:60] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def unavailable_reason(
    name: str, available: Collection[str], problems: Mapping[str, str] | None = None
) -> str | None:
    """Why tasks for provider ``name`` cannot be delivered here, or None when they can."""
    if name in available:
        return None
    if problems and name in problems:
        return problems[name]
    return "not enabled in the configuration"


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


def _free(now: dt.datetime) -> Any:
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
            _free(now),
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
                _free(now),
            )
        rows = conn.execute(statement.returning(*returning)).all()
    claimed = [
        ClaimedTask(
            row.id, row.provider, row.subject_type, row.subject_id, row.attempts, row.locator
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda task: task.id)


def _defer_due(
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
            _free(clock()),
        )
        .values(next_attempt_at=until, last_error=reason)
    )
    with engine.begin() as conn:
        return conn.execute(statement).rowcount


# --- delivering one task ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    done: bool
    outcome: str | None = None
    verified: bool | None = None
    reason: str | None = None
    retry_after: float | None = None


def _erase_noting_retry_after(
    provider: Provider, subject: Subject, box: dict[str, float | None]
) -> ErasureOutcome:
    """``provider.erase``, keeping a ProviderError's retry_after (CallOutcome drops it)."""
    try:
        return provider.erase(subject)
    except ProviderError as exc:
        box["retry_after"] = exc.retry_after
        raise


def _verify_noting_retry_after(
    provider: Provider, subject: Subject, box: dict[str, float | None]
) -> bool | None:
    try:
        return provider.verify_erased(subject)
    except ProviderError as exc:
        box["retry_after"] = exc.retry_after
        raise


def attempt(provider: Provider, subject: Subject) -> _Attempt:
    """Erase at the provider, then read back. Never raises; never touches the database."""
    name = provider.info.name
    deadline = deadline_for(provider)
    box: dict[str, float | None] = {}
    erased = call_with_deadline(
        _erase_noting_retry_after,
        provider,
        subject,
        box,
        deadline_seconds=deadline,
        expect=ErasureOutcome,
        what=f"{name} erase",
    )
    if not erased.ok:
        return _Attempt(False, reason=erased.reason, retry_after=box.get("retry_after"))
    try:
        status = ErasureStatus(erased.value.status)
    except ValueError:
        return _Attempt(False, reason=f"{name} erase returned an unknown status")
    checked = call_with_deadline(
        _verify_noting_retry_after,
        provider,
        subject,
        box,
        deadline_seconds=deadline,
        expect=(bool, type(None)),
        what=f"{name} verify_erased",
    )
    if not checked.ok:
        return _Attempt(
            False,
            reason=f"erased, but the check failed: {checked.reason}",
            retry_after=box.get("retry_after"),
        )
    if checked.value is False:
        return _Attempt(
            False, reason=f"{name} still holds the subject after the erasure (read back)"
        )
    return _Attempt(True, outcome=status.value, verified=checked.value)


# --- the run --------------------------------------------------------------------------------------


CLAIM_BATCH = 4
"""Tasks a delivery thread claims in one transaction (its lease covers them all): fewer
write transactions, which SQLite takes one at a time, for the price of a longer lease."""
WRITE_BATCH = 200
"""Results the writer commits in one transaction, at most."""


@dataclass(frozen=True)
class _Outcome:
    """One attempt's result, waiting for the writer."""

    lane: _Lane
    task: ClaimedTask
    event: TaskResult


class _Writer:
    """Writes the run's results, many to a transaction, from one thread.

    A delivery thread hands its result over and goes on with its next task; the writer commits
    whatever has gathered in the meantime at once. Each row's update still checks that the
    lease is ours, so a result is written only by the lease's holder. A result not yet written
    when the process dies is lost with its lease: the task is delivered again once the lease
    expires, which is harmless (already gone counts as done).
    """

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.queue: queue.SimpleQueue[_Outcome | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._loop, name="plusjeklas-deletions-writer", daemon=True
        )
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread.start()

    def put(self, outcome: _Outcome) -> None:
        self.queue.put(outcome)

    def close(self) -> None:
        """Write what is left and stop; raises what the writer could not write."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        closing = False
        while not closing:
            first = self.queue.get()
            batch: list[_Outcome] = []
            if first is None:
                closing = True
            else:
                batch.append(first)
            while len(batch) < WRITE_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            if batch and self.error is None:
                try:
                    self._write(batch)
                except BaseException as error:  # kept and raised by close(): never dropped
                    self.error = error
                    log.error("deletion results could not be written: %s", type(error).__name__)

    def _write(self, batch: list[_Outcome]) -> None:
        run = self.run
        with run.write_lock, run.engine.begin() as conn:
            written = [
                conn.execute(_result_statement(item.task, run.owner, item.event)).rowcount == 1
                for item in batch
            ]
        for item, ok in zip(batch, written, strict=True):
            event = item.event if ok else dataclasses.replace(item.event, lease_lost=True)
            item.lane.account(event)
            run.tell(event)


def _result_statement(task: ClaimedTask, owner: str, event: TaskResult) -> Any:
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
        return conn.execute(_result_statement(task, owner, event)).rowcount == 1


def _release(engine: Engine, tasks: Iterable[ClaimedTask], owner: str) -> None:
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


class _Lane:
    """One provider's deliveries in a run: ``concurrency`` threads, each claiming a few tasks
    at a time and handing each result to the run's writer."""

    def __init__(
        self,
        run: _Run,
        provider: Provider,
        result: ProviderResult,
    ) -> None:
        self.run = run
        self.provider = provider
        self.name = provider.info.name
        self.result = result
        self.lock = threading.Lock()
        self.failures_in_a_row = 0
        self.paused = False
        self.last_failure_next: dt.datetime | None = None
        self.last_reason: str | None = None
        self.lease_seconds = run.options.lease_seconds
        """As configured (one claim's lease), or None: :meth:`lease_for` the batch."""
        self.task_seconds = 2 * deadline_for(provider) + LEASE_MARGIN_SECONDS
        """The longest one task can take: erase and verify at their deadlines, plus margin."""

    def lease_for(self, tasks: int) -> float:
        """A claim of *tasks* holds long enough for the last of them, delivered after the rest."""
        return self.lease_seconds or self.task_seconds * tasks

    def work(self) -> None:
        run = self.run
        while not run.stopped() and not self.paused:
            wanted = run.take_slots(CLAIM_BATCH)
            if not wanted:
                return
            with run.write_lock:
                claimed = claim_tasks(
                    run.engine,
                    self.name,
                    run.owner,
                    limit=wanted,
                    lease_seconds=self.lease_for(wanted),
                    due_before=run.report.started_at,
                    clock=run.clock,
                )
            run.give_back_slots(wanted - len(claimed))
            if not claimed:
                return
            for position, task in enumerate(claimed):
                if run.stopped() or self.paused:
                    left = claimed[position:]
                    with run.write_lock:
                        _release(run.engine, left, run.owner)
                    run.give_back_slots(len(left))
                    return
                self.deliver(task)

    def deliver(self, task: ClaimedTask) -> None:
        run = self.run
        try:
            locator = (
                keyring_of(run.engine.dialect).decrypt(task.locator_token, LOCATOR_CONTEXT)
                if task.locator_token is not None
                else None
            )
            subject = subject_from_locator(task.subject_type, task.subject_id, locator)
        except (ValueError, PlusjeklasError) as exc:
            reason = f"the task's locator cannot be read: {type(exc).__name__}"
            if isinstance(exc, PlusjeklasError):
                reason = f"the task's locator cannot be read: {exc}"
            self.finish(task, _Attempt(False, reason=reason))
            return
        self.finish(task, attempt(self.provider, subject))

    def finish(self, task: ClaimedTask, result: _Attempt) -> None:
        """Decide what the attempt means (and whether to pause), then hand it to the writer."""
        run = self.run
        now = run.clock()
        if result.done:
            assert result.outcome is not None
            event = TaskResult(
                task.id, self.name, True, outcome=result.outcome, verified=result.verified, at=now
            )
            with self.lock:
                self.failures_in_a_row = 0
        else:
            reason = result.reason or "failed for an unknown reason"
            with run.rng_lock:
                wait = run.options.backoff.delay(task.attempts + 1, run.rng, result.retry_after)
            next_at = now + dt.timedelta(seconds=wait)
            event = TaskResult(
                task.id, self.name, False, reason=reason, next_attempt_at=next_at, at=now
            )
            with self.lock:
                self.failures_in_a_row += 1
                self.last_reason = reason
                self.last_failure_next = max(filter(None, (self.last_failure_next, next_at)))
                limit = run.options.failures_to_pause
                if limit and self.failures_in_a_row >= limit:
                    self.paused = True
        run.writer.put(_Outcome(self, task, event))

    def account(self, event: TaskResult) -> None:
        """Count a result once it is written (called by the writer)."""
        with self.lock:
            if event.lease_lost:
                self.result.lease_lost += 1
                log.warning(
                    "deletion task %s: lease lost before the result was written", event.task_id
                )
            elif event.done:
                self.result.done += 1
            else:
                self.result.failed += 1
                assert event.reason is not None
                if (
                    event.reason not in self.result.errors
                    and len(self.result.errors) < MAX_DISTINCT_ERRORS
                ):
                    self.result.errors.append(event.reason)

    def pause_rest(self) -> None:
        """After a pause: the provider's other due tasks wait as long as the failed ones."""
        if not self.paused or self.last_failure_next is None:
            return
        reason = (
            f"not attempted: {self.name} failed {self.failures_in_a_row} times in a row "
            f"({self.last_reason})"
        )
        deferred = _defer_due(
            self.run.engine,
            self.name,
            self.run.report.started_at,
            self.last_failure_next,
            reason,
            self.run.clock,
        )
        self.result.not_attempted += deferred
        self.result.reason = reason


class _Run:
    def __init__(
        self,
        engine: Engine,
        owner: str,
        options: WorkerOptions,
        cancel: threading.Event,
        on_result: Callable[[TaskResult], None] | None,
        rng: random.Random,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.options = options
        self.cancel = cancel
        self.on_result = on_result
        self.rng = rng
        self.rng_lock = threading.Lock()
        self.clock = clock
        self.report = RunReport(owner=owner, started_at=clock())
        self.slots_lock = threading.Lock()
        self.write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        """SQLite takes one writer at a time; this run's threads queue here rather than in
        SQLite's busy handler, which sleeps in growing steps and wastes most of the wait."""
        self.slots_left = options.limit
        self.writer = _Writer(self)

    def stopped(self) -> bool:
        return self.cancel.is_set()

    def take_slots(self, wanted: int) -> int:
        """Up to *wanted* more deliveries within :attr:`WorkerOptions.limit`."""
        with self.slots_lock:
            if self.slots_left is None:
                return wanted
            granted = max(0, min(wanted, self.slots_left))
            self.slots_left -= granted
            return granted

    def give_back_slots(self, count: int) -> None:
        with self.slots_lock:
            if self.slots_left is not None:
                self.slots_left += count

    def tell(self, event: TaskResult) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(event)
        except Exception:  # a progress display must not stop deliveries
            log.exception("deletion progress callback failed")


def due_counts(
    engine: Engine, due_before: dt.datetime | None = None, clock: Clock = utcnow
) -> dict[str, int]:
    """Pending tasks due by ``due_before`` (default now), per provider."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(TASKS.c.provider, func.count())
            .where(
                TASKS.c.state == DeletionState.PENDING.value,
                TASKS.c.next_attempt_at <= (due_before or clock()),
            )
            .group_by(TASKS.c.provider)
        ).all()
    return {provider: count for provider, count in rows}


def run_once(
    engine: Engine,
    providers: Mapping[str, Provider],
    owner: str | None = None,
    *,
    problems: Mapping[str, str] | None = None,
    options: WorkerOptions | None = None,
    cancel: threading.Event | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    rng: random.Random | None = None,
    clock: Clock = utcnow,
) -> RunReport:
    """Deliver every task due now, each at most once, and return what happened.

    ``providers`` maps a provider name to its built provider (``Providers.available``);
    ``problems`` says why others are not available (``Providers.problems``). Blocks until the
    run is over; call it from a worker thread in the app. Setting ``cancel`` stops claiming new
    tasks; deliveries under way finish.
    """
    options = options or WorkerOptions()
    run = _Run(
        engine,
        owner or new_owner(),
        options,
        cancel or threading.Event(),
        on_result,
        rng or random.Random(),
        clock,
    )
    report = run.report
    due = due_counts(engine, report.started_at)
    lanes: list[_Lane] = []
    for name, count in sorted(due.items()):
        result = report.providers.setdefault(name, ProviderResult(name))
        provider = providers.get(name)
        if provider is None:
            reason = unavailable_reason(name, providers, problems)
            result.not_attempted = count
            result.reason = f"provider not available: {reason}"
            continue
        lanes.append(_Lane(run, provider, result))
    threads = sum(options.concurrency_for(lane.provider) for lane in lanes)
    if threads:
        run.writer.start()
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="plusjeklas-deletions") as pool:
                futures = [
                    pool.submit(lane.work)
                    for lane in lanes
                    for _ in range(options.concurrency_for(lane.provider))
                ]
                for future in futures:
                    future.result()
        finally:
            run.writer.close()
    for lane in lanes:
        lane.pause_rest()
    report.finished_at = clock()
    return report


def next_due(engine: Engine, names: Iterable[str]) -> dt.datetime | None:
    """When the earliest pending task of these providers becomes due (or its lease ends)."""
    names = list(names)
    if not names:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(func.min(TASKS.c.next_attempt_at), func.min(TASKS.c.lease_expires_at)).where(
                TASKS.c.state == DeletionState.PENDING.value, TASKS.c.provider.in_(names)
            )
        ).one()
    times = [_as_datetime(value) for value in row if value is not None]
    return min(times) if times else None


def _as_datetime(value: Any) -> dt.datetime:
    """MIN() keeps the column's type, so values come back as datetimes; be sure they are aware."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def run_forever(
    engine: Engine,
    providers: Mapping[str, Provider],
    owner: str | None = None,
    *,
    cancel: threading.Event,
    problems: Mapping[str, str] | None = None,
    options: WorkerOptions | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    poll_seconds: float = 30.0,
    clock: Clock = utcnow,
) -> None:
    """Run :func:`run_once` again whenever a task falls due, until ``cancel`` is set.

    Sleeps until the earliest pending task is due or a lease runs out, but at most
    ``poll_seconds``, so tasks another process adds (a sweep) are picked up.
    """
    owner = owner or new_owner()
    rng = random.Random()
    while not cancel.is_set():
        report = run_once(
            engine,
            providers,
            owner,
            problems=problems,
            options=options,
            cancel=cancel,
            on_result=on_result,
            rng=rng,
            clock=clock,
        )
        if on_report is not None:
            on_report(report)
        wake = next_due(engine, providers)
        wait = poll_seconds
        if wake is not None:
            wait = min(poll_seconds, max(0.0, (wake - clock()).total_seconds()) + 0.05)
        cancel.wait(wait)


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
