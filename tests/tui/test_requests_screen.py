"""The Requests screen with Pilot: the list with days left and what needs attention, a new
request through the form, the extension and its reminder, an objection completed and pushed to
the Mailchimp imitation the app starts itself, an export, and who may do what."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from erasure_app import cells, settle
from requests_world import World, build, mailchimp_member, migrated_config
from textual.widgets import Select

from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import DataSubjectRequest
from plusjeklas_tui.services import requests as rq
from plusjeklas_tui.services.request_deadlines import amsterdam_today, due_date
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.requests import ExtendForm, RequestForm, RequestsScreen

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)

TODAY = amsterdam_today()
INJECTED = "[@click=app.quit]Jan[/]"


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return migrated_config(write_config)


@pytest.fixture
def contexts(config: Path) -> Iterator[Callable[..., AppContext]]:
    opened: list[AppContext] = []

    def open_(user: str | None = None) -> AppContext:
        context = open_context(config, user)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()


def new(ctx: AppContext, world: World, kind: str, days_ago: int = 3, **extra: str) -> int:
    received = TODAY - dt.timedelta(days=days_ago)
    data = rq.validate_request(
        {
            "kind": kind,
            "received_on": TODAY.isoformat(),
            "administrator_id": str(world.anna),
            "requester_name": INJECTED,
            "requester_email": world.anna_email,
            "identity_check": "called back",
            **extra,
        },
        purposes=ctx.settings.consent_purposes,
        today=TODAY,
    )
    with session_scope(ctx.engine) as session:
        request = rq.create_request(session, ctx.staff, data)
        request.received_on = received  # backdated, as if it came in earlier
        request.due_on = due_date(received)
        assert request.id is not None
        return request.id


def make_app(ctx: AppContext) -> PlusjeklasApp:
    return PlusjeklasApp(ctx, today=lambda: TODAY)


async def open_requests(app: PlusjeklasApp, pilot: object) -> RequestsScreen:
    await settle(app, pilot)
    await pilot.press("u")  # type: ignore[attr-defined]
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, RequestsScreen)
    return screen


async def test_the_list_shows_days_left_overdue_and_the_requester_as_plain_text(
    contexts,  # type: ignore[no-untyped-def]
) -> None:
    ctx = contexts()
    world = build(ctx)
    late = new(ctx, world, "access", days_ago=60)
    soon = new(ctx, world, "rectification")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_requests(app, pilot)
        table = screen.table
        assert table.row_count == 2
        first, second = cells(table, 0), cells(table, 1)
        assert first[0] == str(late) and t("requests.flag.overdue") in first[7]
        assert int(first[6]) == (due_date(TODAY - dt.timedelta(days=60)) - TODAY).days < 0
        assert second[0] == str(soon) and second[1] == t("requests.kind.rectification")
        assert first[3] == t("requests.subject.administrator", id=world.anna)
        summary = str(screen.query_one("#requests-summary").render())
        assert summary == t("requests.summary", open=2, overdue=1, tell=0)
        detail = str(screen.query_one("#requests-detail").render())
        assert INJECTED in detail and world.anna_email in detail  # literal, not markup
        assert app.is_running  # the injected [@click=app.quit] did nothing


async def test_a_new_request_through_the_form(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts("eddie")
    world = build(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_requests(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, RequestForm)
        form.form_field("requester_name").value = "A. de Vries"
        await pilot.press("f2")  # no kind chosen yet
        await settle(app, pilot)
        assert form.message == t("requests.form.choose_kind_first")
        form.query_one("#request-kind", Select).value = "objection"
        form.form_field("brin").value = world.brin
        form.form_field("administrator_id").value = str(world.anna)
        form.form_field("identity_check").value = "e-mail from the known address"
        await pilot.press("f2")  # an objection needs its purpose
        await settle(app, pilot)
        assert app.screen is form and form.form_field("purpose").has_class("-invalid")
        form.form_field("purpose").value = "newsletter"
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is screen
        assert screen.table.row_count == 1
        row = screen.rows[0]
        assert (row.kind, row.purpose, row.administrator_id) == (
            "objection",
            "newsletter",
            world.anna,
        )
        assert row.due_on == due_date(TODAY)


async def test_extension_reminder_and_an_objection_pushed_to_mailchimp(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts("eddie")
    world = build(ctx)
    request_id = new(ctx, world, "objection", purpose="newsletter")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_requests(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, ExtendForm)
        form.form_field("extension_reason").value = "we wait for the school's answer"
        await pilot.press("f2")
        await settle(app, pilot)
        tell = t("requests.flag.tell", date=due_date(TODAY - dt.timedelta(days=3)).isoformat())
        assert tell in cells(screen.table, 0)[7]
        await pilot.press("t")
        await settle(app, pilot)
        assert tell not in cells(screen.table, 0)[7]
        await pilot.press("c")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert cells(screen.table, 0)[2].startswith(t("requests.status.completed"))
    with session_scope(ctx.engine) as session:
        request = session.get(DataSubjectRequest, request_id)
        assert request is not None and request.extension_told_at is not None
        assert request.outcome == rq.CONSENT_WITHDRAWN
    assert mailchimp_member(ctx.settings, world.anna_email)["status"] == "unsubscribed"  # type: ignore[index]


async def test_export_writes_the_files_beside_the_database(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts("eddie")
    world = build(ctx)
    request_id = new(ctx, world, "access")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_requests(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
    folder = ctx.settings.base_dir / "exports"
    (json_file,) = folder.glob(f"plusjeklas-request-{request_id}-*.json")
    data = json.loads(json_file.read_text())
    assert data["complete"] and data["here"]["administrators"][0]["id"] == world.anna
    assert list(folder.glob(f"plusjeklas-request-{request_id}-*.en.md"))


@pytest.mark.parametrize(("user", "may_edit"), [("vera", False), ("eddie", True)])
async def test_who_may_do_what(contexts, user: str, may_edit: bool) -> None:  # type: ignore[no-untyped-def]
    admin = contexts()
    world = build(admin)
    new(admin, world, "erasure", erasure_reason="objection")
    ctx = contexts(user)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_requests(app, pilot)
        assert ("n" in screen.active_bindings) is may_edit
        assert ("x" in screen.active_bindings) is may_edit
        assert "c" not in screen.active_bindings  # erasure: admins only
        await pilot.press("c")
        await settle(app, pilot)
        assert app.screen is screen
    with session_scope(admin.engine) as session:
        assert rq.open_requests_summary(session, TODAY).open_count == 1
