"""Proof of consent (GDPR art. 7(1)): a person's full consent history per purpose, with evidence.

For each event: who (the administrator), when (UTC), the source (web form, import, staff member,
provider) and the form's address, the exact text's version or the evidence, the double opt-in
confirmation time, and for a withdrawal its time and channel. Each event also lists what its
proof lacks (``gaps``), so staff see a weak record before a regulator does. For the newsletter
the document adds the current basis (consent or the customer exception, with the customer
basis' own evidence; see :mod:`plusjeklas_tui.services.newsletter_basis`).

The document is *about* the person and is meant for them or a regulator, so it holds their name
and address; building it needs the export permission and leaves an audit event (ids only).
Exported as Markdown (Dutch or English) and as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    CustomerBasis,
    Organisation,
)
from plusjeklas_tui.services import audit, records
from plusjeklas_tui.services.newsletter_basis import NEWSLETTER, REASONS, Standing, standing
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError, ValidationErrors

__all__ = [
    "CHANNELS",
    "GAPS",
    "ConsentProof",
    "CustomerBasisProof",
    "ProofEvent",
    "PurposeProof",
    "build_proof",
    "record_with_proof",
    "to_json",
    "to_markdown",
]

GAPS: dict[str, tuple[str, str]] = {
    "text": (
        "geen tekstversie of bewijs van de tekst waarmee is ingestemd",
        "no version or evidence of the text agreed to",
    ),
    "form_url": ("geen adres van het formulier", "no address of the form"),
    "double_opt_in": ("geen bevestiging (double opt-in)", "no double opt-in confirmation"),
    "channel": ("geen kanaal van de intrekking", "no channel of the withdrawal"),
}
"""What an event's proof may lack: code → (Dutch, English)."""


@dataclass(frozen=True)
class ProofEvent:
    event_id: int
    purpose: str
    action: str
    occurred_at: dt.datetime
    source: str
    channel: str | None
    form_url: str | None
    text_version: str | None
    evidence: str | None
    confirmed_at: dt.datetime | None
    recorded_at: dt.datetime | None
    gaps: tuple[str, ...] = ()


@dataclass(frozen=True)
class PurposeProof:
    purpose: str
    current: str | None
    """``granted``, ``withdrawn``, or None when there was never an event."""
    events: list[ProofEvent]


@dataclass(frozen=True)
class CustomerBasisProof:
    basis_id: int
    organisation_id: int
    collected_at: dt.datetime
    objection_text_version: str
    evidence: str
    recorded_by: str
    recorded_at: dt.datetime | None


@dataclass(frozen=True)
class ConsentProof:
    administrator_id: int
    name: str
    email: str
    organisation_id: int
    organisation_name: str
    generated_at: dt.datetime
    generated_by: str
    purposes: list[PurposeProof]
    newsletter: Standing | None = None
    customer_bases: list[CustomerBasisProof] = field(default_factory=list)


def _gaps(event: ConsentEvent) -> tuple[str, ...]:
    gaps = []
    if event.action == ConsentAction.GRANTED:
        if not event.text_version and not event.evidence:
            gaps.append("text")
        if event.source == "web-form":
            if not event.form_url:
                gaps.append("form_url")
            if event.purpose == NEWSLETTER and event.confirmed_at is None:
                gaps.append("double_opt_in")
    elif not event.channel:
        gaps.append("channel")
    return tuple(gaps)


def _event(event: ConsentEvent) -> ProofEvent:
    assert event.id is not None
    return ProofEvent(
        event_id=event.id,
        purpose=event.purpose,
        action=str(ConsentAction(event.action).value),
        occurred_at=event.occurred_at,
        source=event.source,
        channel=event.channel,
        form_url=event.form_url,
        text_version=event.text_version,
        evidence=event.evidence,
        confirmed_at=event.confirmed_at,
        recorded_at=event.recorded_at,
        gaps=_gaps(event),
    )


