"""The deletion worker: delivering erasure tasks to providers, leased, retried, verified.

Providers here are small :class:`Provider` subclasses that keep subjects in memory (or, across
processes, append each erase call to a file), so each test can count exactly how often the
provider was called. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from plusjeklas_tui import db
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import AuditEvent, DeletionTask, ErasureReceipt
from plusjeklas_tui.providers import (
    ErasureOutcome,
    ErasureStatus,
    Health,
    ProcessorDetails,
    Provider,
    ProviderConfig,
    ProviderError,
    ProviderInfo,
    ProviderKind,
    Subject,
)
from plusjeklas_tui.services import deletions
from plusjeklas_tui.services.deletions import Backoff, WorkerOptions
from plusjeklas_tui.sqltypes import utcnow

REPO = Path(__file__).resolve().parent.parent
PERSONAL = "jan.jansen@school.example"


# --- providers ---------------------------------------------------------------------------------


def info(name: str) -> ProviderInfo:
    return ProviderInfo(
        name=name,
        kind=ProviderKind.NEWSLETTER,
        title=name.title(),
        processor=ProcessorDetails(
            company=name, country="NL", data_categories=("e-mail",), agreement="test"
        ),
    )


class MemoryProvider(Provider):
    """Holds subjects by external id; ``fault`` makes erase misbehave one way."""

    def __init__(self, config: ProviderConfig, held: set[str], fault: str | None = None) -> None:
        super().__init__(config)
        self.held = held
        self.fault = fault
        self.verify_answer: bool | str | None = "auto"
        self.delay = 0.0
        self.retry_after: float | None = None
        self.calls: Counter[str] = Counter()
        self.emails: list[str | None] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def health(self) -> Health:
        return Health(True)

    def sync(self, checkpoint: str | None) -> Iterator[Any]:
        return iter(())

    def push(self, changes: Any) -> list[Any]:
        return []

    def export(self, subject: Subject) -> dict[str, Any]:
        return {}

    def erase(self, subject: Subject) -> ErasureOutcome:
        key = subject.external_id or ""
        with self.lock:
            self.calls[key] += 1
            self.emails.append(subject.email)
        if self.delay:
            time.sleep(self.delay)
        if self.fault == "transient":
            raise ProviderError(
                "Mailchimp answered 503: try again later",
                status=503,
                transient=True,
                retry_after=self.retry_after,
            )
        if self.fault == "crash":
            raise RuntimeError(f"cannot delete {PERSONAL}")
        if self.fault == "hang":
            self.release.wait(30)
        if self.fault == "garbage":
            return "deleted!"  # type: ignore[return-value]
        with self.lock:
            if key in self.held:
                self.held.discard(key)
                return ErasureOutcome(ErasureStatus.ERASED, detail="member deleted")
        return ErasureOutcome(ErasureStatus.ALREADY_GONE)

    def verify_erased(self, subject: Subject) -> bool | None:
        if self.verify_answer == "auto":
            with self.lock:
                return (subject.external_id or "") not in self.held
        return self.verify_answer  # type: ignore[return-value]


def memory(
    name: str, held: Iterator[str] | set[str] = (), fault: str | None = None, timeout: float = 0.2
) -> MemoryProvider:
    cls = type(f"Memory{name.title()}", (MemoryProvider,), {"info": info(name)})
    config = ProviderConfig(name=name, base_url=None, api_key=None, timeout_seconds=timeout)
    return cls(config, set(held), fault)


# --- rows ----------------------------------------------------------------------------------------


def add_receipt(engine: Engine, subject_id: int = 1) -> int:
    with db.session_scope(engine) as session:
        receipt = ErasureReceipt(
            subject_type="administrator",
            subject_id=subject_id,
            erased_at=utcnow(),
            basis="request",
            rule="request by the data subject",
            actor="tester",
        )
        session.add(receipt)
        session.flush()
        assert receipt.id is not None
        return receipt.id


def add_task(
    engine: Engine,
    provider: str,
    external_id: str,
    *,
    receipt_id: int | None = None,
    email: str | None = None,
    due: dt.datetime | None = None,
) -> int:
    receipt_id = receipt_id or add_receipt(engine)
    with db.session_scope(engine) as session:
        task = DeletionTask(
            receipt_id=receipt_id,
            provider=provider,
            subject_type="administrator",
            subject_id=1,
            locator=deletions.make_locator(external_id=external_id, email=email),
            next_attempt_at=due or utcnow(),
        )
        session.add(task)
        session.flush()
        assert task.id is not None
        return task.id


def task(engine: Engine, task_id: int) -> DeletionTask:
    with db.session_scope(engine) as session:
        row = session.get(DeletionTask, task_id)
        assert row is not None
        session.expunge(row)
        return row


def raw_locator(engine: Engine, task_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT locator FROM deletion_task WHERE id = :id"), {"id": task_id}
        ).scalar_one()


def fixed_clock(start: dt.datetime) -> tuple[Callable[[], dt.datetime], Callable[[float], None]]:
    now = [start]

    def clock() -> dt.datetime:
        return now[0]

    def advance(seconds: float) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    return clock, advance


# --- delivering --------------------------------------------------------------------------------


def test_a_delivered_task_is_done_verified_and_its_locator_destroyed(ctx: AppContext) -> None:
    engine = ctx.engine
    mailchimp = memory("mailchimp", {"m-1"})
    task_id = add_task(engine, "mailchimp", "m-1", email=PERSONAL)
    assert raw_locator(engine, task_id) is not None

    report = deletions.run_once(engine, {"mailchimp": mailchimp})

    assert report.ok and report.done == 1
    assert mailchimp.calls == {"m-1": 1} and mailchimp.emails == [PERSONAL]
    assert "m-1" not in mailchimp.held
    row = task(engine, task_id)
    assert row.state == "done" and row.outcome == "erased" and row.verified is True
    assert row.attempts == 1 and row.done_at is not None and row.last_error is None
    assert row.lease_owner is None and row.lease_expires_at is None
    assert raw_locator(engine, task_id) is None
    again = deletions.run_once(engine, {"mailchimp": mailchimp})
    assert again.done == 0 and mailchimp.calls == {"m-1": 1}


def test_already_gone_counts_as_done(ctx: AppContext) -> None:
    provider = memory("mollie", set())
    task_id = add_task(ctx.engine, "mollie", "c-7")
    report = deletions.run_once(ctx.engine, {"mollie": provider})
    row = task(ctx.engine, task_id)
    assert report.ok and row.state == "done" and row.outcome == "already_gone"
    assert row.verified is True and raw_locator(ctx.engine, task_id) is None


def test_a_provider_that_cannot_verify_leaves_verified_unknown(ctx: AppContext) -> None:
    provider = memory("matomo", {"u-1"})
    provider.verify_answer = None
    task_id = add_task(ctx.engine, "matomo", "u-1")
    deletions.run_once(ctx.engine, {"matomo": provider})
    row = task(ctx.engine, task_id)
    assert row.state == "done" and row.outcome == "erased" and row.verified is None


def test_a_failed_verification_is_not_done(ctx: AppContext) -> None:
    provider = memory("mailchimp", {"m-1"})
    provider.verify_answer = False
    task_id = add_task(ctx.engine, "mailchimp", "m-1")
    before = utcnow()
    report = deletions.run_once(ctx.engine, {"mailchimp": provider})
    row = task(ctx.engine, task_id)
    assert not report.ok and report.failed == 1
    assert row.state == "pending" and row.attempts == 1 and row.verified is None
    assert row.last_error == "mailchimp still holds the subject after the erasure (read back)"
    assert row.next_attempt_at > before
    assert raw_locator(ctx.engine, task_id) is not None  # still needed for the retry
    assert row.lease_owner is None


def test_faulty_providers_leave_readable_reasons_while_the_others_complete(
    ctx: AppContext,
) -> None:
    engine = ctx.engine
    good = memory("mailchimp", {"m-1", "m-2"})
    providers = {
        "mailchimp": good,
        "mollie": memory("mollie", {"c-1"}, fault="transient"),
        "matomo": memory("matomo", {"u-1"}, fault="hang", timeout=0.1),
        "crashy": memory("crashy", {"x-1"}, fault="crash"),
        "garbage": memory("garbage", {"g-1"}, fault="garbage"),
    }
    ids = {
        "m-1": add_task(engine, "mailchimp", "m-1"),
        "m-2": add_task(engine, "mailchimp", "m-2"),
        "c-1": add_task(engine, "mollie", "c-1", email=PERSONAL),
        "u-1": add_task(engine, "matomo", "u-1"),
        "x-1": add_task(engine, "crashy", "x-1", email=PERSONAL),
        "g-1": add_task(engine, "garbage", "g-1"),
    }
    try:
        started = time.monotonic()
        report = deletions.run_once(engine, providers)
        assert time.monotonic() - started < 5  # the hang was cut at its deadline
    finally:
        providers["matomo"].release.set()
    assert report.done == 2 and report.failed == 4 and not report.ok
    assert task(engine, ids["m-1"]).state == "done" and task(engine, ids["m-2"]).state == "done"
    reasons = {key: task(engine, ids[key]).last_error for key in ("c-1", "u-1", "x-1", "g-1")}
    assert reasons == {
        "c-1": "Mailchimp answered 503: try again later",
        "u-1": "matomo erase did not answer within 0.3 s",
        "x-1": "RuntimeError raised inside the plugin",
        "g-1": "garbage erase returned str, which is not expected",
    }
    for key in ("c-1", "u-1", "x-1", "g-1"):
        row = task(engine, ids[key])
        assert row.state == "pending" and row.attempts == 1 and row.lease_owner is None
    assert report.providers["crashy"].errors == ["RuntimeError raised inside the plugin"]
    assert all("@" not in (reason or "") for reason in reasons.values())


def test_retry_after_is_honoured_when_longer_than_the_backoff(ctx: AppContext) -> None:
    provider = memory("mollie", {"c-1"}, fault="transient")
    provider.retry_after = 7200.0
    task_id = add_task(ctx.engine, "mollie", "c-1")
    before = utcnow()
    deletions.run_once(ctx.engine, {"mollie": provider})
    row = task(ctx.engine, task_id)
    # The first backoff is at most 30 s; the provider asked for two hours.
    assert row.next_attempt_at >= before + dt.timedelta(seconds=7200)
    assert row.next_attempt_at <= utcnow() + dt.timedelta(seconds=7201)


def test_backoff_grows_to_its_cap_with_full_jitter() -> None:
    backoff = Backoff(base_seconds=30, cap_seconds=6 * 3600, floor_seconds=1)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert (
        backoff.ceiling(10) == 15360
        and backoff.ceiling(11) == 6 * 3600
        and backoff.ceiling(500) == 6 * 3600
    )
    rng = random.Random(5)
    means = []
    for attempts in (1, 3, 5, 7, 9):
        delays = [backoff.delay(attempts, rng) for _ in range(400)]
        assert all(1 <= d <= backoff.ceiling(attempts) for d in delays)
        assert len(set(delays)) > 350  # jittered, not one fixed wait (the floor takes a few)
        means.append(sum(delays) / len(delays))
    assert means == sorted(means) and means[-1] > 20 * means[0]
    assert backoff.delay(1, rng, retry_after=600) == 600
    assert backoff.delay(9, random.Random(1), retry_after=0.5) > 0.5  # the longer one wins


def test_repeated_failures_back_off_further_each_time(ctx: AppContext) -> None:
    provider = memory("mollie", {"c-1"}, fault="transient")
    task_id = add_task(ctx.engine, "mollie", "c-1")
    clock, advance = fixed_clock(utcnow())
    options = WorkerOptions(backoff=Backoff(base_seconds=30, cap_seconds=3600))
    waits = []
    for attempts in range(1, 9):
        deletions.run_once(ctx.engine, {"mollie": provider}, options=options, clock=clock)
        row = task(ctx.engine, task_id)
        assert row.attempts == attempts and row.state == "pending"
        wait = (row.next_attempt_at - clock()).total_seconds()
        assert 1 <= wait <= options.backoff.ceiling(attempts) + 0.001
        waits.append(wait)
        # Not due yet: a run now leaves it alone.
        assert deletions.run_once(ctx.engine, {"mollie": provider}, clock=clock).failed == 0
        advance(wait)
    assert provider.calls["c-1"] == 8
    assert max(waits[4:]) > max(waits[:2])


def test_a_provider_failing_in_a_row_is_paused_for_the_rest_of_the_run(ctx: AppContext) -> None:
    provider = memory("mollie", fault="transient")
    ids = [add_task(ctx.engine, "mollie", f"c-{i}") for i in range(8)]
    options = WorkerOptions(concurrency={"mollie": 1}, failures_to_pause=3)
    report = deletions.run_once(ctx.engine, {"mollie": provider}, options=options)
    assert sum(provider.calls.values()) == 3
    result = report.providers["mollie"]
    assert result.failed == 3 and result.not_attempted == 5 and not report.ok
    assert result.reason is not None and result.reason.startswith(
        "not attempted: mollie failed 3 times in a row (Mailchimp answered 503"
    )
    rows = [task(ctx.engine, i) for i in ids]
    latest = max(row.next_attempt_at for row in rows if row.attempts == 1)
    for row in rows:
        assert row.state == "pending" and row.next_attempt_at > report.started_at
        if row.attempts == 0:
            assert row.last_error == result.reason and row.next_attempt_at == latest


def test_a_task_for_an_unavailable_provider_is_not_attempted_and_says_why(
    ctx: AppContext,
) -> None:
    mailchimp = memory("mailchimp", {"m-1"})
    done_id = add_task(ctx.engine, "mailchimp", "m-1")
    mollie_id = add_task(ctx.engine, "mollie", "c-1")
    matomo_id = add_task(ctx.engine, "matomo", "u-1")
    problems = {"mollie": "plugins.mollie.api_key_env names MOLLIE_KEY, but it is not set"}
    report = deletions.run_once(ctx.engine, {"mailchimp": mailchimp}, problems=problems)
    assert report.done == 1 and report.not_attempted == 2 and not report.ok
    assert report.providers["mollie"].reason == f"provider not available: {problems['mollie']}"
    assert report.providers["matomo"].reason == (
        "provider not available: not enabled in the configuration"
    )
    for task_id in (mollie_id, matomo_id):
        row = task(ctx.engine, task_id)
        assert row.state == "pending" and row.attempts == 0 and row.last_error is None
    views = {
        view.id: view
        for view in deletions.list_tasks(ctx.engine, available={"mailchimp"}, problems=problems)
    }
    assert set(views) == {mollie_id, matomo_id}
    assert views[mollie_id].reason == f"provider not available: {problems['mollie']}"
    assert views[matomo_id].blocked == "provider not available: not enabled in the configuration"
    every = deletions.list_tasks(ctx.engine, include_done=True)
    assert [view.id for view in every][-1] == done_id and every[-1].state == "done"


def test_limit_delivers_at_most_that_many(ctx: AppContext) -> None:
    provider = memory("mailchimp", {f"m-{i}" for i in range(6)})
    for i in range(6):
        add_task(ctx.engine, "mailchimp", f"m-{i}")
    report = deletions.run_once(ctx.engine, {"mailchimp": provider}, options=WorkerOptions(limit=4))
    assert report.done == 4 and sum(provider.calls.values()) == 4
    assert len(deletions.list_tasks(ctx.engine)) == 2


# --- leases and several workers ----------------------------------------------------------------


def test_a_leased_task_is_left_alone_until_the_lease_expires(ctx: AppContext) -> None:
    provider = memory("mailchimp", {"m-1"})
    task_id = add_task(ctx.engine, "mailchimp", "m-1")
    claimed = deletions.claim_tasks(ctx.engine, "mailchimp", "dead-worker", lease_seconds=120)
    assert [c.id for c in claimed] == [task_id]
    assert deletions.list_tasks(ctx.engine)[0].leased_by == "dead-worker"

    report = deletions.run_once(ctx.engine, {"mailchimp": provider})
    assert report.done == 0 and provider.calls == {}

    clock, advance = fixed_clock(utcnow())
    advance(121)
    report = deletions.run_once(ctx.engine, {"mailchimp": provider}, clock=clock)
    assert report.done == 1 and provider.calls == {"m-1": 1}
    assert task(ctx.engine, task_id).state == "done"


def test_a_claim_leases_exactly_as_many_as_asked(ctx: AppContext) -> None:
    """Regression: on PostgreSQL, ``id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`` in one
    UPDATE re-ran the subquery per row and leased every due task."""
    ids = [add_task(ctx.engine, "mailchimp", f"m-{i}") for i in range(5)]
    first = deletions.claim_tasks(ctx.engine, "mailchimp", "a", limit=2, lease_seconds=60)
    second = deletions.claim_tasks(ctx.engine, "mailchimp", "b", limit=2, lease_seconds=60)
    assert [c.id for c in first] == ids[:2] and [c.id for c in second] == ids[2:4]
    assert {view.leased_by for view in deletions.list_tasks(ctx.engine)} == {"a", "b", None}


def test_a_worker_whose_lease_was_taken_over_cannot_overwrite_the_result(
    ctx: AppContext,
) -> None:
    task_id = add_task(ctx.engine, "mailchimp", "m-1")
    clock, advance = fixed_clock(utcnow())
    [old] = deletions.claim_tasks(ctx.engine, "mailchimp", "old", lease_seconds=10, clock=clock)
    advance(11)
    [new] = deletions.claim_tasks(ctx.engine, "mailchimp", "new", lease_seconds=10, clock=clock)
    assert old.id == new.id == task_id
    # The old worker comes back with a failure while the new one holds the lease.
    late_failure = deletions.TaskResult(
        task_id, "mailchimp", False, reason="late failure", next_attempt_at=clock(), at=clock()
    )
    erased = deletions.TaskResult(
        task_id, "mailchimp", True, outcome="erased", verified=True, at=clock()
    )
    gone = deletions.TaskResult(task_id, "mailchimp", True, outcome="already_gone", at=clock())
    assert not deletions.write_result(ctx.engine, old, "old", late_failure)
    assert deletions.write_result(ctx.engine, new, "new", erased)
    assert not deletions.write_result(ctx.engine, old, "old", gone)
    row = task(ctx.engine, task_id)
    assert row.state == "done" and row.outcome == "erased" and row.last_error is None
    assert row.attempts == 1


def test_two_worker_threads_never_deliver_the_same_task_twice(ctx: AppContext) -> None:
    engine = ctx.engine
    held = {f"m-{i}" for i in range(40)} | {f"c-{i}" for i in range(40)}
    mailchimp = memory("mailchimp", {h for h in held if h.startswith("m")})
    mollie = memory("mollie", {h for h in held if h.startswith("c")})
    for provider in (mailchimp, mollie):
        provider.delay = 0.005
    for key in sorted(held):
        add_task(engine, "mailchimp" if key.startswith("m") else "mollie", key)
    providers = {"mailchimp": mailchimp, "mollie": mollie}
    reports: list[deletions.RunReport] = []
    barrier = threading.Barrier(2)

    def worker(owner: str) -> None:
        barrier.wait()
        reports.append(deletions.run_once(engine, providers, owner))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    calls = mailchimp.calls + mollie.calls
    assert set(calls) == held and set(calls.values()) == {1}
    assert sum(report.done for report in reports) == 80
    assert all(report.done > 0 for report in reports)  # both really worked
    assert deletions.list_tasks(engine) == []


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from plusjeklas_tui.context import open_context
    from plusjeklas_tui.providers import (
        ErasureOutcome, ErasureStatus, Health, ProcessorDetails, Provider, ProviderConfig,
        ProviderInfo, ProviderKind,
    )
    from plusjeklas_tui.services import deletions

    config_path, log_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]

    class FileProvider(Provider):
        info = ProviderInfo(
            name="mailchimp", kind=ProviderKind.NEWSLETTER, title="Mailchimp",
            processor=ProcessorDetails(
                company="x", country="US", data_categories=(), agreement="x"),
        )
        def health(self): return Health(True)
        def sync(self, checkpoint): return iter(())
        def push(self, changes): return []
        def export(self, subject): return {}
        def verify_erased(self, subject): return True
        def erase(self, subject):
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{subject.external_id}\\n".encode())
            os.close(fd)
            if mode == "hang":
                time.sleep(3600)
            time.sleep(0.04)  # long enough a run for the other worker to claim its share
            return ErasureOutcome(ErasureStatus.ERASED)

    provider = FileProvider(
        ProviderConfig("mailchimp", None, None, timeout_seconds=600 if mode == "hang" else 5))
    context = open_context(Path(config_path))
    options = deletions.WorkerOptions(lease_seconds=3 if mode == "hang" else None)
    go = Path(log_path + ".go")
    while mode != "hang" and not go.exists():  # start together
        time.sleep(0.005)
    report = deletions.run_once(context.engine, {"mailchimp": provider}, options=options)
    print("done", report.done, flush=True)
    """
)


