"""The Feedback list: schools to ask how they look back on the lessons.

The privacy statement keeps a school's data ``general_after_end_months`` (two years) after its
last subscription ended *so that the company can ask how the school looks back on the lessons*.
A school is in that window from the day after its last subscription ended until its retention
deadline (:class:`~plusjeklas_tui.services.deadlines.RetentionRule`, the rule the retention plan
and the sweep use): its clock has started and the deadline has not passed. Not in it: a school
with a subscription running (no end date, or one today or later: a renewal stops the clock), a
school past its deadline (the sweep erases it), and a school that never had a subscription
(there are no lessons to look back on; its clock counts from creation for retention only).

Each school in the window is in one state for the period that ended on ``ended_on`` (its last
subscription's end): **due** (not asked yet), **asked** (asked, no answer yet) or **answered**.
A school that renews and ends again is due again for the new period: requests are kept per
``(organisation, ended_on)``.

**Objections.** Asking is the statement's own purpose ``feedback``; an administrator who
withdrew it (their latest ``feedback`` :class:`~plusjeklas_tui.models.ConsentEvent` is a
withdrawal) has objected and may not be asked. The school is asked through its administrators,
so it is left out of the list when *every* current administrator (not left, or leaving after
today) objected; with some objecting it is listed with how many may still be asked (and the
screen says who). A school without current administrators stays in the list: its general
address can be asked, and nobody there objected. Marking a school asked when everyone objected
is refused; an answer can still be recorded (they may have answered before objecting).

Notes are free text typed by staff about people, so they are stored encrypted and never go into
the audit trail (which records who marked which school, by id, and the period's end date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, and_, bindparam, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select, Subquery

from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    FeedbackRequest,
    Organisation,
    Subscription,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.deadlines import RetentionRule, as_date
from plusjeklas_tui.services.retention import general_rule
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError

PURPOSE = "feedback"
NOTE_MAX_LENGTH = 2000
NEVER = dt.date(9999, 12, 31)
"""Stands in for a missing end date: a subscription without one is still running."""


class FeedbackState(enum.StrEnum):
    DUE = "due"
    ASKED = "asked"
    ANSWERED = "answered"


OPEN_STATES = frozenset({FeedbackState.DUE, FeedbackState.ASKED})
"""What staff still have to do: ask, or record the answer."""


class FeedbackError(PlusjeklasError):
    """A school cannot be marked as asked: not in the window, objected, already marked."""


@dataclass(frozen=True)
class FeedbackEntry:
    """One school in the window. Public school data and counts only: no person."""

    organisation_id: int
    brin: str
    name: str
    ended_on: dt.date
    """The day its last subscription ended: the period the feedback is about."""
    keep_until: dt.date
    """The retention deadline: the last day it may be asked."""
    administrators: int
    """Current administrators (not left by today)."""
    objected: int
    """Of those, how many withdrew the ``feedback`` purpose."""
    state: FeedbackState
    asked_at: dt.datetime | None = None
    asked_by: str | None = None
    answered_at: dt.datetime | None = None
    answered_by: str | None = None

    @property
    def may_ask(self) -> int:
        return self.administrators - self.objected

    @property
    def all_objected(self) -> bool:
        return self.administrators > 0 and self.objected == self.administrators

    def as_dict(self) -> dict[str, Any]:
        def stamp(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "organisation_id": self.organisation_id,
            "brin": self.brin,
            "name": self.name,
            "ended_on": self.ended_on.isoformat(),
            "keep_until": self.keep_until.isoformat(),
            "state": self.state.value,
            "administrators": self.administrators,
            "objected": self.objected,
            "may_ask": self.may_ask,
            "asked_at": stamp(self.asked_at),
            "asked_by": self.asked_by,
            "answered_at": stamp(self.answered_at),
            "answered_by": self.answered_by,
        }


@dataclass(frozen=True)
class FeedbackSummary:
    """The dashboard tile: what is still to do, and what was left out because of objections."""

    due: int
    asked: int
    answered: int
    objected: int
    """Schools in the window left out because every administrator objected."""

    @property
    def open(self) -> int:
        return self.due + self.asked

    def as_dict(self) -> dict[str, int]:
        return {
            "due": self.due,
            "asked": self.asked,
            "answered": self.answered,
            "objected": self.objected,
        }


@dataclass(frozen=True)
class AskablePerson:
    """An administrator who may be asked (for the screen's modal; personal, never logged)."""

    id: int
    name: str
    email: str


# --- the window ----------------------------------------------------------------------------


def ended_in_window(
    today: dt.date, rule: RetentionRule, organisation_id: int | None = None
) -> Select:
    """``(organisation_id, ended_on)`` of every school whose last subscription ended and whose
    retention deadline has not passed.

    These are the rows of :func:`~plusjeklas_tui.services.deadlines.clock_starts` for
    organisations with subscriptions whose clock started (``clock_start < today``: nothing
    runs) and is not due (``rule.deadline(clock_start) >= today``). They are read from the
    ``(organisation_id, end_date)`` index alone: ``max(coalesce(end_date, 9999-12-31))`` is the
    last end when nothing runs and today or later when something does, as on the dashboard. A
    test keeps the two equal. *organisation_id*: just that school's row (when in the window).
    """
    never = bindparam("never", NEVER, type_=Date, literal_execute=True)
    last_end = func.max(func.coalesce(Subscription.end_date, never))
    due_up_to = rule.latest_clock_due_before(today)  # deadline < today  <=>  clock <= due_up_to
    query = (
        select(
            Subscription.organisation_id.label("organisation_id"),
            last_end.label("ended_on"),
        )
        .group_by(Subscription.organisation_id)
        .having(and_(last_end < today, last_end > due_up_to))
    )
    if organisation_id is not None:
        query = query.where(Subscription.organisation_id == organisation_id)
    return query


def _latest_feedback_action() -> Any:
    """The action of the correlated administrator's latest ``feedback`` consent event."""
    return (
        select(ConsentEvent.action)
        .where(
            ConsentEvent.administrator_id == Administrator.id,
            ConsentEvent.purpose == PURPOSE,
        )
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())  # type: ignore[union-attr]
        .limit(1)
        .correlate(Administrator)
        .scalar_subquery()
    )


