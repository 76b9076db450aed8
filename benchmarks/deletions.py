"""Issue 5's delivery benchmark: 10,000 erasure tasks to the three provider imitations at 30 ms.

The outbox holds tasks for Mailchimp (4,000), Mollie (3,000) and Matomo (3,000); one run of
the deletion worker (:func:`plusjeklas_tui.services.deletions.run_once`, as `plusjeklas
deletions run` calls it) delivers all of them, erasing and then verifying each subject.

The floor is what each provider's concurrency limit allows: every request costs the
imitation's injected 30 ms, and a provider takes at most ``concurrency`` requests at once
(Mailchimp's 10 connections; the limit each plugin declares), so no worker can finish a
provider's tasks faster than ``requests / concurrency x 30 ms``. The providers are worked in
parallel, so the floor of the run is the slowest provider's. The requests counted are the ones
the imitations actually served (erase and verify need several calls at Mollie and Matomo).
Target: within 1.5x of that floor. Every task must end done and verified, and every subject
must be gone at its provider.

Each imitation runs in a child process of its own, as the Mailchimp benchmark's does: it
stands in for a provider's servers, whose work (Matomo's search through its visits, say) is not
the worker's, and in this process it would compete with the worker for the interpreter lock.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import func, insert, select

from benchmarks.harness import Result, Workspace, benchmark, say
from plusjeklas_tui import db
from plusjeklas_tui.crypto import FieldKey, Keyring
from plusjeklas_tui.models import DeletionTask, ErasureReceipt
from plusjeklas_tui.providers import Provider, ProviderConfig
from plusjeklas_tui.services import deletions
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation
from plusjeklas_tui.testing.matomo import MatomoImitation
from plusjeklas_tui.testing.mollie import CustomerSeed, MollieImitation

LATENCY_SECONDS = 0.03
SUBJECT_TYPES = {"mailchimp": "administrator", "mollie": "organisation", "matomo": "administrator"}
"""Mollie holds the school (its customer); the others hold its people."""
FULL_TASKS = {"mailchimp": 4_000, "mollie": 3_000, "matomo": 3_000}
FLOOR_FACTOR = 1.5
VISITS_PER_USER = 2


def _providers(remotes: dict[str, _Remote]) -> dict[str, Provider]:
    from plusjeklas_plugins.mailchimp.provider import MailchimpProvider
    from plusjeklas_plugins.matomo.provider import MatomoProvider
    from plusjeklas_plugins.mollie.provider import MollieProvider

    def config(name: str, url: str, key: str, **options: Any) -> ProviderConfig:
        return ProviderConfig(
            name=name, base_url=url, api_key=key, timeout_seconds=10.0, options=options
        )

    mailchimp, mollie, matomo = remotes["mailchimp"], remotes["mollie"], remotes["matomo"]
    return {
        "mailchimp": MailchimpProvider(
            config("mailchimp", mailchimp.url, mailchimp.api_key, list_id=DEFAULT_LIST_ID)
        ),
        "mollie": MollieProvider(config("mollie", mollie.api_url, mollie.api_key)),
        "matomo": MatomoProvider(config("matomo", matomo.url, matomo.api_key, site_id=1)),
    }


def _outbox(engine: Any, locators: dict[str, list[str]]) -> int:
    """One receipt per task (one erased subject each), then the tasks, in bulk."""
    now = utcnow()
    kinds = [SUBJECT_TYPES[provider] for provider, values in locators.items() for _ in values]
    receipts = [
        {
            "subject_type": kind,
            "subject_id": n + 1,
            "erased_at": now,
            "basis": "general",
            "rule": "benchmark",
            "actor": "benchmark",
            "retained": "[]",
        }
        for n, kind in enumerate(kinds)
    ]
    with engine.begin() as conn:
        conn.execute(insert(ErasureReceipt.__table__), receipts)
        ids = conn.execute(select(ErasureReceipt.__table__.c.id).order_by("id")).scalars().all()
    rows = []
    receipt = iter(ids)
    for provider, values in locators.items():
        for locator in values:
            receipt_id = next(receipt)
            rows.append(
                {
                    "receipt_id": receipt_id,
                    "provider": provider,
                    "subject_type": SUBJECT_TYPES[provider],
                    "subject_id": receipt_id,
                    "locator": locator,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now - dt.timedelta(seconds=1),
                    "created_at": now,
                }
            )
    with engine.begin() as conn:
        conn.execute(insert(DeletionTask.__table__), rows)  # locators encrypted by the type
    return len(rows)


def _serve(conn: Connection, kind: str, count: int, latency: float) -> None:
    """The child: seed one imitation with *count* subjects, serve it, answer "stats", "stop"."""
    imitation: Any
    if kind == "mailchimp":
        imitation = MailchimpImitation(latency_seconds=latency)
        subjects = imitation.seed_members(count, domain="benchmark-school.nl")
    elif kind == "mollie":
        imitation = MollieImitation(latency_seconds=latency, seed=9)
        subjects = imitation.add_customers(
            CustomerSeed(
                name=f"Benchmarkschool {n}",
                email=f"administratie{n}@benchmark-school.nl",
                brin=f"{n % 100:02d}{chr(65 + n % 26)}{chr(65 + n // 26 % 26)}",
                mandates=("valid",),
                subscription_status="active",
                payments=("paid",),
            )
            for n in range(count)
        )
    else:
        imitation = MatomoImitation(latency_seconds=latency)
        subjects = [f"pjk-benchmark-{n:06d}" for n in range(count)]
        for user_id in subjects:
            imitation.add_visits(user_id, VISITS_PER_USER)
    imitation.start()
    gc.freeze()  # the seeded state is long-lived: the collector need not walk it again
    conn.send((imitation.url, getattr(imitation, "api_url", imitation.url), imitation.api_key))
    conn.send(subjects)
    while True:
        command = conn.recv()
        if command == "stop":
            break
        if kind == "mailchimp":
            gone = all(imitation.is_forgotten(email) for email in subjects)
        elif kind == "mollie":
            gone = all(imitation.customer(cid) is None for cid in subjects)
        else:
            gone = imitation.visit_count() == 0
        conn.send({"requests": imitation.count(), "peak": imitation.peak_active, "gone": gone})
    imitation.stop()


class _Remote:
    """One imitation in a child process (see the module docstring)."""

    def __init__(self, kind: str, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, kind, count, LATENCY_SECONDS), daemon=True
        )
        self._process.start()
        self.url, self.api_url, self.api_key = self._conn.recv()
        self.subjects: list[str] = self._conn.recv()

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self._conn.send("stop")
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()


@benchmark("deletions_10000_tasks")
def deletions_10000_tasks(workspace: Workspace) -> Result:
    """Deliver 10,000 erasure tasks (1,000 quick) to the three imitations at 30 ms latency.

    Value: wall time of one worker run. Floor: per provider, the requests its imitation
    served / the provider's concurrency x 30 ms; the run's floor is the largest. Factor 1.5.
    """
    counts = {name: workspace.size(count) for name, count in FULL_TASKS.items()}
    path = workspace.new_dir("deletions") / "deletions.db"
    engine = db.make_engine(f"sqlite:///{path}", Keyring([FieldKey.generate()]))
    db.upgrade(engine)
    remotes: dict[str, _Remote] = {}
    try:
        for name, count in counts.items():
            remotes[name] = _Remote(name, count)
        locators = {
            "mailchimp": [deletions.make_locator(email=e) for e in remotes["mailchimp"].subjects],
            "mollie": [deletions.make_locator(external_id=c) for c in remotes["mollie"].subjects],
            "matomo": [deletions.make_locator(external_id=u) for u in remotes["matomo"].subjects],
        }
        total = _outbox(engine, locators)
        providers = _providers(remotes)
        try:
            say(f"delivering {total:,} erasure tasks at {LATENCY_SECONDS * 1000:g} ms ...")
            started = time.perf_counter()
            report = deletions.run_once(engine, providers)
            elapsed = time.perf_counter() - started
        finally:
            for provider in providers.values():
                provider.close()
        stats = {name: remote.stats() for name, remote in remotes.items()}
    finally:
        for remote in remotes.values():
            remote.stop()
    with engine.connect() as conn:
        done = conn.execute(
            select(func.count()).where(
                DeletionTask.__table__.c.state == "done",
                DeletionTask.__table__.c.verified.is_(True),
            )
        ).scalar_one()
    engine.dispose()
    if not report.ok or done != total:
        raise AssertionError(f"{done} of {total} tasks done and verified; report: {report}")
    if not all(stat["gone"] for stat in stats.values()):
        raise AssertionError(f"subjects left at a provider: {stats}")
    floors = {
        name: stat["requests"] / providers[name].concurrency * LATENCY_SECONDS
        for name, stat in stats.items()
    }
    floor = max(floors.values())
    for name in sorted(stats):
        say(
            f"  {name}: {counts[name]:,} tasks, {stats[name]['requests']:,} requests, "
            f"concurrency {providers[name].concurrency} (peak {stats[name]['peak']}), "
            f"floor {floors[name]:.2f} s"
        )
    say(f"  {total:,} tasks in {elapsed:.2f} s; floor {floor:.2f} s")
    return Result.of("deletions_10000_tasks", elapsed, "s", floor=floor, floor_factor=FLOOR_FACTOR)
