"""Erasing one subject here, and queuing its erasure at every provider, in one transaction.

Local erasure destroys; it does not flag. For an organisation: its provider links, its people's
consent events, its people, its subscriptions, its legal hold and the organisation row itself
are deleted. For one administrator: their links, consent events and row. What remains is an
:class:`~plusjeklas_tui.models.ErasureReceipt` with no personal data (internal id, date, basis,
the rule or the request's reason *category*, who, which categories were kept and until when)
and, in the same transaction, one :class:`~plusjeklas_tui.models.DeletionTask` per enabled
provider that holds a copy (the transactional outbox; ``services/deletions.py`` delivers them).
A crash before commit leaves the subject untouched; after commit, erased with all its tasks.
When a retention rule erases the subject, the open data-subject requests about it are settled
against the receipt in the same transaction (:func:`requests.settle_for_erasure`).

Why a reason category and not free text for requests: staff would type who asked and why
("mevrouw Jansen belde ..."), which is personal data the receipt must not hold. GDPR art. 17(1)
lists the grounds; staff pick one (:class:`RequestReason`).

A task's locator carries only what its provider needs to find the subject: the provider's id
for it and, for newsletter providers (Mailchimp finds members by address) or a provider whose
plugin is unknown, the e-mail address. It is encrypted, and the worker destroys it when done.

On SQLite, deleted rows stay in free pages of the file unless ``secure_delete`` is on; it is
switched on for the connection before erasing, so the bytes are overwritten.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.orm import Session

from plusjeklas_tui.config import RetentionSettings, Settings
from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    ConsentEvent,
    DeletionState,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
    ProviderLink,
    RestrictedRecord,
    Subscription,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.deadlines import as_date, clock_starts
from plusjeklas_tui.services.legal_hold import current_hold
from plusjeklas_tui.services.retention import (
    ADMINISTRATOR,
    ADMINISTRATOR_LEFT,
    GENERAL,
    ORGANISATION,
    PAYMENT_RECORDS_EXPIRED,
    REQUEST,
    RESTRICTED_RECORD,
    PlanItem,
    administrator_deadline,
    general_rule,
    is_due,
    payment_records_until,
    rule_text,
)
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError

if TYPE_CHECKING:
    from plusjeklas_tui.plugins import PluginSet

PAYMENT_RECORDS = "payment records"
LOCAL_PAYMENT_RECORD = "payment record: name, address and IBAN"


class NotErasable(PlusjeklasError):
    """The subject is not erased now: on hold, not due (any more), or already gone."""


class OnHold(NotErasable):
    pass


class NotDue(NotErasable):
    pass


class SubjectGone(NotErasable, NotFound):
    pass


class RequestReason(enum.StrEnum):
    """The grounds of GDPR art. 17(1) a request is made on; stored instead of free text."""

    NO_LONGER_NEEDED = "no_longer_needed"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OBJECTION = "objection"
    UNLAWFUL = "unlawful"
    LEGAL_OBLIGATION = "legal_obligation"
    CHILD = "child"


REQUEST_REASON_TEXT: dict[RequestReason, str] = {
    RequestReason.NO_LONGER_NEEDED: "art. 17(1)(a): no longer needed for its purpose",
    RequestReason.CONSENT_WITHDRAWN: "art. 17(1)(b): consent withdrawn, no other basis",
    RequestReason.OBJECTION: "art. 17(1)(c): objection to the processing",
    RequestReason.UNLAWFUL: "art. 17(1)(d): processed unlawfully",
    RequestReason.LEGAL_OBLIGATION: "art. 17(1)(e): erasure required by law",
    RequestReason.CHILD: "art. 17(1)(f): collected from a child (information society service)",
}


def parse_reason(value: RequestReason | str) -> RequestReason:
    try:
        return RequestReason(value)
    except ValueError:
        choices = ", ".join(reason.value for reason in RequestReason)
        raise FieldError(
            "reason", "", f"is required and must be one of: {choices}", show_value=False
        ) from None


# --- which providers get a task ------------------------------------------------------------


@dataclass(frozen=True)
class ProviderTarget:
    """An enabled provider, and what its deletion task must carry to find a subject."""

    name: str
    kind: str | None = None
    """The provider's kind (newsletter, payment, analytics); None when its plugin is unknown."""

    @property
    def needs_email(self) -> bool:
        """Newsletter providers find people by address; an unknown plugin might too."""
        return self.kind in (None, "newsletter")


