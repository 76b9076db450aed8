"""The three list screens with Pilot: filtering, chips, sorting, opening, refreshing, at 80x24."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import insert
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Input, Label
from textual.worker import WorkerCancelled

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, AuditEvent, Organisation, Subscription
from plusjeklas_tui.services.organisation_list import OrganisationList
from plusjeklas_tui.tui import app as app_module
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.filters import OrganisationFilter
from plusjeklas_tui.tui.screens import list_base
from plusjeklas_tui.tui.screens.audit import AuditScreen
from plusjeklas_tui.tui.screens.list_base import ListScreen
from plusjeklas_tui.tui.screens.organisations import OrganisationsScreen
from plusjeklas_tui.tui.screens.people import PeopleScreen
from plusjeklas_tui.tui.sources import QuerySource
from plusjeklas_tui.tui.widgets.filter_bar import Chip, FilterBar
from plusjeklas_tui.tui.widgets.virtual_table import Cell, VirtualTable

TODAY = dt.date(2026, 11, 27)
SIZE = (80, 24)
EVIL = "[@click=app.quit]Evil[/]"


class ListsApp(PlusjeklasApp):
    """The app with the list screens mounted, recording what Enter opens."""

    CSS_PATH = str(Path(app_module.__file__).parent / "app.tcss")

    def __init__(self, context: AppContext, *, refresh_seconds: float = 60.0) -> None:
        self.auto_refresh_seconds = refresh_seconds
        super().__init__(context, today=lambda: TODAY)
        self.opened: list[int] = []
        self.quit_called = False

    def screen_factories(self) -> dict[str, Callable[[], Screen]]:
        return {
            **super().screen_factories(),
            "organisations": OrganisationsScreen,
            "people": PeopleScreen,
            "audit": AuditScreen,
        }

    async def open_organisation(self, organisation_id: int) -> None:
        self.opened.append(organisation_id)

    def action_quit(self) -> None:  # what an injected [@click=app.quit] would call
        self.quit_called = True


def _school(
    session, name: str, brin: str, *, city: str = "Utrecht", end: str | None = "2024-06-30"
) -> int:
    org = Organisation(
        name=name,
        street="Kerkstraat 1",
        postcode="3511 AB",
        city=city,
        brin=brin,
        phone="+31201234567",
        email=f"info@{brin.lower()}.example",
    )
    session.add(org)
    session.flush()
    session.add(
        Subscription(
            organisation_id=org.id,
            plan="basis",
            start_date=dt.date(2020, 1, 1),
            end_date=dt.date.fromisoformat(end) if end else None,
            status="ended" if end else "active",
        )
    )
    session.flush()
    return org.id


def seed(ctx: AppContext) -> dict[str, int]:
    """Six schools: three overdue (ended mid 2024), one due soon, two running."""
    with session_scope(ctx.engine) as s:
        ids = {
            "berk": _school(s, "Berkenhof", "01AA"),
            "citadel": _school(s, "Citadel", "02AA", city="Amersfoort"),
            "dolfijn": _school(s, "Dolfijn", "03AA", end="2024-12-10"),
            "eik": _school(s, "Eikenlaan", "04AA", end=None),
            "fazant": _school(s, "Fazant", "05AA", end=None, city="Zwolle"),
            "evil": _school(s, EVIL, "06AA"),
        }
        s.add(
            Administrator(
                organisation_id=ids["citadel"],
                name="[b red]Anna[/]",
                email="anna@citadel.example",
                phones=json.dumps(["+31612345678"]),
            )
        )
        s.add(
            Administrator(
                organisation_id=ids["fazant"],
                name="Bram",
                email="bram@fazant.example",
                left_on=dt.date(2025, 8, 1),
            )
        )
    return ids


async def settle(app: PlusjeklasApp, pilot: Pilot) -> None:
    """Let workers finish and their results reach the screen.

    A load that a newer one replaced ends as cancelled: that is the point of an exclusive
    worker, so it is not an error here.
    """
    for _ in range(3):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()


async def open_list(app: ListsApp, pilot: Pilot, key: str) -> ListScreen:
    await pilot.press(key)
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ListScreen)
    return screen


async def type_filter(pilot: Pilot, screen: ListScreen, text: str) -> None:
    """`/`, replace the filter text (set at once: typing long texts key by key is slow), Enter."""
    await pilot.press("slash")
    screen.bar.input.value = text
    screen.bar.input.cursor_position = len(text)
    await pilot.press("enter")


def line_text(table: VirtualTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


def names(table: VirtualTable) -> list[str]:
    return [str(table._row_at(i).cells[0]) for i in range(table.row_count)]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- organisations


async def test_organisations_list_shows_columns_status_and_deadline(ctx: AppContext) -> None:
    ids = seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        table = screen.table
        assert table.row_count == 6
        assert table.has_focus
        assert names(table)[:3] == ["Berkenhof", "Citadel", "Dolfijn"]
        assert table.table_width < SIZE[0]  # every column fits in 80 columns
        header = line_text(table, 0)
        for label in ("Name", "City", "BRIN", "Postcode", "Status", "Keep until"):
            assert label in header
        berk = table._row_at(0)
        assert berk is not None and berk.key == ids["berk"]
        assert berk.cells[4] == "ended"
        assert berk.cells[5] == Cell("2026-06-30", "bold red")
        dolfijn = table._row_at(2)
        assert dolfijn is not None and dolfijn.cells[5] == Cell("2026-12-10", "red")
        eik = table._row_at(3)
        assert eik is not None and eik.cells[4:] == ("active", Cell("running", ""))
        assert screen.bar.status == "6 schools", app._notifications
        assert screen.query_one(Footer) is not None


async def test_slash_filters_as_you_type_after_a_pause(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.press("slash")  # from the dashboard: opens the organisations list
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OrganisationsScreen)
        assert isinstance(app.focused, Input)
        loads = screen.loads
        await pilot.press(*"amers")
        assert screen.loads == loads  # debounced: nothing reloaded per keystroke
        await pilot.pause(FilterBar.debounce_seconds * 2)
        await settle(app, pilot)
        assert screen.loads == loads + 1  # one reload for the whole word
        assert names(screen.table) == ["Citadel"]  # city
        await pilot.press("ctrl+u", *"02a", "enter")  # BRIN; Enter applies at once
        await settle(app, pilot)
        assert names(screen.table) == ["Citadel"]
        assert screen.table.has_focus
        await type_filter(pilot, screen, "INFO@03aa.EXAMPLE")  # exact e-mail
        await settle(app, pilot)
        assert names(screen.table) == ["Dolfijn"]
        await type_filter(pilot, screen, "zzz")
        await settle(app, pilot)
        assert screen.table.row_count == 0
        assert screen.table.empty_text == "Nothing matches this filter"
        await type_filter(pilot, screen, "")
        await settle(app, pilot)
        assert screen.table.row_count == 6


async def test_a_long_result_shows_its_rows_before_its_full_count(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter the user typed shows rows after counting only a little further than them;
    the exact count (and the scroll range) follows from the same worker, once it is known."""
    seed(ctx)
    monkeypatch.setattr(ListScreen, "PAGE_SIZE", 2)
    monkeypatch.setattr(list_base, "COUNT_WHILE_TYPING", 2)
    counting = threading.Event()
    release = threading.Event()
    real_count_exactly = QuerySource.count_exactly

    def held_count_exactly(self: QuerySource) -> int:
        counting.set()
        assert release.wait(10), "the test never released the exact count"
        return real_count_exactly(self)

    monkeypatch.setattr(QuerySource, "count_exactly", held_count_exactly)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await pilot.pause()
        deadline = time.perf_counter() + 10
        while not counting.is_set() or app.screen.loads == 0:
            assert time.perf_counter() < deadline, "the capped load never showed"
            await pilot.pause(0.01)
        screen = app.screen
        assert isinstance(screen, OrganisationsScreen)
        # counted to 3 (a page of 2, and one more to know there are more), rows shown
        assert screen.table.row_count == 3
        assert str(screen.bar.status) == "more than 2 schools"
        assert names_at(screen.table, 0) == "Berkenhof"
        counts = screen.counts
        release.set()
        await settle(app, pilot)
        assert screen.counts == counts + 1
        assert screen.table.row_count == 6
        assert str(screen.bar.status) == "6 schools"
        await pilot.press("G")
        await pilot.pause()
        assert screen.table.cursor_index == 5  # the whole list is reachable