def _current(today: dt.date) -> Any:
    """Administrators who have not left by *today*."""
    return Administrator.left_on.is_(None) | (Administrator.left_on > today)  # type: ignore[union-attr,operator]


def _people(today: dt.date, organisations: Subquery) -> Subquery:
    """Per organisation in *organisations*: current administrators, and how many objected."""
    withdrawn = _latest_feedback_action() == ConsentAction.WITHDRAWN.value
    return (
        select(
            Administrator.organisation_id.label("organisation_id"),
            func.count(Administrator.id).label("administrators"),
            func.sum(case((withdrawn, 1), else_=0)).label("objected"),
        )
        .where(
            Administrator.organisation_id.in_(select(organisations.c.organisation_id)),  # type: ignore[attr-defined]
            _current(today),
        )
        .group_by(Administrator.organisation_id)
        .subquery("people")
    )


@dataclass(frozen=True)
class _Window:
    """The window in SQL: the schools with their people and requests (``rows``, no school
    columns), each one's state and whether it is left out, and the list's query."""

    rows: Any
    state: Any
    excluded: Any
    query: Select


def _window(today: dt.date, rule: RetentionRule, organisation_id: int | None = None) -> _Window:
    ended = ended_in_window(today, rule, organisation_id).subquery("ended")
    people = _people(today, ended)
    administrators = func.coalesce(people.c.administrators, 0)
    objected = func.coalesce(people.c.objected, 0)
    rows = ended.outerjoin(people, people.c.organisation_id == ended.c.organisation_id).outerjoin(
        FeedbackRequest,
        and_(
            FeedbackRequest.organisation_id == ended.c.organisation_id,
            FeedbackRequest.ended_on == ended.c.ended_on,
        ),
    )
    state = case(
        (FeedbackRequest.answered_at.is_not(None), FeedbackState.ANSWERED.value),  # type: ignore[union-attr]
        (FeedbackRequest.id.is_not(None), FeedbackState.ASKED.value),  # type: ignore[union-attr]
        else_=FeedbackState.DUE.value,
    )
    # not asked yet and every current administrator objected: not to be asked at all
    excluded = and_(
        FeedbackRequest.id.is_(None),  # type: ignore[union-attr]
        administrators > 0,
        objected == administrators,
    )
    query = select(
        Organisation.id,
        Organisation.brin,
        Organisation.name,
        ended.c.ended_on,
        administrators.label("administrators"),
        objected.label("objected"),
        FeedbackRequest.asked_at,
        FeedbackRequest.asked_by,
        FeedbackRequest.answered_at,
        FeedbackRequest.answered_by,
    ).select_from(rows.join(Organisation, Organisation.id == ended.c.organisation_id))
    return _Window(rows, state, excluded, query)