def provider_targets(
    settings: Settings, plugin_set: PluginSet | None = None
) -> dict[str, ProviderTarget]:
    """The enabled providers (``[plugins.<name>] enabled = true``), with kinds when known.

    Every enabled provider gets tasks, even one whose plugin is missing now: its task stays
    pending and visible until the plugin is back or staff act, rather than being dropped.
    """
    targets = {}
    for name, table in sorted(settings.plugins.items()):
        if not table.enabled:
            continue
        entry = None if plugin_set is None else plugin_set.providers.get(name)
        targets[name] = ProviderTarget(name, None if entry is None else str(entry.info.kind))
    return targets


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTask:
    provider: str
    subject_type: str
    subject_id: int


@dataclass
class ErasureResult:
    """What one erasure did (or, dry, would do). Ids and categories only: nothing personal."""

    subject_type: str
    subject_id: int
    basis: str
    rule: str
    administrators: tuple[int, ...] = ()
    tasks: tuple[PlannedTask, ...] = ()
    retained: tuple[dict[str, str], ...] = ()
    not_told: tuple[str, ...] = ()
    """Providers that hold a copy but are not enabled: no task, so staff must act."""
    receipt_id: int | None = field(default=None, compare=False)

    def summary(self) -> str:
        """One line, the same for a dry run and the real run."""
        if self.subject_type == RESTRICTED_RECORD:
            return "deleted (" + ", ".join(entry["category"] for entry in self.retained) + ")"
        parts = ["erased"]
        if self.subject_type == ORGANISATION:
            count = len(self.administrators)
            parts[0] += f" with {count} administrator{'s' if count != 1 else ''}"
        tasks = ", ".join(f"{t.provider} ({t.subject_type} #{t.subject_id})" for t in self.tasks)
        parts.append(f"deletion tasks: {tasks or 'none'}")
        kept = "; ".join(
            f"{entry['category']} at {entry['where']} until {entry['kept_until']}"
            for entry in self.retained
        )
        parts.append(f"kept: {kept or 'nothing'}")
        if self.not_told:
            parts.append("not enabled, so not told: " + ", ".join(self.not_told))
        return "; ".join(parts)


def describe_fault(exc: BaseException) -> str:
    """A fault in words safe to print: our own messages, otherwise only the exception's type
    (a database error's text quotes the SQL parameters, which may be personal)."""
    if isinstance(exc, PlusjeklasError | FieldError):
        return str(exc)
    return f"{type(exc).__name__} (see the database and the logs)"


# --- entry points --------------------------------------------------------------------------


def erase_planned(
    session: Session,
    staff: StaffMember,
    settings: RetentionSettings,
    targets: Mapping[str, ProviderTarget],
    item: PlanItem,
    today: dt.date,
    *,
    dry_run: bool = False,
) -> ErasureResult:
    """Carry out one item of the retention plan (the sweep calls this once per item)."""
    if item.kind == ORGANISATION:
        return erase_organisation(
            session,
            staff,
            settings,
            targets,
            item.subject_id,
            basis=GENERAL,
            today=today,
            dry_run=dry_run,
        )
    if item.kind == ADMINISTRATOR:
        return erase_administrator(
            session,
            staff,
            settings,
            targets,
            item.subject_id,
            basis=ADMINISTRATOR_LEFT,
            today=today,
            dry_run=dry_run,
        )
    if item.kind == RESTRICTED_RECORD:
        return delete_restricted_record(session, staff, item.subject_id, today, dry_run=dry_run)
    raise ValueError(f"unknown plan item kind {item.kind!r}")


