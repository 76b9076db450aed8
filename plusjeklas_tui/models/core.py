"""The tables: everything the privacy statement names, and what keeping its promises needs.

Personal values use :class:`~plusjeklas_tui.sqltypes.EncryptedText`; public school data (name,
address, BRIN, the school's general phone) stays plain so lists can filter in SQL. Current
consent is never stored: it is derived from the append-only :class:`ConsentEvent` history.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from plusjeklas_tui.sqltypes import EncryptedText, UTCDateTime, keyring_of, utcnow

# Constraint names are stable, so SQLite batch migrations can find and alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


class SubscriptionStatus(enum.StrEnum):
    TRIAL = "trial"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    ENDED = "ended"


class ConsentAction(enum.StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


DEFAULT_PURPOSES = ("newsletter", "analytics", "feedback")


def _encrypted(context: str, *, nullable: bool = True) -> Column:
    return Column(EncryptedText(context), nullable=nullable)


def _blind_index(of: str) -> Column:
    return Column(String(64), nullable=True, index=True, info={"blind_index_of": of})


def _created() -> Column:
    return Column(UTCDateTime(), nullable=False, default=utcnow)


def _updated() -> Column:
    return Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class Organisation(SQLModel, table=True):
    """A subscribing school."""

    __tablename__ = "organisation"
    __table_args__ = (
        # organisations that never had a subscription count their retention from creation
        Index("ix_organisation_created_at", "created_at"),
        # SQLite: never reuse an erased school's id (migration 0005)
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    street: str = Field(max_length=200, description="street and house number")
    postcode: str = Field(max_length=7, index=True, description="normalised '1234 AB'")
    city: str = Field(max_length=100, index=True)
    brin: str = Field(max_length=6, unique=True, description="BRIN, 4 or 6 characters")
    phone: str = Field(max_length=20, description="school phone, E.164")
    email: str | None = Field(default=None, sa_column=_encrypted("organisation.email"))
    email_index: str | None = Field(default=None, sa_column=_blind_index("email"))
    iban: str | None = Field(default=None, sa_column=_encrypted("organisation.iban"))
    notes: str | None = Field(default=None, sa_column=_encrypted("organisation.notes"))
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
    updated_at: dt.datetime | None = Field(default=None, sa_column=_updated())
    version: int = Field(
        default=1,
        sa_column=Column(Integer, nullable=False, default=1),
        description="bumped on every change; saves check it (optimistic locking)",
    )


class Administrator(SQLModel, table=True):
    """A school administrator ("beheerder"): a person, so every field is personal."""

    __tablename__ = "administrator"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(sa_column=_encrypted("administrator.name", nullable=False))
    email: str = Field(sa_column=_encrypted("administrator.email", nullable=False))
    email_index: str | None = Field(default=None, sa_column=_blind_index("email"))
    phones: str = Field(
        default="[]",
        sa_column=_encrypted("administrator.phones", nullable=False),
        description="JSON list of E.164 numbers",
    )
    started_on: dt.date | None = Field(default=None)
    left_on: dt.date | None = Field(default=None, description="set when they leave the school")
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
    updated_at: dt.datetime | None = Field(default=None, sa_column=_updated())
    version: int = Field(
        default=1,
        sa_column=Column(Integer, nullable=False, default=1),
        description="bumped on every change; saves check it (optimistic locking)",
    )


class Subscription(SQLModel, table=True):
    """A Plusjeklas subscription.

    The organisation's retention clock starts when its last subscription ended.
    """

    __tablename__ = "subscription"
    __table_args__ = (
        Index("ix_subscription_organisation_end", "organisation_id", "end_date"),
        Index("ix_subscription_status", "status"),  # the dashboard's count per status
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(
        sa_column=Column(Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False)
    )
    plan: str = Field(max_length=100)
    start_date: dt.date
    end_date: dt.date | None = Field(default=None, index=True)
    status: SubscriptionStatus = Field(sa_column=Column(String(20), nullable=False))
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
    updated_at: dt.datetime | None = Field(default=None, sa_column=_updated())


class ConsentEvent(SQLModel, table=True):
    """One grant or withdrawal of consent by a person for a purpose. Append-only."""

    __tablename__ = "consent_event"
    __table_args__ = (
        Index("ix_consent_event_subject", "administrator_id", "purpose", "occurred_at"),
        # the dashboard's opt-ins and withdrawals this month, read from the index alone
        Index("ix_consent_event_purpose_time", "purpose", "occurred_at", "action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    administrator_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("administrator.id", ondelete="CASCADE"), nullable=False
        )
    )
    purpose: str = Field(max_length=50)
    action: ConsentAction = Field(sa_column=Column(String(20), nullable=False))
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(
        max_length=100, description="web-form, staff:<user>, provider:<name>, import"
    )
    evidence: str | None = Field(default=None, sa_column=_encrypted("consent_event.evidence"))
    recorded_at: dt.datetime | None = Field(default=None, sa_column=_created())
    # proof of consent (art. 7(1)); all optional so older history stays valid
    text_version: str | None = Field(
        default=None, max_length=100, description="version of the consent text the person saw"
    )
    form_url: str | None = Field(
        default=None,
        sa_column=_encrypted("consent_event.form_url"),
        description="the form's address (encrypted: a URL can carry an address in its query)",
    )
    confirmed_at: dt.datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=True),
        description="when the double opt-in was confirmed (grants only)",
    )
    channel: str | None = Field(
        default=None,
        max_length=30,
        description="how the person expressed it: web-form, e-mail, phone, letter, ...",
    )


class ProviderLink(SQLModel, table=True):
    """Which identifier a provider holds for a person or organisation."""

    __tablename__ = "provider_link"
    __table_args__ = (
        UniqueConstraint("provider", "subject_type", "subject_id", name="uq_provider_link_subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50)
    subject_type: str = Field(max_length=20, description="'administrator' or 'organisation'")
    subject_id: int
    external_id: str = Field(sa_column=_encrypted("provider_link.external_id", nullable=False))
    external_id_index: str | None = Field(default=None, sa_column=_blind_index("external_id"))
    last_synced_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    status: str | None = Field(
        default=None,
        max_length=30,
        index=True,
        description="the provider's headline state for the subject: subscribed, unsubscribed, "
        "cleaned, payment_failed, ok, ...",
    )
    detail: str | None = Field(
        default=None, description="JSON of the provider's non-personal state (statuses, dates)"
    )
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, by id. Never personal data in ``detail``.

    Append-only and tamper-evident (see :mod:`plusjeklas_tui.services.audit_chain`): every
    event written by :func:`plusjeklas_tui.services.audit.record` carries its place in the
    chain (``seq``), the key that sealed it and an HMAC over its content and ``prev_mac``.
    The seal columns are NULL only for events written before the chain existed (sealed by the
    next ``record()``) and for rows someone added behind the app's back.
    """

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: dt.datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    )
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=64)
    entity_id: int | None = Field(default=None)
    detail: str = Field(
        default="{}", description="JSON of non-personal facts (field names, counts)"
    )
    seq: int | None = Field(
        default=None, unique=True, index=True, description="place in the chain: 1, 2, 3 ..."
    )
    mac_key_id: str | None = Field(default=None, max_length=8)
    prev_mac: str | None = Field(default=None, max_length=64, description="mac of seq - 1")
    mac: str | None = Field(default=None, max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The one row (id 1) naming the newest sealed audit event: the writers' lock.

    Sealing starts by updating this row, which serialises the writers until they commit
    (SQLite's write lock, a PostgreSQL row lock): no two events chain onto one predecessor.
    """

    __tablename__ = "audit_chain_head"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(default=0, description="seq of the newest sealed event (0: none yet)")
    mac: str | None = Field(default=None, max_length=64)
    mac_key_id: str | None = Field(default=None, max_length=8)
    legacy_max_id: int | None = Field(
        default=None, description="newest audit_event.id written before the chain existed"
    )


class AuditMacKey(SQLModel, table=True):
    """Each audit MAC key ever used, wrapped under the field key (rotation re-wraps it).

    Retired field keys leave the key file; events they sealed stay verifiable with this copy.
    """

    __tablename__ = "audit_mac_key"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=8, unique=True)
    secret: str = Field(sa_column=_encrypted("audit_mac_key.secret", nullable=False))


class ProviderState(SQLModel, table=True):
    """Where each provider's sync stands: its resume point, push watermarks, last outcome."""

    __tablename__ = "provider_state"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50, unique=True)
    sync_checkpoint: str | None = Field(
        default=None, sa_column=_encrypted("provider_state.sync_checkpoint")
    )
    push_watermark: int = Field(default=0, description="last consent_event.id pushed")
    contact_watermark: dt.datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime()),
        description="contact changes after this have not been pushed yet",
    )
    last_started_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_result: str | None = Field(default=None, max_length=20)
    last_error: str | None = Field(default=None, description="readable, non-personal")
    failures_in_a_row: int = Field(default=0)


