"""The demo's providers: the imitations of Mailchimp, Mollie and Matomo, started and seeded.

A demo configuration says ``imitation = true`` in each ``[plugins.<name>]`` table. Every command
that talks to a provider (the app, ``plusjeklas sync``, ``plusjeklas deletions run``) then calls
:func:`start`, which runs that provider's imitation in-process on a free loopback port with its
state in ``<name>-imitation.json`` beside the demo configuration, so what one command did at the
"provider" the next one sees. :func:`seed` fills those files once from the demo database: the
people with newsletter consent are Mailchimp members (a few of whom have since unsubscribed
there, and a few addresses the app does not know), schools with a subscription are Mollie
customers (a few with a failed direct debit), and people with analytics consent have a Matomo
user id and some visits. A sample of at most :data:`SEED_LIMIT` people or schools per provider
keeps a 100,000-school demo quick to create.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plusjeklas_tui.config import Settings
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    ProviderLink,
    Subscription,
)
from plusjeklas_tui.testing.imitation import Imitation

PROVIDERS = ("mailchimp", "mollie", "matomo")
SEED_LIMIT = 2000
UNKNOWN_MEMBERS = 12
"""Addresses in the demo audience that the app does not know: a sync reports, never imports."""


def _mailchimp(state_path: Path | None) -> Imitation:
    from plusjeklas_tui.testing.mailchimp import MailchimpImitation

    return MailchimpImitation(state_path=state_path)


def _mollie(state_path: Path | None) -> Imitation:
    from plusjeklas_tui.testing.mollie import MollieImitation

    return MollieImitation(state_path=state_path)


def _matomo(state_path: Path | None) -> Imitation:
    from plusjeklas_tui.testing.matomo import MatomoImitation

    return MatomoImitation(state_path=state_path)


FACTORIES: dict[str, Callable[[Path | None], Imitation]] = {
    "mailchimp": _mailchimp,
    "mollie": _mollie,
    "matomo": _matomo,
}

PLUGIN_TABLES = """
[plugins.mailchimp]
# The demo talks to an imitation of Mailchimp's API started by each command on a loopback port.
enabled = true
imitation = true
list_id = "{list_id}"

[plugins.mollie]
enabled = true
imitation = true

[plugins.matomo]
enabled = true
imitation = true
site_id = 1
"""


def demo_plugin_tables() -> str:
    from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID

    return PLUGIN_TABLES.format(list_id=DEFAULT_LIST_ID)


def start(name: str, state_path: Path) -> Imitation:
    """Start the imitation of provider ``name`` with its state in ``state_path``."""
    factory = FACTORIES.get(name)
    if factory is None:
        from plusjeklas_tui.errors import ConfigError

        raise ConfigError(f"plugins.{name}.imitation: there is no imitation of {name}")
    return factory(state_path).start()


def base_url(name: str, imitation: Imitation) -> str:
    """The address the plugin is configured with (the imitation's API root)."""
    return str(getattr(imitation, "api_url", imitation.url))


# --- seeding ---------------------------------------------------------------------------------


def _current(session: Session, purpose: str, limit: int) -> list[int]:
    """Administrators whose latest consent for ``purpose`` is a grant (up to ``limit``)."""
    latest: dict[int, str] = {}
    rows = session.execute(
        select(ConsentEvent.administrator_id, ConsentEvent.action)
        .where(ConsentEvent.purpose == purpose)
        .order_by(ConsentEvent.administrator_id, ConsentEvent.occurred_at, ConsentEvent.id)
        .execution_options(yield_per=5000)
    )
    for administrator_id, action in rows:
        latest[administrator_id] = action
    granted = [i for i, action in latest.items() if action == ConsentAction.GRANTED]
    return granted[:limit]


def seed(settings: Settings, engine: Engine, *, rng_seed: int = 1) -> list[str]:
    """Fill each enabled imitation's state file from the demo database, once.

    Returns the providers seeded now (those whose state file did not exist yet).
    """
    from plusjeklas_tui.runtime import imitation_state_path

    rng = random.Random(rng_seed)
    seeded = []
    for name in PROVIDERS:
        table = settings.plugins.get(name)
        if table is None or not (table.enabled and table.imitation):
            continue
        path = imitation_state_path(settings, name)
        if path.exists():
            continue
        imitation = FACTORIES[name](path)
        try:
            with Session(engine) as session:
                SEEDERS[name](imitation, session, rng)
                session.commit()
        finally:
            imitation.stop()  # never started: saves the state file and closes the socket
        seeded.append(name)
    return seeded


def _seed_mailchimp(imitation: Imitation, session: Session, rng: random.Random) -> None:
    ids = _current(session, "newsletter", SEED_LIMIT)
    people = session.scalars(select(Administrator).where(Administrator.id.in_(ids))).all()  # type: ignore[union-attr]
    unsubscribed = set(
        rng.sample(range(len(people)), k=min(len(people), max(1, len(people) // 20)))
    )
    for index, person in enumerate(people):
        status = "unsubscribed" if index in unsubscribed else "subscribed"
        imitation.add_member(  # type: ignore[attr-defined]
            person.email,
            status,
            {"FNAME": person.name.split(" ")[0]},
            dt.datetime.now(dt.UTC) - dt.timedelta(days=rng.randint(1, 60)),
        )
    imitation.add_members(  # type: ignore[attr-defined]
        [f"oud-lid-{i}@voorbeeld.example" for i in range(UNKNOWN_MEMBERS)], "subscribed"
    )


def _seed_mollie(imitation: Imitation, session: Session, rng: random.Random) -> None:
    from plusjeklas_tui.testing.mollie import CustomerSeed

    paying = (
        select(Subscription.organisation_id)
        .where(Subscription.status.in_(("active", "trial")))  # type: ignore[attr-defined]
        .distinct()
        .limit(SEED_LIMIT)
    )
    schools = session.scalars(select(Organisation).where(Organisation.id.in_(paying))).all()  # type: ignore[union-attr]
    seeds = []
    for school in schools:
        failed = rng.random() < 0.05
        payments = ("paid", "paid", "failed") if failed else ("paid", "paid", "paid")
        seeds.append(
            CustomerSeed(
                school.name,
                school.email or f"administratie@{school.brin.lower()}.example",
                school.brin,
                payments=payments,
                iban=(school.iban or "NL91ABNA0417164300").replace(" ", ""),
            )
        )
    imitation.add_customers(seeds)  # type: ignore[attr-defined]


def _seed_matomo(imitation: Imitation, session: Session, rng: random.Random) -> None:
    """People with analytics consent get an opaque user id (kept here as a provider link, as
    the website would have been told) and some visits under it."""
    known = {
        link.subject_id: link.external_id
        for link in session.scalars(
            select(ProviderLink).where(
                ProviderLink.provider == "matomo", ProviderLink.subject_type == "administrator"
            )
        )
    }
    for administrator_id in _current(session, "analytics", SEED_LIMIT):
        user_id = known.get(administrator_id)
        if user_id is None:
            user_id = "pjk-" + secrets.token_hex(16)
            session.add(
                ProviderLink(
                    provider="matomo",
                    subject_type="administrator",
                    subject_id=administrator_id,
                    external_id=user_id,
                    status="linked",
                )
            )
        imitation.add_visits(user_id, rng.randint(1, 6))  # type: ignore[attr-defined]


SEEDERS: dict[str, Callable[[Imitation, Session, random.Random], None]] = {
    "mailchimp": _seed_mailchimp,
    "mollie": _seed_mollie,
    "matomo": _seed_matomo,
}