def request_erasure(
    session: Session,
    staff: StaffMember,
    settings: RetentionSettings,
    targets: Mapping[str, ProviderTarget],
    subject_type: str,
    subject_id: int,
    reason: RequestReason | str,
    today: dt.date,
    *,
    dry_run: bool = False,
) -> ErasureResult:
    """Erasure on request (GDPR art. 17), from the record view: the same path as the sweep.

    Needs the ``erase`` permission and a reason category. A legal hold refuses it
    (art. 17(3)(e)); fiscal records are kept as configured (art. 17(3)(b)).
    """
    staff.require(Permission.ERASE, "erase a record on request")
    grounds = parse_reason(reason)
    if subject_type == ORGANISATION:
        return erase_organisation(
            session,
            staff,
            settings,
            targets,
            subject_id,
            basis=REQUEST,
            today=today,
            reason=grounds,
            dry_run=dry_run,
        )
    if subject_type == ADMINISTRATOR:
        return erase_administrator(
            session,
            staff,
            settings,
            targets,
            subject_id,
            basis=REQUEST,
            today=today,
            reason=grounds,
            dry_run=dry_run,
        )
    raise FieldError("subject_type", subject_type, "must be organisation or administrator")


def _require(staff: StaffMember, basis: str, dry_run: bool) -> None:
    if basis == REQUEST:
        staff.require(Permission.ERASE, "erase a record on request")
    elif dry_run:
        staff.require(Permission.READ, "preview a retention sweep")
    else:
        staff.require(Permission.SWEEP, "erase records by the retention rules")