class SyncRun(SQLModel, table=True):
    """One sync of one provider: when, by whom, what it counted, how it ended."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50, index=True)
    actor: str = Field(max_length=64)
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    state: str = Field(max_length=20, description="running, succeeded, failed, cancelled")
    fetched: int = 0
    applied: int = Field(default=0, description="local changes made from the provider's state")
    unknown: int = Field(default=0, description="subjects the provider has that we do not")
    pushed: int = 0
    push_failed: int = 0
    errors: int = 0
    error: str | None = Field(default=None, description="readable, non-personal")


class ProviderFailure(SQLModel, table=True):
    """A provider or plugin fault, kept so staff see which provider failed and why."""

    __tablename__ = "provider_failure"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=50, index=True)
    operation: str = Field(max_length=20, description="load, health, sync, push, erase, ...")
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    reason: str = Field(description="readable, non-personal")
    run_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("sync_run.id", ondelete="SET NULL"), nullable=True),
    )


class LegalHold(SQLModel, table=True):
    """A legal hold pauses an organisation's deletion (a dispute, an investigation)."""

    __tablename__ = "legal_hold"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("organisation.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        )
    )
    reason: str = Field(sa_column=_encrypted("legal_hold.reason", nullable=False))
    set_by: str = Field(max_length=64)
    set_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ErasureReceipt(SQLModel, table=True):
    """What remains of an erased subject: no personal data, only that and why it was erased.

    ``subject_id`` is the internal id the subject had; nothing else identifies it any more.
    """

    __tablename__ = "erasure_receipt"

    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=20)
    subject_id: int = Field(index=True)
    erased_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    basis: str = Field(max_length=40, description="general, administrator_left, request")
    rule: str = Field(description="the rule or request, in words (non-personal)")
    actor: str = Field(max_length=64)
    retained: str = Field(
        default="[]", description="JSON list: category, legal basis, kept until, where"
    )


