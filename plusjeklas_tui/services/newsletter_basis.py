"""Who may receive the newsletter, and on which basis; who may receive service announcements.

Two purposes, two legal bases (DOMAIN.md, "Consent and the newsletter"):

* **Service announcements** (changes to the lessons, maintenance, invoices) go to the contacts of
  schools with a current subscription — trial, active, or cancelled but still running. Basis:
  the contract (GDPR art. 6(1)(b)). No consent needed, and no newsletter either.
* **The newsletter** needs, per recipient, one of:

  - ``consent`` — the latest newsletter event in the person's history is a grant that carries
    proof of what was agreed to (its ``evidence`` or the ``text_version`` of the text shown).
    A grant without either is not a basis: we could not prove it (art. 7(1)).
  - ``customer`` — the Dutch existing-customer exception (Telecommunicatiewet art. 11.7(3)): a
    :class:`~plusjeklas_tui.models.CustomerBasis` row records that the details came with a sale
    and that the objection was offered then (the text's version and evidence are required).
    It holds only while the school is *paying*: an ``active`` subscription that has started,
    or a ``cancelled`` one whose end date has not passed. A trial is no sale, an ended
    subscription makes them a former customer. It also ends when the person leaves the school,
    and for good at any newsletter withdrawal in their history (that is the objection): only a
    new, explicit consent brings them back — nothing here re-subscribes someone who left.

A contact with neither is never pushed to the newsletter (``services/sync.py`` asks
:func:`standings`). The newsletter provider is told which contacts may get which through tags
on the member (:func:`Standing.tags`): ``newsletter`` and ``service``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    CustomerBasis,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.providers import Change
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError, ValidationErrors, check_free_text

__all__ = [
    "NEWSLETTER",
    "REASONS",
    "TAG_NEWSLETTER",
    "TAG_SERVICE",
    "Basis",
    "Standing",
    "TaggedChange",
    "contract_organisation_ids",
    "paying_organisation_ids",
    "record_customer_basis",
    "standing",
    "standings",
]

NEWSLETTER = "newsletter"
TAG_NEWSLETTER = "newsletter"
TAG_SERVICE = "service"
EVIDENCE_MAX_LENGTH = 1000
TEXT_VERSION_MAX_LENGTH = 100
CLOCK_SKEW = dt.timedelta(minutes=5)
_CHUNK = 500


class Basis(enum.StrEnum):
    CONSENT = "consent"
    CUSTOMER = "customer"


REASONS: dict[str, tuple[str, str]] = {
    "consent": ("toestemming met bewijs", "consent with proof"),
    "customer": (
        "klantuitzondering: betalende school, bezwaar aangeboden bij verzamelen",
        "customer exception: paying school, objection offered at collection",
    ),
    "consent-without-proof": (
        "toestemming zonder bewijs (geen tekstversie of bewijs)",
        "consent without proof (no text version or evidence)",
    ),
    "withdrawn": ("afgemeld of bezwaar gemaakt", "withdrew or objected"),
    "customer-not-paying": (
        "klantuitzondering vervallen: school betaalt niet (meer)",
        "customer exception lapsed: the school is not paying",
    ),
    "customer-left": (
        "klantuitzondering vervallen: persoon werkt niet meer bij de school",
        "customer exception lapsed: the person left the school",
    ),
    "no-basis": ("geen toestemming en geen klantuitzondering", "no consent and no customer basis"),
}
"""Why a person has (or lacks) a newsletter basis: code → (Dutch, English). Non-personal."""


@dataclass(frozen=True)
class Standing:
    """One person's newsletter basis (or why there is none) and service-mail eligibility."""

    administrator_id: int
    basis: Basis | None
    reason: str
    """A key of :data:`REASONS`."""
    service: bool
    """May receive service announcements: a contact of a school under contract."""
    consent_event_id: int | None = None
    customer_basis_id: int | None = None

    @property
    def newsletter(self) -> bool:
        return self.basis is not None

    def tags(self) -> dict[str, bool]:
        """What the newsletter provider is told: which mail this contact may get."""
        return {TAG_NEWSLETTER: self.newsletter, TAG_SERVICE: self.service}

    def to_dict(self) -> dict[str, Any]:
        return {
            "administrator_id": self.administrator_id,
            "basis": None if self.basis is None else self.basis.value,
            "reason": self.reason,
            "service": self.service,
            "consent_event_id": self.consent_event_id,
            "customer_basis_id": self.customer_basis_id,
        }


@dataclass(frozen=True)
class TaggedChange(Change):
    """A newsletter change that also says which mail the contact may get.

    ``tags`` are ``(name, active)`` pairs; a newsletter plugin that understands them reads
    ``getattr(change, "tags", ())`` and sets them on the member (Mailchimp: member tags), so a
    campaign can be sent to the ``newsletter`` tag and a service announcement to ``service``.
    Other plugins see an ordinary :class:`Change`.
    """

    tags: tuple[tuple[str, bool], ...] = ()


