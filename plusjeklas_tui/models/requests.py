"""Data-subject requests (GDPR art. 15-21).

A request is about an organisation and/or one of its administrators (by id; the foreign keys
become NULL when the subject is erased, and ``erasure_receipt_id`` then proves what happened).
Who asked, how their identity was checked, the reason for an extension and staff's notes are
personal, so they are encrypted; once an erasure request is completed they are scrubbed
(``scrubbed_at``) and only kind, dates, status and outcome remain.

The deadlines are stored when the request is recorded (and when it is extended): they are what
the person was promised, and the dashboard counts overdue requests from an index.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from plusjeklas_tui.models.core import _created, _encrypted, _updated
from plusjeklas_tui.sqltypes import UTCDateTime

__all__ = ["DataSubjectRequest", "RequestKind", "RequestStatus"]


class RequestKind(enum.StrEnum):
    ACCESS = "access"  # art. 15
    RECTIFICATION = "rectification"  # art. 16
    ERASURE = "erasure"  # art. 17
    RESTRICTION = "restriction"  # art. 18
    PORTABILITY = "portability"  # art. 20
    OBJECTION = "objection"  # art. 21


class RequestStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    REFUSED = "refused"


class DataSubjectRequest(SQLModel, table=True):
    """One request by a person about their data, from intake to its outcome."""

    __tablename__ = "data_subject_request"
    __table_args__ = (
        # open requests by deadline: the dashboard tile and the list
        Index("ix_data_subject_request_status_due", "status", "due_on"),
        {"sqlite_autoincrement": True},  # a request's number is never reused
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    status: str = Field(default=RequestStatus.OPEN, sa_column=Column(String(20), nullable=False))
    received_on: dt.date = Field(description="Amsterdam date the request arrived")
    due_on: dt.date = Field(description="one month from receipt (Regulation 1182/71)")
    subject_type: str = Field(
        max_length=20, description="'organisation' or 'administrator': whom the request is about"
    )
    organisation_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    administrator_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("administrator.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    requester_name: str | None = Field(
        default=None, sa_column=_encrypted("data_subject_request.requester_name")
    )
    requester_email: str | None = Field(
        default=None, sa_column=_encrypted("data_subject_request.requester_email")
    )
    identity_check: str | None = Field(
        default=None,
        sa_column=_encrypted("data_subject_request.identity_check"),
        description="how the requester's identity was verified",
    )
    purpose: str | None = Field(
        default=None, max_length=50, description="objection: the consent purpose objected to"
    )
    erasure_reason: str | None = Field(
        default=None, max_length=40, description="erasure: the art. 17(1) ground (a code)"
    )
    extended_due_on: dt.date | None = Field(default=None)
    extended_on: dt.date | None = Field(default=None)
    extension_reason: str | None = Field(
        default=None, sa_column=_encrypted("data_subject_request.extension_reason")
    )
    extension_told_at: dt.datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime()),
        description="when the person was told of the extension and its reasons",
    )
    outcome: str | None = Field(
        default=None,
        max_length=40,
        description="exported, erased, consent_withdrawn, rectified, restricted, refused",
    )
    note: str | None = Field(default=None, sa_column=_encrypted("data_subject_request.note"))
    erasure_receipt_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("erasure_receipt.id", ondelete="RESTRICT"), nullable=True
        ),
    )
    consent_event_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("consent_event.id", ondelete="SET NULL"), nullable=True
        ),
    )
    restriction_lifted_on: dt.date | None = Field(default=None)
    created_by: str = Field(max_length=64)
    completed_by: str | None = Field(default=None, max_length=64)
    completed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    scrubbed_at: dt.datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime()),
        description="when the requester's details were removed after an erasure",
    )
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
    updated_at: dt.datetime | None = Field(default=None, sa_column=_updated())