def _secure_delete(session: Session) -> None:
    """Overwrite deleted rows in the SQLite file instead of leaving them in free pages."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete=ON")


def _receipt_rule(basis: str, settings: RetentionSettings, reason: RequestReason | None) -> str:
    if basis == REQUEST:
        assert reason is not None
        return "erasure on request: GDPR " + REQUEST_REASON_TEXT[reason]
    return rule_text(basis, settings)


def _audit_reason(basis: str, reason: RequestReason | None) -> dict[str, str]:
    """What the audit row (and so the subject_erased plugin event) says about why."""
    return {"reason": str(reason)} if basis == REQUEST else {"rule": basis}


# --- organisation --------------------------------------------------------------------------


def erase_organisation(
    session: Session,
    staff: StaffMember,
    settings: RetentionSettings,
    targets: Mapping[str, ProviderTarget],
    organisation_id: int,
    *,
    basis: str,
    today: dt.date,
    reason: RequestReason | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Erase a school and its people here; queue one task per enabled provider holding them.

    Everything happens in *session*'s transaction: the caller commits (or, dry, rolls back).
    The organisation row is locked first (PostgreSQL), so a renewal or a hold saved at the
    same moment either comes before (and the erasure is refused) or waits and then fails.
    """
    _require(staff, basis, dry_run)
    if not dry_run:
        _secure_delete(session)
    organisation = session.scalars(
        select(Organisation).where(Organisation.id == organisation_id).with_for_update()
    ).first()
    if organisation is None:
        raise SubjectGone(f"organisation #{organisation_id} no longer exists")
    _refuse_if_held(session, organisation_id)
    facts = subscription_facts(session, organisation_id, today)
    if basis == GENERAL:
        deadline = general_rule(settings).deadline(facts.clock_start)
        if not is_due(deadline, today):
            raise NotDue(
                "a subscription runs"
                if deadline is None
                else f"not due: kept until {deadline.isoformat()}"
            )
    people = session.execute(
        select(Administrator.id, Administrator.email)
        .where(Administrator.organisation_id == organisation_id)
        .order_by(Administrator.id)  # type: ignore[arg-type]
    ).all()
    people_ids = [row.id for row in people]
    emails = {(ADMINISTRATOR, row.id): row.email for row in people}
    emails[(ORGANISATION, organisation_id)] = organisation.email
    links = _links(
        session,
        or_(
            and_(
                ProviderLink.subject_type == ORGANISATION,
                ProviderLink.subject_id == organisation_id,
            ),
            and_(
                ProviderLink.subject_type == ADMINISTRATOR,
                ProviderLink.subject_id.in_(people_ids),  # type: ignore[attr-defined]
            ),
        ),
    )
    retained: list[dict[str, str]] = []
    restricted: RestrictedRecord | None = None
    if facts.had_subscription:
        until = payment_records_until(facts.last_payment_year, settings)
        payers = sorted({link.provider for link in links if _kind(targets, link) == "payment"})
        retained.append(
            {
                "category": PAYMENT_RECORDS,
                "legal_basis": settings.payment_records_legal_basis,
                "kept_until": until.isoformat(),
                "where": ", ".join(payers) or "the payment provider",
            }
        )
        if settings.keep_local_iban_as_payment_record and organisation.iban:
            retained.append(
                {
                    "category": LOCAL_PAYMENT_RECORD,
                    "legal_basis": settings.payment_records_legal_basis,
                    "kept_until": until.isoformat(),
                    "where": "here, restricted (GDPR art. 18)",
                }
            )
            restricted = RestrictedRecord(
                receipt_id=0,
                category=LOCAL_PAYMENT_RECORD,
                legal_basis=settings.payment_records_legal_basis,
                keep_until=until,
                payload=json.dumps(
                    {
                        "name": organisation.name,
                        "street": organisation.street,
                        "postcode": organisation.postcode,
                        "city": organisation.city,
                        "iban": organisation.iban,
                    }
                ),
            )
    result = _result(ORGANISATION, organisation_id, basis, settings, reason, links, targets)
    result.administrators = tuple(people_ids)
    result.retained = tuple(retained)
    if dry_run:
        return result

    receipt = _write_receipt(session, staff, result)
    _write_tasks(session, receipt.id, result.tasks, links, emails, targets)  # type: ignore[arg-type]
    if restricted is not None:
        restricted.receipt_id = receipt.id  # type: ignore[assignment]
        session.add(restricted)
    session.execute(delete(ProviderLink).where(ProviderLink.id.in_([x.id for x in links])))  # type: ignore[attr-defined]
    session.execute(
        delete(ConsentEvent).where(ConsentEvent.administrator_id.in_(people_ids))  # type: ignore[attr-defined]
    )
    session.execute(delete(Administrator).where(Administrator.organisation_id == organisation_id))
    session.execute(delete(Subscription).where(Subscription.organisation_id == organisation_id))
    session.execute(delete(LegalHold).where(LegalHold.organisation_id == organisation_id))
    session.execute(delete(Organisation).where(Organisation.id == organisation_id))
    why = _audit_reason(basis, reason)
    audit.record(
        session,
        staff,
        "erase",
        ORGANISATION,
        organisation_id,
        receipt=receipt.id,
        administrators=len(people_ids),
        tasks=len(result.tasks),
        restricted=restricted is not None,
        **why,
    )
    for person in people_ids:
        audit.record(
            session,
            staff,
            "erase",
            ADMINISTRATOR,
            person,
            receipt=receipt.id,
            organisation_id=organisation_id,
            **why,
        )
    session.flush()
    result.receipt_id = receipt.id
    return result


@dataclass(frozen=True)
class SubscriptionFacts:
    clock_start: dt.date | None
    had_subscription: bool
    last_payment_year: int


def subscription_facts(session: Session, organisation_id: int, today: dt.date) -> SubscriptionFacts:
    """The retention clock (the one query every screen uses) and the fiscal year of the last
    invoice: the year the last subscription ended, or this year while one runs."""
    clock = session.execute(clock_starts(today).where(Organisation.id == organisation_id)).first()
    running = func.sum(
        case(
            (Subscription.end_date.is_(None), 1),  # type: ignore[union-attr]
            (Subscription.end_date >= today, 1),  # type: ignore[operator]
            else_=0,
        )
    )
    count, last_end, runs = session.execute(
        select(func.count(Subscription.id), func.max(Subscription.end_date), running).where(
            Subscription.organisation_id == organisation_id
        )
    ).one()
    last = as_date(last_end)
    year = today.year if (runs or last is None) else min(last, today).year
    return SubscriptionFacts(
        clock_start=None if clock is None else as_date(clock.clock_start),
        had_subscription=bool(count),
        last_payment_year=year,
    )


