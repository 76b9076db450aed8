"""The Record screen shows the data-subject requests about the school and its people (kind,
status, deadline, days left) and marks a restriction of processing (GDPR art. 18) in force.
Pilot on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from test_record import TODAY, count, make_app, open_record, seed, settle, text_of

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import AuditEvent, DataSubjectRequest, RequestKind
from plusjeklas_tui.services import records
from plusjeklas_tui.services import requests as rq
from plusjeklas_tui.tui.screens.record import RecordScreen
from plusjeklas_tui.tui.widgets.virtual_table import Cell, VirtualTable

SIZE = (120, 40)


def new_request(
    ctx: AppContext,
    kind: RequestKind,
    received: dt.date,
    *,
    organisation_id: int | None = None,
    administrator_id: int | None = None,
) -> int:
    with session_scope(ctx.engine) as session:
        request = rq.create_request(
            session,
            ctx.staff,
            rq.RequestInput(
                kind=kind,
                received_on=received,
                organisation_id=organisation_id,
                administrator_id=administrator_id,
                requester_name="[b]Mevrouw Jansen[/b]",
                requester_email="jansen@voorbeeld.nl",
                identity_check="called back on the known number",
            ),
        )
        assert request.id is not None
        return request.id


def add_person(ctx: AppContext, org_id: int, name: str) -> int:
    with session_scope(ctx.engine) as session:
        person = records.add_administrator(
            session,
            ctx.staff,
            org_id,
            records.validate_administrator(
                {"name": name, "email": "bert@klimop.example", "phones": "0612345679"}
            ),
        )
        assert person.id is not None
        return person.id


def rows(screen: RecordScreen) -> list[list[str]]:
    table = screen.query_one("#requests-table", VirtualTable)
    fetched = table.source.fetch(0, table.source.count())
    return [[c.text if isinstance(c, Cell) else str(c) for c in row.cells] for row in fetched]


def shown(screen: RecordScreen, selector: str) -> bool:
    return screen.query_one(selector).has_class("-shown")


async def test_requests_and_a_restriction_in_force_are_on_the_record(ctx: AppContext) -> None:
    org_id, anna = seed(ctx)
    bert = add_person(ctx, org_id, "Bert [@click=app.quit]Bakker[/]")
    other_org, _ = seed(ctx, name="OBS Elders", brin="06KO", email="info@elders.example")
    about_school = new_request(
        ctx, RequestKind.ACCESS, dt.date(2026, 2, 20), organisation_id=org_id
    )
    late = new_request(ctx, RequestKind.RECTIFICATION, dt.date(2026, 1, 20), administrator_id=anna)
    extended = new_request(
        ctx, RequestKind.PORTABILITY, dt.date(2026, 2, 25), administrator_id=anna
    )
    restriction = new_request(
        ctx, RequestKind.RESTRICTION, dt.date(2026, 2, 1), administrator_id=bert
    )
    elsewhere = new_request(
        ctx, RequestKind.ACCESS, dt.date(2026, 2, 20), organisation_id=other_org
    )
    with session_scope(ctx.engine) as session:
        rq.extend_request(session, ctx.staff, extended, "many years of records", TODAY)
        rq.complete_request(session, ctx.staff, restriction)
        extended_due = session.get(DataSubjectRequest, extended).extended_due_on  # type: ignore[union-attr]
    assert extended_due is not None

    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        assert shown(screen, "#requests-section") and shown(screen, "#requests-table")
        assert rows(screen) == [
            # open ones first, by deadline
            [str(late), "rectification", "Anna de Vries", "open", "2026-02-20", "-10 d",
             "OVERDUE"],
            [str(about_school), "access", "the school", "open", "2026-03-20", "18 d", ""],
            [str(extended), "portability", "Anna de Vries", "open", extended_due.isoformat(),
             f"{(extended_due - TODAY).days} d", "tell of extension by 2026-03-25"],
            # then closed ones
            [str(restriction), "restriction", "Bert [@click=app.quit]Bakker[/]",
             "completed (restricted)", "2026-03-02", "", "restricted"],
        ]  # fmt: skip
        assert shown(screen, "#record-restricted")
        marker = text_of(screen, "#record-restricted")
        assert marker.startswith("RESTRICTED (GDPR art. 18): store only")
        assert f"Bert [@click=app.quit]Bakker[/] (request #{restriction})" in marker
        assert "Jansen" not in marker  # the requester stays on the Requests screen

        with session_scope(ctx.engine) as session:
            rq.lift_restriction(session, ctx.staff, restriction, TODAY)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert not shown(screen, "#record-restricted")
        assert rows(screen)[-1][-1] == ""  # no longer restricted
        assert app.screen is screen  # the injected markup in the name did nothing

        await pilot.press("escape")
        await settle(app, pilot)
        other = await open_record(app, pilot, other_org)
        assert [row[0] for row in rows(other)] == [str(elsewhere)]
        assert not shown(other, "#record-restricted")
    assert count(ctx, AuditEvent, AuditEvent.action == "request_lift_restriction") == 1


async def test_a_school_without_requests_shows_no_request_section(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        assert rows(screen) == []
        assert not shown(screen, "#requests-section")
        assert not shown(screen, "#requests-table")
        assert not shown(screen, "#record-restricted")
        await pilot.press("1")  # the school tab focuses its pane, not the hidden list
        assert app.focused is screen.query_one("#school-pane")
