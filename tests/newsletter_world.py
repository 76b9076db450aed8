"""Building blocks for the newsletter-basis tests: schools and their subscriptions written through
the record services, and the Mailchimp imitation with the real plugin pointed at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from plusjeklas_plugins.mailchimp import MailchimpProvider
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.providers import ProviderConfig
from plusjeklas_tui.services import newsletter_basis as nb
from plusjeklas_tui.services import records, sync
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation


@pytest.fixture
def imitation() -> Iterator[MailchimpImitation]:
    with MailchimpImitation() as running:
        yield running  # type: ignore[misc]


def mailchimp(imitation: MailchimpImitation) -> MailchimpProvider:
    return MailchimpProvider(
        ProviderConfig(
            "mailchimp", imitation.url, imitation.api_key, 5.0, {"list_id": DEFAULT_LIST_ID}
        )
    )


def run_sync(ctx: AppContext, imitation: MailchimpImitation) -> sync.SyncReport:
    """One sync with the Mailchimp imitation, which must succeed."""
    (report,) = sync.sync(
        ctx.engine, [mailchimp(imitation)], ctx.staff, ctx.settings.consent_purposes
    )
    assert report.ok, report.error
    return report


def add_organisation(session: Session, ctx: AppContext, n: int, brin_letters: str = "AB") -> int:
    """School number *n* (BRIN ``{n:02d}{brin_letters}``); its id."""
    org = records.create_organisation(
        session,
        ctx.staff,
        records.validate_organisation(
            {
                "name": f"School {n}",
                "street": "Kerkstraat 1",
                "postcode": "1234ab",
                "city": "Utrecht",
                "brin": f"{n:02d}{brin_letters}",
                "phone": "030 123 4567",
            }
        ),
    )
    assert org.id is not None
    return org.id


def add_subscription(
    session: Session,
    ctx: AppContext,
    organisation_id: int,
    *,
    today: dt.date,
    start: dt.date,
    end: dt.date | None,
    status: str,
    plan: str = "school",
) -> None:
    records.add_subscription(
        session,
        ctx.staff,
        organisation_id,
        records.validate_subscription(
            {
                "plan": plan,
                "start_date": start.isoformat(),
                "end_date": None if end is None else end.isoformat(),
                "status": status,
            },
            today=today,
        ),
    )


def add_customer_basis(session: Session, ctx: AppContext, person_id: int) -> None:
    """The existing-customer basis, as collected with the order form of March 2025."""
    nb.record_customer_basis(
        session,
        ctx.staff,
        person_id,
        collected_at=dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC),
        objection_text_version="bestelformulier-2025-03",
        evidence="order form 2025-0412",
    )