def _refuse_if_held(session: Session, organisation_id: int) -> None:
    hold = current_hold(session, organisation_id)
    if hold is not None:
        raise OnHold(
            f"organisation #{organisation_id} is on legal hold (set by {hold.set_by} on "
            f"{hold.set_at:%Y-%m-%d}); lift the hold first"
        )


# --- administrator -------------------------------------------------------------------------


def erase_administrator(
    session: Session,
    staff: StaffMember,
    settings: RetentionSettings,
    targets: Mapping[str, ProviderTarget],
    administrator_id: int,
    *,
    basis: str,
    today: dt.date,
    reason: RequestReason | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Erase one person (left the school, or asked) while the school stays."""
    _require(staff, basis, dry_run)
    if not dry_run:
        _secure_delete(session)
    person = session.scalars(
        select(Administrator).where(Administrator.id == administrator_id).with_for_update()
    ).first()
    if person is None:
        raise SubjectGone(f"administrator #{administrator_id} no longer exists")
    _refuse_if_held(session, person.organisation_id)
    if basis == ADMINISTRATOR_LEFT:
        if person.left_on is None:
            raise NotDue("no longer marked as having left")
        deadline = administrator_deadline(person.left_on, settings)
        if not is_due(deadline, today):
            raise NotDue(f"not due: kept until {deadline.isoformat()}")
    links = _links(
        session,
        and_(
            ProviderLink.subject_type == ADMINISTRATOR,
            ProviderLink.subject_id == administrator_id,
        ),
    )
    result = _result(ADMINISTRATOR, administrator_id, basis, settings, reason, links, targets)
    if dry_run:
        return result
    receipt = _write_receipt(session, staff, result)
    emails = {(ADMINISTRATOR, administrator_id): person.email}
    _write_tasks(session, receipt.id, result.tasks, links, emails, targets)  # type: ignore[arg-type]
    organisation_id = person.organisation_id
    session.execute(delete(ProviderLink).where(ProviderLink.id.in_([x.id for x in links])))  # type: ignore[attr-defined]
    session.execute(delete(ConsentEvent).where(ConsentEvent.administrator_id == administrator_id))
    session.execute(delete(Administrator).where(Administrator.id == administrator_id))
    audit.record(
        session,
        staff,
        "erase",
        ADMINISTRATOR,
        administrator_id,
        receipt=receipt.id,
        organisation_id=organisation_id,
        tasks=len(result.tasks),
        **_audit_reason(basis, reason),
    )
    session.flush()
    result.receipt_id = receipt.id
    return result


# --- restricted records past their date ----------------------------------------------------


def delete_restricted_record(
    session: Session, staff: StaffMember, record_id: int, today: dt.date, *, dry_run: bool = False
) -> ErasureResult:
    """Delete a kept fiscal record once its ``keep_until`` has passed; note it on the receipt."""
    _require(staff, PAYMENT_RECORDS_EXPIRED, dry_run)
    if not dry_run:
        _secure_delete(session)
    record = session.get(RestrictedRecord, record_id, with_for_update=True)
    if record is None:
        raise SubjectGone(f"restricted record #{record_id} no longer exists")
    if not is_due(record.keep_until, today):
        raise NotDue(f"not due: kept until {record.keep_until.isoformat()}")
    result = ErasureResult(
        subject_type=RESTRICTED_RECORD,
        subject_id=record_id,
        basis=PAYMENT_RECORDS_EXPIRED,
        rule=record.category,
        retained=({"category": record.category},),
    )
    if dry_run:
        return result
    receipt = session.get(ErasureReceipt, record.receipt_id)
    if receipt is not None:
        entries = json.loads(receipt.retained or "[]")
        for entry in entries:
            if entry.get("category") == record.category and "deleted_on" not in entry:
                entry["deleted_on"] = today.isoformat()
        receipt.retained = json.dumps(entries)
    session.execute(delete(RestrictedRecord).where(RestrictedRecord.id == record_id))
    audit.record(
        session,
        staff,
        "delete_restricted",
        RESTRICTED_RECORD,
        record_id,
        receipt=record.receipt_id,
        rule=PAYMENT_RECORDS_EXPIRED,
    )
    session.flush()
    result.receipt_id = record.receipt_id
    return result


# --- shared steps --------------------------------------------------------------------------


def _links(session: Session, condition: Any) -> list[ProviderLink]:
    return list(
        session.scalars(
            select(ProviderLink)
            .where(condition)
            .order_by(ProviderLink.provider, ProviderLink.subject_type, ProviderLink.subject_id)  # type: ignore[arg-type]
        )
    )


def _kind(targets: Mapping[str, ProviderTarget], link: ProviderLink) -> str | None:
    target = targets.get(link.provider)
    return None if target is None else target.kind


def _result(
    subject_type: str,
    subject_id: int,
    basis: str,
    settings: RetentionSettings,
    reason: RequestReason | None,
    links: Sequence[ProviderLink],
    targets: Mapping[str, ProviderTarget],
) -> ErasureResult:
    tasks = tuple(
        PlannedTask(link.provider, link.subject_type, link.subject_id)
        for link in links
        if link.provider in targets
    )
    not_told = tuple(sorted({link.provider for link in links if link.provider not in targets}))
    return ErasureResult(
        subject_type=subject_type,
        subject_id=subject_id,
        basis=basis,
        rule=_receipt_rule(basis, settings, reason),
        tasks=tasks,
        not_told=not_told,
    )


def _write_receipt(session: Session, staff: StaffMember, result: ErasureResult) -> ErasureReceipt:
    """The receipt; and, before the subject's rows go, the open data-subject requests about it
    are settled against it (erased by a retention rule: scrubbed, linked, closed)."""
    from plusjeklas_tui.services.requests import settle_for_erasure

    receipt = ErasureReceipt(
        subject_type=result.subject_type,
        subject_id=result.subject_id,
        erased_at=utcnow(),
        basis=result.basis,
        rule=result.rule,
        actor=staff.username,
        retained=json.dumps(list(result.retained)),
    )
    session.add(receipt)
    session.flush()
    assert receipt.id is not None
    settle_for_erasure(
        session,
        staff,
        subject_type=result.subject_type,
        subject_id=result.subject_id,
        administrator_ids=result.administrators,
        receipt_id=receipt.id,
        basis=result.basis,
    )
    return receipt


def locator_for(link: ProviderLink, email: str | None, target: ProviderTarget) -> str:
    """What the provider needs to find the subject (the column encrypts it).

    The provider's id for the subject and, only for providers that find people by address, the
    e-mail address; in the worker's format (:func:`deletions.make_locator`), which turns it back
    into a :class:`~plusjeklas_tui.providers.Subject`.
    """
    from plusjeklas_tui.services.deletions import make_locator

    return make_locator(external_id=link.external_id, email=email if target.needs_email else None)


def _write_tasks(
    session: Session,
    receipt_id: int,
    tasks: Sequence[PlannedTask],
    links: Sequence[ProviderLink],
    emails: Mapping[tuple[str, int], str | None],
    targets: Mapping[str, ProviderTarget],
) -> None:
    by_key = {(x.provider, x.subject_type, x.subject_id): x for x in links}
    now = utcnow()
    for task in tasks:
        link = by_key[(task.provider, task.subject_type, task.subject_id)]
        session.add(
            DeletionTask(
                receipt_id=receipt_id,
                provider=task.provider,
                subject_type=task.subject_type,
                subject_id=task.subject_id,
                locator=locator_for(
                    link, emails.get((task.subject_type, task.subject_id)), targets[task.provider]
                ),
                state=DeletionState.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )
