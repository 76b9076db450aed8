"""The breach register (GDPR art. 33(5)).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "breach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("earlier_reference", _text(50), nullable=True),
        sa.Column("contact_name", sa.Text(), nullable=True),
        sa.Column("contact_function", _text(100), nullable=True),
        sa.Column("contact_phone", sa.Text(), nullable=True),
        sa.Column("contact_email", sa.Text(), nullable=True),
        sa.Column("processor_involved", sa.Boolean(), nullable=False),
        sa.Column("processor_name", _text(200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ongoing", sa.Boolean(), nullable=False),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("nature", _text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("data_types", _text(), nullable=False),
        sa.Column("data_types_other", sa.Text(), nullable=True),
        sa.Column("records_approx", sa.Integer(), nullable=True),
        sa.Column("groups", sa.Text(), nullable=True),
        sa.Column("people_min", sa.Integer(), nullable=False),
        sa.Column("people_max", sa.Integer(), nullable=False),
        sa.Column("vulnerable_groups", sa.Boolean(), nullable=False),
        sa.Column("encrypted", _text(20), nullable=False),
        sa.Column("consequences", sa.Text(), nullable=True),
        sa.Column("informed", _text(20), nullable=False),
        sa.Column("informed_how", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ap_reference", _text(50), nullable=True),
        sa.Column("late_reason", sa.Text(), nullable=True),
        sa.Column("not_reportable_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", _text(64), nullable=True),
        sa.Column("created_by", _text(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_breach_status_discovered", "breach", ["status", "discovered_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_breach_status_discovered", table_name="breach")
    op.drop_table("breach")
