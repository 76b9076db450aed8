"""Field-encryption keys: create the key file, rotate to a new key, report which key holds what.

Rotation is resumable and never leaves a row that no key in the key file can read:

1. The new key is written to the key file as ``[new, old]`` *before* any row changes. From then
   on every row is readable whatever happens: rows still carry the old key, rotated rows the new
   one, and both are in the file. A rotation that finds several keys in the file was interrupted;
   it keeps that primary and carries on.
2. Rows whose tokens do not carry the primary key id are selected in primary-key batches (a
   ``substr`` comparison in SQL, so finished rows cost nothing), decrypted, re-encrypted and their
   blind indexes recomputed, one committed transaction per batch.
3. Only when no row is left under an old key is the key file rewritten with the primary alone.

The work is done on lightweight Core constructs typed as plain ``Text``, so the values read and
written are the raw tokens and the ORM's :class:`~plusjeklas_tui.sqltypes.EncryptedText` never
decrypts or encrypts them a second time.

Sessions that are open while keys rotate keep the keyring they loaded at start: they cannot read
rows already rotated, and what they save is written under the old key (a later pass, or the next
run, picks that up). Rotate while no other session is open; the key file is read when one opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    TableClause,
    Text,
    bindparam,
    column,
    func,
    or_,
    select,
    table,
    union,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from plusjeklas_tui import db
from plusjeklas_tui.config import Settings
from plusjeklas_tui.crypto import (
    KEY_ID_LENGTH,
    TOKEN_VERSION,
    FieldKey,
    Keyring,
    create_key_file,
    key_file_exists_message,
    load_key_file,
    replace_key_file,
)
from plusjeklas_tui.errors import KeyProblem, PlusjeklasError
from plusjeklas_tui.models import index_value, metadata
from plusjeklas_tui.services import audit
from plusjeklas_tui.sqltypes import EncryptedText
from plusjeklas_tui.staff import Permission, StaffMember

DEFAULT_BATCH_SIZE = 500
MAX_PASSES = 3
"""Full passes over the tables before giving up on rows other sessions keep writing."""

Progress = Callable[[str, int, int], None]
"""``progress(table, rows_done, rows_to_do)``, called after each committed batch."""


# --- which columns are encrypted -------------------------------------------------------------


@dataclass(frozen=True)
class EncryptedTable:
    """A table's encrypted columns and the blind indexes computed from them."""

    name: str
    id_column: str
    encrypted: tuple[tuple[str, str], ...]
    """(column name, encryption context) pairs."""
    indexes: tuple[tuple[str, str], ...]
    """(index column name, name of the encrypted column it indexes) pairs."""

    def raw(self) -> TableClause:
        """The table as plain Text columns: values in and out are the stored tokens."""
        return table(
            self.name,
            column(self.id_column, Integer),
            *(column(name, Text) for name, _ in self.encrypted),
            *(column(name, String) for name, _ in self.indexes),
        )


def encrypted_tables() -> list[EncryptedTable]:
    """Every table with :class:`EncryptedText` columns, in dependency order."""
    found = []
    for tbl in metadata.sorted_tables:
        encrypted = tuple(
            (c.name, c.type.context) for c in tbl.columns if isinstance(c.type, EncryptedText)
        )
        if not encrypted:
            continue
        (id_col,) = tbl.primary_key.columns
        indexes = tuple(
            (c.name, c.info["blind_index_of"]) for c in tbl.columns if "blind_index_of" in c.info
        )
        found.append(EncryptedTable(tbl.name, id_col.name, encrypted, indexes))
    return found


def _prefix(key_id: str) -> str:
    return f"{TOKEN_VERSION}.{key_id}."


def _key_id_sql(col: ColumnElement[Any]) -> ColumnElement[str]:
    """The key id inside a stored token, computed in SQL (works on SQLite and PostgreSQL)."""
    return func.substr(col, len(TOKEN_VERSION) + 2, KEY_ID_LENGTH)


def _stale(raw: TableClause, spec: EncryptedTable, primary_id: str) -> ColumnElement[bool]:
    """Rows with any encrypted value that does not carry *primary_id*.

    An exact ``substr`` comparison rather than ``NOT LIKE``: SQLite's LIKE ignores case and
    would need escaping; this is just as cheap and exact on both engines. NULLs never match.
    """
    prefix = _prefix(primary_id)
    return or_(*(func.substr(raw.c[name], 1, len(prefix)) != prefix for name, _ in spec.encrypted))