# --- which schools ---------------------------------------------------------------------------


def _today(today: dt.date | None) -> dt.date:
    return today or local_today()  # the Dutch date, as subscriptions are written


def _running(today: dt.date) -> Any:
    return and_(
        Subscription.start_date <= today,  # type: ignore[operator]
        or_(Subscription.end_date.is_(None), Subscription.end_date >= today),  # type: ignore[union-attr,operator]
    )


def paying_organisation_ids(session: Session, today: dt.date | None = None) -> set[int]:
    """Schools paying today: an active subscription that has started and not ended, or a
    cancelled one still running to its end date. Trials are not a sale."""
    day = _today(today)
    rows = session.scalars(
        select(Subscription.organisation_id)
        .where(_running(day))
        .where(
            or_(
                Subscription.status == SubscriptionStatus.ACTIVE,
                and_(
                    Subscription.status == SubscriptionStatus.CANCELLED,
                    Subscription.end_date.is_not(None),  # type: ignore[union-attr]
                ),
            )
        )
        .distinct()
    )
    return set(rows)


def contract_organisation_ids(session: Session, today: dt.date | None = None) -> set[int]:
    """Schools under contract today (service announcements): trial, active, or cancelled and
    still running."""
    day = _today(today)
    statuses = [SubscriptionStatus.TRIAL, SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED]
    rows = session.scalars(
        select(Subscription.organisation_id)
        .where(_running(day))
        .where(Subscription.status.in_(statuses))  # type: ignore[attr-defined]
        .distinct()
    )
    return set(rows)


# --- standings -------------------------------------------------------------------------------


@dataclass
class _Facts:
    organisation_id: int
    left_on: dt.date | None
    latest: tuple[int, str, bool] | None = None
    """The latest newsletter event: id, action, whether it carries proof."""
    ever_withdrew: bool = False
    customer_basis: tuple[int, int] | None = None
    """The latest customer basis: id, organisation id."""


def _chunks(ids: list[int] | None) -> Iterable[list[int] | None]:
    if ids is None:
        yield None
        return
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _facts(session: Session, ids: list[int] | None) -> dict[int, _Facts]:
    facts: dict[int, _Facts] = {}
    for chunk in _chunks(ids):
        query = select(Administrator.id, Administrator.organisation_id, Administrator.left_on)
        if chunk is not None:
            query = query.where(Administrator.id.in_(chunk))  # type: ignore[union-attr]
        for person_id, organisation_id, left_on in session.execute(query):
            facts[person_id] = _Facts(organisation_id, left_on)
        events = (
            select(
                ConsentEvent.administrator_id,
                ConsentEvent.id,
                ConsentEvent.action,
                ConsentEvent.evidence.is_not(None),  # type: ignore[union-attr]
                ConsentEvent.text_version,
            )
            .where(ConsentEvent.purpose == NEWSLETTER)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
        )
        if chunk is not None:
            events = events.where(ConsentEvent.administrator_id.in_(chunk))  # type: ignore[attr-defined]
        for person_id, event_id, action, has_evidence, text_version in session.execute(events):
            fact = facts.get(person_id)
            if fact is None:
                continue
            fact.latest = (event_id, str(action), bool(has_evidence) or bool(text_version))
            if action == ConsentAction.WITHDRAWN:
                fact.ever_withdrew = True
        bases = select(
            CustomerBasis.administrator_id, CustomerBasis.id, CustomerBasis.organisation_id
        ).order_by(CustomerBasis.collected_at, CustomerBasis.id)  # type: ignore[arg-type]
        if chunk is not None:
            bases = bases.where(CustomerBasis.administrator_id.in_(chunk))  # type: ignore[attr-defined]
        for person_id, basis_id, organisation_id in session.execute(bases):
            if person_id in facts:
                facts[person_id].customer_basis = (basis_id, organisation_id)
    return facts


def _decide(
    person_id: int, fact: _Facts, paying: set[int], contract: set[int], today: dt.date
) -> Standing:
    still_there = fact.left_on is None or fact.left_on > today
    service = still_there and fact.organisation_id in contract
    latest = fact.latest
    if latest is not None and latest[1] == ConsentAction.GRANTED and latest[2]:
        return Standing(person_id, Basis.CONSENT, "consent", service, consent_event_id=latest[0])
    event_id = latest[0] if latest is not None else None
    if fact.ever_withdrew:
        return Standing(person_id, None, "withdrawn", service, consent_event_id=event_id)
    if fact.customer_basis is not None:
        basis_id, organisation_id = fact.customer_basis
        if not still_there or organisation_id != fact.organisation_id:
            reason = "customer-left"
        elif organisation_id not in paying:
            reason = "customer-not-paying"
        else:
            return Standing(
                person_id, Basis.CUSTOMER, "customer", service, event_id, customer_basis_id=basis_id
            )
        return Standing(person_id, None, reason, service, event_id, customer_basis_id=basis_id)
    if latest is not None and latest[1] == ConsentAction.GRANTED:
        return Standing(person_id, None, "consent-without-proof", service, event_id)
    return Standing(person_id, None, "no-basis", service, event_id)


