"""An unsubscribe at Mailchimp is a withdrawal here, also for a contact on the existing-customer
basis; an unsubscribe we pushed ourselves (the basis lapsed) is not their objection. End to end:
the sync service, the real Mailchimp plugin and SDK, and the imitation over HTTP."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from newsletter_world import (
    add_customer_basis,
    add_organisation,
    add_subscription,
    imitation,
    run_sync,
)
from sqlalchemy import select

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import ConsentEvent, Subscription, SubscriptionStatus
from plusjeklas_tui.services import newsletter_basis as nb
from plusjeklas_tui.services import records, sync
from plusjeklas_tui.services.consent_proof import record_with_proof
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.testing.mailchimp import MailchimpImitation
from plusjeklas_tui.validation import ValidationErrors

__all__ = ["imitation"]  # the fixture, imported for pytest

_numbers = itertools.count(60)
TODAY = local_today()


def paying_school(ctx: AppContext) -> int:
    n = next(_numbers)
    with session_scope(ctx.engine) as session:
        org_id = add_organisation(session, ctx, n, "CD")
        add_subscription(
            session,
            ctx,
            org_id,
            today=TODAY,
            start=TODAY - dt.timedelta(days=400),
            end=None,
            status="active",
        )
        return org_id


def customer_contact(ctx: AppContext, organisation_id: int) -> tuple[int, str]:
    """A school contact whose details came with the sale (the customer basis, no consent)."""
    n = next(_numbers)
    email = f"klant{n}@school.example"
    with session_scope(ctx.engine) as session:
        row = records.add_administrator(
            session,
            ctx.staff,
            organisation_id,
            records.validate_administrator(
                {"name": f"Karel {n}", "email": email, "phones": "0612345678"}
            ),
        )
        add_customer_basis(session, ctx, row.id)
        return row.id, email


def newsletter_events(ctx: AppContext, person_id: int) -> list[tuple[str, str]]:
    with session_scope(ctx.engine) as session:
        return [
            (str(e.action), e.source)
            for e in records.consent_history(session, person_id)
            if e.purpose == "newsletter"
        ]


def standing_reason(ctx: AppContext, person_id: int) -> str:
    with session_scope(ctx.engine) as session:
        return nb.standing(session, person_id).reason


def stop_paying(ctx: AppContext, organisation_id: int, status: str = "cancelled") -> None:
    with session_scope(ctx.engine) as session:
        row = session.scalars(
            select(Subscription).where(Subscription.organisation_id == organisation_id)
        ).one()
        if status == "cancelled":
            row.status = SubscriptionStatus.CANCELLED
            row.end_date = TODAY - dt.timedelta(days=1)
        else:
            row.status = SubscriptionStatus.ACTIVE
            row.end_date = None


def test_a_customer_contact_who_unsubscribes_there_has_withdrawn_here_once(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    org = paying_school(ctx)
    karel, karel_email = customer_contact(ctx, org)
    stays, stays_email = customer_contact(ctx, org)
    run_sync(ctx, imitation)
    assert imitation.member(karel_email)["status"] == "subscribed"  # type: ignore[index]
    assert standing_reason(ctx, karel) == "customer"

    imitation.set_status(karel_email, "unsubscribed")  # the unsubscribe link in a newsletter
    report = run_sync(ctx, imitation)

    assert report.applied == 1
    assert newsletter_events(ctx, karel) == [("withdrawn", "provider:mailchimp")]
    assert newsletter_events(ctx, stays) == []
    assert standing_reason(ctx, karel) == "withdrawn"  # the objection ends the customer basis
    assert standing_reason(ctx, stays) == "customer"
    with session_scope(ctx.engine) as session:
        (event,) = session.scalars(
            select(ConsentEvent).where(ConsentEvent.administrator_id == karel)
        ).all()
        assert event.evidence == "Mailchimp: member status unsubscribed"
        assert "klant" not in (event.evidence or "")  # nothing personal in the evidence

    # once: later syncs (incremental and full) add nothing and push nothing back
    for _ in range(2):
        report = run_sync(ctx, imitation)
        assert report.applied == 0 and report.pushed == 0
    with session_scope(ctx.engine) as session:
        sync.provider_state(session, "mailchimp").sync_checkpoint = None  # a full pull
    report = run_sync(ctx, imitation)
    assert report.applied == 0 and report.fetched == 2
    assert newsletter_events(ctx, karel) == [("withdrawn", "provider:mailchimp")]
    assert imitation.member(karel_email)["status"] == "unsubscribed"  # type: ignore[index]
    assert imitation.member(stays_email)["status"] == "subscribed"  # type: ignore[index]

    # an objection cannot be undone by recording the sale again
    with session_scope(ctx.engine) as session, pytest.raises(ValidationErrors) as refused:
        nb.record_customer_basis(
            session,
            ctx.staff,
            karel,
            collected_at=dt.datetime(2025, 4, 1, 9, 0, tzinfo=dt.UTC),
            objection_text_version="bestelformulier-2025-04",
            evidence="new order form",
        )
    assert refused.value.errors[0].field == "basis"


def test_our_own_unsubscribe_for_a_lapsed_basis_is_no_objection(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    org = paying_school(ctx)
    karel, karel_email = customer_contact(ctx, org)
    proofless, proofless_email = customer_contact(ctx, org)
    with session_scope(ctx.engine) as session:  # a grant nobody can prove, beside the sale
        record_with_proof(
            session,
            ctx.staff,
            proofless,
            "newsletter",
            "granted",
            None,
            "import",
            text_version=None,
            purposes=ctx.settings.consent_purposes,
        )
    run_sync(ctx, imitation)
    assert imitation.member(karel_email)["status"] == "subscribed"  # type: ignore[index]
    assert imitation.member(proofless_email)["status"] == "subscribed"  # type: ignore[index]

    stop_paying(ctx, org)  # the basis lapses: we unsubscribe both ourselves
    run_sync(ctx, imitation)
    assert imitation.member(karel_email)["status"] == "unsubscribed"  # type: ignore[index]
    assert imitation.member(proofless_email)["status"] == "unsubscribed"  # type: ignore[index]

    report = run_sync(ctx, imitation)  # the pull now sees the unsubscribes we made
    assert report.fetched == 2 and report.applied == 0
    assert newsletter_events(ctx, karel) == []
    assert newsletter_events(ctx, proofless) == [("granted", "import")]
    assert standing_reason(ctx, karel) == "customer-not-paying"

    stop_paying(ctx, org, "active")  # paying again: the basis holds again, nothing invented
    run_sync(ctx, imitation)
    assert newsletter_events(ctx, karel) == []
    assert standing_reason(ctx, karel) == "customer"
    # and still nothing here re-subscribes a member the provider holds as unsubscribed
    assert imitation.member(karel_email)["status"] == "unsubscribed"  # type: ignore[index]


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_an_unsubscribe_there_before_our_lapse_push_is_their_objection(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    org = paying_school(ctx)
    karel, karel_email = customer_contact(ctx, org)
    run_sync(ctx, imitation)
    stop_paying(ctx, org)  # lapsed here, not yet pushed...
    imitation.set_status(karel_email, "cleaned")  # ...and the address bounced there meanwhile
    report = run_sync(ctx, imitation)
    assert report.applied == 1 and report.pushed == 0  # nothing left to unsubscribe
    assert newsletter_events(ctx, karel) == [("withdrawn", "provider:mailchimp")]
    stop_paying(ctx, org, "active")
    assert standing_reason(ctx, karel) == "withdrawn"  # paying again does not undo it
