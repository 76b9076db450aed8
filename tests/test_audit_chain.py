"""The tamper-evident audit log: sealing, every kind of tampering, rotation, writers, the CLI.

Tampering is done the way someone who owns the database would: plain SQL on a connection,
with the append-only triggers (and, where a forgery needs it, the unique index on ``seq``)
dropped first. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.crypto import load_key_file
from plusjeklas_tui.services import audit, audit_chain
from plusjeklas_tui.services.audit_chain import GENESIS, ChainReport, verify_chain
from plusjeklas_tui.services.keys import rotate_keys

# --- helpers ------------------------------------------------------------------------------------


def write_events(ctx: AppContext, count: int, per_transaction: int = 3) -> None:
    """*count* audit events through the one writer, a few per committed transaction."""
    done = 0
    while done < count:
        with db.session_scope(ctx.engine) as session:
            for _ in range(min(per_transaction, count - done)):
                done += 1
                audit.record(session, ctx.staff, "update", "organisation", done, n=done)


def verify(ctx: AppContext) -> ChainReport:
    return verify_chain(ctx.engine, ctx.keyring)


def problems(report: ChainReport) -> list[tuple[str, str]]:
    return [(p.kind, p.message) for p in report.problems]


def rows(ctx: AppContext) -> list[tuple]:
    with ctx.engine.connect() as conn:
        return conn.execute(
            text("SELECT id, seq, mac_key_id, prev_mac, mac FROM audit_event ORDER BY id")
        ).all()


def id_at(ctx: AppContext, seq: int) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM audit_event WHERE seq = :s"), {"s": seq}
        ).scalar_one()


def drop_guards(conn: Connection, *, unique_seq: bool = False) -> None:
    """What an attacker who owns the database does first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))
    else:
        conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("DROP TRIGGER audit_event_no_delete"))
    if unique_seq:
        conn.execute(text("DROP INDEX ix_audit_event_seq"))


def tamper(ctx: AppContext, *statements: str, unique_seq: bool = False, **params: object) -> None:
    with ctx.engine.begin() as conn:
        drop_guards(conn, unique_seq=unique_seq)
        for statement in statements:
            conn.execute(text(statement), params)


COPY_COLUMNS = "occurred_at, actor, action, entity, entity_id, detail, mac_key_id, prev_mac, mac"


# --- sealing ------------------------------------------------------------------------------------


def test_events_are_chained_in_order_and_verify(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_chain, "STREAM_BATCH", 4)  # several fetches of the stream
    write_events(ctx, 11)
    stored = rows(ctx)
    assert [r.seq for r in stored] == list(range(1, 12))
    assert {r.mac_key_id for r in stored} == {ctx.keyring.primary.key_id}
    assert stored[0].prev_mac == GENESIS
    for before, after in itertools.pairwise(stored):
        assert after.prev_mac == before.mac
    report = verify(ctx)
    assert report.ok, problems(report)
    assert report.checked == 11
    assert report.summary() == "audit log intact: 11 events, chain from #1 to #11"
    assert report.head_seq == 11 and report.head_mac == stored[-1].mac


def test_an_empty_log_is_intact(ctx: AppContext) -> None:
    report = verify(ctx)
    assert report.ok and report.checked == 0
    assert report.summary() == "audit log intact: no sealed events yet"


def test_a_rolled_back_transaction_leaves_no_trace_in_the_chain(ctx: AppContext) -> None:
    write_events(ctx, 2)
    with pytest.raises(RuntimeError), db.session_scope(ctx.engine) as session:
        audit.record(session, ctx.staff, "update", "organisation", 9)
        session.flush()
        raise RuntimeError("the change failed")
    write_events(ctx, 1)
    assert [r.seq for r in rows(ctx)] == [1, 2, 3]
    assert verify(ctx).ok


def test_the_mac_covers_every_field_and_the_predecessor() -> None:
    when = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    fields = (when, "eddie", "update", "organisation", 7, '{"n":1}')
    key = b"k" * 32
    base = audit_chain.compute_mac(key, 3, fields, GENESIS)
    assert audit_chain.compute_mac(key, 3, fields, GENESIS) == base
    assert audit_chain.compute_mac(key, 4, fields, GENESIS) != base
    assert audit_chain.compute_mac(key, 3, fields, "1" * 64) != base
    assert audit_chain.compute_mac(b"x" * 32, 3, fields, GENESIS) != base
    for position, other in enumerate(
        (when + dt.timedelta(microseconds=1), "vera", "export", "school", 8, "{}")
    ):
        changed = list(fields)
        changed[position] = other
        assert audit_chain.compute_mac(key, 3, changed, GENESIS) != base
    # a field cannot bleed into the next one
    assert audit_chain.compute_mac(
        key, 3, (when, "ed", "dieupdate", "organisation", 7, '{"n":1}'), GENESIS
    ) != audit_chain.compute_mac(
        key, 3, (when, "eddie", "update", "organisation", 7, '{"n":1}'), GENESIS
    )


