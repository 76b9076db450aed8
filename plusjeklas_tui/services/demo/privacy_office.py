"""The privacy office of the demo: a few requests, breaches and feedback marks to look at.

Added once per demo (never per school), in the demo's own transaction, through the services
staff use — so every row is valid, encrypted where it should be and audited — with the demo's
staff account as actor:

* three data-subject requests by people of the demo: an access request due within days, a
  portability request that was extended and the person told, a rectification completed;
* two breaches: one discovered 30 hours before the demo's "now" and still open (so the
  72-hour countdown shows), one reported to the regulator in time;
* feedback: two schools in the feedback window marked asked, one of them answered.

Which people and schools are used follows from the seed; the dates follow from the demo's
``today``. With too few schools for a part (a demo of a handful), that part is left out.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.models import Administrator, RequestKind, Subscription, SubscriptionStatus
from plusjeklas_tui.services import breaches, feedback
from plusjeklas_tui.services import requests as subject_requests
from plusjeklas_tui.services.deadlines import add_months
from plusjeklas_tui.services.records import LOCAL_TZ
from plusjeklas_tui.staff import StaffMember

CANDIDATES = 500
"""People (and schools) the choice is made from: the first ones by id, so a big demo costs
no more than a small one."""
OPEN_BREACH_AGE = dt.timedelta(hours=30)


@dataclass(frozen=True)
class PrivacyOfficeCounts:
    requests: int
    breaches: int
    feedback_marks: int


def demo_now(today: dt.date, now: dt.datetime) -> dt.datetime:
    """The demo's "now": the real moment when the demo is of today, else noon on its day."""
    if now.astimezone(LOCAL_TZ).date() == today:
        return now
    return dt.datetime.combine(today, dt.time(12), LOCAL_TZ).astimezone(dt.UTC)


def add_privacy_office(
    session: Session,
    staff: StaffMember,
    *,
    seed: int,
    today: dt.date,
    now: dt.datetime,
    retention: RetentionSettings | None = None,
) -> PrivacyOfficeCounts:
    """Add the demo's requests, breaches and feedback marks (see the module docstring)."""
    rng = random.Random(f"privacy-office-{seed}")
    moment = demo_now(today, now)
    made = _requests(session, staff, rng, today)
    found = _breaches(session, staff, rng, today, moment)
    marks = _feedback(session, staff, rng, today, retention or RetentionSettings())
    return PrivacyOfficeCounts(made, found, marks)


# --- requests --------------------------------------------------------------------------------


def _people(session: Session, rng: random.Random, count: int) -> list[Administrator]:
    """*count* different current administrators of paying schools, chosen by the seed."""
    ids = list(
        session.scalars(
            select(Administrator.id)
            .join(Subscription, Subscription.organisation_id == Administrator.organisation_id)
            .where(Administrator.left_on.is_(None))  # type: ignore[union-attr]
            .where(Subscription.status == SubscriptionStatus.ACTIVE)
            .distinct()
            .order_by(Administrator.id)  # type: ignore[arg-type]
            .limit(CANDIDATES)
        )
    )
    if len(ids) < count:
        return []
    chosen = rng.sample(ids, count)
    return [person for i in chosen if (person := session.get(Administrator, i)) is not None]


def _request(
    session: Session,
    staff: StaffMember,
    person: Administrator,
    kind: RequestKind,
    received: dt.date,
    identity: str,
) -> int:
    assert person.id is not None
    request = subject_requests.create_request(
        session,
        staff,
        subject_requests.RequestInput(
            kind=kind,
            received_on=received,
            organisation_id=person.organisation_id,
            administrator_id=person.id,
            requester_name=person.name,
            requester_email=person.email,
            identity_check=identity,
        ),
    )
    assert request.id is not None
    return request.id


