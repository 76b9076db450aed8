"""A database in trouble while the app is open: locked, gone, migrated by a newer version.

Each case on a real database made to fail, driven with Pilot: the dashboard, the record
screen and the three forms say what is wrong in one sentence from the catalogue (never the
driver's text, never a traceback), the app keeps running, edits in a form stay on screen,
and everything works again once the database is back, at the next refresh or save.

Locks (SQLite in WAL mode, as :func:`plusjeklas_tui.db.make_engine` sets it up):

* ``BEGIN EXCLUSIVE`` on another connection holds the write lock: writers wait the busy
  timeout and fail, readers go on (WAL) — so saving fails and reading does not;
* the same in ``locking_mode=EXCLUSIVE`` (what a maintenance tool does) also locks readers
  out, once the app's pooled connections are closed.

The app's engine here waits 0.2 s for a lock instead of :data:`db.SQLITE_BUSY_TIMEOUT_MS`
(10 s), so the tests do not wait ten seconds for each failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, TextArea
from textual.worker import WorkerCancelled

from plusjeklas_tui import db
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, ConsentEvent, Organisation
from plusjeklas_tui.services import records
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.dashboard import DashboardScreen
from plusjeklas_tui.tui.screens.form import FormScreen
from plusjeklas_tui.tui.screens.record import RecordScreen
from plusjeklas_tui.tui.widgets.tile import Tile

TODAY = dt.date(2026, 3, 2)
SIZE = (80, 24)
SQLITE = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
FUTURE_REVISION = "9999_from_a_newer_plusjeklas"
DRIVER_WORDS = ("database is locked", "OperationalError", "Traceback", "sqlite3", "unable to open")


# --- set-up --------------------------------------------------------------------------------


@pytest.fixture
def quick(ctx: AppContext, engine_name: str, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    """``ctx`` whose SQLite connections wait 0.2 s for a lock (the app's default is 10 s)."""
    if engine_name == "sqlite":
        monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)  # the per-connection pragma
        old = ctx.engine
        ctx.engine = db.make_engine(
            old.url.render_as_string(hide_password=False),
            ctx.keyring,
            connect_args={"timeout": 0.2},
        )
        old.dispose()
    return ctx


def seed(ctx: AppContext) -> tuple[int, int]:
    """A school with one administrator (who has a phone number and an e-mail address)."""
    with session_scope(ctx.engine) as s:
        org = records.create_organisation(
            s,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "OBS De Klimop",
                    "street": "Kerkstraat 1",
                    "postcode": "1234 AB",
                    "city": "Utrecht",
                    "brin": "05KO",
                    "phone": "030 123 4567",
                    "email": "info@klimop.example",
                }
            ),
        )
        person = records.add_administrator(
            s,
            ctx.staff,
            org.id,  # type: ignore[arg-type]
            records.validate_administrator(
                {"name": "Anna de Vries", "email": "anna@klimop.example", "phones": "0612345678"}
            ),
        )
        return org.id, person.id  # type: ignore[return-value]


def make_app(ctx: AppContext) -> PlusjeklasApp:
    app = PlusjeklasApp(ctx, today=lambda: TODAY)
    app.auto_refresh_seconds = 3600  # the tests refresh with Ctrl+R
    return app


async def settle(app: PlusjeklasApp, pilot: Pilot) -> None:
    for _ in range(20):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            return


async def refresh(app: PlusjeklasApp, pilot: Pilot) -> None:
    await pilot.press("ctrl+r")
    await settle(app, pilot)


