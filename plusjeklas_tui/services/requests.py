"""Data-subject requests (GDPR art. 15-21): intake, deadlines, extension, and the work per kind.

Every change is one transaction in the caller's session and one audit event (ids and codes,
never who asked or why). The work per kind reuses the paths that already exist:

- access, portability: :mod:`plusjeklas_tui.services.subject_export` (here and at every
  provider), then :func:`complete_request` with outcome ``exported``;
- erasure: :func:`erase_for_request` calls :func:`erasure.request_erasure` (the ``erase``
  permission, legal holds, fiscal records, the deletion outbox), links the receipt and scrubs
  the requester's details, so the row keeps only what proves the request was handled;
- objection: :func:`withdraw_for_objection` appends a consent withdrawal (``staff:<user>``, the
  request id as evidence); :func:`push_objection` then runs the providers' sync, whose push
  tells the newsletter provider;
- rectification: staff correct the record in its form (:func:`rectification_target` says
  which), then complete the request with outcome ``rectified``;
- restriction: completing it with outcome ``restricted`` marks the subject restricted until
  :func:`lift_restriction`; :func:`active_restrictions` lists them for screens to show.

A request may be refused (art. 12(5), e.g. manifestly unfounded) with a recorded reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui.config import Settings
from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    DataSubjectRequest,
    Organisation,
    RequestKind,
    RequestStatus,
)
from plusjeklas_tui.services import audit, erasure
from plusjeklas_tui.services.request_deadlines import days_left, due_date, extended_due_date
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import (
    FieldError,
    ValidationErrors,
    check_free_text,
    normalize_email,
    normalize_name,
    parse_date,
)

ORGANISATION = "organisation"
ADMINISTRATOR = "administrator"
ENTITY = "data_subject_request"

EXPORTED = "exported"
ERASED = "erased"
CONSENT_WITHDRAWN = "consent_withdrawn"
RECTIFIED = "rectified"
RESTRICTED = "restricted"
REFUSED = "refused"
ERASED_BY_RETENTION = "erased_by_retention"
"""A request closed because the retention rules erased its subject (see
:func:`settle_for_erasure`); the receipt it links to says which rule."""

OUTCOMES: dict[str, tuple[str, ...]] = {
    RequestKind.ACCESS: (EXPORTED,),
    RequestKind.PORTABILITY: (EXPORTED,),
    RequestKind.RECTIFICATION: (RECTIFIED,),
    RequestKind.RESTRICTION: (RESTRICTED,),
    RequestKind.ERASURE: (ERASED,),
    RequestKind.OBJECTION: (CONSENT_WITHDRAWN,),
}
"""The outcome each kind completes with (besides ``refused``, which any kind may end in)."""

TEXT_MAX = 2000


class RequestStateError(PlusjeklasError):
    """The request is not in a state that allows this step (closed, already extended...)."""


# --- intake --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestInput:
    """A request as recorded at intake, validated. Build it with :func:`validate_request`."""

    kind: RequestKind
    received_on: dt.date
    organisation_id: int | None
    administrator_id: int | None
    requester_name: str
    requester_email: str | None
    identity_check: str
    purpose: str | None = None
    erasure_reason: str | None = None
    note: str | None = None


def _field(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return "" if value is None else str(value)


def _int_or_none(raw: Mapping[str, Any], key: str, errors: list[FieldError]) -> int | None:
    text = _field(raw, key).strip().lstrip("#")
    if not text:
        return None
    if not text.isdigit():
        errors.append(FieldError(key, text, "must be a record number (digits)"))
        return None
    return int(text)


def validate_request(
    raw: Mapping[str, Any], *, purposes: Collection[str], today: dt.date
) -> RequestInput:
    """Check an intake form (strings, as typed); every problem is raised together.

    ``kind``: one of :class:`RequestKind`. ``received_on``: ISO date, not after *today*
    (Amsterdam). ``organisation_id``/``administrator_id``: at least one. ``requester_name`` and
    ``identity_check`` (how the identity was verified) are required; ``requester_email`` is
    optional. An objection needs ``purpose`` (a consent purpose), an erasure ``erasure_reason``
    (an art. 17(1) ground code).
    """
    errors: list[FieldError] = []
    kind: RequestKind | None = None
    kind_text = _field(raw, "kind").strip().lower()
    try:
        kind = RequestKind(kind_text)
    except ValueError:
        choices = ", ".join(k.value for k in RequestKind)
        errors.append(FieldError("kind", kind_text, f"is required and must be one of: {choices}"))
    received: dt.date | None = None
    try:
        received = parse_date(_field(raw, "received_on"), "received_on")
        if received is None:
            errors.append(FieldError("received_on", "", "is required (YYYY-MM-DD)"))
        elif received > today:
            errors.append(
                FieldError("received_on", received.isoformat(), "cannot be in the future")
            )
    except FieldError as error:
        errors.append(error)
    organisation_id = _int_or_none(raw, "organisation_id", errors)
    administrator_id = _int_or_none(raw, "administrator_id", errors)
    if (
        organisation_id is None
        and administrator_id is None
        and not any(e.field in ("organisation_id", "administrator_id") for e in errors)
    ):
        errors.append(
            FieldError("organisation_id", "", "give the organisation or the administrator")
        )
    name = ""
    try:
        name = normalize_name(_field(raw, "requester_name"), "requester_name")
    except FieldError as error:
        errors.append(FieldError("requester_name", "", error.rule, show_value=False))
    email: str | None = None
    if _field(raw, "requester_email").strip():
        try:
            email = normalize_email(_field(raw, "requester_email"), "requester_email")
        except FieldError as error:
            errors.append(error)
    identity = ""
    try:
        identity = check_free_text(_field(raw, "identity_check"), "identity_check", TEXT_MAX)
        if not identity:
            errors.append(
                FieldError(
                    "identity_check",
                    "",
                    "is required: say how the requester's identity was verified",
                    show_value=False,
                )
            )
    except FieldError as error:
        errors.append(error)
    note: str | None = None
    try:
        note = check_free_text(_field(raw, "note"), "note", TEXT_MAX) or None
    except FieldError as error:
        errors.append(error)
    purpose = _field(raw, "purpose").strip() or None
    if kind == RequestKind.OBJECTION:
        if purpose not in purposes:
            errors.append(
                FieldError(
                    "purpose",
                    purpose or "",
                    "an objection needs the purpose objected to: " + ", ".join(purposes),
                )
            )
        if administrator_id is None and not any(e.field == "administrator_id" for e in errors):
            errors.append(
                FieldError(
                    "administrator_id", "", "an objection is about a person: give the administrator"
                )
            )
    elif purpose is not None:
        errors.append(FieldError("purpose", purpose, "is only for objections"))
    reason = _field(raw, "erasure_reason").strip() or None
    if kind == RequestKind.ERASURE:
        try:
            reason = erasure.parse_reason(reason or "").value
        except FieldError as error:
            errors.append(FieldError("erasure_reason", reason or "", error.rule))
    elif reason is not None:
        errors.append(FieldError("erasure_reason", reason, "is only for erasure requests"))
    if errors:
        raise ValidationErrors(errors)
    assert kind is not None and received is not None
    return RequestInput(
        kind=kind,
        received_on=received,
        organisation_id=organisation_id,
        administrator_id=administrator_id,
        requester_name=name,
        requester_email=email,
        identity_check=identity,
        purpose=purpose,
        erasure_reason=reason,
        note=note,
    )


def create_request(session: Session, staff: StaffMember, data: RequestInput) -> DataSubjectRequest:
    """Record a request with its deadline (one month from receipt); audited by id."""
    staff.require(Permission.EDIT, "record a data-subject request")
    organisation_id = data.organisation_id
    subject_type = ORGANISATION
    if data.administrator_id is not None:
        person = session.get(Administrator, data.administrator_id)
        if person is None:
            raise NotFound(f"administrator #{data.administrator_id} does not exist")
        if organisation_id is not None and person.organisation_id != organisation_id:
            raise ValidationErrors(
                [
                    FieldError(
                        "administrator_id",
                        str(data.administrator_id),
                        f"is not an administrator of organisation #{organisation_id}",
                    )
                ]
            )
        organisation_id = person.organisation_id
        subject_type = ADMINISTRATOR
    elif organisation_id is not None and session.get(Organisation, organisation_id) is None:
        raise NotFound(f"organisation #{organisation_id} does not exist")
    request = DataSubjectRequest(
        kind=data.kind,
        status=RequestStatus.OPEN,
        received_on=data.received_on,
        due_on=due_date(data.received_on),
        subject_type=subject_type,
        organisation_id=organisation_id,
        administrator_id=data.administrator_id,
        requester_name=data.requester_name,
        requester_email=data.requester_email,
        identity_check=data.identity_check,
        purpose=data.purpose,
        erasure_reason=data.erasure_reason,
        note=data.note,
        created_by=staff.username,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        staff,
        "request_new",
        ENTITY,
        request.id,
        kind=str(data.kind),
        subject_type=subject_type,
        organisation_id=organisation_id,
        administrator_id=data.administrator_id,
        due_on=request.due_on.isoformat(),
    )
    return request


# --- reading -------------------------------------------------------------------------------


def get_request(session: Session, request_id: int, *, lock: bool = False) -> DataSubjectRequest:
    query = select(DataSubjectRequest).where(DataSubjectRequest.id == request_id)
    if lock:
        query = query.with_for_update()
    request = session.scalars(query).first()
    if request is None:
        raise NotFound(f"data-subject request #{request_id} does not exist")
    return request


def effective_due(request: DataSubjectRequest) -> dt.date:
    """The deadline that applies now: the extended one once extended."""
    return request.extended_due_on or request.due_on


def tell_person_pending(request: DataSubjectRequest) -> bool:
    """Extended, and the person has not yet been told (they must be, before the first deadline)."""
    return (
        request.extended_due_on is not None
        and request.extension_told_at is None
        and request.status == RequestStatus.OPEN
    )


def restriction_active(request: DataSubjectRequest) -> bool:
    return (
        request.kind == RequestKind.RESTRICTION
        and request.status == RequestStatus.COMPLETED
        and request.outcome == RESTRICTED
        and request.restriction_lifted_on is None
    )


@dataclass(frozen=True)
class RequestRow:
    """One request in a list: no personal data (the requester's details are in ``show``)."""

    id: int
    kind: str
    status: str
    subject_type: str
    organisation_id: int | None
    administrator_id: int | None
    received_on: dt.date
    due_on: dt.date
    first_due_on: dt.date
    extended: bool
    days_left: int | None
    """Calendar days to the deadline (negative: overdue); None once closed."""
    overdue: bool
    tell_person: bool
    """The reminder: the extension must still be told to the person."""
    tell_by: dt.date | None
    outcome: str | None
    restricted: bool
    erasure_receipt_id: int | None
    purpose: str | None = None

    @property
    def subject(self) -> str:
        if self.subject_type == ADMINISTRATOR:
            return (
                f"administrator #{self.administrator_id}"
                if self.administrator_id is not None
                else "administrator (erased)"
            )
        return (
            f"organisation #{self.organisation_id}"
            if self.organisation_id is not None
            else "organisation (erased)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "subject_type": self.subject_type,
            "organisation_id": self.organisation_id,
            "administrator_id": self.administrator_id,
            "received_on": self.received_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "first_due_on": self.first_due_on.isoformat(),
            "extended": self.extended,
            "days_left": self.days_left,
            "overdue": self.overdue,
            "tell_person": self.tell_person,
            "tell_by": None if self.tell_by is None else self.tell_by.isoformat(),
            "outcome": self.outcome,
            "restricted": self.restricted,
            "erasure_receipt_id": self.erasure_receipt_id,
            "purpose": self.purpose,
        }


def row_of(request: DataSubjectRequest, today: dt.date) -> RequestRow:
    assert request.id is not None
    due = effective_due(request)
    is_open = request.status == RequestStatus.OPEN
    left = days_left(due, today) if is_open else None
    tell = tell_person_pending(request)
    return RequestRow(
        id=request.id,
        kind=request.kind,
        status=request.status,
        subject_type=request.subject_type,
        organisation_id=request.organisation_id,
        administrator_id=request.administrator_id,
        received_on=request.received_on,
        due_on=due,
        first_due_on=request.due_on,
        extended=request.extended_due_on is not None,
        days_left=left,
        overdue=left is not None and left < 0,
        tell_person=tell,
        tell_by=request.due_on if tell else None,
        outcome=request.outcome,
        restricted=restriction_active(request),
        erasure_receipt_id=request.erasure_receipt_id,
        purpose=request.purpose,
    )


def list_requests(
    session: Session, staff: StaffMember, today: dt.date, *, open_only: bool = False
) -> list[RequestRow]:
    """Requests, open ones first by deadline, then closed ones newest first."""
    staff.require(Permission.READ, "see data-subject requests")
    query = select(DataSubjectRequest)
    if open_only:
        query = query.where(DataSubjectRequest.status == RequestStatus.OPEN)
    rows = [row_of(r, today) for r in session.scalars(query)]
    open_rows = sorted((r for r in rows if r.status == RequestStatus.OPEN), key=_open_key)
    closed = sorted((r for r in rows if r.status != RequestStatus.OPEN), key=lambda r: -r.id)
    return [*open_rows, *closed]


def _open_key(row: RequestRow) -> tuple[dt.date, int]:
    return (row.due_on, row.id)


@dataclass(frozen=True)
class Requester:
    """Who asked, decrypted: for the screen's detail line and `show` (never for logs)."""

    name: str | None
    email: str | None
    identity_check: str | None
    scrubbed: bool


def requesters(session: Session, staff: StaffMember) -> dict[int, Requester]:
    """Each request's requester, by request id."""
    staff.require(Permission.READ, "see data-subject requests")
    return {
        r.id: Requester(r.requester_name, r.requester_email, r.identity_check, bool(r.scrubbed_at))
        for r in session.scalars(select(DataSubjectRequest))
        if r.id is not None
    }


@dataclass(frozen=True)
class OpenRequestsSummary:
    open_count: int
    overdue_count: int
    tell_person_count: int
    rows: list[RequestRow]


def open_requests_summary(session: Session, today: dt.date) -> OpenRequestsSummary:
    """The dashboard tile: open requests with days left, how many are overdue (no personal data,
    so no permission beyond opening the app)."""
    requests = session.scalars(
        select(DataSubjectRequest).where(DataSubjectRequest.status == RequestStatus.OPEN)
    )
    rows = sorted((row_of(r, today) for r in requests), key=_open_key)
    return OpenRequestsSummary(
        open_count=len(rows),
        overdue_count=sum(1 for r in rows if r.overdue),
        tell_person_count=sum(1 for r in rows if r.tell_person),
        rows=rows,
    )


def active_restrictions(session: Session) -> list[DataSubjectRequest]:
    """Completed restriction requests not lifted: those subjects' data is restricted (art. 18)."""
    return list(
        session.scalars(
            select(DataSubjectRequest)
            .where(DataSubjectRequest.kind == RequestKind.RESTRICTION)
            .where(DataSubjectRequest.status == RequestStatus.COMPLETED)
            .where(DataSubjectRequest.outcome == RESTRICTED)
            .where(DataSubjectRequest.restriction_lifted_on.is_(None))  # type: ignore[union-attr]
            .order_by(DataSubjectRequest.id)  # type: ignore[arg-type]
        )
    )


def requests_about(
    session: Session,
    *,
    organisation_id: int | None = None,
    administrator_id: int | None = None,
    administrator_ids: Collection[int] = (),
) -> list[DataSubjectRequest]:
    """The requests about an organisation (and its people) or one administrator, by number.

    ``administrator_ids`` adds requests about those people even when the request names another
    school (the person moved after asking): the record view passes the school's people."""
    conditions = []
    if organisation_id is not None:
        conditions.append(DataSubjectRequest.organisation_id == organisation_id)
    if administrator_id is not None:
        conditions.append(DataSubjectRequest.administrator_id == administrator_id)
    if administrator_ids:
        conditions.append(
            DataSubjectRequest.administrator_id.in_(sorted(set(administrator_ids)))  # type: ignore[union-attr]
        )
    if not conditions:
        return []
    return list(
        session.scalars(
            select(DataSubjectRequest).where(or_(*conditions)).order_by(DataSubjectRequest.id)  # type: ignore[arg-type]
        )
    )


# --- steps ---------------------------------------------------------------------------------


def _open(session: Session, request_id: int) -> DataSubjectRequest:
    request = get_request(session, request_id, lock=True)
    if request.status != RequestStatus.OPEN:
        raise RequestStateError(f"request #{request_id} is already {request.status}")
    return request


def _reason(text: str, field: str, what: str) -> str:
    value = check_free_text(text, field, TEXT_MAX)
    if not value:
        raise FieldError(field, "", f"is required: {what}", show_value=False)
    return value


def extend_request(
    session: Session, staff: StaffMember, request_id: int, reason: str, today: dt.date
) -> DataSubjectRequest:
    """Extend once to three months from receipt (art. 12(3)); only before the first deadline
    has passed, and with a reason. The person must be told before the first deadline: the
    request shows a reminder until :func:`mark_extension_told`."""
    staff.require(Permission.EDIT, "extend a data-subject request")
    request = _open(session, request_id)
    if request.extended_due_on is not None:
        raise RequestStateError(
            f"request #{request_id} was already extended (once is all art. 12(3) allows)"
        )
    if today > request.due_on:
        raise RequestStateError(
            f"request #{request_id} passed its first deadline on {request.due_on.isoformat()}; "
            "an extension must be made and told before it"
        )
    text = _reason(reason, "extension_reason", "the reasons the person will be told")
    request.extended_due_on = extended_due_date(request.received_on)
    request.extended_on = today
    request.extension_reason = text
    session.flush()
    audit.record(
        session,
        staff,
        "request_extend",
        ENTITY,
        request.id,
        due_on=request.extended_due_on.isoformat(),
        tell_by=request.due_on.isoformat(),
    )
    return request


def mark_extension_told(
    session: Session, staff: StaffMember, request_id: int, when: dt.datetime | None = None
) -> DataSubjectRequest:
    """Record that the person was told of the extension and its reasons."""
    staff.require(Permission.EDIT, "record that the person was told")
    request = get_request(session, request_id, lock=True)
    if request.extended_due_on is None:
        raise RequestStateError(f"request #{request_id} was not extended")
    if request.extension_told_at is not None:
        raise RequestStateError(f"request #{request_id}: the person was already told")
    request.extension_told_at = when or utcnow()
    session.flush()
    audit.record(session, staff, "request_extension_told", ENTITY, request.id)
    return request


def _close(
    session: Session,
    staff: StaffMember,
    request: DataSubjectRequest,
    status: RequestStatus,
    outcome: str,
    note: str | None,
    **detail: Any,
) -> DataSubjectRequest:
    request.status = status
    request.outcome = outcome
    if note:
        request.note = note
    request.completed_by = staff.username
    request.completed_at = utcnow()
    session.flush()
    audit.record(
        session,
        staff,
        "request_complete" if status == RequestStatus.COMPLETED else "request_refuse",
        ENTITY,
        request.id,
        kind=request.kind,
        outcome=outcome,
        **detail,
    )
    return request


def complete_request(
    session: Session,
    staff: StaffMember,
    request_id: int,
    note: str = "",
) -> DataSubjectRequest:
    """Close an access, portability, rectification or restriction request as done.

    Erasure and objection requests are completed by their own work
    (:func:`erase_for_request`, :func:`withdraw_for_objection`), which does it and closes them
    in one transaction.
    """
    staff.require(Permission.EDIT, "complete a data-subject request")
    request = _open(session, request_id)
    if request.kind in (RequestKind.ERASURE, RequestKind.OBJECTION):
        step = "erase" if request.kind == RequestKind.ERASURE else "withdraw"
        raise RequestStateError(
            f"request #{request_id} is an {request.kind} request: it is completed by its "
            f"'{step}' step, which does the work"
        )
    text = check_free_text(note, "note", TEXT_MAX) or None
    (outcome,) = OUTCOMES[request.kind]
    return _close(session, staff, request, RequestStatus.COMPLETED, outcome, text)


def refuse_request(
    session: Session, staff: StaffMember, request_id: int, reason: str
) -> DataSubjectRequest:
    """Refuse a request (art. 12(5): manifestly unfounded or excessive; identity not proven),
    with the reason the person is told."""
    staff.require(Permission.EDIT, "refuse a data-subject request")
    request = _open(session, request_id)
    text = _reason(reason, "note", "the reason the person is told")
    return _close(session, staff, request, RequestStatus.REFUSED, REFUSED, text)


def lift_restriction(
    session: Session, staff: StaffMember, request_id: int, today: dt.date
) -> DataSubjectRequest:
    """End a restriction (the person must be told before it is lifted, art. 18(3))."""
    staff.require(Permission.EDIT, "lift a restriction")
    request = get_request(session, request_id, lock=True)
    if not restriction_active(request):
        raise RequestStateError(f"request #{request_id} has no active restriction")
    request.restriction_lifted_on = today
    session.flush()
    audit.record(session, staff, "request_lift_restriction", ENTITY, request.id)
    return request


def rectification_target(session: Session, request_id: int) -> tuple[str | None, int | None]:
    """Where to correct the data: the organisation's BRIN and, for a person, their id."""
    request = get_request(session, request_id)
    brin = None
    if request.organisation_id is not None:
        organisation = session.get(Organisation, request.organisation_id)
        brin = None if organisation is None else organisation.brin
    return brin, request.administrator_id


# --- erasure -------------------------------------------------------------------------------


def scrub_requester(request: DataSubjectRequest) -> None:
    """Drop what identifies the person; keep kind, dates, status, outcome and the receipt."""
    request.requester_name = None
    request.requester_email = None
    request.identity_check = None
    request.extension_reason = None
    request.note = None
    request.scrubbed_at = utcnow()


def settle_for_erasure(
    session: Session,
    staff: StaffMember,
    *,
    subject_type: str,
    subject_id: int,
    administrator_ids: Collection[int],
    receipt_id: int,
    basis: str,
) -> list[int]:
    """Close the open requests about a subject the retention rules are erasing; their ids.

    Called by the erasure itself (:mod:`plusjeklas_tui.services.erasure`), in its transaction
    and before the subject's rows go (the request's foreign keys would become NULL and nothing
    would say which requests were about it). Each open request about the organisation or one of
    its people (or about the one administrator) is linked to the receipt, its requester's
    details are scrubbed, and it is closed as ``completed`` with outcome
    :data:`ERASED_BY_RETENTION`.

    Why closed rather than left open: the requester's name and address would otherwise outlive
    the data they asked about, past its retention deadline; and once they are scrubbed, nobody
    could answer the person anyway. Kind, dates and the receipt remain, proving what happened.

    An erasure on request (basis ``request``) settles nothing here: :func:`erase_for_request`
    closes its own request, and other open requests about that subject stay open with their
    requester's details, so staff can still tell the person their data was erased.
    """
    from plusjeklas_tui.services.retention import REQUEST

    if basis == REQUEST:
        return []
    query = select(DataSubjectRequest).where(DataSubjectRequest.status == RequestStatus.OPEN)
    if subject_type == ORGANISATION:
        about = [DataSubjectRequest.organisation_id == subject_id]
        people = sorted(set(administrator_ids))
        if people:
            about.append(DataSubjectRequest.administrator_id.in_(people))  # type: ignore[union-attr]
        query = query.where(or_(*about))
    else:
        query = query.where(DataSubjectRequest.administrator_id == subject_id)
    settled: list[int] = []
    for request in session.scalars(
        query.order_by(DataSubjectRequest.id).with_for_update()  # type: ignore[arg-type]
    ):
        assert request.id is not None
        request.erasure_receipt_id = receipt_id
        scrub_requester(request)
        _close(
            session,
            staff,
            request,
            RequestStatus.COMPLETED,
            ERASED_BY_RETENTION,
            None,
            receipt=receipt_id,
            rule=basis,
        )
        settled.append(request.id)
    return settled


def erase_for_request(
    session: Session,
    staff: StaffMember,
    settings: Settings,
    targets: Mapping[str, erasure.ProviderTarget],
    request_id: int,
    today: dt.date,
) -> erasure.ErasureResult:
    """Erase the request's subject on the retention path (basis ``request``), queue its
    deletion at the providers, and close the request with the receipt; the requester's
    details are scrubbed in the same transaction. Needs the ``erase`` permission."""
    staff.require(Permission.ERASE, "erase on request")
    request = _open(session, request_id)
    if request.kind != RequestKind.ERASURE:
        raise RequestStateError(f"request #{request_id} is an {request.kind} request")
    subject_id = (
        request.administrator_id
        if request.subject_type == ADMINISTRATOR
        else request.organisation_id
    )
    if subject_id is None:
        raise erasure.SubjectGone(
            f"the subject of request #{request_id} no longer exists (erased by another path?)"
        )
    result = erasure.request_erasure(
        session,
        staff,
        settings.retention,
        targets,
        request.subject_type,
        subject_id,
        request.erasure_reason or "",
        today,
    )
    session.flush()
    session.refresh(request)  # the foreign keys were set to NULL by the erasure
    request.erasure_receipt_id = result.receipt_id
    scrub_requester(request)
    _close(
        session,
        staff,
        request,
        RequestStatus.COMPLETED,
        ERASED,
        None,
        receipt=result.receipt_id,
        tasks=len(result.tasks),
    )
    return result


# --- objection -----------------------------------------------------------------------------


def withdraw_for_objection(
    session: Session, staff: StaffMember, settings: Settings, request_id: int
) -> DataSubjectRequest:
    """Record the objection as a consent withdrawal for its purpose and close the request.

    The withdrawal's source is ``staff:<user>`` and its evidence names the request, so the
    consent history shows why. The providers learn it on their next push
    (:func:`push_objection` runs it at once).
    """
    from plusjeklas_tui.services.records import record_consent

    staff.require(Permission.EDIT, "record an objection")
    request = _open(session, request_id)
    if request.kind != RequestKind.OBJECTION:
        raise RequestStateError(f"request #{request_id} is an {request.kind} request")
    if request.administrator_id is None or request.purpose is None:
        raise erasure.SubjectGone(f"the person of request #{request_id} no longer exists")
    event = record_consent(
        session,
        staff,
        request.administrator_id,
        request.purpose,
        ConsentAction.WITHDRAWN,
        f"objection, data-subject request #{request.id}",
        purposes=settings.consent_purposes,
    )
    session.flush()
    request.consent_event_id = event.id
    _close(
        session,
        staff,
        request,
        RequestStatus.COMPLETED,
        CONSENT_WITHDRAWN,
        None,
        purpose=request.purpose,
        consent_event=event.id,
    )
    return request


def providers_for_purpose(providers: Iterable[Any], purpose: str) -> list[Any]:
    """The providers that hold consent for *purpose* (their ``info.purposes``)."""
    return [p for p in providers if purpose in tuple(p.info.purposes)]


def push_objection(
    engine: Engine,
    providers: Iterable[Any],
    staff: StaffMember,
    settings: Settings,
    purpose: str,
) -> list[Any]:
    """Tell the providers that hold *purpose* now, through the sync (pull, then push).

    Returns the sync reports; a provider that fails keeps the withdrawal queued for its next
    sync (the push watermark does not move), and its failure is recorded as every sync's is.
    """
    from plusjeklas_tui.services import sync

    chosen = providers_for_purpose(providers, purpose)
    return sync.sync(engine, chosen, staff, settings.consent_purposes)


# --- details for `show` ------------------------------------------------------------------


def details(request: DataSubjectRequest, today: dt.date) -> dict[str, Any]:
    """Everything about one request, the requester's details included (for `show`)."""
    data = row_of(request, today).as_dict()
    data.update(
        {
            "requester_name": request.requester_name,
            "requester_email": request.requester_email,
            "identity_check": request.identity_check,
            "purpose": request.purpose,
            "erasure_reason": request.erasure_reason,
            "extended_on": _iso(request.extended_on),
            "extension_reason": request.extension_reason,
            "extension_told_at": _iso(request.extension_told_at),
            "note": request.note,
            "consent_event_id": request.consent_event_id,
            "restriction_lifted_on": _iso(request.restriction_lifted_on),
            "created_by": request.created_by,
            "completed_by": request.completed_by,
            "completed_at": _iso(request.completed_at),
            "scrubbed_at": _iso(request.scrubbed_at),
        }
    )
    return data


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()
