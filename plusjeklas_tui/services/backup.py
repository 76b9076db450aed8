"""Backups of the whole database, and restores that keep every erasure made since.

**Backup.** SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent
snapshot in one step while staff keep working (WAL: readers and a writer go on). PostgreSQL:
``pg_dump --format=custom``. Either way the file is written next to its final name with mode
0600, then linked into place, so a half-written backup never carries the final name and an
existing file is never overwritten unless asked (``force``). It holds personal data
(encrypted, but still): treat it as the database itself.

**What a backup says about itself** is read from its data, not from a side file that could get
separated from it: the schema revision (``alembic_version``), the highest erasure receipt id
(the *high-water mark*), and when it was taken (the ``backup`` audit event written just before
the snapshot; PostgreSQL's archive header as well).

**Restore.** A backup is older than the erasures made since. GDPR art. 17 does not end with a
restore: an erased subject stays erased, and no provider deletion still pending may be
forgotten (that would silently leave a copy at a provider). So the *erasure ledger* (receipts,
deletion tasks, restricted records) of the current database is carried forward, in the one
transaction that also replaces the data:

1. read the current database's ledger and its id sequences (under a lock, so an erasure
   committed meanwhile cannot slip between reading and replacing);
2. put the backup's data in place (and migrate it to this code's schema when it is older);
3. for every receipt the backup does not have, destroy the subject's local data again (the
   same rows :mod:`plusjeklas_tui.services.erasure` deletes), and write the receipts, tasks and
   restricted records as they are in the current database: tasks keep their state, attempts
   and encrypted locators (copied as stored, never decrypted), no second round of tasks is
   made; a task or restricted record that changed or went since the backup is taken as it is
   now (a locator destroyed after delivery does not come back);
4. move no id sequence backwards, so a receipt's subject id (and any id an audit event names)
   is never handed to a new record;
4a. keep the audit log as it is now: it is append-only and chained (see
   :mod:`plusjeklas_tui.services.audit_chain`), so the events since the backup (the erasures
   among them) stay and the restore's own event is sealed after them. Only a database with
   no audit event at all (restoring after losing it) takes the backup's log;
5. audit the restore (counts only) and commit. Anything failing rolls the whole thing back.

How the one transaction is made: SQLite: the backup is copied to a private temporary file
next to the database and migrated there; then, on the live database, ``BEGIN IMMEDIATE``
(other writers wait), the ledger is read, the temporary file is attached and every table's
rows are replaced from it, the ledger is carried forward and committed. PostgreSQL:
``pg_restore --clean --if-exists --no-owner`` turns the archive into SQL, which runs on our
own connection inside one transaction (PostgreSQL's DDL is transactional) that first locks the
ledger tables and reads them, then migrates, carries the ledger forward and commits. So other
sessions see the old database or the restored one, never a half-restored one, and a crash
leaves the old one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Integer, Table, Text, column, delete, insert, select, update
from sqlalchemy import table as table_clause
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

from plusjeklas_tui import db
from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    ConsentEvent,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
    ProviderLink,
    RestrictedRecord,
    Subscription,
    metadata,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.retention import ADMINISTRATOR, ORGANISATION
from plusjeklas_tui.sqltypes import EncryptedText, keyring_of
from plusjeklas_tui.staff import Permission, StaffMember

BACKUP_ACTION = "backup"
RESTORE_ACTION = "restore"
PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"
LEDGER = (ErasureReceipt.__table__, DeletionTask.__table__, RestrictedRecord.__table__)
AUDIT_TABLES = ("audit_event", "audit_chain_head", "audit_mac_key")
"""The audit log is append-only and chained (migration 0006): a restore never takes it back in
time. The current log (events, chain head, MAC keys) stays as it is; only when the current
database has no audit event at all (a restore after losing it) does the backup's log come."""
SQLITE_SKIP = re.compile(r"^(sqlite_|alembic_version$|organisation_search)")
"""Tables a SQLite restore does not copy: SQLite's own, the revision (migrated, not copied)
and the search index (kept in step by the triggers on ``organisation``)."""


class BackupError(PlusjeklasError):
    """A backup or restore could not be made; the message says why and what to do."""


class ForeignBackup(BackupError):
    """The backup's erasure receipts contradict this database's: it is not a backup of it."""


@dataclasses.dataclass(frozen=True)
class BackupInfo:
    """What a backup file says about itself (nothing personal)."""

    path: Path
    engine: str
    revision: str | None
    receipt_high_water: int
    """The highest erasure receipt id in the backup: receipts above it were made later."""
    taken_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "engine": self.engine,
            "revision": self.revision,
            "receipt_high_water": self.receipt_high_water,
            "taken_at": None if self.taken_at is None else self.taken_at.isoformat(),
        }


@dataclasses.dataclass
class RestoreResult:
    """What a restore did, in counts."""

    info: BackupInfo
    upgraded_from: str | None = None
    replayed_receipts: int = 0
    organisations_erased: int = 0
    administrators_erased: int = 0
    other_receipts: int = 0
    """Replayed receipts of another kind of subject: carried forward, nothing to destroy."""
    tasks_carried: int = 0
    pending_tasks: int = 0
    restricted_carried: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["info"] = self.info.as_dict()
        return data

    def summary(self) -> str:
        upgraded = f"; migrated from revision {self.upgraded_from}" if self.upgraded_from else ""
        return (
            f"restored the backup taken {_when(self.info.taken_at)}{upgraded}; "
            f"replayed {self.replayed_receipts} erasure receipts made after it "
            f"({self.organisations_erased} organisations, {self.administrators_erased} "
            f"administrators erased again); {self.tasks_carried} deletion tasks carried "
            f"forward ({self.pending_tasks} pending), {self.restricted_carried} restricted records"
        )


def _when(moment: dt.datetime | None) -> str:
    return "at an unknown time" if moment is None else f"at {moment:%Y-%m-%d %H:%M} UTC"


# --- backup ----------------------------------------------------------------------------------


def backup(engine: Engine, staff: StaffMember, path: Path, *, force: bool = False) -> BackupInfo:
    """Write a backup of the database behind *engine* to *path*.

    Admin only (``manage-keys``): a backup is every record of every person, and this is the
    permission that already guards the database as a whole (migrations, keys).
    """
    staff.require(Permission.MANAGE_KEYS, "back up the database")
    path = Path(path).expanduser().absolute()
    _check_target(path, force)
    with _partial_file(path, force) as partial:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(_sqlite_file(engine), partial)
            _mark_sqlite_copy(partial, staff, keyring_of(engine.dialect))
        else:
            _pg_dump(engine.url, partial)
    info = describe(path)
    # After the snapshot, not before: the write waits for a writer busy now, the copy did not.
    with db.session_scope(engine) as session:
        audit.record(
            session,
            staff,
            BACKUP_ACTION,
            "database",
            None,
            engine=info.engine,
            revision=info.revision,
            receipts=info.receipt_high_water,
        )
    return info


def _mark_sqlite_copy(copy: Path, staff: StaffMember, keyring: Keyring) -> None:
    """The copy's own audit log says it is a backup, when and by whom (its ``taken_at``).

    Sealed into the copy's audit chain with the same key. Then the copy is switched to a
    rollback journal, so the backup is one self-contained file.
    """
    engine = db.make_engine(f"sqlite:///{copy}", keyring)
    try:
        with db.session_scope(engine) as session:
            audit.record(session, staff, BACKUP_ACTION, "database", None, engine="sqlite")
    finally:
        engine.dispose()
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError("the copy failed SQLite's quick_check; nothing was written")


def _check_target(path: Path, force: bool) -> None:
    if not path.parent.is_dir():
        raise BackupError(f"PATH {path}: its directory does not exist")
    if path.is_dir():
        raise BackupError(f"PATH {path} is a directory; give a file name")
    if path.exists() and not force:
        raise BackupError(f"PATH {path} already exists; choose a new name or pass --force")


