"""Everything the Record screen shows about one organisation, read in one short session.

The screen gets frozen dataclasses, never ORM objects: they can cross from the worker thread
to the UI thread, be compared (an unchanged record is not redrawn on auto-refresh) and never
lazy-load behind the session's back.

The data-subject requests about the school and its people come along (kind, status, deadline,
days left, a restriction in force; never who asked), so the record shows them at a glance.

The IBAN is the one value the view never carries in full: it holds only the masked form.
Seeing the whole IBAN is a separate, audited step (:func:`reveal_iban`) that needs the
``reveal`` permission.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    DEFAULT_PURPOSES,
    Administrator,
    AuditEvent,
    ConsentEvent,
    Organisation,
    ProviderLink,
    Subscription,
)
from plusjeklas_tui.services import audit, records
from plusjeklas_tui.services import requests as subject_requests
from plusjeklas_tui.services.deadlines import RetentionRule, as_date, clock_starts, urgency
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import mask_iban

__all__ = [
    "AUDIT_LIMIT",
    "AdministratorView",
    "AuditView",
    "ConsentEventView",
    "OrganisationView",
    "ProviderLinkView",
    "RecordView",
    "RequestView",
    "RetentionView",
    "SubscriptionView",
    "load_record",
    "reveal_iban",
]

#: The newest audit events shown with a record; older ones are on the Audit screen.
AUDIT_LIMIT = 200


@dataclass(frozen=True)
class OrganisationView:
    id: int
    name: str
    street: str
    postcode: str
    city: str
    brin: str
    phone: str
    """E.164, as stored; the screen formats it for display."""
    email: str | None
    iban_masked: str | None
    """``NL** **** **** **34 56``; the full IBAN only through :func:`reveal_iban`."""
    notes: str | None
    version: int
    created_at: dt.datetime | None

    @property
    def has_iban(self) -> bool:
        return self.iban_masked is not None


@dataclass(frozen=True)
class RetentionView:
    """The deadline and what set it, so staff can check the reasoning, not just the date."""

    rule_name: str
    months: int
    reason: str
    """``running`` (a subscription runs: no deadline), ``ended`` (counted from the last
    subscription's end) or ``created`` (never subscribed: counted from the record's creation)."""
    clock_start: dt.date | None
    deadline: dt.date | None
    urgency: str
    """See :func:`plusjeklas_tui.services.deadlines.urgency`."""


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    plan: str
    start_date: dt.date
    end_date: dt.date | None
    status: str


@dataclass(frozen=True)
class AdministratorView:
    id: int
    name: str
    email: str
    phones: tuple[str, ...]
    """E.164 numbers."""
    started_on: dt.date | None
    left_on: dt.date | None
    version: int
    consent: tuple[tuple[str, str | None], ...]
    """Current consent per purpose (``granted``, ``withdrawn`` or ``None``: never asked),
    derived from the history by :func:`records.current_consent`."""

    def consent_for(self, purpose: str) -> str | None:
        return dict(self.consent).get(purpose)


@dataclass(frozen=True)
class ConsentEventView:
    id: int
    administrator_id: int
    administrator_name: str
    purpose: str
    action: str
    occurred_at: dt.datetime
    source: str
    """``staff:<user>`` names the staff member who recorded it."""
    evidence: str | None


@dataclass(frozen=True)
class ProviderLinkView:
    id: int
    provider: str
    subject_type: str
    subject_id: int
    subject_name: str
    """The school's or the administrator's name, for the list."""
    external_id: str
    last_synced_at: dt.datetime | None


@dataclass(frozen=True)
class AuditView:
    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    detail: str
    """``key=value`` pairs from the event's JSON detail (never personal data)."""


@dataclass(frozen=True)
class RequestView:
    """A data-subject request about the school or one of its people: no requester details
    (those are on the Requests screen), only what staff need to see at a glance."""

    id: int
    kind: str
    status: str
    administrator_id: int | None
    """The person it is about; None for the school itself."""
    subject_name: str | None
    """The person's name while they are on this record; None for the school."""
    received_on: dt.date
    due_on: dt.date
    """The deadline in force (the extended one once extended)."""
    days_left: int | None
    """Calendar days to the deadline (negative: overdue); None once closed."""
    overdue: bool
    extended: bool
    tell_by: dt.date | None
    """Extended and the person not yet told: tell them by this date."""
    outcome: str | None
    restricted: bool
    """A restriction (GDPR art. 18) in force: the subject's data may only be stored."""

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class RecordView:
    organisation: OrganisationView
    retention: RetentionView
    subscriptions: tuple[SubscriptionView, ...]
    administrators: tuple[AdministratorView, ...]
    consent_events: tuple[ConsentEventView, ...]
    """Grouped per person and purpose, oldest first within each group."""
    provider_links: tuple[ProviderLinkView, ...]
    audit: tuple[AuditView, ...]
    """Newest first, at most :data:`AUDIT_LIMIT`."""
    audit_truncated: bool
    purposes: tuple[str, ...]
    requests: tuple[RequestView, ...] = ()
    """Open ones first by deadline, then closed ones newest first."""

    def administrator(self, administrator_id: int) -> AdministratorView | None:
        return next((a for a in self.administrators if a.id == administrator_id), None)

    @property
    def restrictions(self) -> tuple[RequestView, ...]:
        """The restrictions in force on the school or its people."""
        return tuple(r for r in self.requests if r.restricted)


