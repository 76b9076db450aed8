"""The deletion worker: delivering the outbox's tasks to the providers, in runs.

::

    report = run_once(engine, providers.available, problems=providers.problems)
    report.ok                  # nothing failed and nothing was left for an unavailable provider
    run_forever(engine, providers.available, cancel=event)   # until ``event`` is set

A run claims due tasks (:mod:`~plusjeklas_tui.services.deletion_leases`: why two workers never
deliver one task at once, and why a killed worker's task is taken up again), attempts each
(:mod:`~plusjeklas_tui.services.deletion_attempt`) with no transaction open, and hands the
result to one writer thread that commits many results at a time, each only if the lease is
still this worker's.

* **Nothing is dropped.** A failed attempt (the provider raised, hung past its deadline,
  returned garbage, or the read-back says the subject is still there) keeps the task pending
  with ``attempts`` + 1, a readable, non-personal ``last_error`` and ``next_attempt_at`` = now
  + an exponential backoff with full jitter (:class:`Backoff`), or the provider's
  ``retry_after`` when that is later.
* A task for a provider that is not available (disabled, no plugin, its key unset) is not
  attempted; the report and ``deletions.list_tasks`` say why.

Providers are delivered to concurrently, and each provider up to its own concurrency
(:attr:`WorkerOptions.concurrency`, default: what the provider accepts at once,
:attr:`Provider.concurrency`). A provider that fails
:attr:`WorkerOptions.failures_to_pause` times in a row in one run is paused for the rest of the
run: its other due tasks wait as long as the failed ones (with that reason), instead of each
waiting out a hanging provider's deadline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import random
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import DeletionState
from plusjeklas_tui.plugins import deadline_for
from plusjeklas_tui.providers import Provider
from plusjeklas_tui.services.deletion_attempt import Attempt, Backoff, attempt
from plusjeklas_tui.services.deletion_leases import (
    TASKS,
    ClaimedTask,
    Clock,
    TaskResult,
    claim_tasks,
    defer_due,
    new_owner,
    release,
    result_statement,
)
from plusjeklas_tui.services.deletion_locators import LOCATOR_CONTEXT, subject_from_locator
from plusjeklas_tui.sqltypes import keyring_of, utcnow

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30.0
"""Added to the erase and verify deadlines to make a lease: DB waits, a slow thread start."""


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


def unavailable_reason(
    name: str, available: Collection[str], problems: Mapping[str, str] | None = None
) -> str | None:
    """Why tasks for provider ``name`` cannot be delivered here, or None when they can."""
    if name in available:
        return None
    if problems and name in problems:
        return problems[name]
    return "not enabled in the configuration"


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
                conn.execute(result_statement(item.task, run.owner, item.event)).rowcount == 1
                for item in batch
            ]
        for item, ok in zip(batch, written, strict=True):
            event = item.event if ok else dataclasses.replace(item.event, lease_lost=True)
            item.lane.account(event)
            run.tell(event)


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
                        release(run.engine, left, run.owner)
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
            self.finish(task, Attempt(False, reason=reason))
            return
        self.finish(task, attempt(self.provider, subject))

    def finish(self, task: ClaimedTask, result: Attempt) -> None:
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
        deferred = defer_due(
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
