"""Backup and restore: a consistent copy while the app is in use, and a restore that replays
every erasure made after the backup, carries the pending provider deletions over and never lets
an erased subject's id be handed out again.

Every test runs on SQLite and PostgreSQL (``engine_name``) unless it says SQLite only.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from retention_world import PLUGINS_TOML, TARGETS, TODAY, School, add_school, months_ago
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    AuditEvent,
    ConsentEvent,
    DeletionTask,
    ErasureReceipt,
    Organisation,
    ProviderLink,
    Subscription,
    index_value,
)
from plusjeklas_tui.services import audit_chain, backup, erasure, retention

IBAN = "NL91ABNA0417164300"
SQLITE_ONLY = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    path = write_config(extra=PLUGINS_TOML)  # mailchimp and mollie enabled: erasures make tasks
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def world(config: Path) -> Iterator[AppContext]:
    context = open_context(config)
    yield context
    context.close()


def backup_path(tmp_path: Path, engine_name: str, name: str = "backup") -> Path:
    return tmp_path / "backups" / (f"{name}.db" if engine_name == "sqlite" else f"{name}.dump")


def erase_school(context: AppContext, school: School) -> int:
    with db.session_scope(context.engine) as s:
        result = erasure.erase_organisation(
            s,
            context.staff,
            context.settings.retention,
            TARGETS,
            school.id,
            basis=retention.GENERAL,
            today=TODAY,
        )
    assert result.receipt_id is not None
    return result.receipt_id


def erase_person(context: AppContext, administrator_id: int) -> int:
    with db.session_scope(context.engine) as s:
        result = erasure.request_erasure(
            s,
            context.staff,
            context.settings.retention,
            TARGETS,
            "administrator",
            administrator_id,
            "consent_withdrawn",
            TODAY,
        )
    assert result.receipt_id is not None
    return result.receipt_id


def raw_rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    """Rows as stored (encrypted columns as ciphertext)."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def stored_secrets(engine: Engine, context: AppContext, school: School) -> dict[str, bytes]:
    """What identifies *school* and its people in the file: ciphertexts, blind indexes, plain."""
    found: dict[str, bytes] = {}
    people = ", ".join(map(str, school.admin_ids))
    for row in raw_rows(
        engine,
        f"SELECT id, name, email, email_index, phones FROM administrator WHERE id IN ({people})",
    ):
        for label, value in zip(("name", "email", "email_index", "phones"), row[1:], strict=True):
            found[f"administrator {row[0]} {label}"] = str(value).encode()
    for row in raw_rows(
        engine,
        "SELECT administrator_id, evidence FROM consent_event "
        f"WHERE administrator_id IN ({people})",
    ):
        found[f"consent {row[0]} evidence"] = str(row[1]).encode()
    (org_email,) = raw_rows(engine, f"SELECT email FROM organisation WHERE id = {school.id}")[0]
    found["organisation email"] = str(org_email).encode()
    found["school name"] = school.name.encode()
    for email, name in zip(school.emails, school.people, strict=True):
        found[f"plain {email}"] = email.encode()
        found[f"plain {name}"] = name.encode()
        blind = context.keyring.blind_index(index_value("email", email))
        found[f"blind index {email}"] = blind.encode()
    return found


