"""The Retention screen, legal holds and erasure on request in the record, with Pilot, against
the Mailchimp imitation the app starts itself; the organisation list's hold marker."""

from __future__ import annotations

import pytest
from erasure_app import TODAY, ago, cells, contexts, count, make_app, school, settle
from sqlalchemy import select, update
from textual.widgets import DataTable, Input, Label, RadioSet

from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import (
    AuditEvent,
    DeletionState,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
)
from plusjeklas_tui.services import legal_hold
from plusjeklas_tui.services.organisation_list import OrganisationList
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.screens.confirm import ConfirmScreen
from plusjeklas_tui.tui.screens.organisations import OrganisationsScreen
from plusjeklas_tui.tui.screens.record import RecordScreen
from plusjeklas_tui.tui.screens.retention import RetentionScreen
from plusjeklas_tui.tui.screens.retention_modals import (
    EraseRequestScreen,
    HoldForm,
    SweepConfirmScreen,
)

pytestmark = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
__all__ = ["contexts"]  # the fixture, imported for pytest

HOSTILE = "[@click=app.quit]School[/] \x1b[31m"


def seed(ctx):  # type: ignore[no-untyped-def]
    """Two schools due (one named like markup), one on hold, one upcoming within 30 days,
    one kept for years."""
    due = [school(ctx, 1, ago(30)), school(ctx, 2, ago(26))]
    held = school(ctx, 3, ago(40))
    upcoming = school(ctx, 4, ago(24, days=-10))  # its deadline is ten days from today
    kept = school(ctx, 5, ago(2))
    with session_scope(ctx.engine) as session:
        session.execute(
            update(Organisation).where(Organisation.id == due[1].id).values(name=HOSTILE)
        )
        legal_hold.set_hold(session, ctx.staff, held.id, "Geschil met ouder")
    return due, held, upcoming, kept


def rows(screen: RetentionScreen) -> dict[str, list[str]]:
    table = screen.query_one("#retention-table", DataTable)
    return {cells(table, n)[0]: cells(table, n) for n in range(table.row_count)}


async def open_retention(app, pilot) -> RetentionScreen:  # type: ignore[no-untyped-def]
    await settle(app, pilot)
    await pilot.press("b")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, RetentionScreen)
    return screen


