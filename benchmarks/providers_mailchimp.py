"""Issue 4's Mailchimp benchmarks: a full sync of 50,000 members and a push of 10,000 consent
changes, against the imitation with 30 ms per request and its limit of 10 connections.

Floors. No client can do better than ``requests needed / 10 connections x 30 ms``: a sync needs
``ceil(n / 1000)`` pages (50 pages: 5 waves, 150 ms), a push ``ceil(n / 500)`` batch calls
(20 calls: 2 waves, 60 ms) -- nor faster than the server answers those requests: 50 pages of
1,000 members are some 20 MB of JSON to encode, send and decode, which costs more than the
waiting on this machine's two cores. So the floor of each benchmark is the larger of the two:
the latency floor, and the same requests sent the cheapest way there is (``http.client`` on
kept-alive connections, 10 at a time, ``json.loads`` and nothing else), measured in the same
run against the same imitation. That is what paging and batching at this latency and
concurrency allow; the plugin must finish within 1.5x of it (``floor`` and ``ok`` in the
output line). Both floors are printed.

One request per member. The same work done one member at a time (``GET`` a member; one
``push`` call per change, which makes one ``PUT``/``PATCH``), with the same 10 connections, in the
same run: it must take at least 20x longer. To keep the run short it is timed on a sample of
1,000 members (100 with ``--quick``) and scaled up; stderr says so. The output line's
``target`` is that estimate divided by 20.

The imitation runs in a child process: it stands in for Mailchimp's servers, whose work is not
the plugin's. In one process its JSON encoding and bookkeeping would compete with the plugin's
for the interpreter lock and be counted as the plugin's time. The plugin, the SDK and
``requests`` run in this process as the app runs them.
"""

from __future__ import annotations

import base64
import gc
import http.client
import json
import math
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from plusjeklas_plugins.mailchimp.paging import FIELDS, PAGE_SIZE
from plusjeklas_plugins.mailchimp.provider import BATCH_SIZE, MailchimpProvider, subscriber_hash

from benchmarks.harness import Result, Workspace, benchmark, say
from plusjeklas_tui.providers import Change, ChangeKind, ProviderConfig, Subject
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation

LATENCY_SECONDS = 0.03
CONNECTIONS = 10
FLOOR_FACTOR = 1.5
SPEEDUP = 20
REPEAT = 3

LIST_PATH = f"/3.0/lists/{DEFAULT_LIST_ID}"

T = TypeVar("T")


# --- the imitation in a child process ----------------------------------------------------------


def _serve(conn: Connection, latency: float) -> None:
    """The child: run the imitation and obey (command, argument) pairs until "stop"."""
    imitation = MailchimpImitation(latency_seconds=latency).start()
    assert isinstance(imitation, MailchimpImitation)
    conn.send((imitation.url, imitation.api_key))
    while True:
        command, argument = conn.recv()
        if command == "stop":
            break
        if command == "reset":
            imitation.reset()
            gc.collect()
            reply: Any = None
        elif command == "seed":
            reply = imitation.seed_members(argument, domain="members.example.org")
            gc.freeze()  # the audience is long-lived: the collector need not walk it again
        elif command == "stats":
            with imitation.lock:
                statuses = [status for _, _, status in imitation.requests]
            reply = {"peak": imitation.peak_active, "requests": len(statuses)}
            reply["too_many"] = statuses.count(429)
        elif command == "count":
            reply = imitation.members_count()
        else:
            reply = f"unknown command {command!r}"
        conn.send(reply)
    imitation.stop()


