"""The Providers screen and the dashboard's provider tiles, with Pilot, against the Mailchimp
imitation started by the app itself (``imitation = true``, as in the demo)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import SyncRun
from plusjeklas_tui.services import records
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.providers import ProvidersScreen
from plusjeklas_tui.tui.widgets.tile import Tile

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)

PLUGINS = f"""
[plugins.mailchimp]
enabled = true
imitation = true
list_id = "{DEFAULT_LIST_ID}"
"""


@pytest.fixture
def contexts(write_config: Callable[..., Path]) -> Callable[[str | None], AppContext]:
    from plusjeklas_tui import db

    path = write_config(extra=PLUGINS)
    opened: list[AppContext] = []

    def open_(user: str | None = None) -> AppContext:
        context = open_context(path, user, require_ready=False)
        if not opened:
            db.upgrade(context.engine)
        opened.append(context)
        return context

    yield open_  # type: ignore[misc]
    for context in opened:
        context.close()


def add_people(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(
            session,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "[b red]School[/]",
                    "street": "Kerkstraat 1",
                    "postcode": "1234ab",
                    "city": "Utrecht",
                    "brin": "01AB",
                    "phone": "030 123 4567",
                }
            ),
        )
        for n in range(3):
            person = records.add_administrator(
                session,
                ctx.staff,
                org.id,
                records.validate_administrator(
                    {"name": f"P {n}", "email": f"p{n}@school.example", "phones": "0612345678"}
                ),
            )
            records.record_consent(
                session,
                ctx.staff,
                person.id,
                "newsletter",
                "granted",
                "form",
                source="web-form",
                purposes=ctx.settings.consent_purposes,
            )


async def settle(app: PlusjeklasApp) -> None:
    for _ in range(3):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()


def make_app(ctx: AppContext) -> PlusjeklasApp:
    return PlusjeklasApp(ctx, today=lambda: dt.date(2026, 11, 27))


async def test_sync_from_the_providers_screen(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    add_people(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("v")
        await settle(app)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProvidersScreen)
        table = screen.query_one("#providers-table", DataTable)
        assert screen.names == ["mailchimp", "matomo", "mollie"] and table.row_count == 3
        await pilot.press("s")
        await settle(app)
        await pilot.pause()
        await settle(app)
        runs = screen.query_one("#runs-table", DataTable)
        assert runs.row_count == 1
        assert str(runs.get_row_at(0)[3]) == t("providers.result.succeeded")
        assert str(runs.get_row_at(0)[7]) == "3"  # pushed
        assert screen.progress_widgets["mailchimp"][1].progress >= 0
        assert screen.cancel is None
        await pilot.press("d", "ctrl+r")
        await settle(app)
        await pilot.pause()
        tile = app.screen.query_one("#tile-provider-mailchimp", Tile)
        succeeded = t("providers.result.succeeded")
        assert tile.label.startswith(f"mailchimp: {succeeded}, ")
    with session_scope(ctx.engine) as session:
        assert session.query(SyncRun).count() == 1


async def test_a_viewer_cannot_start_a_sync(contexts) -> None:  # type: ignore[no-untyped-def]
    contexts()
    viewer = contexts("vera")
    app = make_app(viewer)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("v")
        await settle(app)
        await pilot.pause()
        screen = app.screen
        assert screen.check_action("sync_one", ()) is False
        assert screen.check_action("sync_all", ()) is False
        await pilot.press("s", "S")
        await settle(app)
        assert screen.cancel is None
        assert screen.query_one("#runs-table", DataTable).row_count == 0