@contextlib.contextmanager
def _partial_file(path: Path, force: bool) -> Iterator[Path]:
    """A private (0600) file next to *path*; on success it takes *path*'s name, atomically."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        os.chmod(partial, 0o600)
        yield partial
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        if force:
            os.replace(partial, path)
        else:
            try:
                os.link(partial, path)  # fails if the name was taken meanwhile: no overwrite
            except FileExistsError:
                raise BackupError(
                    f"PATH {path} already exists; choose a new name or pass --force"
                ) from None
        _fsync_dir(path.parent)
    finally:
        partial.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_file(engine: Engine) -> Path:
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("the configured SQLite database is not a plain file; back it up by hand")
    return Path(name).absolute()


def _sqlite_backup(source_path: Path, target: Path) -> None:
    """Copy a consistent snapshot of *source_path* into *target* with SQLite's backup API.

    One step (``pages=-1``) reads the whole database in one read transaction: a writer busy
    meanwhile neither blocks it nor gets half into it.
    """
    source = sqlite3.connect(source_path, timeout=db.SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        with contextlib.closing(sqlite3.connect(target)) as target_db:
            source.backup(target_db, pages=-1)
    finally:
        source.close()


# --- what a backup says about itself ---------------------------------------------------------


def describe(path: Path) -> BackupInfo:
    """Read a backup's engine, revision, receipt high-water mark and time from the file."""
    path = Path(path).expanduser().absolute()
    kind = backup_kind(path)
    if kind == "sqlite":
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            return _sqlite_info(conn, path)
    return _pg_info(path)


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql``, from the file's first bytes."""
    if not path.is_file():
        raise BackupError(f"PATH {path} does not exist or is not a file")
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(
        f"PATH {path} is not a plusjeklas backup (neither an SQLite database nor a pg_dump "
        "custom-format archive)"
    )


def _sqlite_info(conn: sqlite3.Connection, path: Path) -> BackupInfo:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" not in tables or "erasure_receipt" not in tables:
        raise BackupError(f"PATH {path} is an SQLite database, but not one of plusjeklas")
    revision = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()[0]
    high = conn.execute("SELECT coalesce(max(id), 0) FROM erasure_receipt").fetchone()[0]
    taken = conn.execute(
        "SELECT max(occurred_at) FROM audit_event WHERE action = ?", (BACKUP_ACTION,)
    ).fetchone()[0]
    return BackupInfo(path, "sqlite", revision, int(high), _parse_time(taken))


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# --- PostgreSQL tools ------------------------------------------------------------------------

_PG_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "host": "PGHOST",
    "port": "PGPORT",
}


_PG_IDENTITY = frozenset(
    {"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE"}
)
"""Inherited variables that could point the tools at another database: never passed on."""


