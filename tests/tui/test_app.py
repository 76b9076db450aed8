"""The app shell: dashboard figures, tile shortcuts, help, palette, quitting — with Pilot."""

from __future__ import annotations

import datetime as dt

import pytest
from textual.widgets import DataTable

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation, Subscription
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import CATALOGUE, placeholders
from plusjeklas_tui.tui.screens.help import HelpScreen
from plusjeklas_tui.tui.widgets.tile import Tile

TODAY = dt.date(2026, 11, 27)


def _seed(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        for n, (end, status) in enumerate(
            [("2024-01-01", "ended"), ("2024-12-10", "ended"), (None, "active"), (None, "trial")]
        ):
            org = Organisation(
                name=f"[@click=app.quit]School {n}[/]",
                street="Kerkstraat 1",
                postcode="1234 AB",
                city="Utrecht",
                brin=f"0{n}AA",
                phone="+31201234567",
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


def make_app(ctx: AppContext) -> PlusjeklasApp:
    return PlusjeklasApp(ctx, today=lambda: TODAY)


def test_catalogue_is_complete() -> None:
    for key, (nl, en) in CATALOGUE.items():
        assert nl.strip() and en.strip(), key
        assert placeholders(nl) == placeholders(en), key


async def test_dashboard_shows_figures_from_the_database(ctx: AppContext) -> None:
    _seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.current_mode == "dashboard"
        text = lambda tile_id: str(app.screen.query_one(tile_id, Tile).render())  # noqa: E731
        assert text("#tile-status-ended").split()[0] == "2"
        assert text("#tile-status-active").split()[0] == "1"
        assert text("#tile-retention-overdue").split()[0] == "1"
        assert text("#tile-retention-soon").split()[0] == "1"


async def test_navigation_keys_and_back(ctx: AppContext) -> None:
    app = make_app(ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        assert app.current_mode == "organisations"
        assert type(app.focused).__name__ == "VirtualTable"  # keys go to the list, not the filter
        await pilot.press("p")
        assert app.current_mode == "people"
        await pilot.press("a")
        assert app.current_mode == "audit"
        await pilot.press("q")
        assert app.current_mode == "dashboard"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_help_lists_the_bindings_of_the_screen(ctx: AppContext) -> None:
    app = make_app(ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        actions = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert {"Schools", "People", "Audit", "Help", "Back"} <= actions
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_tile_opens_the_list_it_summarises(ctx: AppContext) -> None:
    _seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        app.screen.query_one("#tile-retention-overdue", Tile).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "organisations"


@pytest.mark.parametrize("language,label", [("nl", "Scholen"), ("en", "Schools")])
async def test_language_comes_from_the_config(ctx: AppContext, language: str, label: str) -> None:
    ctx.settings = ctx.settings.model_copy(update={"language": language})
    app = make_app(ctx)
    async with app.run_test(size=(100, 24)):
        descriptions = {b.description for b in app._bindings.key_to_bindings["o"]}
        assert descriptions == {label}
