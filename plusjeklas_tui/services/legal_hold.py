"""Legal holds: a dispute or an investigation pauses an organisation's deletion.

A hold stops both the retention sweep and an erasure on request (GDPR art. 17(3)(e): data
needed for legal claims). Only administrators set or lift one (the ``erase`` permission: the
people who decide what is deleted decide what is not). Both are audited by id only: the reason
is typed by a person and may name people, so it is stored encrypted, shown only to
administrators, and never written to the audit trail or the plan. Everyone who sees a deadline
sees *that* it is on hold, by whom and since when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import LegalHold, Organisation
from plusjeklas_tui.services import audit
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError, normalize_brin

REASON_MAX_LENGTH = 500
HOLD_PERMISSION = Permission.ERASE


class HoldError(PlusjeklasError):
    """A hold cannot be set or lifted as asked (already on hold, no hold to lift)."""


@dataclass(frozen=True)
class HoldInfo:
    """What anyone who sees the deadline may see of a hold: not its reason."""

    organisation_id: int
    set_by: str
    set_at: dt.datetime


def organisation_id_for_brin(session: Session, brin: str) -> int:
    """The id of the organisation with *brin*; :class:`NotFound` when there is none."""
    try:
        code = normalize_brin(brin)
    except FieldError as error:
        raise NotFound(f"no organisation can have this BRIN: {error}") from None
    found = session.scalar(select(Organisation.id).where(Organisation.brin == code))
    if found is None:
        raise NotFound(f"no organisation with BRIN {code}")
    return found


def _clean_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise FieldError("reason", "", "is required: say why deletion must wait", show_value=False)
    if len(text) > REASON_MAX_LENGTH:
        raise FieldError(
            "reason", "", f"must be at most {REASON_MAX_LENGTH} characters", show_value=False
        )
    return text


def set_hold(session: Session, staff: StaffMember, organisation_id: int, reason: str) -> HoldInfo:
    """Put the organisation on hold; audited (who, which organisation; never the reason)."""
    staff.require(HOLD_PERMISSION, "set a legal hold")
    text = _clean_reason(reason)
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"no organisation with id {organisation_id}")
    existing = current_hold(session, organisation_id)
    if existing is not None:
        raise HoldError(
            f"organisation {organisation_id} is already on hold (set by {existing.set_by} on "
            f"{existing.set_at:%Y-%m-%d}); lift it first to change the reason"
        )
    hold = LegalHold(
        organisation_id=organisation_id, reason=text, set_by=staff.username, set_at=utcnow()
    )
    session.add(hold)
    session.flush()
    audit.record(session, staff, "legal_hold", "organisation", organisation_id, hold="set")
    return HoldInfo(organisation_id, hold.set_by, hold.set_at)


def lift_hold(session: Session, staff: StaffMember, organisation_id: int) -> HoldInfo:
    """Lift the hold; the deadline applies again from the next sweep. Audited."""
    staff.require(HOLD_PERMISSION, "lift a legal hold")
    hold = session.scalar(select(LegalHold).where(LegalHold.organisation_id == organisation_id))
    if hold is None:
        raise HoldError(f"organisation {organisation_id} is not on hold")
    info = HoldInfo(organisation_id, hold.set_by, hold.set_at)
    session.delete(hold)
    session.flush()
    audit.record(
        session,
        staff,
        "legal_hold",
        "organisation",
        organisation_id,
        hold="lifted",
        set_by=info.set_by,
    )
    return info


def current_hold(session: Session, organisation_id: int) -> HoldInfo | None:
    """The hold on the organisation, without its reason (any staff member may see this)."""
    row = session.execute(
        select(LegalHold.set_by, LegalHold.set_at).where(
            LegalHold.organisation_id == organisation_id
        )
    ).first()
    return None if row is None else HoldInfo(organisation_id, row.set_by, row.set_at)


def hold_reason(session: Session, staff: StaffMember, organisation_id: int) -> str | None:
    """The reason of the hold, for administrators only (it is free text and may name people)."""
    staff.require(HOLD_PERMISSION, "read the reason of a legal hold")
    return session.scalar(
        select(LegalHold.reason).where(LegalHold.organisation_id == organisation_id)
    )
