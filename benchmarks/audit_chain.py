"""Issue 6's audit-log benchmark: ``plusjeklas audit verify`` over 100,000 events.

The data: 100,000 sealed audit events (10,000 with ``--quick``), chained under one key exactly
as the writer seals them (:func:`~plusjeklas_tui.services.audit_chain.compute_mac`), written
with plain ``sqlite3`` into a migrated database; only the verification is measured.

Target 5 s (0.5 s quick): the issue asks for "seconds". Floor: the same rows read in ``seq``
order through plain ``sqlite3`` with one HMAC-SHA256 over each raw row, the least work any
check of every event's MAC can do; floor factor 5, since the real check also parses each
timestamp, builds the canonical form, checks the links and streams through SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import hmac
import sqlite3
from functools import partial

from benchmarks.harness import Result, Workspace, benchmark, median_seconds, say
from plusjeklas_tui import db
from plusjeklas_tui.crypto import FieldKey, Keyring
from plusjeklas_tui.services.audit_chain import GENESIS, compute_mac, verify_chain

FULL_EVENTS = 100_000
ACTIONS = ("update", "export", "reveal", "consent", "erase")
FLOOR_SQL = (
    "SELECT id, seq, occurred_at, actor, action, entity, entity_id, detail, mac_key_id,"
    " prev_mac, mac FROM audit_event WHERE seq IS NOT NULL ORDER BY seq, id"
)


def _fill(path: str, key: FieldKey, events: int) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    prev = GENESIS
    for seq in range(1, events + 1):
        when = start + dt.timedelta(seconds=seq * 7, microseconds=seq % 1000)
        fields = (when, f"staff{seq % 7}", ACTIONS[seq % 5], "organisation", seq, '{"count":1}')
        mac = compute_mac(key.audit_mac_key, seq, fields, prev)
        stored_when = when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows.append((seq, stored_when, *fields[1:], key.key_id, prev, mac))
        prev = mac
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executemany(
            "INSERT INTO audit_event (seq, occurred_at, actor, action, entity, entity_id,"
            " detail, mac_key_id, prev_mac, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "UPDATE audit_chain_head SET seq = ?, mac = ?, mac_key_id = ? WHERE id = 1",
            (events, prev, key.key_id),
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _floor(connection: sqlite3.Connection, key: bytes) -> int:
    checked = 0
    for row in connection.execute(FLOOR_SQL):
        hmac.digest(key, repr(row[:8]).encode(), "sha256")
        checked += 1
    return checked


@benchmark("audit_verify_100k_events")
def audit_verify_100k_events(workspace: Workspace) -> Result:
    """`plusjeklas audit verify`'s work over 100,000 sealed events (median of 3)."""
    events = workspace.size(FULL_EVENTS)
    path = workspace.new_dir("audit") / "audit.db"
    key = FieldKey.generate()
    keyring = Keyring([key])
    engine = db.make_engine(f"sqlite:///{path}", keyring)
    say(f"preparing {events:,} sealed audit events ...")
    db.upgrade(engine)
    _fill(str(path), key, events)
    report = verify_chain(engine, keyring)
    if not report.ok or report.checked != events:
        raise AssertionError(f"the prepared chain does not verify: {report.summary()}")
    connection = sqlite3.connect(path)
    try:
        if _floor(connection, key.audit_mac_key) != events:
            raise AssertionError("the floor did not read every event")
        value = median_seconds([partial(verify_chain, engine, keyring)], warmup=1, repeat=3)
        floor = median_seconds([partial(_floor, connection, key.audit_mac_key)], warmup=1, repeat=3)
    finally:
        connection.close()
        engine.dispose()
    return Result.of(
        "audit_verify_100k_events",
        value,
        "s",
        target=workspace.scale_target(5.0),
        floor=floor,
        floor_factor=5.0,
    )