def _entry(row: Any, rule: RetentionRule) -> FeedbackEntry:
    ended_on = as_date(row.ended_on)
    assert ended_on is not None
    keep_until = rule.deadline(ended_on)
    assert keep_until is not None
    if row.answered_at is not None:
        state = FeedbackState.ANSWERED
    elif row.asked_at is not None:
        state = FeedbackState.ASKED
    else:
        state = FeedbackState.DUE
    return FeedbackEntry(
        organisation_id=row.id,
        brin=row.brin,
        name=row.name,
        ended_on=ended_on,
        keep_until=keep_until,
        administrators=int(row.administrators),
        objected=int(row.objected),
        state=state,
        asked_at=row.asked_at,
        asked_by=row.asked_by,
        answered_at=row.answered_at,
        answered_by=row.answered_by,
    )


# --- reading -------------------------------------------------------------------------------


def feedback_list(
    session: Session,
    today: dt.date,
    retention: RetentionSettings,
    *,
    states: Iterable[FeedbackState] = OPEN_STATES,
    limit: int | None = None,
    offset: int = 0,
) -> list[FeedbackEntry]:
    """Schools in the window in one of *states* (default: due or asked), oldest end first.

    A school not asked yet whose administrators all objected is left out; once asked it stays
    (its answer can still be recorded). *limit*/*offset* page the list in SQL.
    """
    rule = general_rule(retention)
    window = _window(today, rule)
    ended_on = window.query.selected_columns.ended_on
    query = (
        window.query.where(window.state.in_([state.value for state in states]))
        .where(~window.excluded)
        .order_by(ended_on, Organisation.name, Organisation.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_entry(row, rule) for row in session.execute(query)]


def due_for_feedback(
    session: Session, today: dt.date, retention: RetentionSettings
) -> list[FeedbackEntry]:
    """Schools to ask now: in the window, not asked about this period, not all objected."""
    return feedback_list(session, today, retention, states=(FeedbackState.DUE,))


def feedback_summary(
    session: Session, today: dt.date, retention: RetentionSettings
) -> FeedbackSummary:
    """Counts for the dashboard: due, asked (awaiting an answer), answered, and the schools
    left out because every administrator objected. One grouped query."""
    window = _window(today, general_rule(retention))
    shown = case((window.excluded, "objected"), else_=window.state)
    # the school rows themselves are not read: only the index-backed window and the requests
    counted = select(shown.label("bucket")).select_from(window.rows).subquery("buckets")
    query = select(counted.c.bucket, func.count()).group_by(counted.c.bucket)
    counts = {bucket: int(n) for bucket, n in session.execute(query)}
    return FeedbackSummary(
        due=counts.get(FeedbackState.DUE.value, 0),
        asked=counts.get(FeedbackState.ASKED.value, 0),
        answered=counts.get(FeedbackState.ANSWERED.value, 0),
        objected=counts.get("objected", 0),
    )


def entry_for(
    session: Session, organisation_id: int, today: dt.date, retention: RetentionSettings
) -> FeedbackEntry | None:
    """The school's entry when it is in the window (whatever its state or objections)."""
    rule = general_rule(retention)
    query = _window(today, rule, organisation_id).query
    row = session.execute(query).first()
    return None if row is None else _entry(row, rule)


def askable_people(session: Session, organisation_id: int, today: dt.date) -> list[AskablePerson]:
    """The school's current administrators who did not object: who may be asked."""
    query = (
        select(
            Administrator.id,
            Administrator.name,
            Administrator.email,
            _latest_feedback_action().label("latest"),
        )
        .where(Administrator.organisation_id == organisation_id, _current(today))
        .order_by(Administrator.id)
    )
    return [
        AskablePerson(row.id, row.name, row.email)
        for row in session.execute(query)
        if row.latest != ConsentAction.WITHDRAWN.value
    ]


# --- marking -------------------------------------------------------------------------------


def clean_note(note: str | None) -> str:
    """The note, stripped; required and at most :data:`NOTE_MAX_LENGTH` characters."""
    text = (note or "").strip()
    if not text:
        raise FieldError(
            "note",
            "",
            "is required: say how and whom you asked, or what they said",
            show_value=False,
        )
    if len(text) > NOTE_MAX_LENGTH:
        raise FieldError(
            "note", "", f"must be at most {NOTE_MAX_LENGTH} characters", show_value=False
        )
    return text


def _current_entry(
    session: Session, organisation_id: int, today: dt.date, retention: RetentionSettings
) -> FeedbackEntry:
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"no organisation with id {organisation_id}")
    entry = entry_for(session, organisation_id, today, retention)
    if entry is None:
        raise FeedbackError(
            f"organisation {organisation_id} is not in the feedback window: its subscription "
            "is still running, it never had one, or its retention deadline has passed"
        )
    return entry