# --- status ------------------------------------------------------------------------------------


@dataclass
class KeyStatus:
    """Which keys are loaded and how many rows each one still encrypts."""

    source: str
    key_ids: list[str]
    rows_by_key: dict[str, dict[str, int]]
    """table -> key id -> rows with at least one value under that key."""
    rows_not_under_primary: int

    @property
    def primary_key_id(self) -> str:
        return self.key_ids[0]

    @property
    def unknown_key_ids(self) -> list[str]:
        """Key ids found in the data but missing from the loaded keys: those rows are unreadable."""
        used = {k for per_table in self.rows_by_key.values() for k in per_table}
        return sorted(used - set(self.key_ids))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "keys_loaded": len(self.key_ids),
            "primary_key_id": self.primary_key_id,
            "key_ids": self.key_ids,
            "tables": self.rows_by_key,
            "rows_not_under_primary": self.rows_not_under_primary,
            "unknown_key_ids": self.unknown_key_ids,
            "rotation_pending": self.rows_not_under_primary > 0 or len(self.key_ids) > 1,
        }


def key_source(settings: Settings) -> str:
    """Where the keys come from, for people (never the key itself)."""
    if settings.keys.env:
        return f"environment variable {settings.keys.env}"
    return f"key file {settings.key_file}"


def rows_by_key(engine: Engine) -> dict[str, dict[str, int]]:
    """Per table, how many rows hold at least one value encrypted under each key id."""
    result: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for spec in encrypted_tables():
            raw = spec.raw()
            id_col = raw.c[spec.id_column]
            parts = [
                select(id_col.label("row_id"), _key_id_sql(raw.c[name]).label("key_id")).where(
                    raw.c[name].is_not(None)
                )
                for name, _ in spec.encrypted
            ]
            pairs = union(*parts).subquery()  # UNION drops a row's repeats of one key id
            query = (
                select(pairs.c.key_id, func.count())
                .group_by(pairs.c.key_id)
                .order_by(pairs.c.key_id)
            )
            result[spec.name] = {key_id: count for key_id, count in conn.execute(query)}
    return result


def count_not_under(engine: Engine, primary_id: str) -> dict[str, int]:
    """Per table, rows with a value not (yet) encrypted under *primary_id*."""
    counts = {}
    with engine.connect() as conn:
        for spec in encrypted_tables():
            raw = spec.raw()
            query = select(func.count()).select_from(raw).where(_stale(raw, spec, primary_id))
            counts[spec.name] = conn.execute(query).scalar_one()
    return counts


def key_status(engine: Engine, keyring: Keyring, *, source: str) -> KeyStatus:
    """The numbers behind ``plusjeklas keys status``: non-personal, safe to print and log."""
    return KeyStatus(
        source=source,
        key_ids=[k.key_id for k in keyring.keys],
        rows_by_key=rows_by_key(engine),
        rows_not_under_primary=sum(count_not_under(engine, keyring.primary.key_id).values()),
    )


# --- the key file ------------------------------------------------------------------------------


def _refuse_env(settings: Settings, what: str) -> None:
    if settings.keys.env:
        raise KeyProblem(
            f"keys.env is set: the keys come from the environment variable {settings.keys.env}, "
            f"which is managed outside plusjeklas; cannot {what} here. Change the variable "
            "yourself, or configure keys.file instead"
        )


