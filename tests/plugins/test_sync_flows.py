"""Consent flowing both ways between the app and Mailchimp, through the sync service, the real
plugin and SDK, and the imitation over HTTP; cancel and resume; a broken plugin beside it."""

from __future__ import annotations

import threading

import broken_plugins
import pytest
from newsletter_world import add_organisation, imitation, mailchimp
from sqlalchemy import select

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import ConsentAction, ProviderLink, ProviderState, SyncRun
from plusjeklas_tui.providers import ProviderConfig
from plusjeklas_tui.services import records, sync
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation

__all__ = ["imitation"]  # the fixture, imported for pytest


def add_person(ctx: AppContext, n: int, consent: str | None = "granted") -> int:
    with session_scope(ctx.engine) as session:
        org_id = add_organisation(session, ctx, n)
        person = records.add_administrator(
            session,
            ctx.staff,
            org_id,
            records.validate_administrator(
                {"name": f"Anna {n}", "email": f"anna{n}@school.example", "phones": "0612345678"}
            ),
        )
        if consent:
            records.record_consent(
                session,
                ctx.staff,
                person.id,
                "newsletter",
                consent,
                "web form v2",
                source="web-form",
                purposes=ctx.settings.consent_purposes,
            )
        return person.id


def newsletter(ctx: AppContext, person_id: int) -> ConsentAction | None:
    with session_scope(ctx.engine) as session:
        return records.current_consent(session, person_id)["newsletter"]


def run(ctx: AppContext, *providers, cancel: threading.Event | None = None) -> list:  # type: ignore[no-untyped-def]
    return sync.sync(
        ctx.engine, list(providers), ctx.staff, ctx.settings.consent_purposes, cancel=cancel
    )


SQLITE_AND_PG = pytest.mark.usefixtures("engine_name")


def test_consent_flows_both_ways_and_a_leaver_is_never_resubscribed(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    anna, bert = add_person(ctx, 1), add_person(ctx, 2)
    (report,) = run(ctx, mailchimp(imitation))
    assert report.ok and report.pushed == 2
    members = imitation.state["lists"][DEFAULT_LIST_ID]["members"]
    assert {m["status"] for m in members.values()} == {"subscribed"}

    imitation.set_status("anna1@school.example", "unsubscribed")  # Anna leaves at Mailchimp
    (report,) = run(ctx, mailchimp(imitation))
    assert report.applied == 1
    assert newsletter(ctx, anna) == ConsentAction.WITHDRAWN
    assert newsletter(ctx, bert) == ConsentAction.GRANTED
    anna_member = next(m for m in members.values() if m["email"].startswith("anna1"))
    assert anna_member["status"] == "unsubscribed"  # nothing pushed her old grant back

    with session_scope(ctx.engine) as session:  # staff withdraw Bert here
        records.record_consent(
            session,
            ctx.staff,
            bert,
            "newsletter",
            "withdrawn",
            "asked by e-mail",
            purposes=ctx.settings.consent_purposes,
        )
    (report,) = run(ctx, mailchimp(imitation))
    bert_member = next(m for m in members.values() if m["email"].startswith("anna2"))
    assert bert_member["status"] == "unsubscribed"
    with session_scope(ctx.engine) as session:
        links = session.scalars(select(ProviderLink)).all()
        assert {link.subject_id for link in links} == {anna, bert}


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_unknown_members_are_counted_not_imported(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    imitation.seed_members(5, domain="elders.example")
    (report,) = run(ctx, mailchimp(imitation))
    assert report.ok and report.unknown == 5 and report.fetched == 5
    with session_scope(ctx.engine) as session:
        assert session.scalars(select(ProviderLink)).all() == []


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_cancelled_sync_resumes_where_it_stopped(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    imitation.seed_members(2500, domain="elders.example")  # three pages of 1000
    cancel = threading.Event()
    pages: list[int] = []

    def stop_after_first_page(update: sync.SyncProgress) -> None:
        if update.phase == "pull" and update.done:
            pages.append(update.done)
            cancel.set()

    (first,) = sync.sync(
        ctx.engine,
        [mailchimp(imitation)],
        ctx.staff,
        ctx.settings.consent_purposes,
        cancel=cancel,
        progress=stop_after_first_page,
    )
    assert first.state == "cancelled" and first.fetched == 1000
    with session_scope(ctx.engine) as session:
        state = session.scalars(select(ProviderState)).one()
        assert state.sync_checkpoint and '"offset": 1000' in state.sync_checkpoint.replace(
            '"offset":1000', '"offset": 1000'
        )
    (second,) = run(ctx, mailchimp(imitation))
    assert second.ok and second.fetched == 1500  # the rest, not everything again
    with session_scope(ctx.engine) as session:
        states = [r.state for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]
        assert states == ["cancelled", "succeeded"]


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_broken_plugin_beside_the_real_one_stops_nothing(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    broken_plugins.RELEASE.clear()
    try:
        person = add_person(ctx, 3)
        reports = run(
            ctx,
            broken_plugins.Hangs(ProviderConfig("hangs", None, None, 0.2)),
            mailchimp(imitation),
            broken_plugins.Raises(ProviderConfig("raises", None, None, 0.2)),
        )
    finally:
        broken_plugins.RELEASE.set()
    states = {report.provider: report.state for report in reports}
    assert states == {"hangs": "failed", "mailchimp": "succeeded", "raises": "failed"}
    assert imitation.state["lists"][DEFAULT_LIST_ID]["members"], "mailchimp got its push"
    assert newsletter(ctx, person) == ConsentAction.GRANTED


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_provider_fault_fails_the_run_and_the_next_sync_sends_the_batch_again(
    ctx: AppContext, imitation: MailchimpImitation
) -> None:
    add_person(ctx, 4)
    imitation.inject("500", method="POST", times=None)
    imitation.inject("500", method="PUT", times=None)
    (failed,) = run(ctx, mailchimp(imitation))
    assert failed.state == "failed" and "Internal Server Error" in (failed.error or "")
    assert "@" not in (failed.error or "")
    imitation.clear_faults()
    (ok,) = run(ctx, mailchimp(imitation))
    assert ok.ok and ok.pushed == 1
