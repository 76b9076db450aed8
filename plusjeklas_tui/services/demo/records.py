"""The plain records the demo generator yields and the writer stores: no database, no keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple


class DemoSchool(NamedTuple):
    name: str
    street: str
    postcode: str
    city: str
    brin: str
    phone: str
    email: str
    iban: str
    notes: str | None


class DemoAdministrator(NamedTuple):
    school: int
    """Index of the school (0-based, over the whole run)."""
    name: str
    email: str
    phones: tuple[str, ...]
    started_on: dt.date
    left_on: dt.date | None


class DemoSubscription(NamedTuple):
    school: int
    plan: str
    start_date: dt.date
    end_date: dt.date | None
    status: str


class DemoConsent(NamedTuple):
    administrator: int
    """Index of the administrator (0-based, over the whole run)."""
    purpose: str
    action: str
    occurred_at: dt.datetime
    source: str
    evidence: str


@dataclass
class DemoBatch:
    """The records of a run of consecutive schools; indexes are global over the whole run."""

    first_school: int
    first_administrator: int
    schools: list[DemoSchool]
    administrators: list[DemoAdministrator]
    subscriptions: list[DemoSubscription]
    consents: list[DemoConsent]


@dataclass(frozen=True)
class DemoCounts:
    schools: int
    administrators: int
    subscriptions: int
    consent_events: int
