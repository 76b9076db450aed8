"""Database trouble as staff see it: one clear sentence from the catalogue, never a traceback.

The app keeps running when the database is locked by someone else, cannot be opened, or was
migrated by a newer version while the app was open. Screens that load in the background
(dashboard, record) and the forms that save call :func:`check_database` first, so a database
changed under the app is noticed before anything is read from or written to it, and hand
any failure to :func:`database_message` for the text to show. Error texts from the driver are
never shown: they may quote values (a duplicate key, a row), and they are not in the
configured language.

After a failure :func:`forget_connections` empties the pool, so the next attempt (the next
refresh, the next save) opens the database afresh: a file restored in place, or a server
that came back, is used again without restarting the app.
"""

from __future__ import annotations

import sqlite3
import stat
import weakref
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from plusjeklas_tui.db import current_revision, head_revision, known_revisions
from plusjeklas_tui.errors import DatabaseNotReady
from plusjeklas_tui.tui.i18n import t

LOCKED_HINTS = ("database is locked", "database table is locked", "lock timeout", "deadlock")
UNAVAILABLE_HINTS = (
    "unable to open database file",
    "disk i/o error",
    "file is not a database",
    "could not connect",
    "connection refused",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
)


class DatabaseProblem(DatabaseNotReady):
    """The database cannot be used as it is now; *kind* says why.

    ``unavailable`` (the SQLite file is gone or is not a file), ``newer`` (migrated by a newer
    plusjeklas), ``older`` (needs ``db upgrade``) or ``missing`` (no migration at all: an
    empty database where the database was).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"the database cannot be used: {kind}")


_files: weakref.WeakKeyDictionary[Engine, tuple[int, int]] = weakref.WeakKeyDictionary()
"""Per engine, the SQLite file (device, inode) its connections were checked against."""


def _sqlite_path(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _check_file(engine: Engine) -> None:
    """A SQLite file that was removed, or replaced by something else, is noticed here.

    Open connections keep reading (and writing!) a removed file without any error, so the
    path is looked at before each use: gone, or not a file, is a problem; a different file
    at the path (restored from a backup) makes the pool start afresh on it.
    """
    path = _sqlite_path(engine)
    if path is None:
        return
    try:
        status = path.stat()
    except OSError:
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        _files.pop(engine, None)
        forget_connections(engine)
        raise DatabaseProblem("unavailable")
    identity = (status.st_dev, status.st_ino)
    if _files.get(engine, identity) != identity:
        forget_connections(engine)
    _files[engine] = identity


def check_database(engine: Engine) -> None:
    """Raise :class:`DatabaseProblem` unless the database is there and at this code's head.

    A ``stat`` of the SQLite file and one small query (the ``alembic_version`` row); the
    revisions known to this code are read from the migration files once per process.
    """
    _check_file(engine)
    current = current_revision(engine)
    if current == head_revision():
        return
    if current is None:
        raise DatabaseProblem("missing")
    raise DatabaseProblem("older" if current in known_revisions() else "newer")


def _driver_text(error: BaseException) -> str:
    original = error.orig if isinstance(error, DBAPIError) else error
    return str(original).lower()


def database_problem(error: BaseException) -> str | None:
    """``locked``, ``unavailable``, ``newer``, ``older`` or ``missing``; None when *error*
    is not one of the database problems this app explains (it is then reported as
    unexpected)."""
    if isinstance(error, DatabaseProblem):
        return error.kind
    if isinstance(error, DBAPIError | sqlite3.Error):
        text = _driver_text(error)
        if any(hint in text for hint in LOCKED_HINTS):
            return "locked"
        if any(hint in text for hint in UNAVAILABLE_HINTS) or (
            isinstance(error, DBAPIError) and error.connection_invalidated
        ):
            return "unavailable"
    return None


def database_message(error: BaseException) -> str | None:
    """The catalogue's sentence for a database problem, or None for any other error."""
    problem = database_problem(error)
    return None if problem is None else t(f"db.{problem}")


def forget_connections(engine: Engine) -> None:
    """Close the pooled connections, so the next attempt opens the database again.

    Connections in use elsewhere are not touched: they are dropped when given back.
    """
    engine.dispose()
