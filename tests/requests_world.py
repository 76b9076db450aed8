"""A school with two people, known to the three provider imitations (Mailchimp, Mollie, Matomo),
for the data-subject request tests. The imitations keep their state in files beside the
database, as in the demo (``imitation = true``), so the service and every CLI command see the
same "providers"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retention_world import add_school
from sqlalchemy import select

from plusjeklas_tui import db
from plusjeklas_tui.config import Settings, load_file
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.models import AuditEvent, ProviderLink, SubscriptionStatus
from plusjeklas_tui.models import Subscription as SubscriptionRow
from plusjeklas_tui.runtime import imitation_state_path
from plusjeklas_tui.testing import demo_providers
from plusjeklas_tui.testing.mailchimp import subscriber_hash

PLUGINS = demo_providers.demo_plugin_tables()


def migrated_config(write_config: Callable[..., Path]) -> Path:
    path = write_config(extra=PLUGINS)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


@dataclass
class World:
    organisation_id: int
    brin: str
    school_name: str
    anna: int
    bert: int
    anna_email: str
    bert_email: str
    anna_name: str
    bert_name: str
    customer_id: str
    anna_user_id: str


def build(context: AppContext, n: int = 7) -> World:
    """The school, its people, and what each provider holds about them."""
    settings = context.settings
    with db.session_scope(context.engine) as session:
        school = add_school(session, n, ended=None, people=2, links=())
        session.add(
            SubscriptionRow(
                organisation_id=school.id,
                plan="plus",
                start_date=dt.date(2025, 8, 1),
                end_date=None,
                status=SubscriptionStatus.ACTIVE,
            )
        )
    anna, bert = school.admin_ids
    user_id = f"plusjeklas-{anna}"
    mailchimp = demo_providers.start("mailchimp", imitation_state_path(settings, "mailchimp"))
    for email in school.emails:
        mailchimp.add_member(email)
    mailchimp.stop()
    mollie = demo_providers.start("mollie", imitation_state_path(settings, "mollie"))
    customer = mollie.add_customer(  # type: ignore[attr-defined]
        school.name, f"info{n}@testwereld{n}.nl", school.brin, payments=("paid", "paid")
    )
    mollie.stop()
    matomo = demo_providers.start("matomo", imitation_state_path(settings, "matomo"))
    matomo.add_visits(user_id, 3)  # type: ignore[attr-defined]
    matomo.add_visits(None, 2)  # type: ignore[attr-defined]  # anonymous: never touched
    matomo.stop()
    with db.session_scope(context.engine) as session:
        for provider, subject_type, subject_id, external in (
            ("mollie", "organisation", school.id, customer),
            ("mailchimp", "administrator", anna, subscriber_hash(school.emails[0])),
            ("mailchimp", "administrator", bert, subscriber_hash(school.emails[1])),
            ("matomo", "administrator", anna, user_id),
        ):
            session.add(
                ProviderLink(
                    provider=provider,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    external_id=external,
                )
            )
    return World(
        organisation_id=school.id,
        brin=school.brin,
        school_name=school.name,
        anna=anna,
        bert=bert,
        anna_email=school.emails[0],
        bert_email=school.emails[1],
        anna_name=school.people[0],
        bert_name=school.people[1],
        customer_id=customer,
        anna_user_id=user_id,
    )


def imitation_state(settings: Settings, name: str) -> dict[str, Any]:
    """What the imitation of *name* holds now (its state file)."""
    imitation = demo_providers.FACTORIES[name](imitation_state_path(settings, name))
    try:
        return imitation.state
    finally:
        imitation.stop()


def mailchimp_member(settings: Settings, email: str) -> dict[str, Any] | None:
    from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID

    members = imitation_state(settings, "mailchimp")["lists"][DEFAULT_LIST_ID]["members"]
    return members.get(subscriber_hash(email))


def audit_details(context: AppContext) -> list[str]:
    with db.session_scope(context.engine) as session:
        return [e.detail for e in session.scalars(select(AuditEvent))]
