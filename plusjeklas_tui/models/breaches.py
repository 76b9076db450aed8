"""The breach register (GDPR art. 33(5)): every incident, reported to the regulator or not.

One row per breach, with the fields the Autoriteit Persoonsgegevens' notification form asks.
Descriptions typed by staff (summary, cause, consequences, measures, the contact person) may
name people, so they are encrypted; numbers, flags, times and the choice lists stay plain so
the register and the dashboard's countdown can be read without decrypting anything.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from plusjeklas_tui.models import core as _core  # noqa: F401 - its naming convention first
from plusjeklas_tui.sqltypes import EncryptedText, UTCDateTime, utcnow


class BreachStatus(enum.StrEnum):
    OPEN = "open"
    """Not yet reported and not judged not reportable: the 72-hour countdown runs."""
    REPORTED = "reported"
    NOT_REPORTABLE = "not_reportable"


def _encrypted(context: str, *, nullable: bool = True) -> Column:
    return Column(EncryptedText(context), nullable=nullable)


def _moment(*, nullable: bool = True, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Breach(SQLModel, table=True):
    """One personal-data breach, as the regulator's notification form describes it.

    ``nature`` and ``data_types`` are JSON lists of fixed codes (see
    :mod:`plusjeklas_tui.services.breaches`). The deadline is ``discovered_at + 72 h`` in real
    elapsed time, so it is never stored: it cannot disagree with the discovery time.
    """

    __tablename__ = "breach"
    __table_args__ = (
        # the dashboard's countdown: open breaches by discovery time
        Index("ix_breach_status_discovered", "status", "discovered_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(
        default=BreachStatus.OPEN, sa_column=Column(String(20), nullable=False, default="open")
    )
    # follow-up or new
    follow_up: bool = Field(default=False, description="a follow-up of an earlier notification")
    earlier_reference: str | None = Field(
        default=None, max_length=50, description="the regulator's number of the earlier report"
    )
    # contact person (the organisation itself comes from the configuration)
    contact_name: str | None = Field(default=None, sa_column=_encrypted("breach.contact_name"))
    contact_function: str | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, sa_column=_encrypted("breach.contact_phone"))
    contact_email: str | None = Field(default=None, sa_column=_encrypted("breach.contact_email"))
    # processor
    processor_involved: bool = Field(default=False)
    processor_name: str | None = Field(
        default=None, max_length=200, description="a company (Mailchimp, Mollie), not a person"
    )
    # timeline
    started_at: dt.datetime | None = Field(default=None, sa_column=_moment())
    ended_at: dt.datetime | None = Field(default=None, sa_column=_moment())
    ongoing: bool = Field(default=False)
    discovered_at: dt.datetime = Field(sa_column=_moment(nullable=False))
    # what happened
    summary: str = Field(sa_column=_encrypted("breach.summary", nullable=False))
    nature: str = Field(default="[]", description="JSON list of codes: read, copied, ...")
    cause: str | None = Field(default=None, sa_column=_encrypted("breach.cause"))
    data_types: str = Field(default="[]", description="JSON list of codes: email, iban, ...")
    data_types_other: str | None = Field(
        default=None, sa_column=_encrypted("breach.data_types_other")
    )
    records_approx: int | None = Field(default=None)
    groups: str | None = Field(default=None, sa_column=_encrypted("breach.groups"))
    people_min: int
    people_max: int
    vulnerable_groups: bool = Field(default=False, description="children or other vulnerable")
    encrypted: str = Field(default="unknown", max_length=20, description="yes, partly, no, unknown")
    consequences: str | None = Field(default=None, sa_column=_encrypted("breach.consequences"))
    informed: str = Field(
        default="not_yet_decided",
        max_length=20,
        description="yes, planned, no, not_required, not_yet_decided",
    )
    informed_how: str | None = Field(default=None, sa_column=_encrypted("breach.informed_how"))
    measures: str | None = Field(default=None, sa_column=_encrypted("breach.measures"))
    # reporting
    reported_at: dt.datetime | None = Field(default=None, sa_column=_moment())
    ap_reference: str | None = Field(default=None, max_length=50)
    late_reason: str | None = Field(default=None, sa_column=_encrypted("breach.late_reason"))
    not_reportable_reason: str | None = Field(
        default=None, sa_column=_encrypted("breach.not_reportable_reason")
    )
    decided_by: str | None = Field(
        default=None, max_length=64, description="who reported it or judged it not reportable"
    )
    # bookkeeping
    created_by: str = Field(max_length=64)
    created_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=False, default=utcnow)
    )
    updated_at: dt.datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    )
    version: int = Field(
        default=1,
        sa_column=Column(Integer, nullable=False, default=1),
        description="bumped on every change; saves check it (optimistic locking)",
    )


__all__ = ["Breach", "BreachStatus"]