# --- the database refuses changes ---------------------------------------------------------------


def test_the_database_refuses_to_change_or_delete_events(ctx: AppContext) -> None:
    write_events(ctx, 3)
    for statement in (
        "UPDATE audit_event SET actor = 'mallory' WHERE seq = 2",
        "UPDATE audit_event SET seq = 9 WHERE seq = 3",
        "DELETE FROM audit_event WHERE seq = 3",
        "UPDATE audit_chain_head SET seq = 1",
        "DELETE FROM audit_chain_head",
    ):
        with (
            pytest.raises(DBAPIError, match=r"append-only|only moves forward"),
            ctx.engine.begin() as conn,
        ):
            conn.execute(text(statement))
    if ctx.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_event"))
    assert [r.seq for r in rows(ctx)] == [1, 2, 3]
    assert verify(ctx).ok


# --- each kind of tampering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        "actor = 'mallory'",
        "detail = '{}'",
        "entity_id = 99",
        "mac = prev_mac",
        "mac_key_id = 'deadbeef'",
    ],
)
def test_a_changed_event_is_named(ctx: AppContext, assignment: str) -> None:
    write_events(ctx, 10)
    target = id_at(ctx, 7)
    tamper(ctx, f"UPDATE audit_event SET {assignment} WHERE seq = 7")
    report = verify(ctx)
    assert not report.ok
    assert problems(report) == [("changed", f"event #7 changed (id {target})")]
    assert report.problems[0].seqs == (7,) and report.problems[0].event_ids == (target,)