async def test_the_plan_shows_brin_name_rule_deadline_hold_and_providers(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    due, held, upcoming, _kept = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_retention(app, pilot)
        shown = rows(screen)
        assert set(shown) == {due[0].brin, due[1].brin, held.brin}
        first = shown[due[0].brin]
        assert first[1:4] == [due[0].name, t("retention.rule.general"), add_deadline(30)]
        assert first[4] == t("retention.state.due") and first[5] == "mailchimp"
        # a name from the database is text: no markup, control characters escaped
        assert shown[due[1].brin][1] == "[@click=app.quit]School[/] \\x1b[31m"
        assert shown[held.brin][4] == t("retention.state.hold", who=ctx.staff.username)
        assert "Geschil" not in " ".join(" ".join(row) for row in shown.values())
        summary = str(screen.query_one("#retention-summary", Label).render())
        assert summary == "Due now: 2 (schools: 2) · on hold: 1 · listed: 3"

        await pilot.press("n")  # also what falls due within 30 days
        await settle(app, pilot)
        shown = rows(screen)
        assert shown[upcoming.brin][4] == t("retention.state.upcoming")
        assert len(shown) == 4
        await pilot.press("n")
        await settle(app, pilot)
        assert upcoming.brin not in rows(screen)


def add_deadline(months_ago: int) -> str:
    from plusjeklas_tui.services.deadlines import add_months

    return add_months(ago(months_ago), 24).isoformat()


@pytest.mark.parametrize("user", ["vera", "eddie"])
async def test_viewers_and_editors_cannot_sweep(contexts, user: str) -> None:  # type: ignore[no-untyped-def]
    admin = contexts()
    seed(admin)
    ctx = contexts(user)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_retention(app, pilot)
        assert "s" not in screen.active_bindings  # hidden from the footer and help
        await pilot.press("s")
        await settle(app, pilot)
        assert not isinstance(app.screen, SweepConfirmScreen)
        screen.action_sweep()  # even when called directly: refused, nothing deleted
        await settle(app, pilot)
        assert not isinstance(app.screen, SweepConfirmScreen)
        assert count(ctx, Organisation) == 5


async def test_a_wrong_number_deletes_nothing(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_retention(app, pilot)
        assert screen.active_bindings["s"].enabled
        await pilot.press("s")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, SweepConfirmScreen) and modal.expected == 2
        await pilot.press("3", "enter")
        await pilot.pause()
        assert app.screen is modal  # refused on the spot, and says so
        error = str(modal.query_one(".modal-error", Label).render())
        assert error == t("retention.confirm.wrong", expected=2)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen
        assert count(ctx, Organisation) == 5 and count(ctx, ErasureReceipt) == 0


async def test_a_sweep_erases_then_delivers_to_the_provider(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    _due, held, upcoming, kept = seed(ctx)
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_retention(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, SweepConfirmScreen)
        modal.query_one(Input).value = ""
        await pilot.press("2", "enter")
        await settle(app, pilot)
        assert app.screen is screen
        report, delivery = screen.last_sweep, screen.last_delivery
        assert report is not None and report.ok and len(report.actions) == 2
        assert report.tasks == 4  # two people at Mailchimp in each school
        assert delivery is not None and delivery.done == 4 and delivery.ok
        with session_scope(ctx.engine) as session:
            remaining = set(session.scalars(select(Organisation.brin)))
            states = set(session.scalars(select(DeletionTask.state)))
            locators = set(session.scalars(select(DeletionTask.locator)))
        assert remaining == {held.brin, upcoming.brin, kept.brin}
        assert states == {DeletionState.DONE} and locators == {None}
        imitation = app.provider_runtime().imitations[0]
        assert imitation.count("POST", "delete-permanent") >= 4  # by address and by id
        outcome = str(screen.query_one("#retention-outcome", Label).render())
        assert "2 erased, 0 skipped, 0 failed; 4 deletion tasks" in outcome
        assert "Providers: 4 confirmed, 0 failed" in outcome
        assert set(rows(screen)) == {held.brin}  # the plan reloaded


async def test_holds_are_set_and_lifted_from_the_record(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    target = school(ctx, 7, ago(30))
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await app.open_organisation(target.id)
        await settle(app, pilot)
        record = app.screen
        assert isinstance(record, RecordScreen)
        hold_label = record.query_one("#value-hold", Label)
        assert str(hold_label.render()) == t("record.hold.none")
        assert "H" not in record.active_bindings and record.active_bindings["h"].enabled

        await pilot.press("h")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, HoldForm)
        await pilot.press("enter")  # a reason is required
        await pilot.pause()
        assert app.screen is form
        assert str(form.query_one(".modal-error", Label).render()) == t("record.hold.required")
        await pilot.press(*"Claim [b]advocaat[/b]", "enter")
        await settle(app, pilot)
        assert app.screen is record
        assert count(ctx, LegalHold) == 1
        shown = str(hold_label.render())
        assert f"set by {ctx.staff.username}" in shown
        assert "Reason: Claim [b]advocaat[/b]" in shown  # admins see the reason, as text
        assert "h" not in record.active_bindings and record.active_bindings["H"].enabled
        assert not record.active_bindings["X"].enabled  # a hold refuses erasure

        await pilot.press("H")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert count(ctx, LegalHold) == 0
        assert str(hold_label.render()) == t("record.hold.none")
        actions = [
            e.detail
            for e in ctx.engine.connect().execute(
                select(AuditEvent).where(AuditEvent.action == "legal_hold")
            )
        ]
        assert len(actions) == 2 and not any("advocaat" in (d or "") for d in actions)


async def test_editors_see_the_hold_but_cannot_change_it(contexts) -> None:  # type: ignore[no-untyped-def]
    admin = contexts()
    target = school(admin, 8, ago(30))
    with session_scope(admin.engine) as session:
        legal_hold.set_hold(session, admin.staff, target.id, "Onderzoek")
    ctx = contexts("eddie")
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await app.open_organisation(target.id)
        await settle(app, pilot)
        record = app.screen
        shown = str(record.query_one("#value-hold", Label).render())
        assert f"set by {admin.staff.username}" in shown and "Onderzoek" not in shown
        for key in ("h", "H", "X"):
            assert key not in record.active_bindings
        await pilot.press("H", "X")
        await settle(app, pilot)
        assert app.screen is record and count(ctx, LegalHold) == 1


async def test_erase_on_request_from_the_record(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    target = school(ctx, 9, ago(1))  # not due: a request does not wait for the deadline
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await app.open_organisation(target.id)
        await settle(app, pilot)
        record = app.screen
        await pilot.press("X")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EraseRequestScreen)
        await pilot.click("#erase-brin")
        await pilot.press(*target.brin, "enter")
        await pilot.pause()
        assert str(modal.query_one(".modal-error", Label).render()) == t("record.erase.no_reason")
        radios = modal.query_one("#erase-reason", RadioSet)
        radios.focus()
        await pilot.press("down", "enter")  # the second ground: consent withdrawn
        await pilot.pause()
        assert modal.chosen() is not None and modal.chosen().value == "consent_withdrawn"
        modal.query_one("#erase-brin", Input).value = "99ZZ"
        modal.submit()
        await pilot.pause()
        assert app.screen is modal and count(ctx, Organisation) == 1
        modal.query_one("#erase-brin", Input).value = target.brin.lower()
        modal.submit()
        await settle(app, pilot)
        assert app.screen is not record  # the record is gone and closed
        assert count(ctx, Organisation) == 0
        with session_scope(ctx.engine) as session:
            receipt = session.scalars(select(ErasureReceipt)).one()
            assert receipt.basis == "request" and "consent withdrawn" in receipt.rule
            erase = session.scalars(select(AuditEvent).where(AuditEvent.action == "erase")).all()
            assert erase and "consent_withdrawn" in (erase[0].detail or "")
            states = set(session.scalars(select(DeletionTask.state)))
        assert states == {DeletionState.DONE}  # delivered right after the erasure


async def test_the_organisation_list_marks_a_hold_instead_of_the_urgency(contexts) -> None:  # type: ignore[no-untyped-def]
    ctx = contexts()
    held, free = school(ctx, 10, ago(30)), school(ctx, 11, ago(30))
    with session_scope(ctx.engine) as session:
        legal_hold.set_hold(session, ctx.staff, held.id, "x")
    rows_ = OrganisationList(ctx.engine, make_app(ctx).retention_rule, TODAY).fetch(0, 10)
    assert {row.id: row.on_hold for row in rows_} == {held.id: True, free.id: False}
    app = make_app(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OrganisationsScreen)
        cells_ = {row.key: row.cells[-1] for row in map(screen.to_row, rows_)}
        assert cells_[held.id].text == t("lists.deadline.hold")
        assert cells_[free.id].text == add_deadline(30) and cells_[free.id].style