async def test_typing_never_shows_a_stale_result(ctx: AppContext) -> None:
    """Each settled text replaces the previous load; the last one wins."""
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        bar = screen.bar
        for text in ("b", "be", "c", "ci", "cit"):
            bar.input.value = text
            bar._report()  # as if the debounce had fired after each
        await settle(app, pilot)
        assert names(screen.table) == ["Citadel"]


async def test_tile_filter_shows_chips_that_can_be_removed(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        for key in ("delete", "backspace", "enter"):
            await app.action_goto("organisations", OrganisationFilter(urgency="overdue"))
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, OrganisationsScreen)
            assert screen.table.row_count == 3  # Berkenhof, Citadel and the evil one
            chips = list(screen.query(Chip))
            assert [str(chip.render()) for chip in chips] == ["Overdue for deletion ✕"]
            chips[0].focus()
            await pilot.press(key)
            await settle(app, pilot)
            assert not list(screen.query(Chip)), key
            assert screen.table.row_count == 6, key  # the list widened
            assert screen.filter == OrganisationFilter()
            assert isinstance(app.focused, Input)  # the keyboard stays in the filter bar
            await pilot.press("escape")
            assert screen.table.has_focus


async def test_x_clears_every_chip_and_is_hidden_without_chips(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await app.action_goto(
            "organisations", OrganisationFilter(status="ended", due_month="2026-12")
        )
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OrganisationsScreen)
        assert names(screen.table) == ["Dolfijn"]
        labels = [str(chip.render()) for chip in screen.query(Chip)]
        assert labels == ["Status: ended ✕", "Due in 2026-12 ✕"]
        assert screen.check_action("clear_filters", ()) is True
        screen.table.focus()
        await pilot.press("x")
        await settle(app, pilot)
        assert not list(screen.query(Chip))
        assert screen.table.row_count == 6
        assert screen.check_action("clear_filters", ()) is False  # hidden from the footer