def _requests(session: Session, staff: StaffMember, rng: random.Random, today: dt.date) -> int:
    people = _people(session, rng, 3)
    if not people:
        return 0
    asking, extended, rectified = people
    # due within days: received a month ago, less a few days
    received = add_months(today, -1) + dt.timedelta(days=rng.randint(3, 6))
    _request(
        session, staff, asking, RequestKind.ACCESS, received,
        "teruggebeld op het nummer dat al in het dossier stond",
    )  # fmt: skip
    # extended before its first deadline, and the person told the next day
    received = today - dt.timedelta(days=rng.randint(40, 50))
    request_id = _request(
        session, staff, extended, RequestKind.PORTABILITY, received,
        "verzoek vanaf het bekende schooladres, bevestigd per telefoon",
    )  # fmt: skip
    extended_on = received + dt.timedelta(days=20)
    subject_requests.extend_request(
        session,
        staff,
        request_id,
        "omvangrijk verzoek: de gegevens moeten ook bij drie verwerkers worden opgevraagd",
        extended_on,
    )
    told = dt.datetime.combine(extended_on + dt.timedelta(days=1), dt.time(10), LOCAL_TZ)
    subject_requests.mark_extension_told(session, staff, request_id, told.astimezone(dt.UTC))
    # done: the record corrected and the request closed
    received = today - dt.timedelta(days=rng.randint(15, 25))
    request_id = _request(
        session, staff, rectified, RequestKind.RECTIFICATION, received,
        "mail vanaf het bekende adres, teruggebeld",
    )  # fmt: skip
    subject_requests.complete_request(
        session, staff, request_id, "telefoonnummer in het dossier gecorrigeerd"
    )
    return 3


# --- breaches --------------------------------------------------------------------------------


def _breaches(
    session: Session,
    staff: StaffMember,
    rng: random.Random,
    today: dt.date,
    now: dt.datetime,
) -> int:
    discovered = now - OPEN_BREACH_AGE
    people = rng.randint(20, 60)
    breaches.register(
        session,
        staff,
        {
            "discovered_at": discovered,
            "started_at": discovered - dt.timedelta(hours=rng.randint(2, 6)),
            "ongoing": False,
            "summary": "Laptop van een medewerker gestolen uit de auto; er stond een export "
            "van contactpersonen van scholen op.",
            "nature": ["stolen"],
            "cause": "Laptop onbeheerd in de auto achtergelaten.",
            "data_types": ["name_address", "email", "phone"],
            "records_approx": people * 2,
            "groups": "contactpersonen van klantscholen",
            "people_min": people,
            "people_max": people * 3,
            "encrypted": "partly",
            "consequences": "Mogelijk phishing gericht aan de betrokken contactpersonen.",
            "informed": "not_yet_decided",
            "measures": "Laptop op afstand gewist; wachtwoorden vervangen.",
        },
        now=now,
    )
    reported_on = today - dt.timedelta(days=rng.randint(30, 60))
    found = dt.datetime.combine(reported_on, dt.time(9, 30), LOCAL_TZ).astimezone(dt.UTC)
    schools = rng.randint(100, 300)
    breach = breaches.register(
        session,
        staff,
        {
            "discovered_at": found,
            "started_at": found - dt.timedelta(hours=1),
            "ended_at": found,
            "summary": "De nieuwsbrief ging met alle adressen zichtbaar in het aan-veld de deur "
            "uit.",
            "nature": ["read"],
            "cause": "Verkeerde verzendlijst gekozen in het mailprogramma.",
            "data_types": ["email"],
            "people_min": schools,
            "people_max": schools,
            "encrypted": "no",
            "informed": "yes",
            "informed_how": "e-mail aan iedere ontvanger met excuses en uitleg",
            "measures": "Verzenden alleen nog via de nieuwsbriefdienst.",
        },
        now=now,
    )
    assert breach.id is not None
    breaches.mark_reported(
        session,
        staff,
        breach.id,
        ap_reference=f"AP-{reported_on.year}-{rng.randint(10_000, 99_999)}",
        reported_at=found + dt.timedelta(hours=rng.randint(20, 60)),
        now=now,
    )
    return 2


# --- feedback --------------------------------------------------------------------------------


def _feedback(
    session: Session,
    staff: StaffMember,
    rng: random.Random,
    today: dt.date,
    retention: RetentionSettings,
) -> int:
    due = feedback.feedback_list(
        session, today, retention, states=(feedback.FeedbackState.DUE,), limit=CANDIDATES
    )
    askable = [entry for entry in due if not entry.all_objected]
    if len(askable) < 2:
        return 0
    asked, answered = rng.sample(askable, 2)
    feedback.mark_asked(
        session, staff, asked.organisation_id, "gebeld met de directie", today, retention
    )
    feedback.mark_asked(
        session, staff, answered.organisation_id, "evaluatieformulier gemaild", today, retention
    )
    feedback.mark_answered(
        session,
        staff,
        answered.organisation_id,
        "tevreden over de lessen; mist een module over programmeren",
        today,
        retention,
    )
    return 3
