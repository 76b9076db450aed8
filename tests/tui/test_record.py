"""The Record screen and its forms, driven with Pilot on a real database (SQLite and PostgreSQL).

Each test opens the app, pushes ``RecordScreen(id)`` as ``app.open_organisation`` will, and
checks both what the screen shows and what the database holds afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from textual.widgets import Label, Select, TabbedContent
from textual.worker import WorkerCancelled

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, AuditEvent, ConsentEvent, Organisation
from plusjeklas_tui.services import records
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.screens.administrator_form import AdministratorForm
from plusjeklas_tui.tui.screens.confirm import ConfirmScreen
from plusjeklas_tui.tui.screens.consent_form import ConsentForm
from plusjeklas_tui.tui.screens.organisation_form import OrganisationForm
from plusjeklas_tui.tui.screens.record import RecordScreen
from plusjeklas_tui.tui.widgets.virtual_table import Cell, VirtualTable

TODAY = dt.date(2026, 3, 2)
SIZE = (80, 24)
IBAN = "NL91ABNA0417164300"
PURPOSES = ("newsletter", "analytics", "feedback")
SCHOOL = {
    "name": "OBS De Klimop",
    "street": "Kerkstraat 1",
    "postcode": "1234 AB",
    "city": "Utrecht",
    "brin": "05KO",
    "phone": "030 123 4567",
    "email": "info@klimop.example",
    "iban": IBAN,
    "notes": "",
}


def seed(ctx: AppContext, **changes: str) -> tuple[int, int]:
    """A school with one administrator who opted in to the newsletter."""
    with session_scope(ctx.engine) as s:
        org = records.create_organisation(
            s, ctx.staff, records.validate_organisation({**SCHOOL, **changes})
        )
        person = records.add_administrator(
            s,
            ctx.staff,
            org.id,  # type: ignore[arg-type]
            records.validate_administrator(
                {"name": "Anna de Vries", "email": "anna@klimop.example", "phones": "0612345678"}
            ),
        )
        records.record_consent(
            s,
            ctx.staff,
            person.id,  # type: ignore[arg-type]
            "newsletter",
            "granted",
            "web form v3",
            "web-form",
            dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
            purposes=PURPOSES,
        )
        return org.id, person.id  # type: ignore[return-value]


def stored(ctx: AppContext, org_id: int) -> Organisation:
    with Session(ctx.engine) as s:
        org = s.get(Organisation, org_id)
        assert org is not None
        return org


def count(ctx: AppContext, model: type, *where: object) -> int:
    with Session(ctx.engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def text_of(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Label).render())  # type: ignore[attr-defined]


def all_text(screen: object) -> str:
    return "\n".join(str(label.render()) for label in screen.query(Label))  # type: ignore[attr-defined]


def cells(screen: RecordScreen, table_id: str) -> list[list[str]]:
    table = screen.query_one(f"#{table_id}", VirtualTable)
    rows = table.source.fetch(0, table.source.count())
    return [[c.text if isinstance(c, Cell) else str(c) for c in row.cells] for row in rows]


async def settle(app: PlusjeklasApp, pilot: object) -> None:
    """Wait for the workers, and for the ones their results start (a save, then a reload)."""
    for _ in range(20):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # superseded by a newer load (exclusive workers)
            continue
        await pilot.pause()  # type: ignore[attr-defined]
        if not any(worker.is_running for worker in app.workers):
            return


async def open_record(app: PlusjeklasApp, pilot: object, org_id: int) -> RecordScreen:
    screen = RecordScreen(org_id)
    await app.push_screen(screen)
    await settle(app, pilot)
    assert screen.view is not None
    return screen


async def wait_until(pilot: object, condition: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    return condition()


def make_app(ctx: AppContext) -> PlusjeklasApp:
    app = PlusjeklasApp(ctx, today=lambda: TODAY)
    # No periodic reloads mid-test (the dashboard underneath would start one at any moment);
    # test_record_follows_changes_by_others turns the record's own on.
    app.auto_refresh_seconds = 3600
    return app


# --- showing -------------------------------------------------------------------------------


async def test_record_shows_the_school_and_a_masked_iban(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        assert text_of(screen, "#value-iban") == "NL** **** **** **43 00"
        assert text_of(screen, "#value-phone") == "030 123 4567"  # national, not E.164
        assert text_of(screen, "#value-postcode") == "1234 AB"
        # never subscribed: the clock runs from the day the school was created
        assert text_of(screen, "#value-rule").startswith(
            "general: 24 months after the school was created ("
        )
        assert text_of(screen, "#record-title") == "OBS De Klimop · BRIN 05KO · Utrecht"
        shown = all_text(screen)
        assert IBAN not in shown and "0417 1643" not in shown
        assert cells(screen, "people-table")[0][:3] == [
            "Anna de Vries",
            "anna@klimop.example",
            "06 12345678",
        ]
        now = cells(screen, "consent-now-table")
        assert [row[1:3] for row in now] == [
            ["newsletter", "granted"],
            ["analytics", "never asked"],
            ["feedback", "never asked"],
        ]
        history = cells(screen, "consent-history-table")
        assert history[0][1:] == [
            "Anna de Vries",
            "newsletter",
            "granted",
            "web-form",
            "web form v3",
        ]
        assert {row[2] for row in cells(screen, "audit-table")} == {"create", "consent"}


async def test_retention_deadline_and_its_rule(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    with session_scope(ctx.engine) as s:
        records.add_subscription(
            s,
            ctx.staff,
            org_id,
            records.validate_subscription(
                {"plan": "basis", "start_date": "2020-08-01", "end_date": "2025-07-31",
                 "status": "ended"},
                today=TODAY,
            ),
        )  # fmt: skip
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        deadline = screen.query_one("#value-deadline", Label)
        assert str(deadline.render()) == "2027-07-31  (later)"
        assert deadline.has_class("urgency-later")
        assert text_of(screen, "#value-rule") == (
            "general: 24 months after the last subscription ended (2025-07-31)"
        )
        assert cells(screen, "subscriptions-table") == [
            ["basis", "2020-08-01", "2025-07-31", "Ended"]
        ]


async def test_record_follows_changes_by_others(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = RecordScreen(org_id)
        screen.auto_refresh_seconds = 0.2
        await app.push_screen(screen)
        await settle(app, pilot)
        shown = screen.view
        await pilot.pause(0.5)
        assert screen.view is shown  # reloaded, but unchanged: nothing replaced or redrawn
        with session_scope(ctx.engine) as s:
            other = records.validate_organisation({**SCHOOL, "city": "Amersfoort"})
            records.update_organisation(s, ctx.staff, org_id, other, expected_version=1)
        assert await wait_until(pilot, lambda: text_of(screen, "#value-city") == "Amersfoort", 5)
        await app.pop_screen()  # its timer stops with it
        await pilot.pause()


async def test_ctrl_r_reloads_the_record(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        with session_scope(ctx.engine) as s:
            records.add_administrator(
                s,
                ctx.staff,
                org_id,
                records.validate_administrator(
                    {"name": "Bert Smit", "email": "bert@klimop.example", "phones": "0612345678"}
                ),
            )
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert [row[0] for row in cells(screen, "people-table")] == ["Anna de Vries", "Bert Smit"]


async def test_tabs_switch_with_number_keys_and_escape_goes_back(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        tabs = screen.query_one(TabbedContent)
        for key, tab in [("3", "consent"), ("6", "audit"), ("2", "people"), ("1", "school")]:
            await pilot.press(key)
            assert tabs.active == f"tab-{tab}"
        await pilot.press("2")
        assert isinstance(app.focused, VirtualTable) and app.focused.id == "people-table"
        await pilot.press("escape")
        assert app.screen is not screen


async def test_markup_in_data_is_shown_literally_and_does_nothing(ctx: AppContext) -> None:
    name = "[@click=app.quit]x[/]"
    org_id, _ = seed(ctx, name=name)
    with session_scope(ctx.engine) as s:  # as if written by an older version or a provider
        org = s.get(Organisation, org_id)
        assert org is not None
        org.notes = "[b red]bold?[/]\n\x1b[31mred\x07"
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        assert text_of(screen, "#value-name") == name
        assert text_of(screen, "#record-title").startswith(name)
        assert text_of(screen, "#value-notes") == "[b red]bold?[/]\n\\x1b[31mred\\x07"
        await pilot.click("#value-name")
        await pilot.click("#record-title", offset=(3, 0))
        await pilot.pause()
        assert app.is_running and app.screen is screen
        await pilot.press("e")
        assert isinstance(app.screen, OrganisationForm)
        assert str(app.screen.query_one("#form-title", Label).render()).endswith(name)
        await pilot.click("#form-title", offset=(16, 0))
        await pilot.pause()
        assert app.is_running


# --- revealing the IBAN --------------------------------------------------------------------


async def test_admin_reveals_the_iban_briefly_and_it_is_audited(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        screen.reveal_seconds = 2
        assert "r" in screen.active_bindings
        await pilot.press("r")
        assert await wait_until(pilot, lambda: screen.revealed_iban is not None, 5)
        assert text_of(screen, "#value-iban") == "NL91 ABNA 0417 1643 00  (shown for 2 s)"
        assert screen.query_one("#value-iban").has_class("-revealed")
        assert not screen.active_bindings["r"].enabled  # already shown
        # the reveal is audited, by field name only, and the trail on screen shows it
        with Session(ctx.engine) as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.action == "reveal")).all()
        assert [(e.entity, e.entity_id, e.actor) for e in events] == [
            ("organisation", org_id, ctx.staff.username)
        ]
        assert json.loads(events[0].detail) == {"field": "iban"}
        assert "0417" not in events[0].detail
        assert await wait_until(pilot, lambda: cells(screen, "audit-table")[0][2] == "reveal", 5)
        # the timer masks it again
        assert await wait_until(pilot, lambda: screen.revealed_iban is None, 10)
        assert text_of(screen, "#value-iban") == "NL** **** **** **43 00"
        assert not screen.query_one("#value-iban").has_class("-revealed")
        assert screen.active_bindings["r"].enabled


async def test_viewer_sees_no_edit_keys_and_is_refused(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    org_id, _ = seed(ctx)
    viewer = open_as("vera")
    app = make_app(viewer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        keys = set(screen.active_bindings)
        assert not {"e", "n", "E", "c", "r"} & keys
        await pilot.press("r", "e", "n", "c")
        await settle(app, pilot)
        assert app.screen is screen
        assert text_of(screen, "#value-iban") == "NL** **** **** **43 00"
        # invoked anyway: the services refuse, the message says why, nothing is revealed
        screen.action_reveal_iban()
        screen.action_edit_school()
        await settle(app, pilot)
        assert app.screen is screen
        assert text_of(screen, "#value-iban") == "NL** **** **** **43 00"
        messages = [str(n.message) for n in app._notifications]
        assert any("may not reveal IBANs" in m for m in messages)
        assert any("may not change organisations" in m for m in messages)
    assert count(ctx, AuditEvent, AuditEvent.action == "reveal") == 0


async def test_editor_edits_but_cannot_reveal(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    org_id, _ = seed(ctx)
    app = make_app(open_as("eddie"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        keys = set(screen.active_bindings)
        assert {"e", "n", "c"} <= keys and "r" not in keys


# --- editing the school --------------------------------------------------------------------


async def open_school_form(app: PlusjeklasApp, pilot: object) -> OrganisationForm:
    await pilot.press("e")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    form = app.screen
    assert isinstance(form, OrganisationForm)
    return form


async def type_into(pilot: object, form: object, field: str, text: str) -> None:
    widget = form.form_field(field)  # type: ignore[attr-defined]
    widget.focus_input()
    widget.value = ""
    await pilot.press(*text)  # type: ignore[attr-defined]


async def test_invalid_postcode_is_explained_on_blur_and_nothing_is_saved(
    ctx: AppContext,
) -> None:
    org_id, _ = seed(ctx)
    audit_before = count(ctx, AuditEvent)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_record(app, pilot, org_id)
        form = await open_school_form(app, pilot)
        await type_into(pilot, form, "postcode", "0123 AB")
        field = form.form_field("postcode")
        assert field.error_text == ""  # not judged while typing
        await pilot.press("tab")
        assert "the first digit cannot be 0" in field.error_text
        assert field.has_class("-invalid")
        await type_into(pilot, form, "city", "Amersfoort")
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert form.message == "Nothing saved: correct the marked fields first."
        # a fixed value clears the message when the field is left
        await type_into(pilot, form, "postcode", "3811 AB")
        await pilot.press("tab")
        assert field.error_text == "" and not field.has_class("-invalid")
    org = stored(ctx, org_id)
    assert (org.postcode, org.city, org.version) == ("1234 AB", "Utrecht", 1)
    assert count(ctx, AuditEvent) == audit_before


async def test_valid_edit_saves_bumps_the_version_and_shows_it(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        form = await open_school_form(app, pilot)
        assert not form.has_unsaved_changes()
        assert form.form_field("iban").value == ""  # never in the form
        await type_into(pilot, form, "city", "Amersfoort")
        await type_into(pilot, form, "postcode", "3811ab")
        assert form.has_unsaved_changes()
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is screen
        assert text_of(screen, "#value-city") == "Amersfoort"
        assert text_of(screen, "#value-postcode") == "3811 AB"
        assert screen.view is not None and screen.view.organisation.version == 2
    org = stored(ctx, org_id)
    assert (org.city, org.postcode, org.version) == ("Amersfoort", "3811 AB", 2)
    assert org.iban == IBAN  # left empty: kept


async def test_iban_can_be_replaced_or_removed(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_record(app, pilot, org_id)
        form = await open_school_form(app, pilot)
        await type_into(pilot, form, "iban", "NL20 INGB 0001 2345 67")
        await pilot.press("f2")
        await settle(app, pilot)
        assert stored(ctx, org_id).iban == "NL20INGB0001234567"
        form = await open_school_form(app, pilot)
        form.query_one("#iban-remove").value = True  # type: ignore[attr-defined]
        assert form.has_unsaved_changes()
        await pilot.press("f2")
        await settle(app, pilot)
    org = stored(ctx, org_id)
    assert (org.iban, org.version) == (None, 3)


async def test_escape_asks_only_when_there_are_changes(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        await open_school_form(app, pilot)
        await pilot.press("escape")  # nothing changed: just closes
        assert app.screen is screen

        form = await open_school_form(app, pilot)
        await type_into(pilot, form, "city", "Amersfoort")
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is form
        assert form.form_field("city").value == "Amersfoort"

        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert app.screen is screen
    assert stored(ctx, org_id).city == "Utrecht"


async def test_conflict_keeps_the_edits_and_overwrites_nothing(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_record(app, pilot, org_id)
        form = await open_school_form(app, pilot)
        await type_into(pilot, form, "city", "Amersfoort")
        # a colleague saves the school while the form is open
        with session_scope(ctx.engine) as s:
            other = records.validate_organisation({**SCHOOL, "name": "OBS De Klimop-Noord"})
            records.update_organisation(s, ctx.staff, org_id, other, expected_version=1)
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert form.conflicted
        assert form.message.startswith("Someone else saved this record after you opened it.")
        assert form.form_field("city").value == "Amersfoort"
        assert form.form_field("name").value == "OBS De Klimop"
        assert form.has_unsaved_changes()
        # leaving the form shows the colleague's version
        await pilot.press("escape", "y")
        await settle(app, pilot)
        assert text_of(app.screen, "#value-name") == "OBS De Klimop-Noord"
    org = stored(ctx, org_id)
    assert (org.name, org.city, org.version) == ("OBS De Klimop-Noord", "Utrecht", 2)


async def test_brin_in_use_comes_back_to_its_field(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    seed(ctx, brin="07NU", name="Andere school")
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_record(app, pilot, org_id)
        form = await open_school_form(app, pilot)
        await type_into(pilot, form, "brin", "07nu")
        await pilot.press("tab")
        assert form.form_field("brin").error_text == ""  # the format is fine
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert "already used by organisation" in form.form_field("brin").error_text
    assert stored(ctx, org_id).brin == "05KO"


# --- people --------------------------------------------------------------------------------


async def test_add_and_edit_an_administrator(ctx: AppContext) -> None:
    org_id, anna = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, AdministratorForm)
        await type_into(pilot, form, "admin_name", "Bert Smit")
        await type_into(pilot, form, "admin_email", "bert@")
        await pilot.press("tab")
        assert form.form_field("admin_email").error_text != ""
        assert "bert@" not in form.form_field("admin_email").error_text
        await type_into(pilot, form, "admin_email", "bert@klimop.example")
        await type_into(pilot, form, "admin_phones", "0612345678; 06123")
        await pilot.press("tab")
        assert form.form_field("admin_phones").error_text.startswith("number 2: ")
        await type_into(pilot, form, "admin_phones", "0612345678; 030 765 4321")
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is screen
        assert [row[0] for row in cells(screen, "people-table")] == ["Anna de Vries", "Bert Smit"]

        # Enter on a person edits them
        await pilot.press("2")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, AdministratorForm)
        assert form.administrator is not None and form.administrator.id == anna
        assert form.form_field("admin_phones").value == "06 12345678"
        await type_into(pilot, form, "admin_name", "Anna de Vries-Smit")
        await pilot.press("f2")
        await settle(app, pilot)
        assert cells(screen, "people-table")[0][0] == "Anna de Vries-Smit"
    with Session(ctx.engine) as s:
        people = s.scalars(
            select(Administrator).where(Administrator.organisation_id == org_id)
            .order_by(Administrator.id)
        ).all()  # fmt: skip
        assert [(p.name, p.version) for p in people] == [
            ("Anna de Vries-Smit", 2),
            ("Bert Smit", 1),
        ]
        assert records.administrator_phones(people[1]) == ["+31612345678", "+31307654321"]


# --- consent -------------------------------------------------------------------------------


async def open_consent_form(app: PlusjeklasApp, pilot: object) -> ConsentForm:
    await pilot.press("c")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    form = app.screen
    assert isinstance(form, ConsentForm)
    return form


async def test_staff_record_a_withdrawal_with_evidence(ctx: AppContext) -> None:
    org_id, anna = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        form = await open_consent_form(app, pilot)
        assert form.person_id == anna and form.purpose == "newsletter"
        assert str(form.query_one("#consent-now", Label).render()) == "Now: granted"
        form.query_one("#consent-action", Select).value = "withdrawn"
        await type_into(pilot, form, "evidence", "e-mail van 3 maart: afmelden")
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is screen
        assert cells(screen, "consent-now-table")[0][1:3] == ["newsletter", "withdrawn"]
        assert cells(screen, "consent-now-table")[0][4] == f"staff:{ctx.staff.username}"
        history = cells(screen, "consent-history-table")
        assert [row[3] for row in history] == ["granted", "withdrawn"]
    with Session(ctx.engine) as s:
        event = s.scalars(
            select(ConsentEvent).where(ConsentEvent.administrator_id == anna)
            .order_by(ConsentEvent.id.desc())  # type: ignore[union-attr]
        ).first()  # fmt: skip
        assert event is not None
        assert (event.purpose, event.action, event.source, event.evidence) == (
            "newsletter",
            "withdrawn",
            f"staff:{ctx.staff.username}",
            "e-mail van 3 maart: afmelden",
        )
        assert records.current_consent(s, anna, PURPOSES)["newsletter"] == "withdrawn"


async def test_consent_needs_evidence_and_a_choice(ctx: AppContext) -> None:
    org_id, _ = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        await open_record(app, pilot, org_id)
        form = await open_consent_form(app, pilot)
        form.query_one("#consent-action", Select).value = "withdrawn"
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert form.form_field("evidence").error_text == "is required"
        # a BSN in the evidence is refused too
        await type_into(pilot, form, "evidence", "BSN 111222333 belde")
        await pilot.press("f2")
        await settle(app, pilot)
        assert "BSN" in form.form_field("evidence").error_text
        # evidence but no choice
        form.query_one("#consent-action", Select).clear()
        await type_into(pilot, form, "evidence", "belde op 3 maart")
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.screen is form
        assert form.message == "Nothing saved: choose whether consent was granted or withdrawn."
    assert count(ctx, ConsentEvent) == 1  # only the seeded one


async def test_consent_form_starts_at_the_highlighted_person_and_purpose(ctx: AppContext) -> None:
    org_id, anna = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(app, pilot, org_id)
        await pilot.press("3")  # consent tab, "now" list focused
        assert app.focused is not None and app.focused.id == "consent-now-table"
        await pilot.press("j", "enter")  # second row: analytics, never asked
        form = app.screen
        assert isinstance(form, ConsentForm)
        assert (form.person_id, form.purpose) == (anna, "analytics")
        assert str(form.query_one("#consent-now", Label).render()) == "Now: never asked"
        await pilot.press("escape")  # nothing changed: closes without asking
        assert app.screen is screen