def notifications(app: PlusjeklasApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def problem_text(screen: object, selector: str) -> str:
    """The problem line's text, or "" when it is hidden."""
    label = screen.query_one(selector, Label)  # type: ignore[attr-defined]
    return str(label.render()) if label.has_class("-shown") else ""


def assert_no_driver_text(app: PlusjeklasApp) -> None:
    shown = "\n".join(notifications(app))
    screen = app.screen
    shown += "\n".join(str(label.render()) for label in screen.query(Label))
    for word in DRIVER_WORDS:
        assert word not in shown
    assert "anna@klimop.example" not in "\n".join(notifications(app))


def sqlite_path(ctx: AppContext) -> Path:
    name = ctx.engine.url.database
    assert name
    return Path(name)


@contextlib.contextmanager
def write_lock(ctx: AppContext) -> Iterator[None]:
    """Another connection holds the write lock (``BEGIN EXCLUSIVE``); readers go on (WAL)."""
    other = sqlite3.connect(sqlite_path(ctx), timeout=0.2, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@contextlib.contextmanager
def full_lock(ctx: AppContext) -> Iterator[None]:
    """Another connection locks everyone out: exclusive locking mode, with a write pending.

    It can take that lock only while no other connection has the file open, so the app's
    pooled connections are closed first (as after a restart of the pool).
    """
    ctx.engine.dispose()
    other = sqlite3.connect(sqlite_path(ctx), timeout=2, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE alembic_version SET version_num = version_num")
        yield
        other.execute("ROLLBACK")
        other.execute("PRAGMA locking_mode=NORMAL")
        other.execute("SELECT 1").fetchall()  # releases the lock
    finally:
        other.close()


@contextlib.contextmanager
def file_gone(ctx: AppContext, *, replaced_by_directory: bool = False) -> Iterator[None]:
    """The database file is moved away (or a directory stands at its path) while the app
    still has connections open to it; then it is put back."""
    db.sqlite_checkpoint(ctx.engine)  # everything in the main file, so it can be moved
    path = sqlite_path(ctx)
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    if replaced_by_directory:
        path.mkdir()
    try:
        yield
    finally:
        if replaced_by_directory:
            shutil.rmtree(path)
        aside.rename(path)


@contextlib.contextmanager
def newer_revision(ctx: AppContext) -> Iterator[None]:
    """Another version of plusjeklas migrates the database while the app is open."""
    head = db.head_revision()
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE_REVISION})
    try:
        yield
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


# --- the dashboard -------------------------------------------------------------------------


async def _dashboard_survives(
    ctx: AppContext, trouble: Callable[[], contextlib.AbstractContextManager[None]], key: str
) -> None:
    seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        active = screen.query_one("#tile-status-trial", Tile)
        before = str(active.render())
        assert "…" not in before  # the figures were read
        assert problem_text(screen, "#dashboard-problem") == ""
        with trouble():
            await refresh(app, pilot)
            assert app.is_running
            assert problem_text(screen, "#dashboard-problem") == t(key)
            assert notifications(app).count(t(key)) == 1
            assert str(active.render()) == before  # the last figures stay
            await refresh(app, pilot)  # still failing: said once, not at every refresh
            assert notifications(app).count(t(key)) == 1
            assert_no_driver_text(app)
        await refresh(app, pilot)
        assert problem_text(screen, "#dashboard-problem") == ""
        assert str(active.render()) == before
        await pilot.press("o")  # and the rest of the app works
        await settle(app, pilot)
        assert app.screen.id == "organisations"


@SQLITE
async def test_dashboard_when_locked(quick: AppContext) -> None:
    await _dashboard_survives(quick, lambda: full_lock(quick), "db.locked")


@SQLITE
async def test_dashboard_when_the_file_is_gone(quick: AppContext) -> None:
    await _dashboard_survives(quick, lambda: file_gone(quick), "db.unavailable")


@SQLITE
async def test_dashboard_when_the_file_is_unreadable(quick: AppContext) -> None:
    await _dashboard_survives(
        quick, lambda: file_gone(quick, replaced_by_directory=True), "db.unavailable"
    )


async def test_dashboard_when_a_newer_version_migrated(quick: AppContext) -> None:
    await _dashboard_survives(quick, lambda: newer_revision(quick), "db.newer")


@SQLITE
async def test_dashboard_reads_on_while_someone_writes(quick: AppContext) -> None:
    """``BEGIN EXCLUSIVE`` elsewhere blocks writers only: the dashboard does not complain."""
    seed(quick)
    app = make_app(quick)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        with write_lock(quick):
            await refresh(app, pilot)
            assert problem_text(app.screen, "#dashboard-problem") == ""
            assert "…" not in str(app.screen.query_one("#tile-status-trial", Tile).render())


# --- the record screen ---------------------------------------------------------------------


async def _record_survives(
    ctx: AppContext, trouble: Callable[[], contextlib.AbstractContextManager[None]], key: str
) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = RecordScreen(org_id)
        await app.push_screen(screen)
        await settle(app, pilot)
        title = str(screen.query_one("#record-title", Label).render())
        assert title.startswith("OBS De Klimop")
        with trouble():
            await refresh(app, pilot)
            assert app.is_running and app.screen is screen
            assert problem_text(screen, "#record-problem") == t(key)
            assert notifications(app).count(t(key)) == 1
            assert str(screen.query_one("#record-title", Label).render()) == title  # kept
            await refresh(app, pilot)
            assert notifications(app).count(t(key)) == 1
            assert_no_driver_text(app)
        await refresh(app, pilot)
        assert problem_text(screen, "#record-problem") == ""
        assert screen.view is not None and screen.view.organisation.name == "OBS De Klimop"


@SQLITE
async def test_record_when_locked(quick: AppContext) -> None:
    await _record_survives(quick, lambda: full_lock(quick), "db.locked")


@SQLITE
async def test_record_when_the_file_is_gone(quick: AppContext) -> None:
    await _record_survives(quick, lambda: file_gone(quick), "db.unavailable")


@SQLITE
async def test_record_when_the_file_is_unreadable(quick: AppContext) -> None:
    await _record_survives(
        quick, lambda: file_gone(quick, replaced_by_directory=True), "db.unavailable"
    )


async def test_record_when_a_newer_version_migrated(quick: AppContext) -> None:
    await _record_survives(quick, lambda: newer_revision(quick), "db.newer")


@SQLITE
async def test_record_opened_while_the_file_is_gone_shows_why(quick: AppContext) -> None:
    """A record that never loaded says why instead of "Loading…" forever."""
    org_id, _ = seed(quick)
    app = make_app(quick)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        with file_gone(quick):
            screen = RecordScreen(org_id)
            await app.push_screen(screen)
            await settle(app, pilot)
            assert problem_text(screen, "#record-problem") == t("db.unavailable")
            assert screen.view is None
        await refresh(app, pilot)
        assert problem_text(screen, "#record-problem") == ""
        assert screen.view is not None


# --- saving from the forms -----------------------------------------------------------------


async def _type(pilot: Pilot, form: FormScreen, field: str, value: str) -> None:
    widget = form.form_field(field).input
    if isinstance(widget, TextArea):
        widget.load_text(value)
    else:
        assert isinstance(widget, Input)
        widget.value = value
    await pilot.pause()


async def open_school_form(app: PlusjeklasApp, pilot: Pilot) -> FormScreen:
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, FormScreen)
    await _type(pilot, app.screen, "city", "Amersfoort")
    return app.screen