@contextlib.contextmanager
def _rotation_lock(key_file: Path) -> Iterator[None]:
    """One rotation at a time per key file: two would each write their own new key."""
    lock_path = key_file.with_name(key_file.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise KeyProblem(
                f"another key rotation holds {lock_path}; wait for it to finish"
            ) from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock, as does the process dying


def _key_ids_in_database(settings: Settings) -> list[str]:
    """Key ids the configured database already uses; empty when there is no such database.

    Best effort: ``keys init`` needs no database, but when one exists and holds encrypted data,
    a fresh key could never read it and would split the data over two keys.
    """
    url = settings.database_url
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        file = url.split("///", 1)[-1]
        if not file or file == ":memory:" or not Path(file).exists():
            return []
    else:
        connect_args["connect_timeout"] = 5
    engine = db.make_engine(url, connect_args=connect_args)
    try:
        if db.current_revision(engine) is None:
            return []
        return sorted({k for per in rows_by_key(engine).values() for k in per})
    except DBAPIError:
        return []  # unreachable or another schema: nothing this key could clash with
    finally:
        engine.dispose()


def init_key(settings: Settings) -> Path:
    """Create the key file with one new key (mode 0600); refuse to overwrite anything."""
    _refuse_env(settings, "create a key")
    path = settings.key_file
    if path.exists() or path.is_symlink():
        raise KeyProblem(key_file_exists_message(path))
    in_use = _key_ids_in_database(settings)
    if in_use:
        raise KeyProblem(
            f"the database already holds data encrypted with key(s) {', '.join(in_use)}, which "
            f"a new key cannot read; restore the key file that holds them to {path} (or point "
            "keys.file at it) instead of creating a new key"
        )
    create_key_file(path, Keyring([FieldKey.generate()]))
    return path


# --- rotation ----------------------------------------------------------------------------------


@dataclass
class RotationReport:
    """What a rotation did. Key ids are not secret (every stored token carries one)."""

    primary_key_id: str
    retired_key_ids: list[str]
    resumed: bool
    complete: bool
    batches: int = 0
    rows_reencrypted: dict[str, int] = field(default_factory=dict)
    rows_left: int = 0
    """Rows still under an old key when the rotation stopped (0 when complete)."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows_reencrypted.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "resumed": self.resumed,
            "primary_key_id": self.primary_key_id,
            "retired_key_ids": self.retired_key_ids,
            "batches": self.batches,
            "rows_reencrypted": self.rows_reencrypted,
            "total_rows": self.total_rows,
            "rows_left": self.rows_left,
        }


def _check_readable(engine: Engine, keyring: Keyring) -> None:
    """Refuse to start when some stored value could not be read with *keyring*.

    Rotating would otherwise add a key to a file that is the wrong one to begin with.
    Checks every key id in use, and that one value per column and key id really decrypts.
    """
    with engine.connect() as conn:
        for spec in encrypted_tables():
            raw = spec.raw()
            for name, context in spec.encrypted:
                col = raw.c[name]
                used = conn.execute(
                    select(_key_id_sql(col)).where(col.is_not(None)).distinct()
                ).scalars()
                for key_id in used:
                    token = conn.execute(
                        select(col)
                        .where(func.substr(col, 1, len(_prefix(key_id))) == _prefix(key_id))
                        .limit(1)
                    ).scalar_one_or_none()
                    if token is None:  # not a token at all (substr matched something odd)
                        raise KeyProblem(f"field {context}: holds a value that is not a token")
                    keyring.decrypt(token, context)  # raises KeyProblem naming field and key


def _reencrypt_params(
    spec: EncryptedTable, keyring: Keyring, row: Any, id_key: str
) -> dict[str, Any]:
    """Bind parameters for one row: old tokens (the guard), new tokens, new blind indexes."""
    primary_prefix = _prefix(keyring.primary.key_id)
    params: dict[str, Any] = {id_key: row[0]}
    plain: dict[str, str | None] = {}
    for position, (name, context) in enumerate(spec.encrypted, start=1):
        token = row[position]
        params[f"old_{name}"] = token
        if token is None:
            plain[name] = None
            params[f"new_{name}"] = None
            continue
        try:
            value = keyring.decrypt(token, context)
        except KeyProblem as exc:
            raise KeyProblem(
                f"{exc} (row id {row[0]}); rotation stopped before writing this batch, "
                "every row stays readable with the key file"
            ) from exc
        plain[name] = value
        if token.startswith(primary_prefix):
            params[f"new_{name}"] = token
        else:
            params[f"new_{name}"] = keyring.encrypt(plain[name], context)
    for index_name, source in spec.indexes:
        value = plain[source]
        params[f"new_{index_name}"] = (
            None if value is None else keyring.blind_index(index_value(source, value))
        )
    return params


def _rotate_table(
    engine: Engine, spec: EncryptedTable, keyring: Keyring, batch_size: int
) -> Iterator[int]:
    """Re-encrypt *spec*'s stale rows in id order; yields the rows of each committed batch.

    Each batch is read, then written in its own short transaction. The UPDATE only matches
    when the row still holds the tokens that were read, so a value another session changed in
    between is left alone (and picked up by the next pass if it is still stale).
    """
    raw = spec.raw()
    id_col = raw.c[spec.id_column]
    stale = _stale(raw, spec, keyring.primary.key_id)
    id_key = "row_id"
    statement = update(raw).where(id_col == bindparam(id_key))
    for name, _ in spec.encrypted:
        statement = statement.where(
            raw.c[name].is_not_distinct_from(bindparam(f"old_{name}", type_=Text))
        )
    statement = statement.values(
        {name: bindparam(f"new_{name}", type_=Text) for name, _ in spec.encrypted}
        | {name: bindparam(f"new_{name}", type_=String) for name, _ in spec.indexes}
    )
    columns = [raw.c[name] for name, _ in spec.encrypted]
    last_id: int | None = None
    with engine.connect() as conn:
        while True:
            query = select(id_col, *columns).where(stale).order_by(id_col).limit(batch_size)
            if last_id is not None:
                query = query.where(id_col > last_id)
            rows = conn.execute(query).all()
            conn.rollback()  # end the read; the write below is its own short transaction
            if not rows:
                return
            params = [_reencrypt_params(spec, keyring, row, id_key) for row in rows]
            with conn.begin():
                conn.execute(statement, params)
            last_id = rows[-1][0]
            yield len(rows)


def rotate_keys(
    engine: Engine,
    settings: Settings,
    staff: StaffMember,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    stop_after_batches: int | None = None,
) -> RotationReport:
    """Re-encrypt every personal value under a new key; run again to finish an interrupted run.

    ``stop_after_batches`` stops after that many committed batches, as an interruption would
    (tests use it; 0 stops right after the new key is written). The returned report says whether
    the rotation is complete; while it is not, the key file holds both keys.
    """
    staff.require(Permission.MANAGE_KEYS, "rotate the encryption keys")
    if batch_size < 1:
        raise PlusjeklasError(f"batch size must be at least 1, got {batch_size}")
    _refuse_env(settings, "rotate keys")
    db.ensure_ready(engine)
    path = settings.key_file
    with _rotation_lock(path):
        on_file = load_key_file(path)
        _check_readable(engine, on_file)
        resumed = len(on_file.keys) > 1
        if resumed:
            keyring = on_file
        else:
            keyring = Keyring([FieldKey.generate(), *on_file.keys])
            replace_key_file(path, keyring)  # before any row: both keys readable from here on
        db.attach_keyring(engine, keyring)
        primary = keyring.primary
        report = RotationReport(
            primary_key_id=primary.key_id,
            retired_key_ids=[k.key_id for k in keyring.keys[1:]],
            resumed=resumed,
            complete=False,
        )
        stopped = _run_passes(engine, keyring, report, batch_size, progress, stop_after_batches)
        left = sum(count_not_under(engine, primary.key_id).values())
        report.rows_left = left
        if not stopped and left == 0:
            if len(keyring.keys) > 1:
                replace_key_file(path, Keyring([primary]))
            db.attach_keyring(engine, Keyring([primary]))
            report.complete = True
        with db.session_scope(engine) as session:
            audit.record(
                session,
                staff,
                "keys.rotate",
                "keyring",
                None,
                complete=report.complete,
                resumed=report.resumed,
                batches=report.batches,
                rows=report.total_rows,
                rows_left=report.rows_left,
                keys_retired=len(report.retired_key_ids) if report.complete else 0,
            )
    return report


def _run_passes(
    engine: Engine,
    keyring: Keyring,
    report: RotationReport,
    batch_size: int,
    progress: Progress | None,
    stop_after_batches: int | None,
) -> bool:
    """Pass over every table until nothing is stale; True when stopped by *stop_after_batches*."""
    tables = encrypted_tables()
    for spec in tables:
        report.rows_reencrypted.setdefault(spec.name, 0)
    for _ in range(MAX_PASSES):
        if stop_after_batches is not None and report.batches >= stop_after_batches:
            return True
        to_do = count_not_under(engine, keyring.primary.key_id)
        if not any(to_do.values()):
            return False
        for spec in tables:
            if not to_do[spec.name]:
                continue
            done = 0
            with contextlib.closing(_rotate_table(engine, spec, keyring, batch_size)) as batches:
                for rows in batches:
                    done += rows
                    report.batches += 1
                    report.rows_reencrypted[spec.name] += rows
                    if progress is not None:
                        progress(spec.name, done, max(done, to_do[spec.name]))
                    if stop_after_batches is not None and report.batches >= stop_after_batches:
                        return True
    return False


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EncryptedTable",
    "KeyStatus",
    "RotationReport",
    "count_not_under",
    "encrypted_tables",
    "init_key",
    "key_source",
    "key_status",
    "rotate_keys",
    "rows_by_key",
]
