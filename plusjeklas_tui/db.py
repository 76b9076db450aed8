"""Engines, sessions, SQLite pragmas, migrations and the "is this database ready" check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import DatabaseNotReady
from plusjeklas_tui.sqltypes import KEYRING_ATTRIBUTE

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, keyring: Keyring | None = None, **kwargs: Any) -> Engine:
    """An engine whose connections are configured for shared use, carrying *keyring*."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if keyring is not None:
        attach_keyring(engine, keyring)
    return engine


def attach_keyring(engine: Engine, keyring: Keyring) -> None:
    setattr(engine.dialect, KEYRING_ATTRIBUTE, keyring)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer share the file; busy_timeout makes writers wait, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
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
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


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
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
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
