"""Search and dashboard indexes: substring search over organisations, and the dashboard's counts.

The organisations filter matches a case-insensitive substring of name, city, BRIN or
postcode. A ``LIKE '%term%'`` over 100,000 rows reads every row on every key, so:

* **SQLite** keeps a contentless FTS5 table with the ``trigram`` tokenizer (SQLite 3.34 or
  newer), ``organisation_search``, one row per organisation (rowid = ``organisation.id``), kept
  in step by three triggers on ``organisation``. Each value is stored with two U+001F
  characters after it (:data:`PAD`), so every substring of one or two characters is the start
  of some indexed trigram, including one at the very end of a value and values shorter than
  three characters; the list looks short terms up in the trigram vocabulary
  (``organisation_search_vocab``, an ``fts5vocab`` table; see
  ``plusjeklas_tui.services.organisation_list``). Contentless, because the values it indexes
  are not the table's; the triggers hand it the old values to delete.
* **PostgreSQL** gets one ``pg_trgm`` GIN index, ``ix_organisation_search_trgm``, on the four
  columns joined by spaces (:data:`PG_SEARCH_TEXT`); the list asks ``ILIKE '%term%'`` of
  that expression, so the index answers, and then of each column, so a match across two
  columns does not count. (Four indexes, one per column, the planner would not combine for
  an OR of four conditions: it read the whole table instead.) When the extension cannot be
  created (not installed, no permission) the migration says so in a warning and goes on:
  the list then searches with a plain scan.

Both engines also get the dashboard's indexes, declared on the models as well: subscriptions
by status, consent events by purpose and time (with the action, so the month's count reads
the index alone), organisations by creation time (retention of those without a
subscription).

Beware: an SQLite batch migration that recreates ``organisation`` drops its triggers with the
old table; such a migration must call :func:`create_sqlite_triggers` again and rebuild the
index (:func:`fill_sqlite_search`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("plusjeklas_tui.migrations")

SEARCH_TABLE = "organisation_search"
SEARCH_COLUMNS = ("name", "city", "brin", "postcode")
PAD = "char(31, 31)"
"""SQL for what follows every indexed value (two U+001F); see the module docstring."""
MIN_SQLITE = (3, 34, 0)
PG_SEARCH_INDEX = "ix_organisation_search_trgm"
PG_SEARCH_TEXT = " || ' ' || ".join(SEARCH_COLUMNS)
"""The indexed expression; ``organisation_list`` writes the very same one in its queries."""

DASHBOARD_INDEXES = (
    ("ix_subscription_status", "subscription", ["status"]),
    ("ix_consent_event_purpose_time", "consent_event", ["purpose", "occurred_at", "action"]),
    ("ix_organisation_created_at", "organisation", ["created_at"]),
)


def _padded(row: str) -> str:
    return ", ".join(f"{row}.{column} || {PAD}" for column in SEARCH_COLUMNS)


def _search_insert(row: str) -> str:
    return (
        f"INSERT INTO {SEARCH_TABLE} (rowid, {', '.join(SEARCH_COLUMNS)}) "
        f"VALUES ({row}.id, {_padded(row)});"
    )


def _search_delete(row: str) -> str:
    # a contentless table forgets a row only when told exactly what it indexed for it
    return (
        f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, {', '.join(SEARCH_COLUMNS)}) "
        f"VALUES ('delete', {row}.id, {_padded(row)});"
    )


def create_sqlite_triggers() -> None:
    """The three triggers that keep ``organisation_search`` in step with ``organisation``."""
    op.execute(
        f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON organisation BEGIN "
        f"{_search_insert('new')} END"
    )
    op.execute(
        f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON organisation BEGIN "
        f"{_search_delete('old')} END"
    )
    op.execute(
        f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF id, {', '.join(SEARCH_COLUMNS)} "
        f"ON organisation BEGIN {_search_delete('old')} {_search_insert('new')} END"
    )


def fill_sqlite_search() -> None:
    """Index every organisation afresh (after a bulk load, or a table rebuild)."""
    op.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('delete-all')")
    op.execute(
        f"INSERT INTO {SEARCH_TABLE} (rowid, {', '.join(SEARCH_COLUMNS)}) "
        f"SELECT id, {_padded('organisation')} FROM organisation"
    )


def _check_sqlite() -> None:
    bind = op.get_bind()
    version = bind.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    found = tuple(int(part) for part in str(version).split(".")[:3])
    if found < MIN_SQLITE:
        raise RuntimeError(
            f"the organisation search index needs SQLite {'.'.join(map(str, MIN_SQLITE))} or "
            f"newer (FTS5 with the trigram tokenizer); this Python uses SQLite {version}. "
            "Install a Python built with a newer SQLite, then run `plusjeklas db upgrade` again."
        )
    options = {row[0] for row in bind.exec_driver_sql("PRAGMA compile_options")}
    if "ENABLE_FTS5" not in options:
        raise RuntimeError(
            f"the organisation search index needs SQLite's FTS5 module; this SQLite {version} "
            "was built without it. Install a Python whose SQLite has FTS5, then run "
            "`plusjeklas db upgrade` again."
        )


def _upgrade_sqlite() -> None:
    _check_sqlite()
    op.execute(
        f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
        f"{', '.join(SEARCH_COLUMNS)}, content='', tokenize='trigram')"
    )
    # its trigrams, in order: a term of one or two characters is looked up by prefix here
    op.execute(f"CREATE VIRTUAL TABLE {SEARCH_TABLE}_vocab USING fts5vocab({SEARCH_TABLE}, row)")
    fill_sqlite_search()
    create_sqlite_triggers()


def _create_pg_trgm() -> bool:
    """``CREATE EXTENSION IF NOT EXISTS pg_trgm`` in a savepoint; False (and a warning) if not."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as error:  # the server says why: not installed, or not allowed
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning(
            "the pg_trgm extension could not be created (%s); the organisations filter will "
            "search without an index (slower at tens of thousands of organisations). Ask the "
            "database administrator to run CREATE EXTENSION pg_trgm, then run "
            "`plusjeklas db downgrade 0001 && plusjeklas db upgrade` (or create the "
            "ix_organisation_search_trgm index by hand).",
            reason,
        )
        return False
    return True


def _upgrade_postgresql() -> None:
    if not _create_pg_trgm():
        return
    op.execute(
        f"CREATE INDEX {PG_SEARCH_INDEX} ON organisation "
        f"USING gin (({PG_SEARCH_TEXT}) gin_trgm_ops)"
    )


def upgrade() -> None:
    for name, table, columns in DASHBOARD_INDEXES:
        op.create_index(name, table, columns, unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _upgrade_sqlite()
    elif dialect == "postgresql":
        _upgrade_postgresql()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for suffix in ("update", "delete", "insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}_vocab")
        op.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")
    elif dialect == "postgresql":
        # The extension stays: other objects may use it, and upgrading creates it if missing.
        op.execute(f"DROP INDEX IF EXISTS {PG_SEARCH_INDEX}")
    for name, table, _columns in reversed(DASHBOARD_INDEXES):
        op.drop_index(name, table_name=table)