def _request(session: Session, entry: FeedbackEntry) -> FeedbackRequest | None:
    return session.scalar(
        select(FeedbackRequest).where(
            FeedbackRequest.organisation_id == entry.organisation_id,
            FeedbackRequest.ended_on == entry.ended_on,
        )
    )


def mark_asked(
    session: Session,
    staff: StaffMember,
    organisation_id: int,
    note: str,
    today: dt.date,
    retention: RetentionSettings,
) -> FeedbackEntry:
    """Record that the school was asked about the period that ended on its last end date."""
    staff.require(Permission.EDIT, "mark a school asked for feedback")
    text = clean_note(note)
    entry = _current_entry(session, organisation_id, today, retention)
    if entry.state != FeedbackState.DUE:
        raise FeedbackError(
            f"organisation {organisation_id} was already asked on {entry.asked_at:%Y-%m-%d} "
            f"by {entry.asked_by}"
        )
    if entry.all_objected:
        raise FeedbackError(
            f"organisation {organisation_id} may not be asked: every administrator objected "
            "to being asked for feedback"
        )
    now = utcnow()
    session.add(
        FeedbackRequest(
            organisation_id=organisation_id,
            ended_on=entry.ended_on,
            asked_at=now,
            asked_by=staff.username,
            asked_note=text,
        )
    )
    try:
        session.flush()
    except IntegrityError:  # someone else marked it a moment ago (one row per period)
        raise FeedbackError(f"organisation {organisation_id} was just marked asked") from None
    audit.record(
        session,
        staff,
        "feedback_asked",
        "organisation",
        organisation_id,
        ended_on=entry.ended_on.isoformat(),
    )
    return _marked(entry, FeedbackState.ASKED, asked_at=now, asked_by=staff.username)


def mark_answered(
    session: Session,
    staff: StaffMember,
    organisation_id: int,
    note: str,
    today: dt.date,
    retention: RetentionSettings,
) -> FeedbackEntry:
    """Record the school's answer (the note says what it said); it must have been asked."""
    staff.require(Permission.EDIT, "mark a school's feedback answered")
    text = clean_note(note)
    entry = _current_entry(session, organisation_id, today, retention)
    request = _request(session, entry)
    if request is None:
        raise FeedbackError(
            f"organisation {organisation_id} has not been asked yet: mark it asked first"
        )
    if request.answered_at is not None:
        raise FeedbackError(
            f"organisation {organisation_id} already answered (recorded on "
            f"{request.answered_at:%Y-%m-%d} by {request.answered_by})"
        )
    now = utcnow()
    request.answered_at = now
    request.answered_by = staff.username
    request.answered_note = text
    session.flush()
    audit.record(
        session,
        staff,
        "feedback_answered",
        "organisation",
        organisation_id,
        ended_on=entry.ended_on.isoformat(),
    )
    return _marked(entry, FeedbackState.ANSWERED, answered_at=now, answered_by=staff.username)


def _marked(entry: FeedbackEntry, state: FeedbackState, **changes: Any) -> FeedbackEntry:
    return dataclasses.replace(entry, state=state, **changes)


def notes(
    session: Session, staff: StaffMember, organisation_id: int, ended_on: dt.date
) -> tuple[str | None, str | None]:
    """The asked and answered notes of one round (free text about people: staff only)."""
    staff.require(Permission.READ, "read feedback notes")
    row = session.execute(
        select(FeedbackRequest.asked_note, FeedbackRequest.answered_note).where(
            FeedbackRequest.organisation_id == organisation_id,
            FeedbackRequest.ended_on == ended_on,
        )
    ).first()
    return (None, None) if row is None else (row.asked_note, row.answered_note)