def pg_environment(url: URL) -> dict[str, str]:
    """libpq's ``PG*`` variables for *url*: the password never appears on a command line."""
    env = {k: v for k, v in os.environ.items() if k not in _PG_IDENTITY}
    values = {
        "PGHOST": url.host,
        "PGPORT": None if url.port is None else str(url.port),
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    for key, variable in _PG_QUERY_ENV.items():
        given = url.query.get(key)
        if given is not None:
            values[variable] = given if isinstance(given, str) else given[-1]
    env.update({key: str(value) for key, value in values.items() if value})
    return env


def pg_tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise BackupError(
            f"{name} was not found; install the PostgreSQL client tools (the server's major "
            "version or newer)"
        )
    return found


def pg_failure(tool: str, stderr: str) -> str:
    """The tool's own error lines, with a plain word for the version mismatch."""
    if "server version mismatch" in stderr:
        server = re.search(r"server version: ([^;\n]+)", stderr)
        mine = re.search(rf"{tool} version: ([^;\n]+)", stderr)
        return (
            f"{tool} {mine.group(1).strip() if mine else '(unknown version)'} is older than the "
            f"server ({server.group(1).strip() if server else 'a newer major version'}); "
            f"install the PostgreSQL client tools of the server's major version or newer"
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return "; ".join((errors or lines)[-3:]) or f"{tool} failed without a message"


def _run_pg(tool: str, args: Sequence[str], env: Mapping[str, str]) -> str:
    done = subprocess.run(
        [pg_tool(tool), *args], env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {pg_failure(tool, done.stderr)}")
    return done.stdout


def _pg_dump(url: URL, target: Path) -> None:
    _run_pg(
        "pg_dump", ["--format=custom", "--no-password", f"--file={target}"], pg_environment(url)
    )


def _pg_info(path: Path) -> BackupInfo:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    listing = _run_pg("pg_restore", ["--list", str(path)], env)
    created = re.search(r"Archive created at (\S+ \S+)", listing)
    taken = None
    if created:
        with contextlib.suppress(ValueError):
            taken = dt.datetime.fromisoformat(created.group(1)).replace(tzinfo=dt.UTC)
    revisions = _copy_rows(
        _run_pg(
            "pg_restore", ["--data-only", "--table=alembic_version", "--file=-", str(path)], env
        )
    )
    receipts = _copy_rows(
        _run_pg(
            "pg_restore", ["--data-only", "--table=erasure_receipt", "--file=-", str(path)], env
        )
    )
    tables = set(re.findall(r"^\d+; \d+ \d+ TABLE public (\S+) ", listing, re.MULTILINE))
    if not {"alembic_version", "erasure_receipt"} <= tables:
        raise BackupError(f"PATH {path} is a pg_dump archive, but not of a plusjeklas database")
    revision = revisions[0][0] if revisions else None
    high = max((int(row[0]) for row in receipts), default=0)
    return BackupInfo(path, "postgresql", revision, high, taken)


def _copy_rows(script: str) -> list[list[str]]:
    """The rows of the COPY blocks in a data-only SQL script (first columns are enough here)."""
    rows: list[list[str]] = []
    inside = False
    for line in script.splitlines():
        if inside:
            if line == "\\.":
                inside = False
            else:
                rows.append(line.split("\t"))
        elif line.startswith("COPY ") and line.endswith("FROM stdin;"):
            inside = True
    return rows


# --- restore ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Ledger:
    """The current database's erasure ledger, raw (encrypted columns as stored)."""

    receipts: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    restricted: list[dict[str, Any]]
    sequences: dict[str, int]


def restore(engine: Engine, staff: StaffMember, path: Path) -> RestoreResult:
    """Replace the database's data with the backup at *path*, keeping every erasure since.

    Admin only (``manage-keys``): a restore replaces every record at once, more than any
    erasure (``erase``) or sweep (``sweep``) could, and belongs with the other operations on
    the database as a whole (migrations, keys).
    """
    staff.require(Permission.MANAGE_KEYS, "restore the database from a backup")
    path = Path(path).expanduser().absolute()
    kind = backup_kind(path)
    if kind != engine.dialect.name:
        raise BackupError(
            f"PATH {path} is a {kind} backup, but the configured database is "
            f"{engine.dialect.name}; restore it into a {kind} database"
        )
    info = describe(path)
    if info.revision is not None and info.revision not in db.known_revisions():
        raise BackupError(
            f"PATH {info.path} was made by a newer version of plusjeklas (revision "
            f"{info.revision}); restore it with that version"
        )
    current = db.current_revision(engine)
    if current is None:  # an empty database (after a disaster): give it the schema first
        db.upgrade(engine)
    elif current != db.head_revision():
        db.ensure_ready(engine)  # raises, saying what to run
    result = RestoreResult(info=info)
    if info.revision != db.head_revision():
        result.upgraded_from = info.revision
    if engine.dialect.name == "sqlite":
        _restore_sqlite(engine, staff, info, result)
    else:
        _restore_postgresql(engine, staff, info, result)
    return result


def _restore_sqlite(
    engine: Engine, staff: StaffMember, info: BackupInfo, result: RestoreResult
) -> None:
    live = _sqlite_file(engine)
    fd, name = tempfile.mkstemp(dir=live.parent, prefix=f".{live.name}.", suffix=".restore")
    os.close(fd)
    staged = Path(name)
    try:
        os.chmod(staged, 0o600)
        _sqlite_backup(info.path, staged)  # the backup file itself is never changed
        staged_engine = db.make_engine(f"sqlite:///{staged}")
        try:
            db.upgrade(staged_engine)
        finally:
            staged_engine.dispose()
        with engine.connect() as conn:
            conn.exec_driver_sql("ATTACH DATABASE ? AS restored", (str(staged),))
            try:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # other writers wait from here on
                try:
                    ledger = _read_ledger(conn)
                    conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
                    _sqlite_replace_tables(conn)
                    _carry_forward(conn, staff, ledger, result)
                    problems = conn.exec_driver_sql("PRAGMA main.foreign_key_check").fetchall()
                    if problems:
                        tables = ", ".join(sorted({row[0] for row in problems}))
                        raise BackupError(
                            f"the restored data has rows whose parent is missing in: {tables}; "
                            "nothing was changed"
                        )
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
            finally:
                conn.exec_driver_sql("DETACH DATABASE restored")
        with engine.connect() as conn:  # drop the erased subject's trigrams from the index
            conn.exec_driver_sql(
                "INSERT INTO organisation_search(organisation_search) VALUES ('optimize')"
            )
            conn.commit()
    finally:
        for leftover in (staged, Path(f"{staged}-journal"), Path(f"{staged}-wal")):
            leftover.unlink(missing_ok=True)
        Path(f"{staged}-shm").unlink(missing_ok=True)


def _sqlite_tables(conn: Connection, schema: str) -> dict[str, list[str]]:
    names = [
        row[0]
        for row in conn.exec_driver_sql(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"
        )
        if not SQLITE_SKIP.match(row[0])
    ]
    return {
        name: [row[1] for row in conn.exec_driver_sql(f'PRAGMA {schema}.table_info("{name}")')]
        for name in names
    }


def _sqlite_replace_tables(conn: Connection) -> None:
    """Every table's rows from the attached copy; children emptied first, parents filled first."""
    live = _sqlite_tables(conn, "main")
    staged = _sqlite_tables(conn, "restored")
    if set(live) != set(staged):
        raise BackupError(
            "after migration the backup's tables differ from this database's ("
            + ", ".join(sorted(set(live) ^ set(staged)))
            + "); nothing was changed"
        )
    ordered = [t.name for t in metadata.sorted_tables if t.name in live]
    ordered += sorted(set(live) - set(ordered))
    audit_from_backup = "audit_event" in live and not _has_rows(conn, 'main."audit_event"')
    for name in reversed(ordered):
        if name not in AUDIT_TABLES:
            conn.exec_driver_sql(f'DELETE FROM main."{name}"')
    for name in ordered:
        columns = [c for c in live[name] if c in staged[name]]
        if name not in AUDIT_TABLES:
            names = ", ".join(f'"{c}"' for c in columns)
            conn.exec_driver_sql(
                f'INSERT INTO main."{name}" ({names}) SELECT {names} FROM restored."{name}"'
            )
        elif audit_from_backup:
            _sqlite_take_rows(conn, name, columns)


def _has_rows(conn: Connection, table: str) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first() is not None


def _sqlite_take_rows(conn: Connection, name: str, columns: list[str]) -> None:
    """The backup's rows of an append-only table: new ids inserted, existing ones updated
    (the chain head's one row only moves forward, which its trigger allows)."""
    names = ", ".join(f'"{c}"' for c in columns)
    have = {row[0] for row in conn.exec_driver_sql(f'SELECT id FROM main."{name}"')}
    conn.exec_driver_sql(
        f'INSERT INTO main."{name}" ({names}) SELECT {names} FROM restored."{name}" '
        f'WHERE id NOT IN (SELECT id FROM main."{name}")'
    )
    changed = [c for c in columns if c != "id"]
    assignments = ", ".join(f'"{c}" = ?' for c in changed)
    for row in conn.exec_driver_sql(f'SELECT {names} FROM restored."{name}"').mappings():
        if row["id"] in have:
            conn.exec_driver_sql(
                f'UPDATE main."{name}" SET {assignments} WHERE id = ?',
                (*(row[c] for c in changed), row["id"]),
            )


def _restore_postgresql(
    engine: Engine, staff: StaffMember, info: BackupInfo, result: RestoreResult
) -> None:
    """The archive as SQL (``pg_restore --file=-``), run on our connection in one transaction."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    script = _run_pg(
        "pg_restore", ["--clean", "--if-exists", "--no-owner", "--file=-", str(info.path)], env
    )
    with engine.connect() as conn:
        try:
            audit_tables = [name for name in AUDIT_TABLES if _pg_has_table(conn, name)]
            names = ", ".join([table.name for table in LEDGER] + audit_tables)
            conn.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")  # writers wait
            ledger = _read_ledger(conn)
            for name in audit_tables:
                conn.exec_driver_sql(
                    f'CREATE TEMP TABLE "keep_{name}" ON COMMIT DROP AS SELECT * FROM "{name}"'
                )
            _pg_clear_schema(conn)
            _run_pg_script(conn, script)
            conn.exec_driver_sql("RESET ALL")  # the script changes search_path and timeouts
            if info.revision != db.head_revision():
                from alembic import command

                command.upgrade(db.alembic_config(conn), "head")  # joins this transaction
            current_log = "audit_event" in audit_tables and _has_rows(
                conn, 'pg_temp."keep_audit_event"'
            )
            if current_log:  # else (a database that lost everything) the backup's log stays
                for name in audit_tables:
                    _pg_keep_audit(conn, name)
            _carry_forward(conn, staff, ledger, result)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _pg_clear_schema(conn: Connection) -> None:
    """Drop this database's own objects in ``public`` first (in the restore's transaction).

    ``pg_restore --clean`` drops only what the archive holds; a table that a later migration
    added (and its foreign keys to the archive's tables) would stop it, and a function a later
    migration made would collide with that migration running again on the older backup.
    Extensions' objects stay: the archive's script drops and creates the extension itself.
    """
    not_extension = (
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
    )
    relations = conn.exec_driver_sql(
        "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
        "AND " + not_extension.format(oid="c.oid")
    ).all()
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for kind in ("r", "p", "m", "v", "S"):  # tables first: their sequences go with them
        for relkind, name in relations:
            if relkind == kind:
                conn.exec_driver_sql(f'DROP {kinds[kind]} IF EXISTS public."{name}" CASCADE')
    routines = conn.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = "
        "p.pronamespace WHERE n.nspname = 'public' AND " + not_extension.format(oid="p.oid")
    ).scalars()
    for signature in list(routines):
        conn.exec_driver_sql(f"DROP ROUTINE IF EXISTS {signature} CASCADE")


def _pg_has_table(conn: Connection, name: str) -> bool:
    found = conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": f'public."{name}"'}).scalar()
    return found is not None


def _pg_columns(conn: Connection, name: str, schema: str) -> list[str]:
    return [
        str(row[0])
        for row in conn.exec_driver_sql(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%(t)s) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            {"t": f'{schema}."{name}"'},
        )
    ]


def _pg_keep_audit(conn: Connection, name: str) -> None:
    """The current audit rows back in place of the backup's (kept aside before the restore).

    The table's append-only triggers are off for this one transaction only, as the table's
    owner (who restored it) may; they are on again before anything else runs.
    """
    kept = f'pg_temp."keep_{name}"'
    columns = ", ".join(
        f'"{c}"'
        for c in _pg_columns(conn, f"keep_{name}", "pg_temp")
        if c in _pg_columns(conn, name, "public")
    )
    conn.exec_driver_sql(f'ALTER TABLE "{name}" DISABLE TRIGGER USER')
    conn.exec_driver_sql(f'DELETE FROM "{name}"')
    conn.exec_driver_sql(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM {kept}')
    conn.exec_driver_sql(f'ALTER TABLE "{name}" ENABLE TRIGGER USER')


def _run_pg_script(conn: Connection, script: str) -> None:
    """Run pg_restore's SQL: statements in batches, ``COPY ... FROM stdin`` blocks as copies."""
    raw = conn.connection.driver_connection
    batch: list[str] = []
    with raw.cursor() as cursor:  # type: ignore[union-attr]

        def flush() -> None:
            sql = "\n".join(batch).strip()
            batch.clear()
            if sql:
                cursor.execute(sql)

        lines = iter(script.splitlines())
        for line in lines:
            if line.startswith("\\"):
                if line.startswith(("\\restrict", "\\unrestrict", "\\connect")):
                    continue  # psql meta-commands of the dump's framing
                raise BackupError("the archive holds a psql command this restore does not run")
            if line.startswith("COPY ") and line.endswith("FROM stdin;"):
                flush()
                data: list[str] = []
                for row in lines:
                    if row == "\\.":
                        break
                    data.append(row + "\n")
                with cursor.copy(line[:-1]) as copy:
                    copy.write("".join(data))
                continue
            batch.append(line)
        flush()


# --- carrying the ledger forward -------------------------------------------------------------


def _raw(table: Table) -> TableClause:
    """*table* with its encrypted columns as plain text: rows are moved as stored, never read."""
    columns = [
        column(c.name, Text() if isinstance(c.type, EncryptedText) else c.type)
        for c in table.columns
    ]
    return table_clause(table.name, *columns)


def _sequence_tables() -> list[str]:
    return [
        t.name
        for t in metadata.sorted_tables
        if "id" in t.columns and isinstance(t.columns["id"].type, Integer)
    ]


def _read_sequences(conn: Connection) -> dict[str, int]:
    """How far each table's id has gone: sqlite_sequence, or PostgreSQL's sequences."""
    if conn.dialect.name == "sqlite":
        return {
            str(name): int(seq)
            for name, seq in conn.exec_driver_sql("SELECT name, seq FROM main.sqlite_sequence")
        }
    found: dict[str, int] = {}
    for name in _sequence_tables():
        if not _pg_has_table(conn, name):  # a table of a migration this database lacks
            continue
        sequence = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": f'public."{name}"'}
        ).scalar()
        if sequence is None:
            continue
        value, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one()
        found[name] = int(value) if called else int(value) - 1
    return found


def _read_ledger(conn: Connection) -> _Ledger:
    def rows(table: Table) -> list[dict[str, Any]]:
        raw = _raw(table)
        query = select(raw).order_by(raw.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]

    receipts, tasks, restricted = (rows(table) for table in LEDGER)
    return _Ledger(receipts, tasks, restricted, _read_sequences(conn))


def _carry_forward(
    conn: Connection, staff: StaffMember, ledger: _Ledger, result: RestoreResult
) -> None:
    """Make the restored data agree with the current ledger; see the module docstring."""
    receipts_raw, tasks_raw, restricted_raw = (_raw(table) for table in LEDGER)
    restored = {
        row.id: (row.subject_type, row.subject_id)
        for row in conn.execute(
            select(receipts_raw.c.id, receipts_raw.c.subject_type, receipts_raw.c.subject_id)
        )
    }
    later: list[dict[str, Any]] = []
    for receipt in ledger.receipts:
        known = restored.get(receipt["id"])
        if known is None:
            later.append(receipt)
        elif known != (receipt["subject_type"], receipt["subject_id"]):
            raise ForeignBackup(
                f"erasure receipt #{receipt['id']} is about another subject in the backup than "
                "in this database: the backup is not of this database; nothing was changed"
            )
    session = Session(bind=conn)
    _secure_delete(conn)
    for receipt in later:  # oldest first, as they were made
        result.replayed_receipts += 1
        if receipt["subject_type"] == ORGANISATION:
            result.organisations_erased += _destroy_organisation(session, receipt["subject_id"])
        elif receipt["subject_type"] == ADMINISTRATOR:
            result.administrators_erased += _destroy_administrator(session, receipt["subject_id"])
        else:
            result.other_receipts += 1
    session.flush()
    for receipt in ledger.receipts:
        values = {k: v for k, v in receipt.items() if k != "id"}
        if receipt["id"] in restored:
            conn.execute(update(receipts_raw).where(receipts_raw.c.id == receipt["id"]), values)
        else:
            conn.execute(insert(receipts_raw), receipt)
    receipt_ids = [receipt["id"] for receipt in ledger.receipts]
    for raw, rows in ((tasks_raw, ledger.tasks), (restricted_raw, ledger.restricted)):
        _carry_rows(conn, raw, rows, receipt_ids)
    result.tasks_carried = len(ledger.tasks)
    result.pending_tasks = sum(1 for task in ledger.tasks if task["state"] == "pending")
    result.restricted_carried = len(ledger.restricted)
    _keep_sequences(conn, ledger)
    audit.record(
        session,
        staff,
        RESTORE_ACTION,
        "database",
        None,
        backup_revision=result.info.revision,
        backup_receipts=result.info.receipt_high_water,
        replayed=result.replayed_receipts,
        organisations=result.organisations_erased,
        administrators=result.administrators_erased,
        tasks=result.tasks_carried,
        pending_tasks=result.pending_tasks,
        restricted=result.restricted_carried,
    )
    session.flush()
    session.close()


def _carry_rows(
    conn: Connection, raw: TableClause, rows: list[dict[str, Any]], receipt_ids: list[int]
) -> None:
    """Rows of the current ledger win: the backup's rows of those receipts go, theirs come."""
    mine = {row["id"] for row in rows}
    taken = {row.id: row.receipt_id for row in conn.execute(select(raw.c.id, raw.c.receipt_id))}
    clash = [
        row["id"] for row in rows if row["id"] in taken and taken[row["id"]] != row["receipt_id"]
    ]
    if clash:
        raise ForeignBackup(
            f"{raw.name} #{clash[0]} belongs to another erasure receipt in the backup: the "
            "backup is not of this database; nothing was changed"
        )
    stale = [i for i, receipt in taken.items() if receipt in set(receipt_ids) and i not in mine]
    if stale:
        conn.execute(delete(raw).where(raw.c.id.in_(stale)))
    for row in rows:
        if row["id"] in taken:
            values = {k: v for k, v in row.items() if k != "id"}
            conn.execute(update(raw).where(raw.c.id == row["id"]), values)
        else:
            conn.execute(insert(raw), row)


def _keep_sequences(conn: Connection, ledger: _Ledger) -> None:
    """No id counter goes back: an id handed out before the restore is never handed out again."""
    if conn.dialect.name == "sqlite":
        restored = {
            str(name): int(seq)
            for name, seq in conn.exec_driver_sql("SELECT name, seq FROM restored.sqlite_sequence")
        }
        for name in sorted(set(ledger.sequences) | set(restored)):
            value = max(ledger.sequences.get(name, 0), restored.get(name, 0))
            changed = conn.exec_driver_sql(
                "UPDATE main.sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (value, name)
            ).rowcount
            if not changed:
                conn.exec_driver_sql(
                    "INSERT INTO main.sqlite_sequence (name, seq) VALUES (?, ?)", (name, value)
                )
        return
    after = _read_sequences(conn)
    for name in _sequence_tables():
        if name not in after:
            continue
        top = conn.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{name}"').scalar_one()
        value = max(ledger.sequences.get(name, 0), after[name], int(top))
        if value > 0:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence(%(t)s, 'id'), %(v)s, true)",
                {"t": f'public."{name}"', "v": value},
            )


