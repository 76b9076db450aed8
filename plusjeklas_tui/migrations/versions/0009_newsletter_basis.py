"""The newsletter basis of each recipient: consent or the customer exception.

Proof-of-consent columns on ``consent_event`` (text version, form address, double opt-in
confirmation, channel) and the ``newsletter_customer_basis`` table. Plain ADD COLUMN and CREATE
TABLE: no table is rebuilt on SQLite.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consent_event",
        sa.Column("text_version", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    )
    op.add_column("consent_event", sa.Column("form_url", sa.Text(), nullable=True))
    op.add_column(
        "consent_event", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "consent_event",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    )
    op.create_table(
        "newsletter_customer_basis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("administrator_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "objection_text_version",
            sqlmodel.sql.sqltypes.AutoString(length=100),
            nullable=False,
        ),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["administrator_id"],
            ["administrator.id"],
            name=op.f("fk_newsletter_customer_basis_administrator_id_administrator"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_newsletter_customer_basis_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsletter_customer_basis")),
    )
    op.create_index(
        op.f("ix_newsletter_customer_basis_administrator_id"),
        "newsletter_customer_basis",
        ["administrator_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_newsletter_customer_basis_administrator_id"),
        table_name="newsletter_customer_basis",
    )
    op.drop_table("newsletter_customer_basis")
    # plain DROP COLUMN (SQLite 3.35+): the columns have no index or constraint
    for name in ("channel", "confirmed_at", "form_url", "text_version"):
        op.drop_column("consent_event", name)
