"""The newsletter basis end to end: through the sync push, the real Mailchimp plugin and SDK, and
the imitation over HTTP. A contact without a basis is never pushed; the customer basis only for
contacts of paying schools; the audience checked member by member against the bases here."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
import requests
from click.testing import CliRunner
from newsletter_world import (
    add_customer_basis,
    add_organisation,
    add_subscription,
    imitation,
    mailchimp,
    run_sync,
)
from plusjeklas_plugins.mailchimp.provider import subscriber_hash
from sqlalchemy import select

from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import ProviderFailure, Subscription, SubscriptionStatus
from plusjeklas_tui.providers import ChangeKind, Subject
from plusjeklas_tui.services import audience_check, records
from plusjeklas_tui.services import newsletter_basis as nb
from plusjeklas_tui.services.consent_proof import record_with_proof
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation, timestamp

__all__ = ["imitation"]  # the fixture, imported for pytest

_numbers = itertools.count(20)
TODAY = local_today()


def school(ctx: AppContext, status: str | None) -> int:
    n = next(_numbers)
    with session_scope(ctx.engine) as session:
        org_id = add_organisation(session, ctx, n)
        if status is not None:
            ended = status == "ended"
            add_subscription(
                session,
                ctx,
                org_id,
                today=TODAY,
                start=TODAY - dt.timedelta(days=400),
                end=TODAY - dt.timedelta(days=5) if ended else None,
                status=status,
            )
        return org_id


def email_of(n: int) -> str:
    return f"person{n}@school.example"


def person(ctx: AppContext, organisation_id: int) -> tuple[int, str]:
    n = next(_numbers)
    with session_scope(ctx.engine) as session:
        row = records.add_administrator(
            session,
            ctx.staff,
            organisation_id,
            records.validate_administrator(
                {"name": f"Anna {n}", "email": email_of(n), "phones": "0612345678"}
            ),
        )
        return row.id, email_of(n)


def grant(ctx: AppContext, person_id: int, evidence: str | None, source: str = "web-form") -> None:
    with session_scope(ctx.engine) as session:
        record_with_proof(
            session,
            ctx.staff,
            person_id,
            "newsletter",
            "granted",
            evidence,
            source,
            text_version=None,
            purposes=ctx.settings.consent_purposes,
        )


def customer(ctx: AppContext, person_id: int) -> None:
    with session_scope(ctx.engine) as session:
        add_customer_basis(session, ctx, person_id)


def status_at(imitation: MailchimpImitation, email: str) -> str | None:
    member = imitation.member(email)
    return None if member is None else member["status"]


def set_subscription(
    ctx: AppContext, organisation_id: int, status: str, end: dt.date | None
) -> None:
    with session_scope(ctx.engine) as session:
        row = session.scalars(
            select(Subscription).where(Subscription.organisation_id == organisation_id)
        ).one()
        row.status = SubscriptionStatus(status)
        row.end_date = end


def test_a_contact_without_a_basis_is_never_pushed(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    paying, ended, trial = school(ctx, "active"), school(ctx, "ended"), school(ctx, "trial")
    consented, consented_email = person(ctx, trial)
    unproven, unproven_email = person(ctx, paying)
    _nothing, nothing_email = person(ctx, paying)
    client, client_email = person(ctx, paying)
    former, former_email = person(ctx, ended)
    grant(ctx, consented, "web form v2")
    grant(ctx, unproven, None, source="import")  # a grant nobody can prove
    customer(ctx, client)
    customer(ctx, former)  # a sale once, but the school no longer pays

    report = run_sync(ctx, imitation)

    assert status_at(imitation, consented_email) == "subscribed"
    assert status_at(imitation, client_email) == "subscribed"
    for email in (unproven_email, nothing_email, former_email):
        assert imitation.member(email) is None
    assert imitation.members_count() == 2
    assert report.pushed == 2 and report.push_failed == 0
    assert report.no_basis == 1  # the unproven grant was held back, and why is recorded
    with session_scope(ctx.engine) as session:
        reasons = list(
            session.scalars(
                select(ProviderFailure.reason).where(ProviderFailure.operation == "no-basis")
            )
        )
    assert reasons == [
        f"administrator #{unproven}: consent event #{_event_id(ctx, unproven)} not pushed: "
        "consent without proof (no text version or evidence)"
    ]
    # which mail each may get: the tags on the member
    assert imitation.member_tags(consented_email) == ["newsletter", "service"]  # a trial school
    assert imitation.member_tags(client_email) == ["newsletter", "service"]

    # nothing changes on the next run: nobody without a basis slips through later
    report = run_sync(ctx, imitation)
    assert report.pushed == 0 and report.no_basis == 0
    assert imitation.members_count() == 2

    # someone who withdrew is unsubscribed, and their later contact changes are not sent
    with session_scope(ctx.engine) as session:
        records.record_consent(
            session,
            ctx.staff,
            consented,
            "newsletter",
            "withdrawn",
            "asked by e-mail",
            purposes=ctx.settings.consent_purposes,
        )
    report = run_sync(ctx, imitation)
    assert status_at(imitation, consented_email) == "unsubscribed"
    assert imitation.member_tags(consented_email) == ["service"]
    with session_scope(ctx.engine) as session:
        records.update_administrator(
            session,
            ctx.staff,
            consented,
            records.validate_administrator(
                {"name": "Anna Nieuw", "email": "nieuw@school.example", "phones": "0612345678"}
            ),
            expected_version=1,
        )
    report = run_sync(ctx, imitation)
    assert report.no_basis == 1 and report.pushed == 0
    assert imitation.member("nieuw@school.example") is None
    assert status_at(imitation, consented_email) == "unsubscribed"


def _event_id(ctx: AppContext, person_id: int) -> int:
    with session_scope(ctx.engine) as session:
        (event,) = records.consent_history(session, person_id)
        assert event.id is not None
        return event.id


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_lapsed_customer_basis_unsubscribes_and_nothing_resubscribes_a_leaver(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    org = school(ctx, "active")
    client, client_email = person(ctx, org)
    leaver, leaver_email = person(ctx, org)
    customer(ctx, client)
    customer(ctx, leaver)
    run_sync(ctx, imitation)
    assert status_at(imitation, client_email) == "subscribed"

    imitation.set_status(leaver_email, "unsubscribed")  # objects through the unsubscribe link
    set_subscription(ctx, org, "ended", TODAY - dt.timedelta(days=1))  # the school stops paying
    run_sync(ctx, imitation)
    assert status_at(imitation, client_email) == "unsubscribed"
    assert imitation.member_tags(client_email) == []  # neither newsletter nor service mail
    assert status_at(imitation, leaver_email) == "unsubscribed"

    set_subscription(ctx, org, "active", None)  # paying again
    run_sync(ctx, imitation)
    run_sync(ctx, imitation)
    assert status_at(imitation, leaver_email) == "unsubscribed"  # left: stays left
    assert status_at(imitation, client_email) == "unsubscribed"  # only consent brings back

    grant(ctx, leaver, None, source="import")  # a grant nobody can prove is no way back either
    run_sync(ctx, imitation)
    assert status_at(imitation, leaver_email) == "unsubscribed"
    # a month later the client asks for the newsletter again: proven consent brings them back
    members = imitation.state["lists"][DEFAULT_LIST_ID]["members"]
    members[subscriber_hash(client_email)]["last_changed"] = timestamp(
        dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    )
    grant(ctx, client, "asked to get the newsletter again, mail of today")
    run_sync(ctx, imitation)
    assert status_at(imitation, client_email) == "subscribed"
    assert imitation.member_tags(client_email) == ["newsletter", "service"]


def test_audience_checked_member_by_member(ctx: AppContext, imitation: MailchimpImitation) -> None:
    paying = school(ctx, "active")
    ok, ok_email = person(ctx, paying)
    missing, _ = person(ctx, paying)
    stray, stray_email = person(ctx, paying)
    left, left_email = person(ctx, paying)
    grant(ctx, ok, "web form v2")
    grant(ctx, left, "web form v2")
    run_sync(ctx, imitation)  # ok and left are subscribed by the push
    grant(ctx, missing, "web form v2")  # consent here, never pushed
    imitation.add_member(stray_email)  # subscribed there (someone added them by hand)
    stranger = imitation.add_member("stranger@elsewhere.example")
    imitation.state["lists"][DEFAULT_LIST_ID]["members"][subscriber_hash(left_email)]["status"] = (
        "cleaned"  # bounced there; not yet synced back
    )

    report = audience_check.check_audience(ctx.engine, mailchimp(imitation), ctx.staff)

    assert report.members == 4 and report.subscribed == 3
    assert report.with_basis == 3 and report.matched == 1
    assert sorted(report.findings, key=lambda f: f.kind) == [
        audience_check.Finding("missing-there", missing, None, None, "consent"),
        audience_check.Finding(
            "not-subscribed-there", left, subscriber_hash(left_email), "cleaned", "consent"
        ),
        audience_check.Finding(
            "subscribed-without-basis",
            stray,
            subscriber_hash(stray_email),
            "subscribed",
            "no-basis",
        ),
        audience_check.Finding("unknown-subscribed", None, stranger, "subscribed"),
    ]
    assert not report.ok
    text = json.dumps(report.to_dict())
    assert "@" not in text  # ids only: no address leaves the check
    assert report.to_dict()["counts"] == {
        "subscribed-without-basis": 1,
        "unknown-subscribed": 1,
        "missing-there": 1,
        "not-subscribed-there": 1,
    }
    # the check changed nothing: not here, not there
    assert imitation.member(stray_email)["status"] == "subscribed"  # type: ignore[index]
    assert status_at(imitation, ok_email) == "subscribed"


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_matching_audience_is_ok(ctx: AppContext, imitation: MailchimpImitation) -> None:
    anna, _ = person(ctx, school(ctx, "active"))
    customer(ctx, anna)
    run_sync(ctx, imitation)
    report = audience_check.check_audience(ctx.engine, mailchimp(imitation), ctx.staff)
    assert report.ok and report.matched == 1 and report.with_basis == 1


def test_many_tagged_changes_go_through_the_batch_and_get_their_tags(
    imitation: MailchimpImitation,
) -> None:
    provider = mailchimp(imitation)
    changes = [
        nb.TaggedChange(
            tags=(("newsletter", True), ("service", i % 2 == 0)),
            kind=ChangeKind.CONSENT_GRANTED,
            subject=Subject("administrator", i, None, f"m{i}@school.example"),
            key=f"k{i}",
            purpose="newsletter",
            email=f"m{i}@school.example",
        )
        for i in range(12)  # more than a handful: the batch endpoint
    ]
    outcomes = provider.push(changes)
    assert all(o.ok for o in outcomes)
    batch_calls = [
        path
        for method, path, _ in imitation.requests
        if method == "POST" and path.endswith(DEFAULT_LIST_ID)
    ]
    assert len(batch_calls) == 1
    assert imitation.member_tags("m0@school.example") == ["newsletter", "service"]
    assert imitation.member_tags("m1@school.example") == ["newsletter"]
    withdraw = nb.TaggedChange(
        tags=(("newsletter", False),),
        kind=ChangeKind.CONSENT_WITHDRAWN,
        subject=Subject("administrator", 0, subscriber_hash("m0@school.example"), None),
        key="w0",
        purpose="newsletter",
    )
    (outcome,) = provider.push([withdraw])
    assert outcome.ok
    assert imitation.member_tags("m0@school.example") == ["service"]
    assert imitation.member("m0@school.example")["status"] == "unsubscribed"  # type: ignore[index]
    provider.close()


def test_the_imitation_tags_endpoint_behaves_like_mailchimp(imitation: MailchimpImitation) -> None:
    key = imitation.add_member("a@school.example")
    url = f"{imitation.api_url}/lists/{DEFAULT_LIST_ID}/members"
    auth = ("user", imitation.api_key)
    body = {"tags": [{"name": "service", "status": "active"}]}
    answer = requests.post(f"{url}/{key}/tags", json=body, auth=auth, timeout=5)
    assert answer.status_code == 204 and answer.content == b""
    member = requests.get(f"{url}/{key}", auth=auth, timeout=5).json()
    assert member["tags_count"] == 1 and member["tags"][0]["name"] == "service"
    missing = requests.post(f"{url}/{'0' * 32}/tags", json=body, auth=auth, timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = requests.post(
        f"{url}/{key}/tags", json={"tags": [{"name": "x", "status": "on"}]}, auth=auth, timeout=5
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "tags"
    assert imitation.member_tags(key) == ["service"]  # the refused call changed nothing


def test_cli_audience_check_exits_1_on_mismatches_and_prints_ids_only(
    ctx: AppContext,
    imitation: MailchimpImitation,
    write_config,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    anna, _ = person(ctx, school(ctx, "active"))
    grant(ctx, anna, "web form v2")
    monkeypatch.setenv("PJ_TEST_MAILCHIMP_KEY", imitation.api_key)
    config = write_config(
        name="mailchimp.toml",
        extra=(
            "\n[plugins.mailchimp]\nenabled = true\n"
            f'base_url = "{imitation.url}"\napi_key_env = "PJ_TEST_MAILCHIMP_KEY"\n'
            f'list_id = "{DEFAULT_LIST_ID}"\n'
        ),
    )
    runner = CliRunner()
    command = ["--config", str(config), "consent", "audience-check"]
    result = runner.invoke(main, command)
    assert result.exit_code == 1, result.output
    assert f"missing-there  administrator #{anna}" in result.stdout
    run_sync(ctx, imitation)
    stray = imitation.add_member("stray@school.example")
    result = runner.invoke(main, [*command, "--json"])
    assert result.exit_code == 1, result.output
    (data,) = json.loads(result.stdout)
    assert data["findings"] == [
        {
            "kind": "unknown-subscribed",
            "administrator_id": None,
            "member_id": stray,
            "status": "subscribed",
            "reason": None,
        }
    ]
    assert "@" not in result.stdout
    imitation.set_status(stray, "unsubscribed")
    result = runner.invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "1 with a basis here, 1 of them subscribed there" in result.stdout