# --- loading -------------------------------------------------------------------------------


def _organisation(org: Organisation) -> OrganisationView:
    assert org.id is not None
    return OrganisationView(
        id=org.id,
        name=org.name,
        street=org.street,
        postcode=org.postcode,
        city=org.city,
        brin=org.brin,
        phone=org.phone,
        email=org.email,
        iban_masked=mask_iban(org.iban) if org.iban else None,
        notes=org.notes,
        version=org.version,
        created_at=org.created_at,
    )


def _retention(
    session: Session,
    organisation_id: int,
    rule: RetentionRule,
    today: dt.date,
    subscriptions: Sequence[SubscriptionView],
) -> RetentionView:
    """The same computation as ``deadlines.deadline_for``, inside this session's snapshot."""
    row = session.execute(clock_starts(today).where(Organisation.id == organisation_id)).first()
    clock = as_date(row.clock_start) if row is not None else None
    deadline = rule.deadline(clock)
    if clock is None:
        reason = "running"
    elif not subscriptions:
        reason = "created"
    else:
        reason = "ended"
    return RetentionView(
        rule_name=rule.name,
        months=rule.months,
        reason=reason,
        clock_start=clock,
        deadline=deadline,
        urgency=urgency(deadline, today),
    )


def _detail_text(detail: str) -> str:
    """``{"fields": ["name"], "version": 2}`` -> ``fields=name version=2``."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return detail
    if not isinstance(data, dict):
        return detail
    parts = []
    for key, value in data.items():
        shown = ",".join(str(v) for v in value) if isinstance(value, list) else value
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def _requests(
    session: Session,
    organisation_id: int,
    names: dict[int, str],
    today: dt.date,
) -> tuple[RequestView, ...]:
    found = subject_requests.requests_about(
        session, organisation_id=organisation_id, administrator_ids=list(names)
    )
    views = []
    for request in found:
        row = subject_requests.row_of(request, today)
        person = row.administrator_id if row.subject_type == "administrator" else None
        views.append(
            RequestView(
                id=row.id,
                kind=row.kind,
                status=row.status,
                administrator_id=person,
                subject_name=None if person is None else names.get(person),
                received_on=row.received_on,
                due_on=row.due_on,
                days_left=row.days_left,
                overdue=row.overdue,
                extended=row.extended,
                tell_by=row.tell_by,
                outcome=row.outcome,
                restricted=row.restricted,
            )
        )
    open_ones = sorted((v for v in views if v.is_open), key=lambda v: (v.due_on, v.id))
    closed = sorted((v for v in views if not v.is_open), key=lambda v: -v.id)
    return (*open_ones, *closed)


def load_record(
    engine: Engine,
    organisation_id: int,
    *,
    rule: RetentionRule,
    today: dt.date,
    purposes: Sequence[str] = DEFAULT_PURPOSES,
    audit_limit: int = AUDIT_LIMIT,
) -> RecordView:
    """Read an organisation with everything around it. Raises :class:`NotFound` if it is gone."""
    with Session(engine) as session:
        org = session.get(Organisation, organisation_id)
        if org is None:
            raise NotFound(f"organisation #{organisation_id} does not exist")
        organisation = _organisation(org)

        subscriptions = tuple(
            SubscriptionView(
                id=s.id,  # type: ignore[arg-type]
                plan=s.plan,
                start_date=s.start_date,
                end_date=s.end_date,
                status=str(s.status),
            )
            for s in session.scalars(
                select(Subscription)
                .where(Subscription.organisation_id == organisation_id)
                .order_by(Subscription.start_date.desc(), Subscription.id.desc())  # type: ignore[union-attr,attr-defined]
            )
        )
        retention = _retention(session, organisation_id, rule, today, subscriptions)

        people = list(
            session.scalars(
                select(Administrator)
                .where(Administrator.organisation_id == organisation_id)
                .order_by(Administrator.id)  # type: ignore[arg-type]
            )
        )
        administrators = tuple(
            AdministratorView(
                id=a.id,  # type: ignore[arg-type]
                name=a.name,
                email=a.email,
                phones=tuple(records.administrator_phones(a)),
                started_on=a.started_on,
                left_on=a.left_on,
                version=a.version,
                consent=tuple(
                    (purpose, None if action is None else str(action))
                    for purpose, action in records.current_consent(
                        session,
                        a.id,
                        purposes,  # type: ignore[arg-type]
                    ).items()
                ),
            )
            for a in people
        )
        names = {a.id: a.name for a in administrators}
        admin_ids = list(names)
        requests = _requests(session, organisation_id, names, today)

        consent_events: tuple[ConsentEventView, ...] = ()
        if admin_ids:
            consent_events = tuple(
                ConsentEventView(
                    id=e.id,  # type: ignore[arg-type]
                    administrator_id=e.administrator_id,
                    administrator_name=names[e.administrator_id],
                    purpose=e.purpose,
                    action=str(e.action),
                    occurred_at=e.occurred_at,
                    source=e.source,
                    evidence=e.evidence,
                )
                for e in session.scalars(
                    select(ConsentEvent)
                    .where(ConsentEvent.administrator_id.in_(admin_ids))  # type: ignore[attr-defined]
                    .order_by(
                        ConsentEvent.administrator_id,
                        ConsentEvent.purpose,
                        ConsentEvent.occurred_at,
                        ConsentEvent.id,
                    )
                )
            )

        subject = or_(
            and_(
                ProviderLink.subject_type == "organisation",
                ProviderLink.subject_id == organisation_id,
            ),
            and_(
                ProviderLink.subject_type == "administrator",
                ProviderLink.subject_id.in_(admin_ids),  # type: ignore[attr-defined]
            ),
        )
        provider_links = tuple(
            ProviderLinkView(
                id=link.id,  # type: ignore[arg-type]
                provider=link.provider,
                subject_type=link.subject_type,
                subject_id=link.subject_id,
                subject_name=organisation.name
                if link.subject_type == "organisation"
                else names.get(link.subject_id, ""),
                external_id=link.external_id,
                last_synced_at=link.last_synced_at,
            )
            for link in session.scalars(
                select(ProviderLink).where(subject).order_by(ProviderLink.provider, ProviderLink.id)
            )
        )

        subscription_ids = [s.id for s in subscriptions]
        trail = or_(
            and_(AuditEvent.entity == "organisation", AuditEvent.entity_id == organisation_id),
            and_(AuditEvent.entity == "administrator", AuditEvent.entity_id.in_(admin_ids)),  # type: ignore[union-attr]
            and_(AuditEvent.entity == "subscription", AuditEvent.entity_id.in_(subscription_ids)),  # type: ignore[union-attr]
        )
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(trail)
                .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())  # type: ignore[attr-defined,union-attr]
                .limit(audit_limit + 1)
            )
        )
        audit_views = tuple(
            AuditView(
                id=e.id,  # type: ignore[arg-type]
                occurred_at=e.occurred_at,
                actor=e.actor,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                detail=_detail_text(e.detail),
            )
            for e in events[:audit_limit]
        )

    return RecordView(
        organisation=organisation,
        retention=retention,
        subscriptions=subscriptions,
        administrators=administrators,
        consent_events=consent_events,
        provider_links=provider_links,
        audit=audit_views,
        audit_truncated=len(events) > audit_limit,
        purposes=tuple(dict.fromkeys([*purposes, *(e.purpose for e in consent_events)])),
        requests=requests,
    )


# --- revealing the IBAN --------------------------------------------------------------------


def reveal_iban(engine: Engine, staff: StaffMember, organisation_id: int) -> str:
    """The organisation's full IBAN (compact), after writing a ``reveal`` audit event.

    Needs :attr:`Permission.REVEAL`. The audit event names the field, never the value, and is
    committed before the value is returned: no unaudited reveal, even if the caller fails.
    """
    staff.require(Permission.REVEAL, "reveal IBANs")
    with session_scope(engine) as session:
        org = session.get(Organisation, organisation_id)
        if org is None:
            raise NotFound(f"organisation #{organisation_id} does not exist")
        if not org.iban:
            raise NotFound(f"organisation #{organisation_id} has no IBAN")
        iban = org.iban
        audit.record(session, staff, "reveal", "organisation", organisation_id, field="iban")
    return iban
