"""Whole-screen snapshots (pytest-textual-snapshot) on fixed data and a pinned date.

Update after an intended change of look with `pytest tests/tui/test_snapshots.py --snapshot-update`
and review the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation, Subscription
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
def test_help(snap_compare, open_as: Callable[[str], AppContext]) -> None:
    app = PlusjeklasApp(open_as("eddie"), today=lambda: TODAY)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


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
