"""The audit log becomes tamper-evident: a keyed MAC chain over its events.

* ``audit_event`` gains its seal: ``seq`` (place in the chain, unique), ``mac_key_id``,
  ``prev_mac`` and ``mac`` (see :mod:`plusjeklas_tui.services.audit_chain`).
* ``audit_chain_head``: one row (id 1) that every writer updates first; it serialises writers
  and names the newest event. ``legacy_max_id`` records the newest event that existed before
  this migration: a migration cannot read the key file, so those events are sealed, in id
  order, by the first ``record()`` after the upgrade (until then ``audit verify`` counts them
  as waiting to be sealed).
* ``audit_mac_key``: each audit MAC key ever used, wrapped (encrypted) under the field key, so
  events sealed under a key that rotation retired stay verifiable.
* Triggers make ``audit_event`` append-only on both engines: UPDATE and DELETE (and TRUNCATE on
  PostgreSQL) are refused, except the one update that seals a pre-chain event (seal columns go
  from NULL to set, nothing else changes). The head may only move forward. Triggers are not on
  the models; someone who owns the database can drop them, which is why the MACs exist.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED_COLUMNS = ("occurred_at", "actor", "action", "entity", "entity_id", "detail")
EVENT_CHANGED = "audit_event is append-only: an audit event cannot be changed"
EVENT_DELETED = "audit_event is append-only: an audit event cannot be deleted"
HEAD_BACKWARDS = "audit_chain_head only moves forward and cannot be deleted"


def _sealing_only(same: str) -> str:
    """The one allowed update: seal columns from NULL to set, every other column unchanged.

    *same* is the engine's NULL-safe equality (``IS`` on SQLite, ``IS NOT DISTINCT FROM``).
    """
    unchanged = " AND ".join(f"NEW.{name} {same} OLD.{name}" for name in SEALED_COLUMNS)
    return (
        "OLD.seq IS NULL AND OLD.mac IS NULL AND NEW.seq IS NOT NULL AND NEW.mac IS NOT NULL"
        f" AND NEW.id = OLD.id AND {unchanged}"
    )


def _sqlite_triggers() -> list[str]:
    return [
        f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
        WHEN NOT ({_sealing_only("IS")})
        BEGIN SELECT RAISE(ABORT, '{EVENT_CHANGED}'); END""",
        f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
        BEGIN SELECT RAISE(ABORT, '{EVENT_DELETED}'); END""",
        f"""CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
        WHEN NEW.seq < OLD.seq OR NEW.id IS NOT OLD.id
        BEGIN SELECT RAISE(ABORT, '{HEAD_BACKWARDS}'); END""",
        f"""CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
        BEGIN SELECT RAISE(ABORT, '{HEAD_BACKWARDS}'); END""",
    ]


def _postgresql_triggers() -> list[str]:
    sealing = _sealing_only("IS NOT DISTINCT FROM")
    return [
        f"""CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF {sealing} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '{EVENT_CHANGED}';
            END IF;
            RAISE EXCEPTION '{EVENT_DELETED}';
        END $$""",
        """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
        f"""CREATE FUNCTION audit_event_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{EVENT_DELETED}';
        END $$""",
        """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_no_truncate()""",
        f"""CREATE FUNCTION audit_chain_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.id = OLD.id THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{HEAD_BACKWARDS}';
        END $$""",
        """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_chain_head
        FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward()""",
        """CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_no_truncate()""",
    ]


SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_delete",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head",
    "DROP FUNCTION IF EXISTS audit_event_append_only()",
    "DROP FUNCTION IF EXISTS audit_event_no_truncate()",
    "DROP FUNCTION IF EXISTS audit_chain_head_forward()",
]


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("mac_key_id", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True)
        )
        batch_op.add_column(
            sa.Column("prev_mac", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("mac", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_audit_event_seq"), ["seq"], unique=True)

    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("mac", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("mac_key_id", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("legacy_max_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_mac_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_mac_key")),
        sa.UniqueConstraint("key_id", name=op.f("uq_audit_mac_key_key_id")),
    )
    op.execute(
        "INSERT INTO audit_chain_head (id, seq, legacy_max_id) "
        "SELECT 1, 0, max(id) FROM audit_event"
    )
    bind = op.get_bind()
    triggers = _postgresql_triggers() if bind.dialect.name == "postgresql" else _sqlite_triggers()
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for statement in POSTGRESQL_DROP if bind.dialect.name == "postgresql" else SQLITE_DROP:
        op.execute(statement)
    op.drop_table("audit_mac_key")
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_seq"))
        batch_op.drop_column("mac")
        batch_op.drop_column("prev_mac")
        batch_op.drop_column("mac_key_id")
        batch_op.drop_column("seq")
