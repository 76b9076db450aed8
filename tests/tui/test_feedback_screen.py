"""The Feedback screen with Pilot: who is listed, marking asked and answered through the note
form, viewers who may only read, paging, and names from the database shown as text."""

from __future__ import annotations

import datetime as dt

import pytest
from erasure_app import ago, cells, contexts, count, make_app, school, settle
from sqlalchemy import select, update
from textual.widgets import DataTable, Input, Label

from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import (
    ConsentAction,
    ConsentEvent,
    FeedbackRequest,
    Organisation,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.feedback import FeedbackScreen
from plusjeklas_tui.tui.screens.feedback_form import FeedbackNoteForm
from plusjeklas_tui.tui.screens.help import HelpScreen

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
__all__ = ["contexts"]  # the fixture, imported for pytest

HOSTILE = "[@click=app.quit]School[/] \x1b[31m"
NOTE = "Gebeld met de directeur, mailt deze week"


def seed(ctx):  # type: ignore[no-untyped-def]
    """Two schools to ask (one named like markup, one with an objector), one running, one past
    its retention deadline."""
    first = school(ctx, 1, ago(10))
    hostile = school(ctx, 2, ago(3))
    running = school(ctx, 3, ago(1))
    past = school(ctx, 4, ago(30))
    with session_scope(ctx.engine) as session:
        session.execute(
            update(Organisation).where(Organisation.id == hostile.id).values(name=HOSTILE)
        )
        session.add(
            Subscription(
                organisation_id=running.id,
                plan="plus",
                start_date=ago(1),
                end_date=None,
                status=SubscriptionStatus.ACTIVE,
            )
        )
        session.add(
            ConsentEvent(
                administrator_id=first.admin_ids[0],
                purpose="feedback",
                action=ConsentAction.WITHDRAWN,
                occurred_at=dt.datetime.combine(ago(5), dt.time(12), tzinfo=dt.UTC),
                source="web-form",
            )
        )
    return first, hostile, running, past


def rows(screen: FeedbackScreen) -> dict[str, list[str]]:
    table = screen.query_one("#feedback-table", DataTable)
    return {cells(table, n)[0]: cells(table, n) for n in range(table.row_count)}


async def open_feedback(app, pilot) -> FeedbackScreen:  # type: ignore[no-untyped-def]
    await settle(app, pilot)
    await pilot.press("f")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, FeedbackScreen)
    return screen


async def help_actions(app, pilot) -> set[str]:  # type: ignore[no-untyped-def]
    """What `?` lists for the current screen (then closes it again)."""
    await pilot.press("question_mark")
    assert isinstance(app.screen, HelpScreen)
    table = app.screen.query_one(DataTable)
    actions = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
    await pilot.press("escape")
    return actions


def notes(screen: FeedbackScreen) -> str:
    return str(screen.query_one("#feedback-notes", Label).render())


def summary(screen: FeedbackScreen) -> str:
    return str(screen.query_one("#feedback-summary", Label).render())