def test_a_changed_time_is_a_change(ctx: AppContext) -> None:
    write_events(ctx, 5)
    tamper(
        ctx,
        "UPDATE audit_event SET occurred_at = :when WHERE seq = 2",
        when=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    assert [p.kind for p in verify(ctx).problems] == ["changed"]
    assert verify(ctx).problems[0].seqs == (2,)


def test_deleted_events_are_named_as_a_range(ctx: AppContext) -> None:
    write_events(ctx, 10)
    tamper(ctx, "DELETE FROM audit_event WHERE seq IN (4, 5)")
    report = verify(ctx)
    assert problems(report) == [("deleted", "events #4-#5 deleted")]
    assert report.problems[0].seqs == (4, 5)
    assert report.checked == 8


def test_the_first_event_deleted(ctx: AppContext) -> None:
    write_events(ctx, 4)
    tamper(ctx, "DELETE FROM audit_event WHERE seq = 1")
    assert problems(verify(ctx)) == [("deleted", "event #1 deleted")]


def test_the_last_event_deleted(ctx: AppContext) -> None:
    write_events(ctx, 6)
    tamper(ctx, "DELETE FROM audit_event WHERE seq = 6")
    assert problems(verify(ctx)) == [("deleted", "event #6 deleted (the end of the log)")]


def test_a_truncated_tail(ctx: AppContext) -> None:
    write_events(ctx, 9)
    tamper(ctx, "DELETE FROM audit_event WHERE seq > 5")
    assert problems(verify(ctx)) == [("deleted", "events #6-#9 deleted (the end of the log)")]


def test_everything_deleted(ctx: AppContext) -> None:
    write_events(ctx, 3)
    tamper(ctx, "DELETE FROM audit_event")
    report = verify(ctx)
    assert problems(report) == [("deleted", "events #1-#3 deleted (the end of the log)")]
    assert report.checked == 0


def test_an_event_inserted_without_a_seal(ctx: AppContext) -> None:
    write_events(ctx, 5)
    with ctx.engine.begin() as conn:  # no trigger stops an INSERT: the seal is what is missing
        new_id = conn.execute(
            text(
                "INSERT INTO audit_event (occurred_at, actor, action, entity, entity_id, detail)"
                " VALUES (:when, 'mallory', 'update', 'organisation', 1, '{}') RETURNING id"
            ),
            {"when": dt.datetime(2026, 1, 1)},
        ).scalar_one()
    report = verify(ctx)
    assert problems(report) == [("inserted", f"event id {new_id} inserted (it carries no seal)")]
    assert report.problems[0].event_ids == (new_id,)


def test_an_event_inserted_with_a_forged_seal_at_a_taken_place(ctx: AppContext) -> None:
    write_events(ctx, 8)
    holder = id_at(ctx, 5)
    with ctx.engine.begin() as conn:
        drop_guards(conn, unique_seq=True)
        new_id = conn.execute(
            text(
                f"INSERT INTO audit_event (seq, {COPY_COLUMNS}) SELECT seq, occurred_at,"
                " 'mallory', action, entity, entity_id, detail, mac_key_id, prev_mac, :forged"
                " FROM audit_event WHERE seq = 5 RETURNING id"
            ),
            {"forged": "ab" * 32},
        ).scalar_one()
    assert problems(verify(ctx)) == [
        ("inserted", f"event id {new_id} inserted (claiming #5, held by id {holder})")
    ]


def test_an_exact_copy_of_an_event_is_an_insertion(ctx: AppContext) -> None:
    write_events(ctx, 6)
    holder = id_at(ctx, 3)
    with ctx.engine.begin() as conn:
        drop_guards(conn, unique_seq=True)
        new_id = conn.execute(
            text(
                f"INSERT INTO audit_event (seq, {COPY_COLUMNS}) SELECT seq, {COPY_COLUMNS}"
                " FROM audit_event WHERE seq = 3 RETURNING id"
            )
        ).scalar_one()
    assert problems(verify(ctx)) == [
        (
            "inserted",
            f"event id {new_id} inserted (a second event claiming #3, held by id {holder})",
        )
    ]


def test_an_event_appended_behind_the_writers_back(ctx: AppContext) -> None:
    write_events(ctx, 4)
    with ctx.engine.begin() as conn:
        new_id = conn.execute(
            text(
                f"INSERT INTO audit_event (seq, {COPY_COLUMNS}) SELECT 5, occurred_at, actor,"
                " action, entity, entity_id, detail, mac_key_id, mac, prev_mac"
                " FROM audit_event WHERE seq = 4 RETURNING id"
            )
        ).scalar_one()
    assert problems(verify(ctx)) == [
        ("inserted", f"event id {new_id} inserted (after the last event, claiming #5)")
    ]


def test_an_event_inserted_in_the_middle_moves_the_rest(ctx: AppContext) -> None:
    """The thorough forger: renumbers #5-#8 to #6-#9, puts a forged #5 and moves the head."""
    write_events(ctx, 8)
    fifth = id_at(ctx, 5)
    with ctx.engine.begin() as conn:
        drop_guards(conn)
        conn.execute(text("UPDATE audit_event SET seq = -(seq + 1) WHERE seq >= 5"))
        conn.execute(text("UPDATE audit_event SET seq = -seq WHERE seq < 0"))
        new_id = conn.execute(
            text(
                f"INSERT INTO audit_event (seq, {COPY_COLUMNS}) SELECT 5, occurred_at,"
                " 'mallory', action, entity, entity_id, detail, mac_key_id, mac, :forged"
                " FROM audit_event WHERE seq = 4 RETURNING id"
            ),
            {"forged": "cd" * 32},
        ).scalar_one()
        conn.execute(text("UPDATE audit_chain_head SET seq = 9"))
    report = verify(ctx)
    assert problems(report) == [
        ("reordered", "events #5-#8 reordered (now stored as #6-#9)"),
        (
            "inserted",
            f"event id {new_id} inserted (claiming #5, which event id {fifth} belongs at)",
        ),
        ("deleted", "event #9 deleted (the end of the log)"),
    ]


def test_two_events_swapped(ctx: AppContext) -> None:
    write_events(ctx, 6)
    first, second = id_at(ctx, 3), id_at(ctx, 4)
    tamper(
        ctx,
        "UPDATE audit_event SET seq = -1 WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = 4",
        "UPDATE audit_event SET seq = 4 WHERE seq = -1",
    )
    report = verify(ctx)
    assert problems(report) == [
        ("reordered", f"event #3 reordered (id {first}, now stored as #4)"),
        ("reordered", f"event #4 reordered (id {second}, now stored as #3)"),
    ]


def test_an_event_moved_into_a_deleted_place(ctx: AppContext) -> None:
    write_events(ctx, 6)
    moved = id_at(ctx, 2)
    tamper(
        ctx,
        "DELETE FROM audit_event WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = 2",
    )
    assert problems(verify(ctx)) == [
        ("reordered", f"event #2 reordered (id {moved}, now stored as #3)"),
        ("deleted", "event #3 deleted"),
    ]


def test_rows_swapped_whole_are_reordered(ctx: AppContext) -> None:
    """Every column swapped between two rows: each seal holds, the storage order does not."""
    write_events(ctx, 5)
    low, high = id_at(ctx, 2), id_at(ctx, 3)
    with ctx.engine.begin() as conn:
        drop_guards(conn)
        columns = f"seq, {COPY_COLUMNS}"
        values = {
            row_id: conn.execute(
                text(f"SELECT {columns} FROM audit_event WHERE id = :i"), {"i": row_id}
            ).one()
            for row_id in (low, high)
        }
        conn.execute(text("UPDATE audit_event SET seq = -seq WHERE seq IN (2, 3)"))
        names = columns.split(", ")
        assignment = ", ".join(f"{name} = :{name}" for name in names)
        for target, source in ((low, high), (high, low)):
            conn.execute(
                text(f"UPDATE audit_event SET {assignment} WHERE id = :target"),
                {"target": target, **dict(zip(names, values[source], strict=True))},
            )
    assert problems(verify(ctx)) == [
        ("reordered", f"event #3 (id {low}) reordered: stored before event #2 (id {high})")
    ]


def test_an_event_replaced_by_a_forgery_is_deleted_and_inserted(ctx: AppContext) -> None:
    write_events(ctx, 5)
    with ctx.engine.begin() as conn:
        drop_guards(conn)
        conn.execute(text("DELETE FROM audit_event WHERE seq = 3"))
        conn.execute(
            text(
                f"INSERT INTO audit_event (seq, {COPY_COLUMNS}) SELECT 3, occurred_at,"
                " 'mallory', action, entity, entity_id, detail, mac_key_id, mac, :forged"
                " FROM audit_event WHERE seq = 2"
            ),
            {"forged": "ef" * 32},
        )
    new_id = id_at(ctx, 3)
    assert problems(verify(ctx)) == [
        ("deleted", "event #3 deleted"),
        ("inserted", f"event id {new_id} inserted (claiming #3)"),
    ]


# --- before the chain, key rotation, concurrent writers -----------------------------------------


def test_events_from_before_the_chain_are_sealed_by_the_next_event(
    write_config: Callable[..., Path], blank_db_url: str
) -> None:
    path = write_config()
    settings = load_file(path)
    keyring = load_key_file(settings.key_file)
    engine = db.make_engine(settings.database_url, keyring)
    from alembic import command

    with db.migration_connection(engine) as conn:
        command.upgrade(db.alembic_config(conn), "0005")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO audit_event (occurred_at, actor, action, entity, entity_id,"
                    " detail) VALUES (:when, 'vera', 'export', 'organisation', :n, '{}')"
                ),
                {"when": dt.datetime(2026, 3, 1, 9, n), "n": n},
            )
    db.upgrade(engine)
    report = verify_chain(engine, keyring)
    assert report.ok and report.waiting == 3 and report.checked == 0
    assert "3 events from before the chain started" in report.summary()
    with db.session_scope(engine) as session:
        audit.record(session, "eddie", "update", "organisation", 1)
    report = verify_chain(engine, keyring)
    assert report.ok, problems(report)
    assert (report.checked, report.waiting, report.last_seq) == (4, 0, 4)
    with engine.connect() as conn:
        order = conn.execute(text("SELECT entity_id FROM audit_event ORDER BY seq")).scalars()
        assert list(order) == [0, 1, 2, 1]
    # sealed now, so no longer open to the one allowed update
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET seq = NULL, mac = NULL WHERE seq = 1"))
    engine.dispose()


