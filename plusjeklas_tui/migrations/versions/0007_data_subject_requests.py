"""Data-subject requests (GDPR art. 15-21) with their deadlines.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "data_subject_request"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("subject_type", text(length=20), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("administrator_id", sa.Integer(), nullable=True),
        sa.Column("requester_name", sa.Text(), nullable=True),
        sa.Column("requester_email", sa.Text(), nullable=True),
        sa.Column("identity_check", sa.Text(), nullable=True),
        sa.Column("purpose", text(length=50), nullable=True),
        sa.Column("erasure_reason", text(length=40), nullable=True),
        sa.Column("extended_due_on", sa.Date(), nullable=True),
        sa.Column("extended_on", sa.Date(), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extension_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", text(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("erasure_receipt_id", sa.Integer(), nullable=True),
        sa.Column("consent_event_id", sa.Integer(), nullable=True),
        sa.Column("restriction_lifted_on", sa.Date(), nullable=True),
        sa.Column("created_by", text(length=64), nullable=False),
        sa.Column("completed_by", text(length=64), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scrubbed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["administrator_id"],
            ["administrator.id"],
            name=op.f("fk_data_subject_request_administrator_id_administrator"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consent_event_id"],
            ["consent_event.id"],
            name=op.f("fk_data_subject_request_consent_event_id_consent_event"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["erasure_receipt_id"],
            ["erasure_receipt.id"],
            name=op.f("fk_data_subject_request_erasure_receipt_id_erasure_receipt"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_data_subject_request_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_request")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_data_subject_request_administrator_id"), TABLE, ["administrator_id"], unique=False
    )
    op.create_index(
        op.f("ix_data_subject_request_organisation_id"), TABLE, ["organisation_id"], unique=False
    )
    op.create_index("ix_data_subject_request_status_due", TABLE, ["status", "due_on"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_data_subject_request_status_due", table_name=TABLE)
    op.drop_index(op.f("ix_data_subject_request_organisation_id"), table_name=TABLE)
    op.drop_index(op.f("ix_data_subject_request_administrator_id"), table_name=TABLE)
    op.drop_table(TABLE)