async def test_the_list_shows_schools_in_the_window_with_who_may_be_asked(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    first, hostile, running, past = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_feedback(app, pilot)
        shown = rows(screen)
        assert set(shown) == {first.brin, hostile.brin}  # not running, not past retention
        assert shown[first.brin][1:] == [
            first.name,
            t("feedback.state.due"),
            ago(10).isoformat(),
            ago(-14).isoformat(),  # 24 months after the end
            t("feedback.may_ask.count", may=1, of=2),
            t("feedback.none"),
        ]
        # a name from the database is text: no markup, control characters escaped
        assert shown[hostile.brin][1] == "[@click=app.quit]School[/] \\x1b[31m"
        assert summary(screen) == "To ask: 2 · asked: 0 · answered: 0 · objected: 0"
        # clicking the hostile cell runs no action: the app is still here
        table = screen.query_one("#feedback-table", DataTable)
        table.move_cursor(row=[*shown].index(hostile.brin))
        await pilot.click(DataTable, offset=(14, 2))
        await settle(app, pilot)
        assert app.is_running and isinstance(app.screen, FeedbackScreen)
        assert running.id and past.id


async def test_an_editor_marks_asked_then_answered_with_a_required_note(contexts) -> None:  # type: ignore[no-untyped-def]
    admin = contexts()
    first, _hostile, _running, _past = seed(admin)
    ctx = contexts("eddie")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_feedback(app, pilot)
        assert next(iter(rows(screen))) == first.brin  # oldest end first: the cursor is on it
        assert screen.active_bindings["m"].enabled
        assert not screen.active_bindings["r"].enabled  # not asked yet: nothing to answer
        assert {t("nav.feedback"), t("feedback.ask")} <= await help_actions(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, FeedbackNoteForm) and form.kind == "ask"
        who = str(form.query_one("#feedback-who", Label).render())
        assert first.people[1] in who and first.people[0] not in who  # the objector is not
        assert str(form.query_one("#feedback-objected", Label).render()) == t(
            "feedback.form.objected", count=1
        )
        await pilot.press("enter")  # no note: refused on the spot
        await pilot.pause()
        assert app.screen is form
        assert str(form.query_one(".modal-error", Label).render()) == t("feedback.form.required")
        form.query_one("#feedback-note", Input).value = NOTE
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is screen
        assert rows(screen)[first.brin][2] == t("feedback.state.asked")
        assert rows(screen)[first.brin][6].endswith("by eddie")
        assert notes(screen) == t("feedback.note.asked", note=NOTE)  # the cursor is on it
        with session_scope(ctx.engine) as session:
            request = session.scalars(select(FeedbackRequest)).one()
            assert (request.organisation_id, request.asked_note) == (first.id, NOTE)

        assert screen.active_bindings["r"].enabled and not screen.active_bindings["m"].enabled
        await pilot.press("r")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, FeedbackNoteForm) and form.kind == "answer"
        await pilot.press("escape")  # cancelled: nothing recorded
        await settle(app, pilot)
        assert app.screen is screen
        with session_scope(ctx.engine) as session:
            assert session.scalars(select(FeedbackRequest.answered_at)).one() is None
        await pilot.press("r")
        await settle(app, pilot)
        app.screen.query_one("#feedback-note", Input).value = "Tevreden"
        await pilot.press("enter")
        await settle(app, pilot)
        assert first.brin not in rows(screen)  # answered: no longer to do
        assert "answered: 1" in summary(screen)
        await pilot.press("t")  # answered ones too
        await settle(app, pilot)
        assert rows(screen)[first.brin][2] == t("feedback.state.answered")
        assert notes(screen).splitlines() == [
            t("feedback.note.asked", note=NOTE),
            t("feedback.note.answered", note="Tevreden"),
        ]
        with session_scope(ctx.engine) as session:
            assert session.scalars(select(FeedbackRequest.answered_note)).one() == "Tevreden"


async def test_viewers_read_but_cannot_mark(contexts) -> None:  # type: ignore[no-untyped-def]
    admin = contexts()
    first, *_ = seed(admin)
    ctx = contexts("vera")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_feedback(app, pilot)
        assert first.brin in rows(screen)
        assert "m" not in screen.active_bindings and "r" not in screen.active_bindings
        await pilot.press("m")
        await settle(app, pilot)
        assert app.screen is screen
        screen.action_ask()  # even when called directly: refused, nothing recorded
        await settle(app, pilot)
        assert app.screen is screen
        assert count(ctx, FeedbackRequest) == 0
        assert not {t("feedback.ask"), t("feedback.answer")} & await help_actions(app, pilot)


async def test_the_list_is_paged(contexts, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    schools = [school(ctx, n, ago(n), people=1) for n in range(1, 6)]
    monkeypatch.setattr(FeedbackScreen, "page_size", 2)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_feedback(app, pilot)
        oldest_first = [s.brin for s in reversed(schools)]
        assert [*rows(screen)] == oldest_first[:2]
        assert summary(screen).endswith("rows 1–2 of 5")
        assert not screen.active_bindings["left_square_bracket"].enabled
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert [*rows(screen)] == oldest_first[2:4]
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert [*rows(screen)] == oldest_first[4:]
        assert summary(screen).endswith("rows 5–5 of 5")
        assert not screen.active_bindings["right_square_bracket"].enabled
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert [*rows(screen)] == oldest_first[2:4]