def test_verification_survives_key_rotation(ctx: AppContext) -> None:
    write_events(ctx, 4)
    old_key = ctx.keyring.primary.key_id
    report = rotate_keys(ctx.engine, ctx.settings, ctx.staff)
    assert report.complete
    new_keyring = load_key_file(ctx.settings.key_file)
    assert [k.key_id for k in new_keyring.keys] == [report.primary_key_id]  # old key gone
    write_events(ctx, 2)
    assert [r.mac_key_id for r in rows(ctx)] == [old_key] * 4 + [report.primary_key_id] * 3
    result = verify_chain(ctx.engine, new_keyring)
    assert result.ok, problems(result)
    assert result.checked == 7  # the rotation audited itself too
    tamper(ctx, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 2")
    assert [(p.kind, p.seqs) for p in verify_chain(ctx.engine, new_keyring).problems] == [
        ("changed", (2,))
    ]


def test_a_retired_key_that_cannot_be_read_is_reported(ctx: AppContext) -> None:
    write_events(ctx, 2)
    rotate_keys(ctx.engine, ctx.settings, ctx.staff)
    new_keyring = load_key_file(ctx.settings.key_file)
    with ctx.engine.begin() as conn:  # the stored copy of the old audit key is lost
        conn.execute(
            text("UPDATE audit_mac_key SET secret = 'v1.00000000.AAAA' WHERE key_id = :k"),
            {"k": ctx.keyring.primary.key_id},
        )
    report = verify_chain(ctx.engine, new_keyring)
    assert [(p.kind, p.seqs) for p in report.problems] == [
        ("unverifiable", (1,)),
        ("unverifiable", (2,)),
    ]
    assert "cannot be checked" in report.problems[0].message


def test_concurrent_writers_never_share_a_predecessor(config_path: Path, ctx: AppContext) -> None:
    """Two staff processes' worth of writers, each with its own engine and connections."""
    settings = load_file(config_path)
    per_writer, writers = 25, 3
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        engine = db.make_engine(settings.database_url, ctx.keyring)
        try:
            barrier.wait()
            for n in range(per_writer):
                with db.session_scope(engine) as session:
                    audit.record(session, name, "update", "organisation", n)
                    if n % 2:
                        audit.record(session, name, "export", "organisation", n)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=write, args=(f"writer{w}",)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = writers * (per_writer + per_writer // 2)
    stored = rows(ctx)
    assert sorted(r.seq for r in stored) == list(range(1, total + 1))
    assert len({r.prev_mac for r in stored}) == total  # no two chained onto one event
    report = verify(ctx)
    assert report.ok, problems(report)
    assert report.checked == total


# --- the command --------------------------------------------------------------------------------


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_cli_verify_intact_and_tampered(config_path: Path, ctx: AppContext) -> None:
    write_events(ctx, 6)
    result = invoke(config_path, "--user", "vera", "audit", "verify")  # a viewer may verify
    assert result.exit_code == 0, result.output
    assert result.stdout == "audit log intact: 6 events, chain from #1 to #6\n"
    changed = id_at(ctx, 2)
    tamper(
        ctx,
        "UPDATE audit_event SET detail = '{\"n\": 0}' WHERE seq = 2",
        "DELETE FROM audit_event WHERE seq IN (4, 5)",
    )
    result = invoke(config_path, "audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "audit log NOT intact: 2 problem(s) in 4 sealed events",
        f"event #2 changed (id {changed})",
        "events #4-#5 deleted",
    ]
    result = invoke(config_path, "audit", "verify", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["checked"] == 4 and data["head"]["seq"] == 6
    assert [(p["kind"], p["seqs"]) for p in data["problems"]] == [
        ("changed", [2]),
        ("deleted", [4, 5]),
    ]
    listed = invoke(config_path, "audit", "--help").stdout
    assert "verify" in listed and "promises" in listed  # the promise audit joins the group


def triggers(conn: Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'audit%' AND NOT tgisinternal"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'"
    return set(conn.execute(text(query)).scalars())


def test_downgrade_removes_the_chain_and_upgrade_brings_it_back(ctx: AppContext) -> None:
    from alembic import command

    write_events(ctx, 3)
    with ctx.engine.connect() as conn:
        assert len(triggers(conn)) == 4
    with db.migration_connection(ctx.engine) as conn:
        command.downgrade(db.alembic_config(conn), "0005")
    with ctx.engine.connect() as conn:
        assert triggers(conn) == set()
        columns = conn.execute(text("SELECT * FROM audit_event")).keys()
        assert "mac" not in columns and "seq" not in columns
    db.upgrade(ctx.engine)  # the three events are now from before the chain
    report = verify(ctx)
    assert report.ok and report.waiting == 3
    write_events(ctx, 1)
    assert verify(ctx).summary() == "audit log intact: 4 events, chain from #1 to #4"
