"""Issue 5's planning benchmark: the retention plan over 1,000,000 subscriptions.

The data: 250,000 organisations with four subscriptions each (a tenth with ``--quick``); one
in five has ended over two years ago (due now), one in ten ends in the next weeks' window,
the rest still run. Written with plain ``sqlite3`` into a migrated database, since only the
plan's queries are measured.

Target 2 s (0.2 s quick), and at most 2x the floor: the indexed raw-SQL query that finds the
same organisations and clock starts (through plain ``sqlite3``, on the same file), checked to
agree with the plan before timing.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from functools import partial

from benchmarks.harness import Result, Workspace, benchmark, median_seconds, say
from plusjeklas_tui import db
from plusjeklas_tui.config import Settings
from plusjeklas_tui.services import retention
from plusjeklas_tui.services.deadlines import add_months

FULL_SUBSCRIPTIONS = 1_000_000
PER_ORGANISATION = 4
TODAY = dt.date(2026, 6, 15)

# The floor: organisations whose last subscription ended and whose clock start is on or before
# the cut, read from the (organisation_id, end_date) index; with the hold for each.
FLOOR_SQL = """
SELECT o.id, o.brin, c.clock_start, h.set_by
FROM (
    SELECT s.organisation_id AS organisation_id, MAX(s.end_date) AS clock_start
    FROM subscription AS s
    GROUP BY s.organisation_id
    HAVING SUM(s.end_date IS NULL OR s.end_date >= :today) = 0 AND MAX(s.end_date) <= :cut
) AS c
JOIN organisation AS o ON o.id = c.organisation_id
LEFT JOIN legal_hold AS h ON h.organisation_id = o.id
UNION ALL
SELECT o.id, o.brin, date(o.created_at), h.set_by
FROM organisation AS o
LEFT JOIN legal_hold AS h ON h.organisation_id = o.id
WHERE o.created_at < :cut_next
  AND NOT EXISTS (SELECT 1 FROM subscription AS s WHERE s.organisation_id = o.id)
  AND date(o.created_at) <= :cut
"""


def _fill(path: str, organisations: int) -> None:
    rng = random.Random(5)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        created = "2018-01-01 00:00:00.000000"
        org_rows = []
        sub_rows = []
        for n in range(1, organisations + 1):
            brin = f"{n % 100:02d}{chr(65 + (n // 100) % 26)}{chr(65 + (n // 2600) % 26)}" + (
                f"{n // 67600:02d}"
            )
            org_rows.append(
                (
                    n,
                    f"School {n}",
                    "Straat 1",
                    "1234 AB",
                    "Utrecht",
                    brin,
                    "+31301234567",
                    created,
                    created,
                    1,
                )
            )
            kind = rng.random()
            start = dt.date(2016, 1, 1)
            for k in range(PER_ORGANISATION):
                end: dt.date | None = add_months(start, 12)
                if k == PER_ORGANISATION - 1:
                    if kind < 0.2:  # ended long ago: due now
                        end = TODAY - dt.timedelta(days=800 + rng.randint(0, 400))
                    elif kind < 0.3:  # falls due within weeks
                        end = add_months(TODAY, -24) + dt.timedelta(days=rng.randint(0, 60))
                    else:  # runs
                        end = None
                sub_rows.append(
                    (
                        n,
                        "plus",
                        start.isoformat(),
                        None if end is None else end.isoformat(),
                        "ended" if end is not None else "active",
                        created,
                        created,
                    )
                )
                start = add_months(start, 12)
        conn.executemany(
            "INSERT INTO organisation (id, name, street, postcode, city, brin, phone, created_at,"
            " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            org_rows,
        )
        conn.executemany(
            "INSERT INTO subscription (organisation_id, plan, start_date, end_date, status,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            sub_rows,
        )
        conn.commit()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@benchmark("retention_plan_1m_subscriptions")
def retention_plan_1m_subscriptions(workspace: Workspace) -> Result:
    """`plusjeklas retention plan`'s work over 1,000,000 subscriptions (median of 5)."""
    subscriptions = workspace.size(FULL_SUBSCRIPTIONS)
    organisations = subscriptions // PER_ORGANISATION
    path = workspace.new_dir("retention") / "retention.db"
    engine = db.make_engine(f"sqlite:///{path}")
    say(f"preparing {organisations:,} organisations with {subscriptions:,} subscriptions ...")
    db.upgrade(engine)
    _fill(str(path), organisations)
    settings = Settings()
    rule = retention.general_rule(settings.retention)
    cut = rule.latest_clock_due_before(TODAY)
    params = {
        "today": TODAY.isoformat(),
        "cut": cut.isoformat(),
        "cut_next": (cut + dt.timedelta(days=1)).isoformat(),
    }

    def app() -> retention.RetentionPlan:
        return retention.plan(engine, settings, TODAY, providers=[])

    connection = sqlite3.connect(path)
    try:
        floor_op = partial(_fetch, connection, FLOOR_SQL, params)
        found = {row[0] for row in floor_op()}
        planned = {item.subject_id for item in app().items if item.kind == "organisation"}
        if found != planned or not found:
            raise AssertionError(
                f"the plan ({len(planned)}) and the raw query ({len(found)}) disagree"
            )
        say(f"{len(found):,} organisations due")
        value = median_seconds([app], warmup=1, repeat=5)
        floor = median_seconds([floor_op], warmup=1, repeat=5)
    finally:
        connection.close()
        engine.dispose()
    return Result.of(
        "retention_plan_1m_subscriptions",
        value,
        "s",
        target=workspace.scale_target(2.0),
        floor=floor,
        floor_factor=2.0,
    )


def _fetch(connection: sqlite3.Connection, sql: str, params: dict[str, str]) -> list:
    return connection.execute(sql, params).fetchall()