def test_restore_replays_later_erasures_and_keeps_pending_deletions(
    world: AppContext, engine_name: str, tmp_path: Path
) -> None:
    engine = world.engine
    with db.session_scope(engine) as s:
        doomed = add_school(s, 1, ended=months_ago(30), people=2, iban=IBAN)
        neighbour = add_school(s, 2, ended=months_ago(30))
        family = add_school(s, 3, ended=months_ago(3), people=2)
    earlier = erase_school(world, add_school_now(world, 9))  # an erasure the backup holds
    secrets = stored_secrets(engine, world, doomed)

    path = backup_path(tmp_path, engine_name)
    path.parent.mkdir()
    info = backup.backup(engine, world.staff, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if engine_name == "sqlite":  # the backup holds them: the restore must destroy them again
        in_backup = path.read_bytes()
        stored = {label: needle for label, needle in secrets.items() if "plain" not in label}
        assert len(stored) > 8
        assert [label for label, needle in stored.items() if needle not in in_backup] == []
    assert (info.engine, info.revision) == (engine_name, db.head_revision())
    assert info.receipt_high_water == earlier
    assert info.taken_at is not None and abs(
        info.taken_at - dt.datetime.now(dt.UTC)
    ) < dt.timedelta(minutes=5)

    # after the backup: a change, a new school, the erasure of a school and of one person
    with db.session_scope(engine) as s:
        s.execute(update(Organisation).where(Organisation.id == neighbour.id).values(city="Zwolle"))
        newcomer = add_school(s, 4, ended=months_ago(3), people=1)
    receipt = erase_school(world, doomed)
    person_receipt = erase_person(world, family.admin_ids[0])
    assert receipt > info.receipt_high_water and person_receipt > receipt
    with db.session_scope(engine) as s:  # the worker tried one task and will try again
        first_task = s.scalars(select(DeletionTask).order_by(DeletionTask.id)).first()
        assert first_task is not None
        first_task.attempts = 2
        first_task.last_error = "mailchimp: HTTP 503"
        # one of the earlier erasure's tasks was delivered after the backup: its locator went
        delivered = s.scalars(
            select(DeletionTask).where(
                DeletionTask.receipt_id == earlier, DeletionTask.provider == "mollie"
            )
        ).one()
        delivered.state, delivered.locator, delivered.outcome = "done", None, "erased"
    tasks_before = raw_rows(
        engine,
        "SELECT id, receipt_id, provider, subject_type, subject_id, locator, state, attempts, "
        "last_error FROM deletion_task ORDER BY id",
    )
    # the earlier school: mailchimp, mollie; the doomed one: mailchimp x2, mollie; one person
    assert len(tasks_before) == 6
    receipts_before = raw_rows(
        engine, "SELECT id, subject_type, subject_id, basis, actor FROM erasure_receipt ORDER BY id"
    )
    highest = {
        name: raw_rows(engine, f"SELECT max(id) FROM {name}")[0][0]
        for name in ("organisation", "administrator", "subscription")
    }

    result = backup.restore(engine, world.staff, path)

    assert (result.replayed_receipts, result.organisations_erased) == (2, 1)
    assert result.administrators_erased == 1
    assert (result.tasks_carried, result.pending_tasks) == (6, 5)
    with db.session_scope(engine) as s:
        # the erased school and its people stay erased
        assert s.get(Organisation, doomed.id) is None
        for person in [*doomed.admin_ids, family.admin_ids[0]]:
            assert s.get(Administrator, person) is None
            assert (
                s.scalar(select(func.count()).where(ConsentEvent.administrator_id == person)) == 0
            )
        assert s.scalar(select(func.count()).where(Subscription.organisation_id == doomed.id)) == 0
        owners = {(link.subject_type, link.subject_id) for link in s.scalars(select(ProviderLink))}
        assert ("organisation", doomed.id) not in owners
        assert not owners & {("administrator", p) for p in [*doomed.admin_ids, family.admin_ids[0]]}
        # the rest is as in the backup: the change and the newcomer are gone, the family is back
        again = s.get(Organisation, neighbour.id)
        assert again is not None and again.city == "Utrecht"
        assert s.get(Organisation, newcomer.id) is None
        assert s.get(Administrator, family.admin_ids[1]) is not None
        assert s.get(Organisation, family.id) is not None
        assert s.scalar(select(func.count()).select_from(Organisation)) == 2
        audit_row = s.scalars(select(AuditEvent).where(AuditEvent.action == "restore")).one()
        assert '"replayed": 2' in audit_row.detail and '"pending_tasks": 5' in audit_row.detail
    # receipts and tasks exactly as they were: same ids, states, attempts, encrypted locators
    assert (
        raw_rows(
            engine,
            "SELECT id, subject_type, subject_id, basis, actor FROM erasure_receipt ORDER BY id",
        )
        == receipts_before
    )
    assert (
        raw_rows(
            engine,
            "SELECT id, receipt_id, provider, subject_type, subject_id, locator, state, attempts, "
            "last_error FROM deletion_task ORDER BY id",
        )
        == tasks_before
    )

    # the audit log was not taken back in time: every event since the backup is still there,
    # the restore's own event sealed after them, and the chain intact
    chain = audit_chain.verify_chain(engine, world.keyring)
    assert chain.ok, [str(problem) for problem in chain.problems]
    with db.session_scope(engine) as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("erase") == 6 and actions[-1] == "restore"  # 2 + 3 + 1 subjects

    # ids are never handed out again, not even the newcomer's that the restore took away
    with db.session_scope(engine) as s:
        fresh = add_school(s, 5, ended=months_ago(30), people=1)
        assert fresh.id > highest["organisation"]
        assert fresh.admin_ids[0] > highest["administrator"]
        assert s.scalar(select(func.max(Subscription.id))) > highest["subscription"]
        assert fresh.id not in (doomed.id, newcomer.id)
    erase_school(world, fresh)  # a later erasure gets a fresh receipt id (sequences moved on)

    if engine_name == "sqlite":
        db.sqlite_checkpoint(engine)
        database = Path(engine.url.database or "")
        data = b"".join(p.read_bytes() for p in (database, Path(f"{database}-wal")) if p.exists())
        found = [label for label, needle in secrets.items() if needle in data]
        assert found == [], f"the restored file still holds {found}"
        leftovers = [p.name for p in database.parent.iterdir() if ".restore" in p.name]
        assert leftovers == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            indexed = conn.exec_driver_sql(
                "SELECT rowid FROM organisation_search WHERE organisation_search MATCH 'Testwereld'"
            ).scalars()
            live = conn.exec_driver_sql("SELECT id FROM organisation").scalars()
            assert sorted(indexed) == sorted(live)  # the search index is in step


def add_school_now(context: AppContext, n: int) -> School:
    with db.session_scope(context.engine) as s:
        return add_school(s, n, ended=months_ago(30))


def test_a_failed_restore_changes_nothing(
    world: AppContext, engine_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.session_scope(world.engine) as s:
        doomed = add_school(s, 1, ended=months_ago(30), people=1)
        add_school(s, 2, ended=months_ago(3))
    path = backup_path(tmp_path, engine_name)
    path.parent.mkdir()
    backup.backup(world.engine, world.staff, path)
    erase_school(world, doomed)
    with db.session_scope(world.engine) as s:
        add_school(s, 3, ended=months_ago(3))

    def snapshot() -> list[tuple[Any, ...]]:
        return raw_rows(
            world.engine,
            "SELECT 'o', id, city FROM organisation UNION ALL "
            "SELECT 'r', id, subject_type FROM erasure_receipt UNION ALL "
            "SELECT 't', id, state FROM deletion_task ORDER BY 1, 2",
        )

    before = snapshot()

    class Boom(Exception):
        pass

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise Boom()

    monkeypatch.setattr(backup, "_keep_sequences", failing)  # after every row was replaced
    with pytest.raises(Boom):
        backup.restore(world.engine, world.staff, path)
    assert snapshot() == before
    assert ("o", doomed.id, "Utrecht") not in before  # still erased


def test_backup_and_restore_are_for_admins(config: Path, engine_name: str, tmp_path: Path) -> None:
    path = backup_path(tmp_path, engine_name)
    for user in ("vera", "eddie"):
        context = open_context(config, user)
        try:
            with pytest.raises(PermissionDenied):
                backup.backup(context.engine, context.staff, path)
            with pytest.raises(PermissionDenied):
                backup.restore(context.engine, context.staff, path)
        finally:
            context.close()
    assert not path.exists()


def invoke(config: Path, *args: str, user: str | None = None) -> Result:
    prefix = ["--config", str(config)] + (["--user", user] if user else [])
    return CliRunner().invoke(main, [*prefix, *args], catch_exceptions=False)


def test_cli_backup_and_restore(config: Path, engine_name: str, tmp_path: Path) -> None:
    context = open_context(config)
    try:
        with db.session_scope(context.engine) as s:
            doomed = add_school(s, 1, ended=months_ago(30), people=1)
        path = tmp_path / ("cli.db" if engine_name == "sqlite" else "cli.dump")
        made = invoke(config, "backup", str(path), "--json")
        assert made.exit_code == 0, made.output
        assert f'"engine": "{engine_name}"' in made.stdout
        again = invoke(config, "backup", str(path))
        assert again.exit_code == 1 and "--force" in again.stderr
        assert invoke(config, "backup", str(path), "--force").exit_code == 0
        receipt = erase_school(context, doomed)

        unasked = invoke(config, "restore", str(path))  # no terminal, no --yes
        assert unasked.exit_code == 2 and "--yes" in unasked.stderr
        refused = invoke(config, "restore", str(path), "--yes", user="eddie")
        assert refused.exit_code == 2
        done = invoke(config, "restore", str(path), "--yes")
        assert done.exit_code == 0, done.output
        assert "replayed 1 erasure receipts" in done.stderr
        with db.session_scope(context.engine) as s:
            assert s.get(Organisation, doomed.id) is None
            assert s.get(ErasureReceipt, receipt) is not None
            assert s.scalar(select(func.count()).select_from(DeletionTask)) == 2
        missing = invoke(config, "restore", str(tmp_path / "nope.db"), "--yes")
        assert missing.exit_code == 1 and "does not exist" in missing.stderr
    finally:
        context.close()


@SQLITE_ONLY
def test_sqlite_backup_is_consistent_while_another_connection_writes(
    world: AppContext, tmp_path: Path
) -> None:
    """A writer holding an open transaction neither blocks the backup nor leaks into it."""
    with db.session_scope(world.engine) as s:
        committed = add_school(s, 1, ended=months_ago(3))
    writer = sqlite3.connect(world.engine.url.database or "", timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE organisation SET city = 'Halverwege' WHERE id = ?", (committed.id,))
        writer.execute(
            "INSERT INTO organisation (name, street, postcode, city, brin, phone, created_at, "
            "updated_at, version) VALUES ('Onaf', 'x 1', '1234 AB', 'Utrecht', '99ZZ', "
            "'+31301234567', '2026-01-01', '2026-01-01', 1)"
        )
        path = tmp_path / "live.db"
        running = threading.Thread(target=backup.backup, args=(world.engine, world.staff, path))
        running.start()
        deadline = time.monotonic() + 8  # well within the 10 s a writer would make us wait
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.exists(), "the backup waited for the open write transaction"
        writer.commit()  # now the audit event of the backup can be written
        running.join(timeout=30)
        assert not running.is_alive()
    finally:
        writer.close()
    with db.session_scope(world.engine) as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "backup")).one()
    copy = sqlite3.connect(path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        rows = copy.execute("SELECT id, city FROM organisation").fetchall()
    finally:
        copy.close()
    assert rows == [(committed.id, "Utrecht")]  # the open transaction is not in the backup
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    with pytest.raises(backup.BackupError, match="--force"):
        backup.backup(world.engine, world.staff, path)
    os.chmod(path, 0o644)
    backup.backup(world.engine, world.staff, path, force=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert backup.describe(path).revision == db.head_revision()


@SQLITE_ONLY
def test_restore_refuses_a_backup_of_another_database_or_engine(
    world: AppContext, tmp_path: Path
) -> None:
    erase_school(world, add_school_now(world, 1))  # receipt #1 here: an organisation
    other = tmp_path / "other.db"
    other_engine = db.make_engine(f"sqlite:///{other}", world.keyring)
    db.upgrade(other_engine)
    context = AppContext(world.settings, other_engine, world.keyring, world.staff)
    with db.session_scope(other_engine) as s:
        add_school(s, 7, ended=months_ago(30), people=2)
    erase_person(context, 1)  # receipt #1 is about someone else there
    path = tmp_path / "other-backup.db"
    backup.backup(other_engine, world.staff, path)
    other_engine.dispose()
    with pytest.raises(backup.ForeignBackup, match="not of this database"):
        backup.restore(world.engine, world.staff, path)
    dump = tmp_path / "fake.dump"
    dump.write_bytes(b"PGDMP\x01\x0e\x00")
    with pytest.raises(backup.BackupError, match="postgresql backup"):
        backup.restore(world.engine, world.staff, dump)


def test_pg_dump_version_mismatch_is_said_plainly() -> None:
    stderr = (
        "pg_dump: error: aborting because of server version mismatch\n"
        "pg_dump: detail: server version: 17.2 (Debian 17.2-1); pg_dump version: 15.20\n"
    )
    message = backup.pg_failure("pg_dump", stderr)
    assert "pg_dump 15.20 is older than the server (17.2 (Debian 17.2-1))" in message
    assert "client tools of the server's major version" in message


def test_pg_environment_keeps_the_password_off_the_command_line() -> None:
    from sqlalchemy.engine import make_url

    env = backup.pg_environment(
        make_url("postgresql+psycopg://app:s3cret@db.example:6543/plus?sslmode=require")
    )
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == (
        "db.example",
        "6543",
        "app",
        "plus",
    )
    assert env["PGPASSWORD"] == "s3cret" and env["PGSSLMODE"] == "require"


def test_restoring_an_older_backup_migrates_it_and_still_replays(
    write_config: Callable[..., Path], engine_name: str, tmp_path: Path
) -> None:
    """A backup made by an older version (revision 0005) is migrated inside the restore."""
    config = write_config(extra=PLUGINS_TOML)
    engine = db.make_engine(load_file(config).database_url)
    db.upgrade(engine, "0005")
    with engine.begin() as conn:
        for n, brin in ((1, "11AA"), (2, "12AA")):
            conn.execute(
                text(
                    "INSERT INTO organisation (name, street, postcode, city, brin, phone, "
                    "created_at, updated_at, version) VALUES (:name, 'Laan 1', '1234 AB', "
                    "'Utrecht', :brin, '+31301234567', :now, :now, 1)"
                ),
                {"name": f"Oude School {n}", "brin": brin, "now": dt.datetime(2020, 1, 1)},
            )
    path = backup_path(tmp_path, engine_name, "old")
    path.parent.mkdir()
    if engine_name == "sqlite":  # by hand: this version only backs up a database at its head
        backup._sqlite_backup(Path(engine.url.database or ""), path)
    else:
        backup._pg_dump(engine.url, path)
    assert backup.describe(path).revision == "0005"
    db.upgrade(engine)
    engine.dispose()

    context = open_context(config)
    try:
        with db.session_scope(context.engine) as s:
            first = s.scalars(select(Organisation).where(Organisation.brin == "11AA")).one()
            first_id = first.id
            erasure.request_erasure(
                s,
                context.staff,
                context.settings.retention,
                TARGETS,
                "organisation",
                first_id,
                "objection",
                TODAY,
            )
        result = backup.restore(context.engine, context.staff, path)
        assert result.upgraded_from == "0005" and result.organisations_erased == 1
        assert db.current_revision(context.engine) == db.head_revision()
        db.ensure_ready(context.engine)
        with db.session_scope(context.engine) as s:
            assert s.get(Organisation, first_id) is None
            assert [o.brin for o in s.scalars(select(Organisation))] == ["12AA"]
            assert s.scalar(select(func.count()).select_from(ErasureReceipt)) == 1
    finally:
        context.close()


def test_restore_into_an_empty_database_after_a_disaster(
    world: AppContext,
    engine_name: str,
    tmp_path: Path,
    write_config: Callable[..., Path],
    postgres_server: Any,
) -> None:
    """Nothing to replay: the schema is made, the backup's data and audit log come back."""
    with db.session_scope(world.engine) as s:
        doomed = add_school(s, 1, ended=months_ago(30), people=1)
        kept = add_school(s, 2, ended=months_ago(3), people=1)
    receipt = erase_school(world, doomed)
    path = backup_path(tmp_path, engine_name)
    path.parent.mkdir()
    backup.backup(world.engine, world.staff, path)
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path / 'new-home' / 'plusjeklas.db'}"
    else:
        url = postgres_server.new_database(migrated=False)
    config = write_config(url=url, name="new-home.toml", extra=PLUGINS_TOML)
    context = open_context(config, require_ready=False)
    try:
        assert db.current_revision(context.engine) is None
        result = backup.restore(context.engine, context.staff, path)
        assert result.replayed_receipts == 0 and result.tasks_carried == 0
        db.ensure_ready(context.engine)
        with db.session_scope(context.engine) as s:
            assert [o.id for o in s.scalars(select(Organisation))] == [kept.id]
            assert s.get(Administrator, kept.admin_ids[0]) is not None
            assert s.get(ErasureReceipt, receipt) is not None
            assert s.scalar(select(func.count()).select_from(DeletionTask)) == 2  # as backed up
            fresh = add_school(s, 3, ended=months_ago(3))
            assert fresh.id > doomed.id  # the sequences came with the backup
        chain = audit_chain.verify_chain(context.engine, context.keyring)
        assert chain.ok, [str(problem) for problem in chain.problems]
    finally:
        context.close()
