"""Ids of organisations, administrators and subscriptions are never reused (SQLite).

SQLite gives a new row ``max(id) + 1`` unless the table is declared ``AUTOINCREMENT``: erase the
newest school and the next one created gets its id, and with it the erased school's audit trail,
erasure receipt and deletion tasks (all kept by id). An erased subject that comes back must be a
fresh record, so these tables are rebuilt with ``AUTOINCREMENT``. PostgreSQL sequences never
reuse a value: nothing to do there.

The rebuild copies each table (batch mode, foreign keys off: see ``db.migration_connection``);
triggers on the tables are dropped with the old table by SQLite, so they are read first and
created again afterwards.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("organisation", "administrator", "subscription")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    triggers = [
        sql
        for (sql,) in bind.execute(
            text(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                "('organisation', 'administrator', 'subscription') AND sql IS NOT NULL"
            )
        )
    ]
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    for sql in triggers:  # dropped with the old tables
        bind.execute(text(sql))


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
