"""The Breaches screen with Pilot: the register with its countdown, recording a breach through
the form (rules shown under the fields), the detail view, reporting and not reportable, who may
do what, register text shown as text, and an idle list that does not redraw."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.widgets import DataTable, Label
from textual.worker import WorkerCancelled

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Breach, BreachStatus
from plusjeklas_tui.services import breaches
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.screens.breach_forms import BreachForm, NotReportableForm, ReportForm
from plusjeklas_tui.tui.screens.breaches import BreachDetailScreen, BreachesScreen

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)

HOSTILE = "[@click=app.quit]Leak[/] in the export"


def add(ctx: AppContext, hours_ago: float, summary: str = "List mailed to the wrong school") -> int:
    now = dt.datetime.now(dt.UTC)
    with session_scope(ctx.engine) as session:
        breach = breaches.register(
            session,
            ctx.staff,
            {
                "discovered_at": now - dt.timedelta(hours=hours_ago),
                "summary": summary,
                "nature": ["read"],
                "data_types": ["email"],
                "people_min": 2,
                "people_max": 9,
            },
            now=now,
        )
        assert breach.id is not None
        return breach.id


async def settle(app: PlusjeklasApp, pilot: Any) -> None:
    for _ in range(4):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()


def table_rows(screen: BreachesScreen) -> list[list[str]]:
    table = screen.query_one("#breaches-table", DataTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def open_breaches(app: PlusjeklasApp, pilot: Any) -> BreachesScreen:
    await settle(app, pilot)
    await pilot.press("i")
    await settle(app, pilot)
    assert isinstance(app.screen, BreachesScreen)
    return app.screen


def status(ctx: AppContext, breach_id: int) -> Breach:
    with session_scope(ctx.engine) as session:
        breach = session.get(Breach, breach_id)
        assert breach is not None
        return breach


async def test_register_with_countdown(ctx: AppContext) -> None:
    late = add(ctx, 75)
    recent = add(ctx, 1, HOSTILE)
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_breaches(app, pilot)
        rows = table_rows(screen)
        assert [row[0] for row in rows] == [str(late), str(recent)]
        assert rows[0][4].startswith("overdue by 3 h")
        assert rows[1][4].startswith("70 h") or rows[1][4].startswith("71 h")
        assert rows[1][6] == HOSTILE[:29] + "…"  # shown as text, cut to the column
        summary = screen.query_one("#breaches-summary", Label)
        assert "Open: 2 (past the 72 hours: 1)" in str(summary.render())
        assert summary.has_class("-overdue")
        # clicking the hostile cell must not run its markup's action
        await pilot.click("#breaches-table", offset=(60, 3))
        await settle(app, pilot)
        assert app.is_running


async def test_an_idle_register_is_not_redrawn(ctx: AppContext) -> None:
    add(ctx, 5)
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_breaches(app, pilot)
        table = screen.query_one("#breaches-table", DataTable)
        cleared: list[int] = []
        original = table.clear
        table.clear = lambda *a, **k: cleared.append(1) or original(*a, **k)  # type: ignore[method-assign]
        screen.refresh_data()
        await settle(app, pilot)
        assert cleared == []  # same minute, same rows: nothing redrawn
        add(ctx, 2)
        screen.refresh_data()
        await settle(app, pilot)
        assert cleared == [1] and len(table_rows(screen)) == 2


async def test_record_a_breach_through_the_form(ctx: AppContext) -> None:
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_breaches(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, BreachForm)
        # a rule shown under the field as it is left
        form.form_field("discovered_at").focus_input()
        form.form_field("discovered_at").value = "2026-03-29 02:30"
        await pilot.press("tab")
        await pilot.pause()
        assert "clocks were put forward" in form.form_field("discovered_at").error_text
        # rules between fields are routed to their field on save; nothing is written
        now = dt.datetime.now(breaches.LOCAL_TZ) - dt.timedelta(hours=3)
        values = {
            "discovered_at": now.strftime("%Y-%m-%d %H:%M"),
            "summary": "Spreadsheet with administrators sent to a wrong address",
            "nature": "read, copied",
            "data_types": "name_address, email",
            "people_min": "40",
            "people_max": "12",
            "informed": "planned",
        }
        for name, value in values.items():
            form.form_field(name).value = value
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert (
            "at least the minimum number of people (40)" in form.form_field("people_max").error_text
        )
        assert "say how and when" in form.form_field("informed_how").error_text
        with session_scope(ctx.engine) as session:
            assert session.scalar(select(Breach.id)) is None
        form.form_field("people_min").value = "4"
        form.form_field("informed_how").value = "mail tomorrow"
        await pilot.press("f2")
        await settle(app, pilot)
        assert isinstance(app.screen, BreachesScreen)
        rows = table_rows(app.screen)
        assert len(rows) == 1 and rows[0][1] == "open" and rows[0][5] == "4–12"
        assert rows[0][4].startswith("68 h") or rows[0][4].startswith("69 h")
    with session_scope(ctx.engine) as session:
        breach = session.scalars(select(Breach)).one()
        assert breach.people_min == 4 and breach.informed_how == "mail tomorrow"
        assert breach.created_by == ctx.staff.username


async def test_detail_and_not_reportable(ctx: AppContext) -> None:
    breach_id = add(ctx, 10)
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_breaches(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        assert isinstance(detail, BreachDetailScreen)
        assert "Not reported yet — 61 h" in str(detail.query_one("#breach-status", Label).render())
        people = str(detail.query_one("#breach-people_max", Label).render())
        assert people == "Number of people (maximum): 9"
        assert "Types of personal data: e-mail addresses" in str(
            detail.query_one("#breach-data_types", Label).render()
        )
        await pilot.press("x")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, NotReportableForm)
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert "say why" in form.form_field("not_reportable_reason").error_text
        form.form_field("not_reportable_reason").value = "Only the school's general desk address"
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is detail
        assert "Not reportable" in str(detail.query_one("#breach-status", Label).render())
        assert detail.check_action("not_reportable", ()) is False
        assert detail.check_action("report", ()) is True
    assert status(ctx, breach_id).status == BreachStatus.NOT_REPORTABLE


async def test_reporting_late_asks_for_the_reason_in_the_form(ctx: AppContext) -> None:
    breach_id = add(ctx, 80)
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_breaches(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ReportForm)
        form.form_field("ap_reference").value = "M-77"
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert "more than 72 hours" in form.form_field("late_reason").error_text
        form.form_field("late_reason").value = "The file's content was only known on Monday"
        await pilot.press("f2")
        await settle(app, pilot)
        assert isinstance(app.screen, BreachDetailScreen)
        assert "reference M-77" in str(app.screen.query_one("#breach-status", Label).render())
    breach = status(ctx, breach_id)
    assert breach.status == BreachStatus.REPORTED and breach.ap_reference == "M-77"


async def test_viewers_read_only(ctx: AppContext, open_as: Callable[[str], AppContext]) -> None:
    add(ctx, 3)
    viewer = open_as("vera")
    app = PlusjeklasApp(viewer)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_breaches(app, pilot)
        assert screen.check_action("new_breach", ()) is False
        await pilot.press("n")
        await settle(app, pilot)
        assert app.screen is screen
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        assert isinstance(detail, BreachDetailScreen)
        for action in ("edit", "report", "not_reportable"):
            assert detail.check_action(action, ()) is False


def test_an_idle_breach_list_sends_nothing_to_the_terminal(
    ctx: AppContext, config_path: Path
) -> None:
    """The real app on a pseudo-terminal (see test_bandwidth.py): the countdown list and the
    detail view send nothing while idle, across the automatic refresh."""
    from test_bandwidth import IDLE_SECONDS, ROOT, Terminal, quit_app, text_of

    whole_minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    with session_scope(ctx.engine) as session:
        for hours in (80, 3):
            breaches.register(
                session,
                ctx.staff,
                {
                    "discovered_at": whole_minute - dt.timedelta(hours=hours),
                    "summary": "idle test",
                    "nature": "read",
                    "data_types": "email",
                    "people_min": 1,
                    "people_max": 2,
                },
            )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"COLORTERM", "NO_COLOR", "PLUSJEKLAS_CONFIG", "COLUMNS", "LINES"}
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PLUSJEKLAS_CONFIG=str(config_path),
        TERM="xterm-256color",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
    )
    terminal = Terminal([sys.executable, "-m", "plusjeklas_tui"], env)
    try:
        terminal.wait_for(r"Ended")
        # wait for what the screen's first load shows (the rows, the form's answers)
        for key, shown in ((b"i", r"overdue by"), (b"\r", r"New notification or follow-up")):
            mark = terminal.written
            terminal.press(key)
            terminal.wait_for(shown, since=mark)
            terminal.settle()
            # the countdown's minute turns at :00 (whole-minute discoveries): stay clear of it
            while not 2 <= dt.datetime.now(dt.UTC).second <= 60 - IDLE_SECONDS - 3:
                time.sleep(0.2)
            mark = terminal.written
            time.sleep(IDLE_SECONDS)
            assert terminal.since(mark) == b"", (
                key,
                text_of(terminal.since(mark)),
                terminal.since(mark)[:600],
            )
        quit_app(terminal)
    finally:
        terminal.close()


async def test_edit_a_breach_from_its_detail(ctx: AppContext) -> None:
    breach_id = add(ctx, 4)
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_breaches(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        await pilot.press("e")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, BreachForm)
        assert form.form_field("people_max").value == "9"
        assert form.form_field("nature").value == "read"
        assert form.form_field("ongoing").value == "no"  # flags in the interface's words
        form.form_field("people_max").value = "25"
        form.form_field("measures").value = "password reset for everyone"
        # someone else saves first: the form says so and keeps the edits
        with session_scope(ctx.engine) as session:
            breaches.update_breach(session, ctx.staff, breach_id, {"cause": "a typo"})
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form and form.conflicted
        assert form.form_field("people_max").value == "25"
        assert status(ctx, breach_id).people_max == 9
    # a fresh form on the newer version saves
    app = PlusjeklasApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_breaches(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        await pilot.press("e")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, BreachForm)
        form.form_field("people_max").value = "25"
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is detail
        people = str(detail.query_one("#breach-people_max", Label).render())
        assert people.endswith(": 25")
    breach = status(ctx, breach_id)
    assert (breach.people_max, breach.cause, breach.version) == (25, "a typo", 3)
