"""The Deletions screen and the dashboard's deletion tiles, with Pilot, against the Mailchimp
imitation the app starts itself: a failed delivery shown with the provider's reason and the
next attempt, a retry, a delivery that then succeeds; who may do what; the background worker."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from erasure_app import ago, cells, contexts, count, make_app, school, settle
from sqlalchemy import select

from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import AuditEvent, DeletionState, DeletionTask
from plusjeklas_tui.services import erasure
from plusjeklas_tui.services.deletions import task_counts
from plusjeklas_tui.services.erasure import ProviderTarget, RequestReason
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.deletions import DeletionsScreen
from plusjeklas_tui.tui.widgets.tile import Tile

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
__all__ = ["contexts"]  # the fixture, imported for pytest

TARGETS = {"mailchimp": ProviderTarget("mailchimp", "newsletter")}


def erased_school(ctx, n: int = 1, people: int = 2) -> int:  # type: ignore[no-untyped-def]
    """A school erased on request: one pending Mailchimp task per person."""
    target = school(ctx, n, ago(30), people=people)
    with session_scope(ctx.engine) as session:
        erasure.request_erasure(
            session,
            ctx.staff,
            ctx.settings.retention,
            TARGETS,
            "organisation",
            target.id,
            RequestReason.OBJECTION,
            dt.date.today(),
        )
    return target.id


def states(ctx) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with session_scope(ctx.engine) as session:
        rows = session.execute(
            select(DeletionTask.state, DeletionTask.attempts).order_by(DeletionTask.id)
        ).all()
    return [(str(state), attempts) for state, attempts in rows]


async def open_deletions(app, pilot) -> DeletionsScreen:  # type: ignore[no-untyped-def]
    await settle(app, pilot)
    await pilot.press("w")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, DeletionsScreen)
    return screen


async def test_a_failed_delivery_is_shown_retried_and_then_delivered(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    erased_school(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_deletions(app, pilot)
        table = screen.query_one("#deletions-table")
        assert table.row_count == 2
        first = cells(table, 0)
        assert first[0] == "mailchimp" and first[1].startswith("administrator #")
        assert first[2:4] == [t("deletions.state.pending"), "0"]
        assert first[4] == t("deletions.now")

        imitation = app.provider_runtime().imitations[0]
        imitation.inject("500", times=None)
        await pilot.press("s")  # deliver now: it fails, and says why
        await settle(app, pilot)
        assert screen.last_delivery is not None and screen.last_delivery.failed == 2
        assert states(ctx) == [("pending", 1), ("pending", 1)]
        first = cells(table, 0)
        assert first[2] == t("deletions.state.failed") and first[3] == "1"
        assert first[4] not in (t("deletions.now"), t("retention.none"))  # backed off
        task = screen.highlighted()
        assert task is not None and "Internal Server Error" in (task.last_error or "")
        assert first[5] == task.last_error[:23] + "…" or first[5] == task.last_error
        detail = str(screen.query_one("#deletions-detail").render())
        assert detail == f"Task {task.id} · mailchimp: {task.last_error}"
        summary = str(screen.query_one("#deletions-summary").render())
        assert summary.startswith("2 pending · 2 failed (will be retried)")

        imitation.clear_faults()
        await pilot.press("s")  # not due yet: nothing is tried again before its time
        await settle(app, pilot)
        assert screen.last_delivery is not None and screen.last_delivery.done == 0
        await pilot.press("r")  # the highlighted task: due now, audited
        await settle(app, pilot)
        assert cells(table, 0)[4] == t("deletions.now")
        with session_scope(ctx.engine) as session:
            retries = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "deletion_retry")
            ).all()
        assert len(retries) == 1
        await pilot.press("s")
        await settle(app, pilot)
        assert screen.last_delivery is not None and screen.last_delivery.done == 1
        assert sorted(states(ctx)) == [("done", 2), ("pending", 1)]
        assert table.row_count == 1  # done tasks are listed only on request
        await pilot.press("t")
        await settle(app, pilot)
        assert table.row_count == 2
        assert t("deletions.state.done") in [cells(table, n)[2] for n in range(2)]


@pytest.mark.parametrize(
    ("user", "deliver", "retry"), [("vera", False, False), ("eddie", True, False)]
)
async def test_who_may_deliver_and_retry(contexts, user: str, deliver: bool, retry: bool) -> None:  # type: ignore[no-untyped-def]
    erased_school(contexts())
    ctx = contexts(user)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_deletions(app, pilot)
        assert ("s" in screen.active_bindings) is deliver
        assert ("r" in screen.active_bindings) is retry
        await pilot.press("r")
        await settle(app, pilot)
        assert count(ctx, AuditEvent, AuditEvent.action == "deletion_retry") == 0
        await pilot.press("s")
        await settle(app, pilot)
        done = count(ctx, DeletionTask, DeletionTask.state == DeletionState.DONE)
        assert done == (2 if deliver else 0)


async def test_the_dashboard_counts_pending_and_failed_tasks_and_opens_the_list(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    erased_school(ctx, 1, people=3)
    with session_scope(ctx.engine) as session:
        task = session.scalars(select(DeletionTask)).first()
        task.attempts, task.last_error = 2, "HTTP 500 from the provider"
    assert task_counts(ctx.engine).pending == 3 and task_counts(ctx.engine).failed == 1
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        tile = lambda name: app.screen.query_one(f"#tile-deletions-{name}", Tile)  # noqa: E731
        assert str(tile("pending").render()).split()[0] == "3"
        assert str(tile("failed").render()).split()[0] == "1"
        tile("failed").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, DeletionsScreen)


async def test_the_app_delivers_in_the_background_and_stops_on_exit(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    erased_school(ctx)
    app = make_app(ctx)
    app.deliver_deletions = True
    app.deliver_after_seconds = 0.1
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            await asyncio.sleep(0.05)
            if count(ctx, DeletionTask, DeletionTask.state == DeletionState.DONE) == 2:
                break
        assert states(ctx) == [("done", 1), ("done", 1)]
        workers = [w for w in app.workers if w.group == "deletions-background"]
        assert len(workers) == 1 and workers[0].is_running
        await pilot.pause()
    assert workers[0].cancelled_event.is_set()  # cancelled on exit


async def test_no_background_worker_without_an_enabled_provider(open_as) -> None:  # type: ignore[no-untyped-def]
    app = PlusjeklasApp(open_as("eddie"))
    app.deliver_deletions = True
    app.deliver_after_seconds = 0.0
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.sleep(0.1)
        await pilot.pause()
        assert not [w for w in app.workers if w.group == "deletions-background"]
