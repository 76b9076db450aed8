"""Engines, sessions, SQLite pragmas, migrations and the "is this database ready" check.

Alembic is imported only by the functions that migrate: it costs more start-up time than the
rest of this module together, and the staff app checks the revision on every start. That check
reads ``alembic_version`` with plain SQL and takes the revisions from the migration files'
``revision = ...`` lines (:func:`migration_revisions`); a test keeps that equal to Alembic's view.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import DatabaseNotReady
from plusjeklas_tui.sqltypes import KEYRING_ATTRIBUTE

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, keyring: Keyring | None = None, **kwargs: Any) -> Engine:
    """An engine whose connections are configured for shared use, carrying *keyring*."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if keyring is not None:
        attach_keyring(engine, keyring)
    return engine


SQLITE_FILE_MODE = 0o660
"""A new SQLite file is for the app's group only (less what the umask takes away): SQLite
would create it 0644, readable by every account on the host. Its -wal and -shm files take the
database file's mode."""


def _create_private(path: Path) -> None:
    """Create the database file with :data:`SQLITE_FILE_MODE` before SQLite creates it."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, SQLITE_FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # a read-only place or a bad path: SQLite's own error says it better
    os.close(descriptor)


def attach_keyring(engine: Engine, keyring: Keyring) -> None:
    setattr(engine.dialect, KEYRING_ATTRIBUTE, keyring)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer share the file; busy_timeout makes writers wait, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Erased personal data must not linger in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: no half-written records."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# --- migrations ------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


_REVISION_LINE = re.compile(
    r"^(?P<name>revision|down_revision)\s*(?::[^=]*)?=\s*(?P<value>.+?)\s*$", re.MULTILINE
)


@functools.cache
def migration_revisions() -> dict[str, tuple[str, ...]]:
    """Each migration's revision id -> the revisions it follows, read from the files' text.

    Reads the module-level ``revision = "..."`` and ``down_revision = ...`` lines of
    ``migrations/versions/*.py`` without importing them or Alembic. Empty when a file does
    not have both lines as literals; callers then ask Alembic.
    """
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        if path.name.startswith("__"):
            continue
        found: dict[str, Any] = {}
        for match in _REVISION_LINE.finditer(path.read_text(encoding="utf-8")):
            try:
                found.setdefault(match["name"], ast.literal_eval(match["value"]))
            except (ValueError, SyntaxError):
                return {}
        revision, down = found.get("revision"), found.get("down_revision", ...)
        if not isinstance(revision, str) or down is ...:
            return {}
        downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)
        revisions[revision] = downs
    return revisions


def alembic_revisions() -> dict[str, tuple[str, ...]]:
    """The same as :func:`migration_revisions`, as Alembic reads it (imports every migration)."""
    from alembic.script import ScriptDirectory

    revisions: dict[str, tuple[str, ...]] = {}
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        down = script.down_revision
        revisions[script.revision] = (
            () if down is None else (down,) if isinstance(down, str) else tuple(down)
        )
    return revisions


def head_revision() -> str:
    """The newest migration of this code (the revision no other migration follows)."""
    revisions = migration_revisions()
    heads = sorted(set(revisions) - {down for downs in revisions.values() for down in downs})
    if len(heads) == 1:
        return heads[0]
    from alembic.script import ScriptDirectory  # unusual files or several heads: ask Alembic

    return ScriptDirectory.from_config(alembic_config()).get_heads()[0]


def known_revisions() -> set[str]:
    """Every revision id this code has a migration for."""
    return set(migration_revisions() or alembic_revisions())


def current_revision(engine: Engine) -> str | None:
    """The revision the database is migrated to; None when no migration was ever applied."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise DatabaseNotReady(
            f"the database at {safe_url(engine)} records several revisions "
            f"({', '.join(sorted(versions))}); it was not migrated by plusjeklas"
        )
    return versions[0] if versions else None


@contextlib.contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection safe for schema changes.

    On SQLite, batch migrations copy a table, drop the original and rename the copy; with
    ``foreign_keys=ON`` dropping a parent fires ``ON DELETE CASCADE`` and silently deletes the
    children. So foreign keys are off while migrating, and ``foreign_key_check`` must come back
    empty before the transaction commits.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        tables = sorted({row[0] for row in problems})
                        raise DatabaseNotReady(
                            "migration left rows whose parent is missing in: "
                            + ", ".join(tables)
                            + "; the migration was rolled back"
                        )
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def ensure_ready(engine: Engine) -> None:
    """Refuse a database that is not migrated to exactly this code's head, saying what to run."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise DatabaseNotReady(
            f"the database at {safe_url(engine)} is not set up (no migration applied); "
            "run `plusjeklas db upgrade`"
        )
    if current not in known_revisions():
        raise DatabaseNotReady(
            f"the database at {safe_url(engine)} was migrated by a newer version of plusjeklas "
            f"(revision {current}, this version knows up to {head}); upgrade plusjeklas"
        )
    raise DatabaseNotReady(
        f"the database at {safe_url(engine)} is at revision {current}, this version needs {head}; "
        "run `plusjeklas db upgrade`"
    )


def safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def sqlite_checkpoint(engine: Engine) -> None:
    """Fold the WAL into the main file (used before raw-file inspection and backups)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