async def open_person_form(app: PlusjeklasApp, pilot: Pilot) -> FormScreen:
    await pilot.press("n")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, FormScreen)
    await _type(pilot, form, "admin_name", "Bert Smit")
    await _type(pilot, form, "admin_email", "bert@klimop.example")
    await _type(pilot, form, "admin_phones", "0612345679")
    return form


async def open_consent_form(app: PlusjeklasApp, pilot: Pilot) -> FormScreen:
    await pilot.press("c")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, FormScreen)
    form.query_one("#consent-action", Select).value = "granted"
    await _type(pilot, form, "evidence", "telefoongesprek 2 maart")
    return form


def school_saved(ctx: AppContext, org_id: int) -> bool:
    with Session(ctx.engine) as s:
        org = s.get(Organisation, org_id)
        return org is not None and org.city == "Amersfoort"


def person_saved(ctx: AppContext, org_id: int) -> bool:
    with Session(ctx.engine) as s:
        names = [a.name for a in s.query(Administrator).filter_by(organisation_id=org_id)]
        return "Bert Smit" in names


def consent_saved(ctx: AppContext, org_id: int) -> bool:
    with Session(ctx.engine) as s:  # the evidence is encrypted: compared after reading
        return [e.evidence for e in s.query(ConsentEvent)].count("telefoongesprek 2 maart") == 1


FORMS = {
    "school": (open_school_form, school_saved),
    "person": (open_person_form, person_saved),
    "consent": (open_consent_form, consent_saved),
}


async def _form_keeps_edits(
    ctx: AppContext,
    form_name: str,
    trouble: Callable[[], contextlib.AbstractContextManager[None]],
    key: str,
) -> None:
    opener, saved = FORMS[form_name]
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        record = RecordScreen(org_id)
        await app.push_screen(record)
        await settle(app, pilot)
        form = await opener(app, pilot)
        typed = {field.field: field.value for field in form.form_fields}
        with trouble():
            await pilot.press("f2")
            await settle(app, pilot)
            assert app.is_running and app.screen is form  # not closed: nothing was saved
            assert form.message == t("db.not_saved", problem=t(key))
            assert {field.field: field.value for field in form.form_fields} == typed
            assert not form.saving
            assert_no_driver_text(app)
        assert not saved(ctx, org_id)
        await pilot.press("f2")  # the database is back: the same edits save
        await settle(app, pilot)
        assert app.screen is record
        assert saved(ctx, org_id)


@SQLITE
@pytest.mark.parametrize("form_name", list(FORMS))
async def test_saving_while_another_connection_writes(quick: AppContext, form_name: str) -> None:
    await _form_keeps_edits(quick, form_name, lambda: write_lock(quick), "db.locked")


@SQLITE
@pytest.mark.parametrize("form_name", list(FORMS))
async def test_saving_while_the_file_is_gone(quick: AppContext, form_name: str) -> None:
    await _form_keeps_edits(quick, form_name, lambda: file_gone(quick), "db.unavailable")


@pytest.mark.parametrize("form_name", list(FORMS))
async def test_saving_after_a_newer_version_migrated(quick: AppContext, form_name: str) -> None:
    await _form_keeps_edits(quick, form_name, lambda: newer_revision(quick), "db.newer")


# --- the messages --------------------------------------------------------------------------


def test_every_database_message_is_in_both_languages() -> None:
    from plusjeklas_tui.tui.i18n import CATALOGUE

    for kind in ("locked", "unavailable", "newer", "older", "missing"):
        nl, en = CATALOGUE[f"db.{kind}"]
        assert nl and en and nl != en