def build_proof(
    session: Session,
    staff: StaffMember,
    administrator_id: int,
    purpose: str | None = None,
    *,
    purposes: Collection[str],
) -> ConsentProof:
    """The proof document of one person: every purpose, or only ``purpose``.

    ``purposes`` is the configured list; a purpose that appears only in the history (removed
    from the configuration) is still shown when no single purpose is asked for.
    """
    staff.require(Permission.EXPORT, "export a proof of consent")
    if purpose is not None and purpose not in purposes:
        raise ValidationErrors(
            [FieldError("purpose", purpose, f"must be one of {', '.join(purposes)}")]
        )
    person = session.get(Administrator, administrator_id)
    if person is None or person.id is None:
        raise NotFound(f"administrator #{administrator_id} does not exist")
    school = session.get(Organisation, person.organisation_id)
    query = (
        select(ConsentEvent)
        .where(ConsentEvent.administrator_id == administrator_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
    )
    if purpose is not None:
        query = query.where(ConsentEvent.purpose == purpose)
    events = list(session.scalars(query))
    names = [purpose] if purpose is not None else list(purposes)
    names += sorted({e.purpose for e in events} - set(names))
    sections = []
    for name in names:
        own = [_event(e) for e in events if e.purpose == name]
        sections.append(PurposeProof(name, own[-1].action if own else None, own))
    newsletter: Standing | None = None
    bases: list[CustomerBasisProof] = []
    if NEWSLETTER in names:
        newsletter = standing(session, administrator_id)
        for row in session.scalars(
            select(CustomerBasis)
            .where(CustomerBasis.administrator_id == administrator_id)
            .order_by(CustomerBasis.collected_at, CustomerBasis.id)  # type: ignore[arg-type]
        ):
            assert row.id is not None
            bases.append(
                CustomerBasisProof(
                    row.id,
                    row.organisation_id,
                    row.collected_at,
                    row.objection_text_version,
                    row.evidence,
                    row.recorded_by,
                    row.recorded_at,
                )
            )
    audit.record(
        session,
        staff,
        "consent_proof",
        "administrator",
        administrator_id,
        purposes=names,
        events=len(events),
    )
    return ConsentProof(
        administrator_id=person.id,
        name=person.name,
        email=person.email,
        organisation_id=person.organisation_id,
        organisation_name=school.name if school is not None else "",
        generated_at=utcnow(),
        generated_by=staff.username,
        purposes=sections,
        newsletter=newsletter,
        customer_bases=bases,
    )


# --- recording an event with its proof -------------------------------------------------------

CHANNELS = (
    "web-form",
    "e-mail",
    "phone",
    "letter",
    "in-person",
    "unsubscribe-link",
    "provider",
)
"""How a person can give or withdraw consent: withdrawing must be as easy as giving."""
_URL = re.compile(r"https?://[^\s/$.?#]\S*", re.IGNORECASE)


def _check_proof(
    action: str,
    occurred_at: dt.datetime | None,
    text_version: str | None,
    form_url: str | None,
    confirmed_at: dt.datetime | None,
    channel: str | None,
) -> list[FieldError]:
    errors: list[FieldError] = []
    if text_version is not None and (
        not text_version.strip() or len(text_version) > 100 or not text_version.isprintable()
    ):
        errors.append(
            FieldError(
                "text_version", text_version, "must be printable text of 1 to 100 characters"
            )
        )
    if form_url is not None and (len(form_url) > 2000 or not _URL.fullmatch(form_url)):
        errors.append(
            FieldError(
                "form_url",
                form_url,
                "must be an http:// or https:// address of at most 2000 characters",
                show_value=False,
            )
        )
    if channel is not None and channel not in CHANNELS:
        errors.append(FieldError("channel", channel, f"must be one of {', '.join(CHANNELS)}"))
    if confirmed_at is not None:
        if action != ConsentAction.GRANTED:
            errors.append(
                FieldError(
                    "confirmed_at", confirmed_at.isoformat(), "applies to a grant of consent only"
                )
            )
        elif confirmed_at.tzinfo is None:
            errors.append(
                FieldError("confirmed_at", confirmed_at.isoformat(), "must include a time zone")
            )
        elif occurred_at is not None and occurred_at.tzinfo and confirmed_at < occurred_at:
            errors.append(
                FieldError(
                    "confirmed_at",
                    confirmed_at.isoformat(),
                    "cannot be before the consent it confirms (occurred_at)",
                )
            )
        elif confirmed_at > utcnow() + records.CONSENT_CLOCK_SKEW:
            errors.append(
                FieldError("confirmed_at", confirmed_at.isoformat(), "cannot be in the future")
            )
    return errors


def record_with_proof(
    session: Session,
    staff: StaffMember,
    administrator_id: int,
    purpose: str,
    action: ConsentAction | str,
    evidence: str | None,
    source: str | None = None,
    occurred_at: dt.datetime | None = None,
    *,
    text_version: str | None = None,
    form_url: str | None = None,
    confirmed_at: dt.datetime | None = None,
    channel: str | None = None,
    purposes: Collection[str],
) -> ConsentEvent:
    """:func:`records.record_consent` plus the proof fields (art. 7(1)), checked first.

    ``text_version`` is the version of the exact text shown; ``form_url`` where it was shown;
    ``confirmed_at`` when the double opt-in link was clicked (grants only); ``channel`` how
    the person expressed it (one of :data:`CHANNELS`).
    """
    normalised = str(action).strip().lower()
    errors = _check_proof(normalised, occurred_at, text_version, form_url, confirmed_at, channel)
    if errors:
        raise ValidationErrors(errors)
    event = records.record_consent(
        session,
        staff,
        administrator_id,
        purpose,
        action,
        evidence,
        source,
        occurred_at,
        purposes=purposes,
    )
    event.text_version = text_version.strip() if text_version else None
    event.form_url = form_url
    event.confirmed_at = confirmed_at
    event.channel = channel
    session.flush()
    return event


# --- JSON ------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def to_dict(proof: ConsentProof) -> dict[str, Any]:
    return {
        "administrator": {
            "id": proof.administrator_id,
            "name": proof.name,
            "email": proof.email,
            "organisation_id": proof.organisation_id,
            "organisation": proof.organisation_name,
        },
        "generated_at": _iso(proof.generated_at),
        "generated_by": proof.generated_by,
        "purposes": [
            {
                "purpose": section.purpose,
                "current": section.current,
                "events": [
                    {
                        "id": e.event_id,
                        "action": e.action,
                        "occurred_at": _iso(e.occurred_at),
                        "source": e.source,
                        "channel": e.channel,
                        "form_url": e.form_url,
                        "text_version": e.text_version,
                        "evidence": e.evidence,
                        "double_opt_in_confirmed_at": _iso(e.confirmed_at),
                        "recorded_at": _iso(e.recorded_at),
                        "gaps": list(e.gaps),
                    }
                    for e in section.events
                ],
            }
            for section in proof.purposes
        ],
        "newsletter_basis": None if proof.newsletter is None else proof.newsletter.to_dict(),
        "customer_bases": [
            {
                "id": b.basis_id,
                "organisation_id": b.organisation_id,
                "collected_at": _iso(b.collected_at),
                "objection_text_version": b.objection_text_version,
                "evidence": b.evidence,
                "recorded_by": b.recorded_by,
                "recorded_at": _iso(b.recorded_at),
            }
            for b in proof.customer_bases
        ],
    }


def to_json(proof: ConsentProof) -> str:
    return json.dumps(to_dict(proof), indent=2, ensure_ascii=False)


# --- Markdown --------------------------------------------------------------------------------

_LABELS: dict[str, tuple[str, str]] = {
    "title": ("Bewijs van toestemming", "Proof of consent"),
    "person": ("Persoon", "Person"),
    "school": ("School", "School"),
    "generated": ("Opgesteld (UTC)", "Generated (UTC)"),
    "by": ("door", "by"),
    "purpose": ("Doel", "Purpose"),
    "current": ("Huidige stand", "Current state"),
    "none": ("geen gebeurtenissen", "no events"),
    "granted": ("gegeven", "granted"),
    "withdrawn": ("ingetrokken", "withdrawn"),
    "event": ("Gebeurtenis", "Event"),
    "occurred_at": ("Tijdstip (UTC)", "Time (UTC)"),
    "source": ("Bron", "Source"),
    "channel": ("Kanaal", "Channel"),
    "form_url": ("Formulier", "Form"),
    "text_version": ("Tekstversie", "Text version"),
    "evidence": ("Bewijs", "Evidence"),
    "confirmed_at": ("Bevestigd (double opt-in, UTC)", "Confirmed (double opt-in, UTC)"),
    "recorded_at": ("Vastgelegd (UTC)", "Recorded (UTC)"),
    "gaps": ("Ontbreekt", "Missing"),
    "basis": ("Grondslag nieuwsbrief", "Newsletter basis"),
    "consent": ("toestemming", "consent"),
    "customer": ("klantuitzondering (Tw art. 11.7 lid 3)", "customer exception (Tw art. 11.7(3))"),
    "no_basis": ("geen", "none"),
    "service": ("Servicemededelingen (overeenkomst)", "Service announcements (contract)"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "customer_basis": ("Klantuitzondering", "Customer basis"),
    "collected_at": ("Gegevens verkregen (UTC)", "Details collected (UTC)"),
    "objection": ("Bezwaar aangeboden in tekstversie", "Objection offered in text version"),
}
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(value: object) -> str:
    """A value as inert Markdown text: one line, special characters escaped."""
    text = " ".join(str(value).split())
    return _SPECIAL.sub(r"\\\1", text)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def to_markdown(proof: ConsentProof, language: str = "nl") -> str:
    """The document in Dutch (``nl``) or English (``en``)."""
    if language not in ("nl", "en"):
        raise ValidationErrors([FieldError("language", language, "must be nl or en")])
    i = 0 if language == "nl" else 1

    def label(key: str) -> str:
        return _LABELS[key][i]

    lines = [
        f"# {label('title')}",
        "",
        f"- **{label('person')}:** {_md(proof.name)} <{_md(proof.email)}> "
        f"(#{proof.administrator_id})",
        f"- **{label('school')}:** {_md(proof.organisation_name)} (#{proof.organisation_id})",
        f"- **{label('generated')}:** {_when(proof.generated_at)} {label('by')} "
        f"{_md(proof.generated_by)}",
    ]
    if proof.newsletter is not None:
        basis = proof.newsletter.basis
        basis_text = label(basis.value) if basis is not None else label("no_basis")
        lines += [
            f"- **{label('basis')}:** {basis_text} ({REASONS[proof.newsletter.reason][i]})",
            f"- **{label('service')}:** {label('yes' if proof.newsletter.service else 'no')}",
        ]
    for section in proof.purposes:
        current = label(section.current) if section.current else label("none")
        lines += ["", f"## {label('purpose')}: {_md(section.purpose)}", ""]
        lines.append(f"{label('current')}: **{current}**")
        for e in section.events:
            lines += ["", f"### {label('event')} #{e.event_id}: {label(e.action)}", ""]
            rows = [
                ("occurred_at", _when(e.occurred_at)),
                ("source", _md(e.source)),
                ("channel", _md(e.channel) if e.channel else "-"),
                ("form_url", _md(e.form_url) if e.form_url else "-"),
                ("text_version", _md(e.text_version) if e.text_version else "-"),
                ("evidence", _md(e.evidence) if e.evidence else "-"),
            ]
            if e.action == ConsentAction.GRANTED:
                rows.append(("confirmed_at", _when(e.confirmed_at)))
            rows.append(("recorded_at", _when(e.recorded_at)))
            lines += [f"- **{label(key)}:** {value}" for key, value in rows]
            if e.gaps:
                missing = "; ".join(GAPS[gap][i] for gap in e.gaps)
                lines.append(f"- **{label('gaps')}:** {missing}")
    for b in proof.customer_bases:
        lines += [
            "",
            f"## {label('customer_basis')} #{b.basis_id}",
            "",
            f"- **{label('school')}:** #{b.organisation_id}",
            f"- **{label('collected_at')}:** {_when(b.collected_at)}",
            f"- **{label('objection')}:** {_md(b.objection_text_version)}",
            f"- **{label('evidence')}:** {_md(b.evidence)}",
            f"- **{label('recorded_at')}:** {_when(b.recorded_at)} {label('by')} "
            f"{_md(b.recorded_by)}",
        ]
    return "\n".join(lines) + "\n"
