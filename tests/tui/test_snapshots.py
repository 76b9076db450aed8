"""Whole-screen snapshots (pytest-textual-snapshot) on fixed data and a pinned date.

Update after an intended change of look with `pytest tests/tui/test_snapshots.py --snapshot-update`
and review the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation, ProviderLink, Subscription
from plusjeklas_tui.tui.app import PlusjeklasApp

TODAY = dt.date(2026, 11, 27)
SUBSCRIPTIONS = [
    ("2023-10-01", "ended"),
    ("2024-12-10", "ended"),
    ("2025-01-20", "cancelled"),
    ("2025-06-30", "ended"),
    ("2025-07-31", "ended"),
    ("2025-07-15", "ended"),
    (None, "active"),
    (None, "active"),
    (None, "trial"),
]


def _seed(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.model_copy(update={"language": "nl"})  # the default language
    with session_scope(ctx.engine) as s:
        for n, (end, status) in enumerate(SUBSCRIPTIONS):
            org = Organisation(
                name=f"Basisschool {n}",
                street="Kerkstraat 1",
                postcode="1234 AB",
                city="Utrecht",
                brin=f"{n:02d}AA",
                phone="+31201234567",
                created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
            s.add(org)
            s.flush()
            s.add(
                Subscription(
                    organisation_id=org.id,
                    plan="basis",
                    start_date=dt.date(2020, 1, 1),
                    end_date=dt.date.fromisoformat(end) if end else None,
                    status=status,
                )
            )


async def _settle(pilot) -> None:
    """Until no worker runs: the dashboard's office figures load after its first figures are
    shown, from a worker started then, so one wait is not enough."""
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard(snap_compare, open_as: Callable[[str], AppContext], size) -> None:
    context = open_as("eddie")
    _seed(context)
    app = PlusjeklasApp(context, today=lambda: TODAY)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_help(snap_compare, open_as: Callable[[str], AppContext], size) -> None:
    app = PlusjeklasApp(open_as("eddie"), today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_organisations_list(snap_compare, open_as: Callable[[str], AppContext], size) -> None:
    context = open_as("eddie")
    _seed(context)
    app = PlusjeklasApp(context, today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("o")
        await _settle_lists(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_record(snap_compare, open_as: Callable[[str], AppContext], size) -> None:
    context = open_as("eddie")
    _seed(context)
    app = PlusjeklasApp(context, today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.app.open_organisation(1)
        await _settle_lists(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def _settle_lists(pilot) -> None:
    """Lists replace older loads with newer ones; a cancelled load is not an error."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            continue
        await pilot.pause()


@pytest.fixture
def open_admin(write_config: Callable[..., Path]) -> Iterator[AppContext]:
    """An admin with a fixed name (the header shows it; the OS user differs per machine)."""
    from plusjeklas_tui import db
    from plusjeklas_tui.context import open_context

    path = write_config(staff={"anna": "admin"}, name="admin.toml")
    context = open_context(path, "anna", require_ready=False)
    db.upgrade(context.engine)
    yield context
    context.close()


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_retention_screen(snap_compare, open_admin: AppContext) -> None:
    """Due now and within 30 days, one school on legal hold; an admin sees the sweep key."""
    from plusjeklas_tui.services import legal_hold

    _seed(open_admin)
    with session_scope(open_admin.engine) as s:
        legal_hold.set_hold(s, open_admin.staff, 2, "Geschil")
    app = PlusjeklasApp(open_admin, today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("b")
        await _settle_lists(pilot)
        await pilot.press("n")
        await _settle_lists(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_deletions_screen(snap_compare, open_admin: AppContext) -> None:
    """Tasks of an erased school: one failed with the provider's reason and its next attempt,
    one waiting for a provider this configuration does not enable."""
    from sqlalchemy import select

    from plusjeklas_tui.models import DeletionTask
    from plusjeklas_tui.services import erasure, records

    _seed(open_admin)
    with session_scope(open_admin.engine) as s:
        for n in range(2):
            records.add_administrator(
                s,
                open_admin.staff,
                1,
                records.validate_administrator(
                    {"name": f"P {n}", "email": f"p{n}@school.example", "phones": "0612345678"}
                ),
            )
    with session_scope(open_admin.engine) as s:
        for n in range(2):
            s.add(
                ProviderLink(
                    provider="mailchimp",
                    subject_type="administrator",
                    subject_id=n + 1,
                    external_id=f"m{n}",
                )
            )
    with session_scope(open_admin.engine) as s:
        erasure.request_erasure(
            s,
            open_admin.staff,
            open_admin.settings.retention,
            {"mailchimp": erasure.ProviderTarget("mailchimp", "newsletter")},
            "organisation",
            1,
            erasure.RequestReason.OBJECTION,
            TODAY,
        )
    with session_scope(open_admin.engine) as s:
        task = s.scalars(select(DeletionTask).order_by(DeletionTask.id)).first()
        task.attempts = 3
        task.last_error = "HTTP 503 [b]Service Unavailable[/b]"
        task.next_attempt_at = dt.datetime(2099, 1, 1, 9, 30, tzinfo=dt.UTC)
    app = PlusjeklasApp(open_admin, today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("w")
        await _settle_lists(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
