"""Check the newsletter audience at the provider, member by member, against the bases here.

The provider's members are read through its ordinary, full sync read (:meth:`Provider.sync`
from no checkpoint; nothing is written here by it) and matched to administrators by the blind
index of the address, or else by the member id a :class:`ProviderLink` holds. Then:

* ``subscribed-without-basis`` — subscribed there, known here, but no newsletter basis here
  (no proven consent, no valid customer basis). Reported by administrator id and member id.
* ``unknown-subscribed`` — subscribed there, unknown here. Reported by member id only.
* ``missing-there`` — a newsletter basis here, but no member there.
* ``not-subscribed-there`` — a basis here, a member there, not subscribed (unsubscribed,
  cleaned, pending...). Never "fixed" by subscribing: someone who left stays left.

The report holds ids (administrator ids, the provider's member ids — for Mailchimp the
subscriber hash), statuses and reason codes, never an address, so it can be printed, logged and
kept. The check changes nothing, here or at the provider.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import Administrator, ProviderLink, index_value
from plusjeklas_tui.providers import MemberStatus, Provider, ProviderKind
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.newsletter_basis import Standing, standings
from plusjeklas_tui.sqltypes import keyring_of, utcnow
from plusjeklas_tui.staff import Permission, StaffMember

__all__ = ["FINDING_KINDS", "AudienceReport", "Finding", "check_audience", "compare"]

SUBSCRIBED = "subscribed"
FINDING_KINDS: dict[str, tuple[str, str]] = {
    "subscribed-without-basis": (
        "ingeschreven bij de provider zonder grondslag hier",
        "subscribed at the provider without a basis here",
    ),
    "unknown-subscribed": (
        "ingeschreven bij de provider, hier onbekend",
        "subscribed at the provider, unknown here",
    ),
    "missing-there": (
        "grondslag hier, geen lid bij de provider",
        "a basis here, not a member at the provider",
    ),
    "not-subscribed-there": (
        "grondslag hier, bij de provider niet ingeschreven",
        "a basis here, not subscribed at the provider",
    ),
}
_CHUNK = 500


@dataclass(frozen=True)
class Finding:
    """One mismatch, by ids only."""

    kind: str
    administrator_id: int | None
    member_id: str | None
    status: str | None = None
    """The provider's status of the member, when there is one."""
    reason: str | None = None
    """The newsletter standing's reason code here (see ``newsletter_basis.REASONS``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "administrator_id": self.administrator_id,
            "member_id": self.member_id,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AudienceReport:
    provider: str
    checked_at: dt.datetime
    members: int
    subscribed: int
    with_basis: int
    matched: int
    """People with a basis here who are subscribed there."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(FINDING_KINDS, 0)
        for finding in self.findings:
            found[finding.kind] += 1
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "checked_at": self.checked_at.isoformat(),
            "members": self.members,
            "subscribed": self.subscribed,
            "with_basis": self.with_basis,
            "matched": self.matched,
            "ok": self.ok,
            "counts": self.counts(),
            "findings": [finding.to_dict() for finding in self.findings],
        }


def _members(provider: Provider) -> list[MemberStatus]:
    members: list[MemberStatus] = []
    for page in provider.sync(None):
        members.extend(item for item in page.items if isinstance(item, MemberStatus))
    return members


def _match(session: Session, provider: str, members: list[MemberStatus]) -> list[int | None]:
    """Each member's administrator id (by address, else by the stored member id) or None."""
    keyring = keyring_of(session.get_bind().dialect)
    by_index: dict[str, int] = {}
    wanted = [keyring.blind_index_candidates(index_value("email", m.email)) for m in members]
    flat = sorted({c for cands in wanted for c in cands})
    for start in range(0, len(flat), _CHUNK):
        rows = session.execute(
            select(Administrator.email_index, Administrator.id).where(
                Administrator.email_index.in_(flat[start : start + _CHUNK])  # type: ignore[union-attr]
            )
        )
        for index, person_id in rows:
            by_index.setdefault(index, person_id)
    by_member_id: dict[str, int] = {}
    for link in session.scalars(
        select(ProviderLink)
        .where(ProviderLink.provider == provider)
        .where(ProviderLink.subject_type == "administrator")
    ):
        by_member_id[link.external_id.lower()] = link.subject_id
    matched: list[int | None] = []
    for member, candidates in zip(members, wanted, strict=True):
        found = next((by_index[c] for c in candidates if c in by_index), None)
        if found is None:
            found = by_member_id.get(member.external_id.lower())
        matched.append(found)
    return matched


def compare(
    provider: str,
    members: list[MemberStatus],
    administrator_of: list[int | None],
    standing_of: dict[int, Standing],
    checked_at: dt.datetime | None = None,
) -> AudienceReport:
    """The member-by-member comparison (pure: no database, no provider)."""
    findings: list[Finding] = []
    seen: dict[int, list[MemberStatus]] = {}
    subscribed = 0
    for member, person_id in zip(members, administrator_of, strict=True):
        if person_id is not None:
            seen.setdefault(person_id, []).append(member)
        if member.status != SUBSCRIBED:
            continue
        subscribed += 1
        if person_id is None:
            findings.append(Finding("unknown-subscribed", None, member.external_id, member.status))
            continue
        standing = standing_of.get(person_id)
        if standing is None or standing.basis is None:
            reason = standing.reason if standing is not None else "no-basis"
            findings.append(
                Finding(
                    "subscribed-without-basis", person_id, member.external_id, member.status, reason
                )
            )
    with_basis = matched = 0
    for person_id in sorted(standing_of):
        standing = standing_of[person_id]
        if standing.basis is None:
            continue
        with_basis += 1
        there = seen.get(person_id, [])
        if any(m.status == SUBSCRIBED for m in there):
            matched += 1
        elif not there:
            findings.append(Finding("missing-there", person_id, None, None, standing.reason))
        else:
            member = there[0]
            findings.append(
                Finding(
                    "not-subscribed-there",
                    person_id,
                    member.external_id,
                    member.status,
                    standing.reason,
                )
            )
    return AudienceReport(
        provider,
        checked_at or utcnow(),
        len(members),
        subscribed,
        with_basis,
        matched,
        findings,
    )


def check_audience(engine: Engine, provider: Provider, staff: StaffMember) -> AudienceReport:
    """Read the provider's whole audience and compare it with the newsletter bases here."""
    staff.require(Permission.READ, "check the newsletter audience")
    if provider.info.kind != ProviderKind.NEWSLETTER:
        raise PlusjeklasError(
            f"provider {provider.info.name} is not a newsletter provider; the audience check "
            "needs one (e.g. mailchimp)"
        )
    members = _members(provider)
    with db.session_scope(engine) as session:
        administrator_of = _match(session, provider.info.name, members)
        report = compare(provider.info.name, members, administrator_of, standings(session))
        audit.record(
            session,
            staff,
            "audience_check",
            "provider",
            None,
            provider=provider.info.name,
            members=report.members,
            findings=len(report.findings),
        )
    return report


def newsletter_providers(providers: Iterable[Provider]) -> list[Provider]:
    return [p for p in providers if p.info.kind == ProviderKind.NEWSLETTER]
