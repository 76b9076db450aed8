"""Export of one organisation with everything held about it and its people (GDPR art. 15/20).

The result is plain JSON-serialisable data (ISO dates and times, UTC) with the schema tag
``plusjeklas-export/1``. Personal fields are decrypted: an export is the one place they leave
the database on purpose, so it needs the ``export`` permission and is audited (by id and
counts only). The IBAN is shown in full only to staff who may reveal it; others get it masked
(``iban_masked`` says which), the same rule as on screen.

``retained`` says what is kept, why and until when (:mod:`~plusjeklas_tui.services.retained`):
the deadline of the general data, a legal hold, the categories kept longer (payment records)
and any restricted records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    DEFAULT_PURPOSES,
    Administrator,
    ConsentEvent,
    ProviderLink,
    Subscription,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.erasure import ProviderTarget
from plusjeklas_tui.services.records import (
    administrator_phones,
    find_organisation_by_brin,
    local_today,
)
from plusjeklas_tui.services.retained import retained_section
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError, mask_iban, normalize_brin

__all__ = ["EXPORT_SCHEMA", "export_organisation"]

EXPORT_SCHEMA = "plusjeklas-export/1"


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _link(link: ProviderLink) -> dict[str, Any]:
    return {
        "provider": link.provider,
        "external_id": link.external_id,
        "last_synced_at": _iso(link.last_synced_at),
        "created_at": _iso(link.created_at),
    }


def _consent(events: list[ConsentEvent], purposes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per purpose: the current state (the latest event's action) and the full history."""
    result: dict[str, dict[str, Any]] = {p: {"current": None, "history": []} for p in purposes}
    for event in events:  # oldest first, so the last one seen is current
        entry = result.setdefault(event.purpose, {"current": None, "history": []})
        entry["current"] = str(event.action)
        entry["history"].append(
            {
                "action": str(event.action),
                "occurred_at": _iso(event.occurred_at),
                "source": event.source,
                "evidence": event.evidence,
                "recorded_at": _iso(event.recorded_at),
            }
        )
    return result


def export_organisation(
    session: Session,
    staff: StaffMember,
    brin: str,
    *,
    purposes: Iterable[str] = DEFAULT_PURPOSES,
    retention: RetentionSettings | None = None,
    targets: Mapping[str, ProviderTarget] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Everything about the school with *brin*, as a JSON-ready dict; audited.

    The audit event is added to *session*: the caller commits it (``session_scope``) before
    handing the export out. ``purposes`` (``settings.consent_purposes``) makes every purpose
    appear in each person's consent, with ``current: null`` where there is no event.
    ``retention`` (``settings.retention``; default: the defaults, the statement's rules) and
    ``targets`` (:func:`erasure.provider_targets`, which names the payment providers) make the
    ``retained`` section; ``today`` defaults to today in the Netherlands.
    """
    staff.require(Permission.EXPORT, "export organisations")
    try:
        code = normalize_brin(brin)
    except FieldError as error:
        raise NotFound(f"no organisation can have this BRIN: {error}") from None
    organisation = find_organisation_by_brin(session, code)
    if organisation is None:
        raise NotFound(f"no organisation with BRIN {code}")
    assert organisation.id is not None
    purposes = list(purposes)
    reveal = staff.can(Permission.REVEAL)

    administrators = list(
        session.scalars(
            select(Administrator)
            .where(Administrator.organisation_id == organisation.id)
            .order_by(Administrator.id)  # type: ignore[arg-type]
        )
    )
    admin_ids = [a.id for a in administrators]
    events: dict[int, list[ConsentEvent]] = {i: [] for i in admin_ids if i is not None}
    if admin_ids:
        for event in session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.administrator_id.in_(admin_ids))  # type: ignore[attr-defined]
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
        ):
            events[event.administrator_id].append(event)
    links: dict[tuple[str, int], list[ProviderLink]] = {}
    subject = or_(
        and_(
            ProviderLink.subject_type == "organisation", ProviderLink.subject_id == organisation.id
        ),
        and_(
            ProviderLink.subject_type == "administrator",
            ProviderLink.subject_id.in_(admin_ids),  # type: ignore[attr-defined]
        ),
    )
    for link in session.scalars(
        select(ProviderLink).where(subject).order_by(ProviderLink.provider, ProviderLink.id)  # type: ignore[arg-type]
    ):
        links.setdefault((link.subject_type, link.subject_id), []).append(link)
    subscriptions = list(
        session.scalars(
            select(Subscription)
            .where(Subscription.organisation_id == organisation.id)
            .order_by(Subscription.start_date, Subscription.id)  # type: ignore[arg-type]
        )
    )

    iban = organisation.iban
    data: dict[str, Any] = {
        "schema": EXPORT_SCHEMA,
        "exported_at": _iso(utcnow()),
        "exported_by": staff.username,
        "organisation": {
            "id": organisation.id,
            "brin": organisation.brin,
            "name": organisation.name,
            "street": organisation.street,
            "postcode": organisation.postcode,
            "city": organisation.city,
            "phone": organisation.phone,
            "email": organisation.email,
            "iban": iban if reveal or iban is None else mask_iban(iban),
            "iban_masked": bool(iban) and not reveal,
            "notes": organisation.notes,
            "created_at": _iso(organisation.created_at),
            "updated_at": _iso(organisation.updated_at),
            "version": organisation.version,
            "provider_links": [_link(x) for x in links.get(("organisation", organisation.id), [])],
        },
        "administrators": [
            {
                "id": admin.id,
                "name": admin.name,
                "email": admin.email,
                "phones": administrator_phones(admin),
                "started_on": _iso(admin.started_on),
                "left_on": _iso(admin.left_on),
                "created_at": _iso(admin.created_at),
                "updated_at": _iso(admin.updated_at),
                "version": admin.version,
                "consent": _consent(events.get(admin.id or 0, []), purposes),
                "provider_links": [
                    _link(x) for x in links.get(("administrator", admin.id or 0), [])
                ],
            }
            for admin in administrators
        ],
        "subscriptions": [
            {
                "id": sub.id,
                "plan": sub.plan,
                "start_date": _iso(sub.start_date),
                "end_date": _iso(sub.end_date),
                "status": str(sub.status),
                "created_at": _iso(sub.created_at),
                "updated_at": _iso(sub.updated_at),
            }
            for sub in subscriptions
        ],
        "retained": retained_section(
            session,
            retention or RetentionSettings(),
            organisation.id,
            today=today or local_today(),
            targets=targets,
        ),
    }
    audit.record(
        session,
        staff,
        "export",
        "organisation",
        organisation.id,
        administrators=len(administrators),
        subscriptions=len(subscriptions),
        consent_events=sum(len(v) for v in events.values()),
        provider_links=sum(len(v) for v in links.values()),
        iban_revealed=bool(iban) and reveal,
    )
    return data