def child(tmp_path: Path, config_path: Path, log: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "deletion_child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(config_path), str(log), mode],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_worker_processes_never_deliver_the_same_task_twice(
    ctx: AppContext, config_path: Path, tmp_path: Path
) -> None:
    expected = {f"m-{i}" for i in range(120)}
    for key in sorted(expected):
        add_task(ctx.engine, "mailchimp", key)
    log = tmp_path / "calls.log"
    procs = [child(tmp_path, config_path, log, "normal") for _ in range(2)]
    Path(f"{log}.go").touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    delivered = [int(out.split()[-1]) for out, _ in outputs]
    calls = Counter(log.read_text().split())
    assert set(calls) == expected and set(calls.values()) == {1}
    assert sum(delivered) == 120 and min(delivered) > 0  # both really worked
    assert deletions.list_tasks(ctx.engine) == []


def test_a_killed_workers_task_is_taken_up_after_its_lease_expires(
    ctx: AppContext, config_path: Path, tmp_path: Path
) -> None:
    task_id = add_task(ctx.engine, "mailchimp", "m-1")
    log = tmp_path / "calls.log"
    proc = child(tmp_path, config_path, log, "hang")
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    leased = deletions.list_tasks(ctx.engine)[0]
    assert leased.leased_by is not None and leased.leased_by.split(":")[1] == str(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    provider = memory("mailchimp", {"m-1"})
    assert deletions.run_once(ctx.engine, {"mailchimp": provider}).done == 0  # still leased
    time.sleep(3.2)
    report = deletions.run_once(ctx.engine, {"mailchimp": provider})
    assert report.done == 1 and provider.calls == {"m-1": 1}
    row = task(ctx.engine, task_id)
    assert row.state == "done" and row.attempts == 1 and raw_locator(ctx.engine, task_id) is None


# --- around the run ------------------------------------------------------------------------------


def test_run_forever_wakes_when_the_next_task_falls_due(ctx: AppContext) -> None:
    provider = memory("mailchimp", {"m-1", "m-2"})
    add_task(ctx.engine, "mailchimp", "m-1")
    add_task(ctx.engine, "mailchimp", "m-2", due=utcnow() + dt.timedelta(seconds=0.5))
    cancel = threading.Event()
    done: list[int] = []

    def on_report(report: deletions.RunReport) -> None:
        done.append(report.done)
        if sum(done) == 2:
            cancel.set()

    started = time.monotonic()
    thread = threading.Thread(
        target=deletions.run_forever,
        args=(ctx.engine, {"mailchimp": provider}),
        kwargs={"cancel": cancel, "on_report": on_report, "poll_seconds": 20},
    )
    thread.start()
    thread.join(10)
    cancel.set()
    assert not thread.is_alive()
    assert sum(done) == 2 and done[0] == 1
    assert time.monotonic() - started < 5  # woke for the due task, not at the 20 s poll


def test_receipts_list_which_providers_confirmed_and_when(ctx: AppContext) -> None:
    receipt = add_receipt(ctx.engine)
    lonely = add_receipt(ctx.engine)
    add_task(ctx.engine, "mailchimp", "m-1", receipt_id=receipt)
    add_task(ctx.engine, "mollie", "c-1", receipt_id=receipt)
    deletions.run_once(ctx.engine, {"mailchimp": memory("mailchimp", {"m-1"})})
    with db.session_scope(ctx.engine) as session:
        state = deletions.receipt_deliveries(session, [receipt, lonely])
    assert state[receipt].pending == ("mollie",) and not state[receipt].complete
    assert [c.provider for c in state[receipt].confirmed] == ["mailchimp"]
    assert state[receipt].completed_at is None
    assert state[lonely].complete and state[lonely].confirmed == ()

    deletions.run_once(ctx.engine, {"mollie": memory("mollie", set())})
    with db.session_scope(ctx.engine) as session:
        final = deletions.receipt_deliveries(session, [receipt])[receipt]
    assert final.complete
    assert {(c.provider, c.outcome, c.verified) for c in final.confirmed} == {
        ("mailchimp", "erased", True),
        ("mollie", "already_gone", True),
    }
    assert final.completed_at == max(c.done_at for c in final.confirmed if c.done_at)


def test_retry_makes_a_task_due_now_and_is_audited(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    later = utcnow() + dt.timedelta(hours=5)
    task_id = add_task(ctx.engine, "mollie", "c-1", due=later)
    provider = memory("mollie", {"c-1"})
    assert deletions.run_once(ctx.engine, {"mollie": provider}).done == 0

    with pytest.raises(PermissionDenied, match="'erase' permission"):
        deletions.retry(ctx.engine, task_id, open_as("eddie").staff)
    when = deletions.retry(ctx.engine, task_id, ctx.staff)
    assert task(ctx.engine, task_id).next_attempt_at == when
    assert deletions.run_once(ctx.engine, {"mollie": provider}).done == 1
    with pytest.raises(deletions.TaskNotPending, match=f"task {task_id} is already done"):
        deletions.retry(ctx.engine, task_id, ctx.staff)
    with pytest.raises(NotFound, match="deletion task 999999 does not exist"):
        deletions.retry(ctx.engine, 999999, ctx.staff)
    with db.session_scope(ctx.engine) as session:
        audits = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "deletion_retry")
        ).all()
    assert [(a.entity, a.entity_id, a.actor) for a in audits] == [
        ("deletion_task", task_id, ctx.staff.username)
    ]