class DeletionState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"


class DeletionTask(SQLModel, table=True):
    """One erasure to deliver to one provider (the transactional outbox).

    Written in the same transaction as the local erasure. ``locator`` holds only what the
    provider needs to find the subject (its id there, for Mailchimp the address), encrypted,
    and is destroyed when the task is done. A task is never dropped: it stays pending, with
    its last error and next attempt, until the provider confirms.
    """

    __tablename__ = "deletion_task"
    __table_args__ = (Index("ix_deletion_task_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    receipt_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("erasure_receipt.id", ondelete="RESTRICT"), nullable=False
        )
    )
    provider: str = Field(max_length=50, index=True)
    subject_type: str = Field(max_length=20)
    subject_id: int
    locator: str | None = Field(default=None, sa_column=_encrypted("deletion_task.locator"))
    state: str = Field(default=DeletionState.PENDING, max_length=20)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, description="readable, non-personal")
    outcome: str | None = Field(default=None, max_length=20, description="erased, already_gone")
    verified: bool | None = Field(default=None)
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
    done_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class RestrictedRecord(SQLModel, table=True):
    """Data the law makes us keep after an erasure (fiscal records), restricted (Art. 18).

    Stored, shown only to admins, used for nothing else, deleted at ``keep_until``.
    """

    __tablename__ = "restricted_record"

    id: int | None = Field(default=None, primary_key=True)
    receipt_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("erasure_receipt.id", ondelete="RESTRICT"), nullable=False
        )
    )
    category: str = Field(max_length=50)
    legal_basis: str
    keep_until: dt.date = Field(index=True)
    payload: str = Field(sa_column=_encrypted("restricted_record.payload", nullable=False))
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())


ENCRYPTED_TABLES = (
    Organisation,
    Administrator,
    ConsentEvent,
    ProviderLink,
    ProviderState,
    LegalHold,
    DeletionTask,
    RestrictedRecord,
)


# --- blind indexes ---------------------------------------------------------------------------


def index_value(column: str, value: str) -> str:
    """The text a blind index is computed over: e-mail addresses compare case-insensitively."""
    return value.strip().lower() if column == "email" else value


def _maintain_blind_indexes(_mapper: Any, connection: Any, target: Any) -> None:
    """Keep ``*_index`` columns in step with the encrypted values they index (ORM writes)."""
    keyring = keyring_of(connection.dialect)
    for column in target.__table__.columns:
        source = column.info.get("blind_index_of")
        if source is None:
            continue
        value = getattr(target, source)
        setattr(
            target,
            column.name,
            None if value is None else keyring.blind_index(index_value(source, value)),
        )


for _table_model in (Organisation, Administrator, ProviderLink):
    event.listen(_table_model, "before_insert", _maintain_blind_indexes)
    event.listen(_table_model, "before_update", _maintain_blind_indexes)