# --- destroying a subject's local data again -------------------------------------------------


def _secure_delete(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")


def _destroy_organisation(session: Session, organisation_id: int) -> int:
    """The rows :func:`erasure.erase_organisation` deletes; 1 if the school was in the backup."""
    people = list(
        session.scalars(
            select(Administrator.id).where(Administrator.organisation_id == organisation_id)
        )
    )
    session.execute(
        delete(ProviderLink).where(
            ProviderLink.subject_type == ORGANISATION, ProviderLink.subject_id == organisation_id
        )
    )
    for person in people:
        _destroy_administrator(session, person)
    session.execute(delete(Subscription).where(Subscription.organisation_id == organisation_id))
    session.execute(delete(LegalHold).where(LegalHold.organisation_id == organisation_id))
    gone = session.execute(delete(Organisation).where(Organisation.id == organisation_id))
    return int(gone.rowcount or 0)


def _destroy_administrator(session: Session, administrator_id: int) -> int:
    """The rows :func:`erasure.erase_administrator` deletes; 1 if the person was there."""
    session.execute(
        delete(ProviderLink).where(
            ProviderLink.subject_type == ADMINISTRATOR, ProviderLink.subject_id == administrator_id
        )
    )
    session.execute(delete(ConsentEvent).where(ConsentEvent.administrator_id == administrator_id))
    gone = session.execute(delete(Administrator).where(Administrator.id == administrator_id))
    return int(gone.rowcount or 0)