def test_an_unreadable_locator_is_a_visible_failure(ctx: AppContext) -> None:
    task_id = add_task(ctx.engine, "mailchimp", "m-1")
    with db.session_scope(ctx.engine) as session:
        row = session.get(DeletionTask, task_id)
        assert row is not None
        row.locator = "[1, 2]"
    provider = memory("mailchimp", {"m-1"})
    report = deletions.run_once(ctx.engine, {"mailchimp": provider})
    assert report.failed == 1 and provider.calls == {}
    assert task(ctx.engine, task_id).last_error == ("the task's locator cannot be read: ValueError")


# --- through the real Mailchimp plugin and its imitation ------------------------------------------


def test_mailchimp_faults_end_in_a_retry_and_then_a_verified_erasure(ctx: AppContext) -> None:
    from plusjeklas_plugins.mailchimp.provider import MailchimpProvider

    from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation

    with MailchimpImitation() as imitation:
        key = imitation.add_member(PERSONAL)
        provider = MailchimpProvider(
            ProviderConfig(
                name="mailchimp",
                base_url=imitation.url,
                api_key=imitation.api_key,
                timeout_seconds=2.0,
                options={"list_id": DEFAULT_LIST_ID},
            )
        )
        try:
            task_id = add_task(ctx.engine, "mailchimp", key, email=PERSONAL)
            imitation.inject("500", times=None)
            clock, advance = fixed_clock(utcnow())
            report = deletions.run_once(ctx.engine, {"mailchimp": provider}, clock=clock)
            row = task(ctx.engine, task_id)
            assert report.failed == 1 and row.state == "pending" and row.attempts == 1
            assert row.last_error is not None and "@" not in row.last_error
            assert row.last_error.startswith("Mailchimp permanent delete: Internal Server Error")
            assert imitation.member(PERSONAL) is not None

            imitation.faults.clear()
            advance((row.next_attempt_at - clock()).total_seconds())
            report = deletions.run_once(ctx.engine, {"mailchimp": provider}, clock=clock)
            row = task(ctx.engine, task_id)
            assert report.ok and report.done == 1
            assert row.state == "done" and row.outcome == "erased" and row.verified is True
            assert imitation.is_forgotten(PERSONAL)
            assert raw_locator(ctx.engine, task_id) is None
        finally:
            provider.close()
