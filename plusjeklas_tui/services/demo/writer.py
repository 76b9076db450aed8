"""Writing the demo into a database: one transaction, one ``executemany`` per table and batch."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import Administrator, ConsentEvent, Organisation, Subscription
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.demo.generator import DEFAULT_SEED
from plusjeklas_tui.services.demo.pipeline import (
    Plan,
    encoded_batches,
    encoded_batches_in_worker,
    use_worker,
)
from plusjeklas_tui.services.demo.privacy_office import add_privacy_office
from plusjeklas_tui.services.demo.records import DemoCounts
from plusjeklas_tui.services.demo.rows import INSERT_COLUMNS, Rows, next_ids
from plusjeklas_tui.services.demo.values import BRIN_CAPACITY
from plusjeklas_tui.services.organisation_list import search_index_suspended
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import StaffMember

DEFAULT_SCHOOLS = 200
BULK_CACHE_KIB = 256 * 1024
DEFAULT_CACHE_KIB = 2_000  # SQLite's default page cache

ProgressCallback = Callable[[int, int], None]
"""Called with (schools written so far, schools in total) after each batch."""


def _insert_sql(table_name: str, paramstyle: str) -> str:
    columns = INSERT_COLUMNS[table_name]
    mark = "?" if paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {table_name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )


def _write_rows(conn: Connection, rows: Rows) -> None:
    """One driver-level ``executemany`` per table (parents first).

    Core ``insert()`` would run every value through SQLAlchemy's per-row parameter processing,
    which measured as the largest single cost of a 100,000-school demo; the codec in
    :mod:`~plusjeklas_tui.services.demo.rows` does the little conversion these columns need.
    """
    for table_name, table_rows in rows.items():
        if table_rows:
            conn.exec_driver_sql(_insert_sql(table_name, conn.dialect.paramstyle), table_rows)


def _advance_sequences(conn: Connection) -> None:
    """PostgreSQL: explicit ids do not move the serial sequences; move them past the new rows."""
    if conn.dialect.name != "postgresql":
        return
    for name in INSERT_COLUMNS:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"
            )
        )


def _count(conn: Connection, model: Any) -> int:
    return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


def count_schools(engine: Engine) -> int:
    with engine.connect() as conn:
        return _count(conn, Organisation)


def count_rows(engine: Engine) -> DemoCounts:
    """How many schools, administrators, subscriptions and consent events the database holds."""
    with engine.connect() as conn:
        return DemoCounts(
            *(_count(conn, m) for m in (Organisation, Administrator, Subscription, ConsentEvent))
        )


def generate(
    engine: Engine,
    keyring: Keyring,
    *,
    schools: int = DEFAULT_SCHOOLS,
    seed: int = DEFAULT_SEED,
    actor: StaffMember | str,
    today: dt.date | None = None,
    progress: ProgressCallback | None = None,
    batch_schools: int | None = None,
    parallel: bool | None = None,
) -> DemoCounts:
    """Write *schools* generated schools (with everything around them) into *engine*'s database.

    The database must be migrated and hold no organisations yet: demo ids are assigned here,
    and demo BRINs would collide with real ones. Everything is one transaction: an error
    leaves the database as it was. The generation is audited (``demo.generate``, counts only).
    The privacy office's few records (:mod:`.privacy_office`) are added in the same transaction,
    by *actor* through the services (each audited as staff's own work would be).

    ``parallel`` runs generation and encryption in a second process while this one writes;
    by default from :data:`~.pipeline.PARALLEL_FROM_SCHOOLS` schools on, where fork is
    available. The data is the same either way. The garbage collector is paused meanwhile: the
    rows hold no reference cycles, and its scans of millions of fresh tuples cost a quarter of
    the time.
    """
    if not 0 <= schools <= BRIN_CAPACITY:
        raise PlusjeklasError(f"--schools: must be between 0 and {BRIN_CAPACITY}")
    db.ensure_ready(engine)
    totals = dict.fromkeys(INSERT_COLUMNS, 0)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            _set_sqlite_cache(conn, BULK_CACHE_KIB)
            try:
                with conn.begin():
                    if conn.execute(
                        select(func.count()).select_from(Organisation.__table__)
                    ).scalar():
                        raise PlusjeklasError(
                            "the database already holds organisations; demo data is only "
                            "generated into an empty database"
                        )
                    plan = Plan(
                        schools, seed, today or dt.date.today(), batch_schools, keyring,
                        next_ids(conn), conn.dialect.name, utcnow(),
                    )  # fmt: skip
                    batches = (
                        encoded_batches_in_worker(plan)
                        if use_worker(parallel, schools)
                        else encoded_batches(plan)
                    )
                    # the search index's per-row triggers would more than double the time
                    with search_index_suspended(conn):
                        for done, rows in batches:
                            _write_rows(conn, rows)
                            for table_name, table_rows in rows.items():
                                totals[table_name] += len(table_rows)
                            if progress is not None:
                                progress(done, schools)
                    _advance_sequences(conn)
                    counts = DemoCounts(
                        schools=totals["organisation"],
                        administrators=totals["administrator"],
                        subscriptions=totals["subscription"],
                        consent_events=totals["consent_event"],
                    )
                    with Session(bind=conn) as session:
                        audit.record(
                            session, actor, "demo.generate", "organisation", None,
                            seed=seed, **vars(counts),
                        )  # fmt: skip
                        # once per demo, not per school: requests, breaches, feedback marks
                        add_privacy_office(
                            session, _staff(actor), seed=seed, today=plan.today, now=plan.now
                        )
                        session.flush()
            finally:
                _set_sqlite_cache(conn, DEFAULT_CACHE_KIB)
    finally:
        if gc_was_enabled:
            gc.enable()
    return counts


def _staff(actor: StaffMember | str) -> StaffMember:
    """The staff member the demo's privacy-office records are made by (an editor at least)."""
    return actor if isinstance(actor, StaffMember) else StaffMember(actor, "editor")


def _set_sqlite_cache(conn: Connection, kib: int) -> None:
    """A big page cache keeps the random-order index inserts (blind index, name) in memory."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{kib}")
        conn.commit()
