"""Feedback requests: the statement's reason to keep data two years after a subscription ends.

The privacy statement keeps a school's data after its last subscription ended *so that the
company can ask how the school looks back on the lessons*. One :class:`FeedbackRequest` row
records that a school was asked about one ended subscription period (``ended_on``: the day its
last subscription ended) and, later, that it answered. Whether a school is *due* to be asked is
never stored: it follows from the subscriptions on every read (``services/feedback.py``), so a
school that renews and ends again is due again for the new period.

The notes are typed by staff about a conversation with people, so they are encrypted. The rows
belong to the organisation: erasing it deletes them (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from plusjeklas_tui.models.core import _created, _encrypted
from plusjeklas_tui.sqltypes import UTCDateTime

__all__ = ["FeedbackRequest"]


class FeedbackRequest(SQLModel, table=True):
    """A school asked for feedback about the subscription period that ended on ``ended_on``."""

    __tablename__ = "feedback_request"
    __table_args__ = (
        UniqueConstraint("organisation_id", "ended_on", name="uq_feedback_request_round"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    ended_on: dt.date = Field(description="the day the school's last subscription ended")
    asked_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    asked_by: str = Field(max_length=64)
    asked_note: str = Field(sa_column=_encrypted("feedback_request.asked_note", nullable=False))
    answered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    answered_by: str | None = Field(default=None, max_length=64)
    answered_note: str | None = Field(
        default=None, sa_column=_encrypted("feedback_request.answered_note")
    )
    created_at: dt.datetime | None = Field(default=None, sa_column=_created())