async def test_sorting_by_a_column(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        await pilot.press("right", "s")  # the city column, ascending
        await settle(app, pilot)
        assert names(screen.table)[0] == "Citadel"  # Amersfoort
        assert "▲" in line_text(screen.table, 0)
        await pilot.press("s")  # descending
        await settle(app, pilot)
        assert names(screen.table)[0] == "Fazant"  # Zwolle
        assert screen.sort == ("city", True)


async def test_enter_opens_the_highlighted_record(ctx: AppContext) -> None:
    ids = seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(app, pilot, "o")
        await pilot.press("j", "enter")
        await pilot.pause()
        assert app.opened == [ids["citadel"]]


async def test_refresh_shows_a_new_row_and_keeps_the_cursor(ctx: AppContext) -> None:
    ids = seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        table = screen.table
        await pilot.press("j", "j")
        assert table.cursor_key == ids["dolfijn"]
        with ctx.engine.begin() as conn:  # someone else, straight into the database
            conn.execute(
                insert(Organisation.__table__).values(
                    name="Aardvark",
                    street="Dorpsstraat 2",
                    postcode="9401 AA",
                    city="Assen",
                    brin="09ZZ",
                    phone="+31201234567",
                )
            )
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert table.row_count == 7
        assert names(table)[0] == "Aardvark"
        assert table.cursor_key == ids["dolfijn"]  # same record, one row further down
        assert table.cursor_index == 3


async def test_the_list_refreshes_itself(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx, refresh_seconds=0.2)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        with session_scope(ctx.engine) as s:
            _school(s, "Aardvark", "09ZZ")
        for _ in range(20):
            await pilot.pause(0.1)
            await settle(app, pilot)
            if screen.table.row_count == 7:
                break
        assert names(screen.table)[0] == "Aardvark"


async def test_markup_in_data_is_shown_literally_and_does_nothing(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "o")
        table = screen.table
        y = names(table).index(EVIL) + 1  # its line below the header
        assert EVIL[:18] in line_text(table, y)
        await pilot.click(VirtualTable, offset=(4, y))  # on the injected "link"
        await pilot.click(VirtualTable, offset=(4, y))  # twice: the second opens the row
        await pilot.pause()
        assert not app.quit_called
        assert app.is_running
        people = await open_list(app, pilot, "p")
        assert "[b red]Anna[/]" in line_text(people.table, 1)
        await pilot.click(VirtualTable, offset=(4, 1))
        assert not app.quit_called


def _brin(n: int) -> str:
    """A distinct six-character BRIN for each n below 6,760,000."""
    letters = chr(65 + n // 26 % 26) + chr(65 + n % 26)
    return f"{n // 676 % 100:02d}{letters}{n // 67600:02d}"


@pytest.mark.parametrize("engine_name", ["sqlite"])  # the bulk load is quick on SQLite
async def test_a_hundred_thousand_organisations_open_without_loading_them_all(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 100_000
    rows = [
        {
            "name": f"School {n:06d}",
            "street": "Kerkstraat 1",
            "postcode": "3511 AB",
            "city": "Utrecht" if n % 2 else "Zwolle",
            "brin": _brin(n),
            "phone": "+31201234567",
        }
        for n in range(total)
    ]
    with ctx.engine.begin() as conn:
        conn.execute(insert(Organisation.__table__), rows)
    del rows

    fetched: list[tuple[int, int]] = []
    real_fetch = OrganisationList.fetch

    def counting_fetch(self: OrganisationList, offset: int, limit: int) -> list:
        fetched.append((offset, limit))
        return real_fetch(self, offset, limit)

    monkeypatch.setattr(OrganisationList, "fetch", counting_fetch)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        started = time.perf_counter()
        screen = await open_list(app, pilot, "o")
        opened = time.perf_counter() - started
        table = screen.table
        assert table.row_count == total
        assert fetched == [(0, ListScreen.PAGE_SIZE)]  # one page read to open the list
        assert opened < 5  # generous: a loaded CI machine; the benchmark holds the real bar
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_key is not None
        assert names_at(table, table.cursor_index) == f"School {total - 1:06d}"
        for _ in range(5):
            await pilot.press("pageup")
        await pilot.press("g")
        await pilot.pause()
        assert len(table.cached_pages) <= ListScreen.MAX_CACHED_PAGES
        assert sum(limit for _, limit in fetched) <= 6 * ListScreen.PAGE_SIZE
        await type_filter(pilot, screen, "School 09999")
        await settle(app, pilot)
        assert table.row_count == 10  # School 099990 .. School 099999
        assert len(table.cached_pages) <= ListScreen.MAX_CACHED_PAGES


def names_at(table: VirtualTable, index: int) -> str:
    row = table._row_at(index)
    assert row is not None
    return str(row.cells[0])


# --------------------------------------------------------------------------- people


async def test_people_list_and_exact_email_search(ctx: AppContext) -> None:
    ids = seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "p")
        table = screen.table
        assert table.row_count == 2
        assert table.table_width < SIZE[0]
        first = line_text(table, 1)
        assert "anna@citadel.example" in first
        assert "06 12345678" in first
        assert "Citadel" in first
        assert "2025-08-01" in line_text(table, 2)
        placeholder = screen.bar.input.placeholder
        assert "e-mail" in placeholder and "encrypted" in placeholder
        await type_filter(pilot, screen, "anna")
        await settle(app, pilot)
        error = screen.bar.query_one("#filter-error", Label)
        assert error.display and "complete e-mail" in str(error.render())
        assert table.row_count == 0
        await type_filter(pilot, screen, "BRAM@fazant.example")
        await settle(app, pilot)
        assert not error.display
        assert table.row_count == 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.opened == [ids["fazant"]]


# --------------------------------------------------------------------------- audit


def seed_audit(ctx: AppContext, ids: dict[str, int]) -> None:
    with session_scope(ctx.engine) as s:
        for when, actor, action, entity, entity_id in [
            ("2026-11-02T09:00:00", "vera", "export", "organisation", ids["berk"]),
            ("2026-11-03T09:00:00", "eddie", "update", "organisation", ids["citadel"]),
            ("2026-11-04T09:00:00", "eddie", "keys.rotate", "keyring", None),
        ]:
            s.add(
                AuditEvent(
                    occurred_at=dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
                    actor=actor,
                    action=action,
                    entity=entity,
                    entity_id=entity_id,
                    detail='{"count": 1}',
                )
            )


async def test_audit_list_filters_and_opens_records(ctx: AppContext) -> None:
    ids = seed(ctx)
    seed_audit(ctx, ids)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "a")
        table = screen.table
        assert table.row_count == 3
        assert "keys.rotate" in line_text(table, 1)  # newest first
        assert "2026-11-04 10:00" in line_text(table, 1)  # shown in Amsterdam time
        assert "actor:" in screen.bar.input.placeholder
        await type_filter(pilot, screen, "actor:eddie since:2026-11-03")
        await settle(app, pilot)
        assert table.row_count == 2
        await type_filter(pilot, screen, "who:vera")
        await settle(app, pilot)
        error = screen.bar.query_one("#filter-error", Label)
        assert "Unknown filter word 'who:'" in str(error.render())
        assert table.row_count == 2  # the last list that could be read stays
        await type_filter(pilot, screen, "action:update")
        await settle(app, pilot)
        assert not error.display
        assert table.row_count == 1
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.opened == [ids["citadel"]]
        await type_filter(pilot, screen, "entity:keyring")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.opened == [ids["citadel"]]  # a keyring event has no record to open


async def test_a_database_error_is_reported_and_the_app_lives(ctx: AppContext) -> None:
    seed(ctx)
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, "a")
        with ctx.engine.begin() as conn:
            conn.execute(AuditEvent.__table__.delete())
            conn.exec_driver_sql("DROP TABLE audit_event")
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.is_running
        messages = [str(n.message) for n in app._notifications]
        assert any("Something went wrong" in m for m in messages)
        assert "not loaded" in str(screen.bar.query_one("#filter-status", Label).render())
        await pilot.press("o")  # the rest of the app still works
        await settle(app, pilot)
        assert isinstance(app.screen, OrganisationsScreen)
        assert app.screen.table.row_count == 6


@pytest.mark.parametrize("key", ["o", "p", "a"])
async def test_each_list_works_in_dutch_at_80x24(ctx: AppContext, key: str) -> None:
    seed(ctx)
    ctx.settings = ctx.settings.model_copy(update={"language": "nl"})
    app = ListsApp(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(app, pilot, key)
        assert screen.table.size.height >= 15  # the list gets most of the screen
        status = str(screen.bar.query_one("#filter-status", Label).render())
        assert any(word in status for word in ("scholen", "personen", "gebeurtenissen"))
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("escape")