class RemoteImitation:
    """The Mailchimp imitation in a child process, driven over a pipe."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, latency), name="mailchimp-imitation", daemon=True
        )
        self._process.start()
        self.url, self.api_key = self._conn.recv()

    def ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self._conn.send(("stop", None))
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()

    def provider(self) -> MailchimpProvider:
        return MailchimpProvider(
            ProviderConfig(
                name="mailchimp",
                base_url=self.url,
                api_key=self.api_key,
                timeout_seconds=10.0,
                options={"list_id": DEFAULT_LIST_ID},
            )
        )


def _timed(work: Callable[[], T]) -> tuple[float, T]:
    """Wall time of ``work()`` with the garbage collector paused, as ``median_seconds`` does
    (a full collection of this process's heap would be charged to whatever allocates)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        result = work()
        return time.perf_counter() - started, result
    finally:
        if was_enabled:
            gc.enable()


def _bare_http(remote: RemoteImitation, calls: Sequence[tuple[str, str, bytes | None]]) -> float:
    """The same requests the cheapest way we know: ``http.client`` on kept-alive connections,
    10 at a time, answers parsed with ``json.loads`` and nothing else. The plugin's time above
    this is the plugin's (and the SDK's) own; the rest of the gap to the floor is the work of
    the imitation and of JSON."""
    host, port = remote.url.removeprefix("http://").split(":")
    token = base64.b64encode(f"user:{remote.api_key}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    local = threading.local()

    def send(call: tuple[str, str, bytes | None]) -> object:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        method, path, body = call
        local.conn.request(method, path, body=body, headers=headers)
        answer = local.conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise AssertionError(f"bare HTTP: {method} {path} answered {answer.status}")
        return json.loads(data)

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        seconds, _ = _timed(lambda: list(pool.map(send, calls)))
    return seconds


def _floor(calls: int) -> float:
    return math.ceil(calls / CONNECTIONS) * LATENCY_SECONDS


def _one_at_a_time(work: Sequence[Callable[[], object]]) -> float:
    """Wall time of one request per item, 10 at a time (the connection limit)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        for result in pool.map(lambda item: item(), work):
            if result is False:
                raise AssertionError("a one-at-a-time request failed")
    return time.perf_counter() - started


def _result(
    name: str,
    timings: list[float],
    floor: float,
    bare: float,
    sample: float,
    sampled: int,
    size: int,
) -> Result:
    value = statistics.median(timings)
    naive = sample * size / sampled
    latency_floor = floor
    floor = max(latency_floor, bare)
    say(
        f"  {name}: median {value * 1000:.0f} ms of {', '.join(f'{t * 1000:.0f}' for t in timings)}"
        f" ms; floor {floor * 1000:.0f} ms (x{value / floor:.2f}, limit x{FLOOR_FACTOR})"
    )
    say(
        f"  latency floor {latency_floor * 1000:.0f} ms (x{value / latency_floor:.2f}); the same"
        f" requests over bare http.client {bare * 1000:.0f} ms (x{value / bare:.2f})"
    )
    say(
        f"  one request per member: {sampled:,} sampled in {sample:.2f} s, scaled to {size:,}:"
        f" ~{naive:.1f} s, {naive / value:.0f}x slower (at least {SPEEDUP}x required)"
    )
    return Result.of(
        name, value, "s", target=naive / SPEEDUP, floor=floor, floor_factor=FLOOR_FACTOR
    )


# --- (a) full sync --------------------------------------------------------------------------------


@benchmark("mailchimp_sync_50k_members")
def mailchimp_sync_50k_members(workspace: Workspace) -> Result:
    """A full sync of 50,000 members (5,000 with --quick), every page as the app pulls it.

    Value: median wall time of three syncs. Floor: ``ceil(pages / 10) x 30 ms``.
    """
    size = workspace.size(50_000)
    remote = RemoteImitation(LATENCY_SECONDS)
    try:
        emails = remote.ask("seed", size)
        provider = remote.provider()
        timings = []
        for _ in range(REPEAT):
            seconds, fetched = _timed(lambda: sum(len(page.items) for page in provider.sync(None)))
            timings.append(seconds)
            if fetched != size:
                raise AssertionError(f"the sync brought {fetched:,} members of {size:,}")
        stats = remote.ask("stats")
        if stats["peak"] > CONNECTIONS or stats["too_many"]:
            raise AssertionError(f"the sync broke the connection limit: {stats}")
        sampled = min(size, 1_000 if not workspace.quick else 100)
        client = provider.client

        def get(email: str) -> Callable[[], object]:
            key = subscriber_hash(email)
            return lambda: client.call("member", client.lists.get_list_member, DEFAULT_LIST_ID, key)

        sample = _one_at_a_time([get(email) for email in emails[:sampled]])
        pages = math.ceil(size / PAGE_SIZE)
        query = f"count={PAGE_SIZE}&fields={','.join(FIELDS)}&offset="
        paths = [f"{LIST_PATH}/members?{query}{n * PAGE_SIZE}" for n in range(pages)]
        calls = [("GET", path, None) for path in paths]
        bare = statistics.median(_bare_http(remote, calls) for _ in range(REPEAT))
        return _result(
            "mailchimp_sync_50k_members", timings, _floor(pages), bare, sample, sampled, size
        )
    finally:
        remote.stop()


# --- (b) push -----------------------------------------------------------------------------------


def _changes(size: int, existing: Sequence[str]) -> list[Change]:
    """Three in four grant consent to new addresses; one in four withdraw known members."""
    changes = []
    for n in range(size - len(existing)):
        email = f"new{n}@school{n % 89}.example.org"
        subject = Subject("administrator", n, None, email)
        changes.append(
            Change(
                ChangeKind.CONSENT_GRANTED,
                subject,
                f"consent-{n}",
                "newsletter",
                email,
                f"Leerkracht {n} van Dijk",
            )
        )
    for n, email in enumerate(existing, start=size):
        subject = Subject("administrator", n, subscriber_hash(email), email)
        changes.append(
            Change(ChangeKind.CONSENT_WITHDRAWN, subject, f"consent-{n}", "newsletter", email)
        )
    return changes


def _chunks(changes: list[Change], size: int) -> list[list[Change]]:
    return [changes[start : start + size] for start in range(0, len(changes), size)]


def _batch_body(changes: list[Change]) -> bytes:
    """What the plugin sends to the batch endpoint for these changes."""
    members = []
    for change in changes:
        member: dict[str, Any] = {"email_address": change.email}
        if change.kind == ChangeKind.CONSENT_GRANTED:
            first, _, last = (change.name or "").partition(" ")
            member |= {"status": "subscribed", "merge_fields": {"FNAME": first, "LNAME": last}}
        else:
            member["status"] = "unsubscribed"
        members.append(member)
    return json.dumps({"members": members, "update_existing": True}).encode()


@benchmark("mailchimp_push_10k_changes")
def mailchimp_push_10k_changes(workspace: Workspace) -> Result:
    """Push 10,000 newsletter consent changes (1,000 with --quick) in one ``push`` call.

    7,500 grants for new addresses and 2,500 withdrawals of members Mailchimp holds, through the
    batch members endpoint. Value: median wall time of three pushes, each on a fresh audience.
    Floor: ``ceil(batch calls / 10) x 30 ms``.
    """
    size = workspace.size(10_000)
    remote = RemoteImitation(LATENCY_SECONDS)
    try:
        provider = remote.provider()
        timings = []
        changes: list[Change] = []
        for _ in range(REPEAT):
            remote.ask("reset")
            existing = remote.ask("seed", size // 4)
            changes = _changes(size, existing)
            seconds, outcomes = _timed(partial(provider.push, changes))
            timings.append(seconds)
            failed = sum(not outcome.ok for outcome in outcomes)
            if failed or len(outcomes) != size:
                raise AssertionError(f"{failed} of {size:,} changes failed")
            if remote.ask("count") != size:
                raise AssertionError("the audience does not hold what was pushed")
        stats = remote.ask("stats")
        if stats["peak"] > CONNECTIONS or stats["too_many"]:
            raise AssertionError(f"the push broke the connection limit: {stats}")
        remote.ask("reset")
        existing = remote.ask("seed", size // 4)
        sampled = min(size, 1_000 if not workspace.quick else 100)
        picks = _changes(size, existing)
        picks = picks[: sampled * 3 // 4] + picks[-(sampled - sampled * 3 // 4) :]

        def push_one(change: Change) -> Callable[[], object]:
            return lambda: provider.push([change])[0].ok

        sample = _one_at_a_time([push_one(change) for change in picks])
        calls = math.ceil(size / BATCH_SIZE)
        remote.ask("reset")
        existing = remote.ask("seed", size // 4)
        bodies = [_batch_body(chunk) for chunk in _chunks(_changes(size, existing), BATCH_SIZE)]
        bare = _bare_http(remote, [("POST", LIST_PATH, body) for body in bodies])
        return _result(
            "mailchimp_push_10k_changes", timings, _floor(calls), bare, sample, sampled, size
        )
    finally:
        remote.stop()