def standings(
    session: Session,
    administrator_ids: Collection[int] | None = None,
    *,
    today: dt.date | None = None,
) -> dict[int, Standing]:
    """Every asked-for administrator's standing (all of them when ``administrator_ids`` is
    None), from a handful of queries; no personal value is decrypted."""
    day = _today(today)
    ids = None if administrator_ids is None else sorted(set(administrator_ids))
    if ids == []:
        return {}
    facts = _facts(session, ids)
    paying = paying_organisation_ids(session, day)
    contract = contract_organisation_ids(session, day)
    return {
        person_id: _decide(person_id, fact, paying, contract, day)
        for person_id, fact in facts.items()
    }


def standing(session: Session, administrator_id: int, *, today: dt.date | None = None) -> Standing:
    found = standings(session, [administrator_id], today=today).get(administrator_id)
    if found is None:
        raise NotFound(f"administrator #{administrator_id} does not exist")
    return found


# --- recording a customer basis --------------------------------------------------------------


def _text_version(value: str | None, errors: list[FieldError]) -> str:
    text = (value or "").strip()
    if not text:
        errors.append(
            FieldError(
                "objection_text_version",
                "",
                "is required: the version of the order form or contract text that offered the "
                "objection to the newsletter (e.g. 'bestelformulier-2025-03')",
            )
        )
    elif len(text) > TEXT_VERSION_MAX_LENGTH or not text.isprintable():
        errors.append(
            FieldError(
                "objection_text_version",
                text,
                f"must be printable text of at most {TEXT_VERSION_MAX_LENGTH} characters",
                show_value=False,
            )
        )
    return text


def record_customer_basis(
    session: Session,
    staff: StaffMember,
    administrator_id: int,
    *,
    collected_at: dt.datetime,
    objection_text_version: str,
    evidence: str,
) -> CustomerBasis:
    """Record that a contact's details came with a sale and the objection was offered then.

    Refused when the person ever withdrew from the newsletter (that was an objection; only
    their consent can bring them back) and when their school never had a paid subscription
    (a trial is no sale). Whether the basis holds *today* is :func:`standing`'s business.
    """
    staff.require(Permission.EDIT, "record a customer basis for the newsletter")
    errors: list[FieldError] = []
    version = _text_version(objection_text_version, errors)
    try:
        text = check_free_text(evidence or "", "evidence", EVIDENCE_MAX_LENGTH)
    except FieldError as error:
        errors.append(error)
        text = "x"
    if not text:
        errors.append(
            FieldError(
                "evidence",
                "",
                "is required: where the proof is that the objection was offered when the "
                "details were collected (the signed order form, its date)",
            )
        )
    if collected_at.tzinfo is None:
        errors.append(
            FieldError("collected_at", collected_at.isoformat(), "must include a time zone")
        )
    elif collected_at > utcnow() + CLOCK_SKEW:
        errors.append(
            FieldError("collected_at", collected_at.isoformat(), "cannot be in the future")
        )
    if errors:
        raise ValidationErrors(errors)
    person = session.get(Administrator, administrator_id)
    if person is None:
        raise NotFound(f"administrator #{administrator_id} does not exist")
    facts = _facts(session, [administrator_id])[administrator_id]
    if facts.ever_withdrew:
        raise ValidationErrors(
            [
                FieldError(
                    "basis",
                    "customer",
                    "cannot be recorded: this person withdrew from (objected to) the newsletter; "
                    "only their own new consent can bring them back",
                )
            ]
        )
    sold = session.scalar(
        select(Subscription.id)
        .where(Subscription.organisation_id == person.organisation_id)
        .where(Subscription.status != SubscriptionStatus.TRIAL)
        .limit(1)
    )
    if sold is None:
        raise ValidationErrors(
            [
                FieldError(
                    "basis",
                    "customer",
                    f"needs a sale: school #{person.organisation_id} never had a paid "
                    "subscription (a trial is no sale); ask for consent instead",
                )
            ]
        )
    row = CustomerBasis(
        administrator_id=administrator_id,
        organisation_id=person.organisation_id,
        collected_at=collected_at,
        objection_text_version=version,
        evidence=text,
        recorded_by=staff.username,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        staff,
        "newsletter_basis",
        "administrator",
        administrator_id,
        basis=Basis.CUSTOMER.value,
        customer_basis_id=row.id,
    )
    return row
