"""The dashboard's privacy office panel: open breaches with their countdown, feedback to ask,
the last promise audit — each a tile that opens its screen. With Pilot."""

from __future__ import annotations

import datetime as dt

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Breach, Organisation, PromiseAudit, Subscription
from plusjeklas_tui.services import office_summary
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.widgets.tile import Tile

TODAY = dt.date(2026, 11, 27)


def _seed(ctx: AppContext, discovered: dt.datetime) -> None:
    with session_scope(ctx.engine) as s:
        org = Organisation(
            name="De Kompas",
            street="Kerkstraat 1",
            postcode="1234 AB",
            city="Utrecht",
            brin="01AA",
            phone="+31201234567",
        )
        s.add(org)
        s.flush()
        # ended half a year ago: within the two years kept to ask for feedback
        s.add(
            Subscription(
                organisation_id=org.id,
                plan="basis",
                start_date=dt.date(2022, 1, 1),
                end_date=dt.date(2026, 5, 31),
                status="ended",
            )
        )
        s.add(
            Breach(
                discovered_at=discovered,
                summary="[b]laptop[/b] lost",
                people_min=1,
                people_max=20,
                created_by="tester",
            )
        )
        s.add(
            PromiseAudit(
                ran_at=dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC),
                actor="tester",
                passed=False,
                checks=8,
                failures=2,
                results="[]",
            )
        )


def _text(app: PlusjeklasApp, tile_id: str) -> str:
    return str(app.screen.query_one(tile_id, Tile).render())


async def test_office_tiles_show_counts_and_the_breach_countdown(ctx: AppContext) -> None:
    now = dt.datetime.now(dt.UTC)
    _seed(ctx, discovered=now - dt.timedelta(hours=70, minutes=30))
    summary = office_summary.collect(ctx.engine, TODAY, now, ctx.settings.retention)
    assert summary.breaches is not None and summary.breaches.open == 1
    assert summary.feedback_open == 1
    assert summary.promises is not None and summary.promises.failures == 2
    assert summary.requests is not None and summary.requests.open == 0

    app = PlusjeklasApp(ctx, today=lambda: TODAY)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        breaches = _text(app, "#tile-breaches-open")
        assert breaches.split()[0] == "1"
        assert "1 h 29 min" in breaches or "1 u 29 min" in breaches or "1 h 30 min" in breaches
        assert "[b]" not in breaches  # no breach text on the dashboard at all
        assert _text(app, "#tile-feedback").split()[0] == "1"
        assert _text(app, "#tile-promises").split()[0] == "2"
        assert _text(app, "#tile-requests-open").split()[0] == "0"
        app.screen.query_one("#tile-breaches-open", Tile).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "breaches"


async def test_a_breach_past_72_hours_says_so(ctx: AppContext) -> None:
    now = dt.datetime.now(dt.UTC)
    _seed(ctx, discovered=now - dt.timedelta(hours=73))
    app = PlusjeklasApp(ctx, today=lambda: TODAY)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        text = _text(app, "#tile-breaches-open")
        assert "72" in text and text.split()[0] == "1"
