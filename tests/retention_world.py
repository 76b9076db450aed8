"""Building schools for the retention and erasure tests: dated subscriptions, people who left,
provider links, written straight through the ORM so every date can be chosen."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    ProviderLink,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services.erasure import ProviderTarget

TODAY = dt.date(2026, 6, 15)
TARGETS = {
    "mailchimp": ProviderTarget("mailchimp", "newsletter"),
    "mollie": ProviderTarget("mollie", "payment"),
}
PLUGINS_TOML = """
[plugins.mailchimp]
enabled = true

[plugins.mollie]
enabled = true

[plugins.matomo]
enabled = false
"""


def brin_for(n: int) -> str:
    """A valid, unique BRIN for small *n*: two digits and two letters."""
    letters = chr(65 + (n // 100) % 26) + chr(65 + (n // 2600) % 26)
    return f"{n % 100:02d}{letters}"


def months_ago(months: int, day: dt.date = TODAY) -> dt.date:
    from plusjeklas_tui.services.deadlines import add_months

    return add_months(day, -months)


@dataclass
class School:
    id: int
    brin: str
    name: str
    admin_ids: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)


def add_school(
    session: Session,
    n: int,
    *,
    subscriptions: list[tuple[dt.date, dt.date | None]] | None = None,
    ended: dt.date | None = None,
    created_at: dt.datetime | None = None,
    people: int = 1,
    left_on: dt.date | None = None,
    iban: str | None = None,
    links: tuple[str, ...] = ("mailchimp", "mollie", "matomo"),
) -> School:
    """A school numbered *n*. ``ended``: one subscription that ended that day (shortcut).

    Links: ``mollie`` for the organisation, ``mailchimp`` and ``matomo`` for each person.
    ``left_on`` applies to the first person only.
    """
    if subscriptions is None:
        subscriptions = [] if ended is None else [(dt.date(2019, 1, 1), ended)]
    name = f"Basisschool Testwereld {n}"
    organisation = Organisation(
        name=name,
        street=f"Schoolstraat {n}",
        postcode="1234 AB",
        city="Utrecht",
        brin=brin_for(n),
        phone="+31301234567",
        email=f"info{n}@testwereld{n}.nl",
        iban=iban,
    )
    if created_at is not None:
        organisation.created_at = created_at
    session.add(organisation)
    session.flush()
    assert organisation.id is not None
    school = School(organisation.id, organisation.brin, name)
    for start, end in subscriptions:
        status = (
            SubscriptionStatus.ACTIVE if end is None or end >= TODAY else SubscriptionStatus.ENDED
        )
        session.add(
            Subscription(
                organisation_id=organisation.id,
                plan="plus",
                start_date=start,
                end_date=end,
                status=status,
            )
        )
    if "mollie" in links:
        session.add(_link("mollie", "organisation", organisation.id, f"cst_{n}"))
    for p in range(people):
        email = f"persoon{p}.school{n}@testwereld{n}.nl"
        person_name = f"Persoon{p} Achternaam{n}"
        person = Administrator(
            organisation_id=organisation.id,
            name=person_name,
            email=email,
            phones=json.dumps(["+31612345678"]),
            left_on=left_on if p == 0 else None,
        )
        session.add(person)
        session.flush()
        assert person.id is not None
        school.admin_ids.append(person.id)
        school.emails.append(email)
        school.people.append(person_name)
        session.add(
            ConsentEvent(
                administrator_id=person.id,
                purpose="newsletter",
                action=ConsentAction.GRANTED,
                occurred_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                source="web-form",
                evidence=f"form v1 by {email}",
            )
        )
        for provider in ("mailchimp", "matomo"):
            if provider in links:
                session.add(_link(provider, "administrator", person.id, f"{provider}-{n}-{p}"))
    session.flush()
    return school


def _link(provider: str, subject_type: str, subject_id: int, external: str) -> ProviderLink:
    return ProviderLink(
        provider=provider, subject_type=subject_type, subject_id=subject_id, external_id=external
    )
