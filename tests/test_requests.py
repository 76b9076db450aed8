"""Data-subject requests: intake, deadlines and extension, and each kind's work end to end
against the provider imitations (Mailchimp, Mollie, Matomo over real HTTP, through the real
plugins). Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from requests_world import (
    World,
    audit_details,
    build,
    imitation_state,
    mailchimp_member,
    migrated_config,
)
from sqlalchemy import func, select, text

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    ConsentEvent,
    DataSubjectRequest,
    DeletionTask,
    ErasureReceipt,
    RequestStatus,
)
from plusjeklas_tui.runtime import open_providers
from plusjeklas_tui.services import deletions, erasure, records, subject_export
from plusjeklas_tui.services import requests as rq
from plusjeklas_tui.services.request_deadlines import amsterdam_today, due_date
from plusjeklas_tui.validation import ValidationErrors

TODAY = amsterdam_today()


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return migrated_config(write_config)


@pytest.fixture
def admin(config: Path) -> Iterator[AppContext]:
    context = open_context(config)
    yield context
    context.close()


@pytest.fixture
def editor(config: Path) -> Iterator[AppContext]:
    context = open_context(config, "eddie")
    yield context
    context.close()


@pytest.fixture
def world(admin: AppContext) -> World:
    return build(admin)


def new(context: AppContext, world: World, kind: str, *, person: bool = True, **extra: str) -> int:
    raw = {
        "kind": kind,
        "received_on": (TODAY - dt.timedelta(days=3)).isoformat(),
        "organisation_id": str(world.organisation_id),
        "administrator_id": str(world.anna) if person else "",
        "requester_name": world.anna_name,
        "requester_email": world.anna_email,
        "identity_check": "called back on the number in our records",
        **extra,
    }
    data = rq.validate_request(raw, purposes=context.settings.consent_purposes, today=TODAY)
    with db.session_scope(context.engine) as session:
        request = rq.create_request(session, context.staff, data)
        assert request.id is not None
        return request.id


def load(context: AppContext, request_id: int) -> DataSubjectRequest:
    with db.session_scope(context.engine) as session:
        request = rq.get_request(session, request_id)
        session.expunge(request)
        return request


# --- intake ----------------------------------------------------------------------------------


def test_intake_names_every_bad_field_and_its_rule(admin: AppContext) -> None:
    with pytest.raises(ValidationErrors) as caught:
        rq.validate_request(
            {
                "kind": "complaint",
                "received_on": (TODAY + dt.timedelta(days=1)).isoformat(),
                "requester_name": "",
                "identity_check": "",
            },
            purposes=admin.settings.consent_purposes,
            today=TODAY,
        )
    fields = caught.value.by_field()
    assert set(fields) == {
        "kind",
        "received_on",
        "organisation_id",
        "requester_name",
        "identity_check",
    }
    assert "access, rectification, erasure" in str(fields["kind"])
    assert "future" in str(fields["received_on"])
    with pytest.raises(ValidationErrors) as caught:
        rq.validate_request(
            {
                "kind": "objection",
                "received_on": TODAY.isoformat(),
                "organisation_id": "3",
                "requester_name": "Anna",
                "identity_check": "passport seen",
                "purpose": "marketing",
                "requester_email": "not an address",
            },
            purposes=admin.settings.consent_purposes,
            today=TODAY,
        )
    fields = caught.value.by_field()
    assert set(fields) == {"purpose", "administrator_id", "requester_email"}
    assert "newsletter" in str(fields["purpose"])
    assert "not an address" not in str(caught.value)  # personal values stay out of messages
    with pytest.raises(ValidationErrors, match="erasure_reason"):
        rq.validate_request(
            {
                "kind": "erasure",
                "received_on": TODAY.isoformat(),
                "organisation_id": "3",
                "requester_name": "Anna",
                "identity_check": "passport seen",
            },
            purposes=admin.settings.consent_purposes,
            today=TODAY,
        )


def test_a_request_gets_its_deadline_and_keeps_the_requester_encrypted(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "access")
    request = load(editor, request_id)
    received = TODAY - dt.timedelta(days=3)
    assert request.received_on == received
    assert request.due_on == due_date(received)
    assert request.subject_type == "administrator"
    assert request.organisation_id == world.organisation_id
    assert request.requester_name == world.anna_name
    with editor.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT requester_name, requester_email, identity_check FROM data_subject_request")
        ).one()
    assert world.anna_name not in " ".join(raw)
    assert world.anna_email not in " ".join(raw)
    assert "called back" not in " ".join(raw)
    for detail in audit_details(editor):
        assert world.anna_name not in detail and world.anna_email not in detail


def test_an_administrator_of_another_school_is_refused(editor: AppContext, world: World) -> None:
    other = build(editor, n=8)
    with pytest.raises(ValidationErrors, match="administrator_id"):
        new(editor, world, "access", administrator_id=str(other.anna))


def test_viewers_cannot_record_requests(config: Path, world: World) -> None:
    viewer = open_context(config, "vera")
    try:
        with pytest.raises(PermissionDenied):
            new(viewer, world, "access")
        with db.session_scope(viewer.engine) as session:
            assert rq.list_requests(session, viewer.staff, TODAY) == []
    finally:
        viewer.close()


# --- deadlines, extension, the dashboard summary -----------------------------------------------


def _set_received(context: AppContext, request_id: int, received: dt.date) -> None:
    with db.session_scope(context.engine) as session:
        request = session.get(DataSubjectRequest, request_id)
        assert request is not None
        request.received_on = received
        request.due_on = due_date(received)


def test_open_requests_summary_counts_overdue_and_days_left(
    editor: AppContext, world: World
) -> None:
    late = new(editor, world, "access")
    soon = new(editor, world, "rectification")
    done = new(editor, world, "restriction")
    _set_received(editor, late, TODAY - dt.timedelta(days=70))
    with db.session_scope(editor.engine) as session:
        rq.complete_request(session, editor.staff, done)
    with db.session_scope(editor.engine) as session:
        summary = rq.open_requests_summary(session, TODAY)
    assert summary.open_count == 2
    assert summary.overdue_count == 1
    by_id = {row.id: row for row in summary.rows}
    assert set(by_id) == {late, soon}
    assert by_id[late].overdue and by_id[late].days_left is not None
    assert by_id[late].days_left == (due_date(TODAY - dt.timedelta(days=70)) - TODAY).days < 0
    assert by_id[soon].days_left == (due_date(TODAY - dt.timedelta(days=3)) - TODAY).days > 0
    assert summary.rows[0].id == late  # the most urgent first


def test_extension_once_with_reason_and_a_reminder_until_told(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "access")
    received = TODAY - dt.timedelta(days=3)
    with db.session_scope(editor.engine) as session, pytest.raises(Exception, match="reason"):
        rq.extend_request(session, editor.staff, request_id, "  ", TODAY)
    with db.session_scope(editor.engine) as session:
        rq.extend_request(session, editor.staff, request_id, "many providers to ask", TODAY)
    with db.session_scope(editor.engine) as session:
        (row,) = rq.list_requests(session, editor.staff, TODAY, open_only=True)
    assert row.extended and row.tell_person and row.tell_by == due_date(received)
    from plusjeklas_tui.services.request_deadlines import extended_due_date

    assert row.due_on == extended_due_date(received)
    assert row.first_due_on == due_date(received)
    with db.session_scope(editor.engine) as session, pytest.raises(rq.RequestStateError):
        rq.extend_request(session, editor.staff, request_id, "again", TODAY)
    with db.session_scope(editor.engine) as session:
        rq.mark_extension_told(session, editor.staff, request_id)
    with db.session_scope(editor.engine) as session:
        (row,) = rq.list_requests(session, editor.staff, TODAY)
        summary = rq.open_requests_summary(session, TODAY)
    assert not row.tell_person and summary.tell_person_count == 0
    assert "many providers" not in " ".join(audit_details(editor))


def test_no_extension_after_the_first_deadline(editor: AppContext, world: World) -> None:
    request_id = new(editor, world, "access")
    _set_received(editor, request_id, TODAY - dt.timedelta(days=60))
    with (
        db.session_scope(editor.engine) as session,
        pytest.raises(rq.RequestStateError, match="passed its first deadline"),
    ):
        rq.extend_request(session, editor.staff, request_id, "too late", TODAY)


# --- access and portability ----------------------------------------------------------------------


def test_access_export_holds_the_person_here_and_at_every_provider(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "access")
    with open_providers(editor.settings) as providers:
        export = subject_export.export_for_request(
            editor.engine,
            editor.staff,
            request_id,
            providers.available,
            problems=providers.problems,
            purposes=editor.settings.consent_purposes,
        )
    assert export["complete"] is True
    people = export["here"]["administrators"]
    assert [p["id"] for p in people] == [world.anna]  # not her colleague
    assert people[0]["email"] == world.anna_email
    assert people[0]["consent"]["newsletter"]["current"] == "granted"
    assert "iban" not in export["here"]["organisation"]  # the school's data is not hers
    mailchimp = export["providers"]["mailchimp"]["subjects"]
    assert [s["subject_id"] for s in mailchimp] == [world.anna]
    assert mailchimp[0]["data"]["members"][0]["member"]["status"] == "subscribed"
    matomo = export["providers"]["matomo"]["subjects"]
    assert len(matomo[0]["data"]["visits"]) == 3
    assert export["providers"]["mollie"]["subjects"] == []  # Mollie holds the school, not her
    json.loads(subject_export.export_json(export))
    dutch = subject_export.summary_markdown(export, "nl")
    english = subject_export.summary_markdown(export, "en")
    assert "Overzicht van uw gegevens" in dutch and "Toestemming" in dutch
    assert "Overview of your data" in english and "newsletter: granted" in english
    assert world.anna_name in english and world.bert_name not in english
    details = audit_details(editor)
    assert any('"provider_calls": 2' in d for d in details)
    assert not any(world.anna_email in d for d in details)


def test_a_failing_provider_is_recorded_and_the_others_still_export(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "portability", person=False)
    with open_providers(editor.settings) as providers:
        matomo = next(i for i in providers.imitations if "atomo" in type(i).__name__)
        matomo.inject("500", times=None)
        export = subject_export.export_for_request(
            editor.engine, editor.staff, request_id, providers.available
        )
    assert export["complete"] is False
    assert export["providers"]["matomo"]["ok"] is False
    assert "500" in export["providers"]["matomo"]["reason"]
    mollie = export["providers"]["mollie"]["subjects"]
    assert mollie[0]["data"]["customer_id"] == world.customer_id
    assert len(mollie[0]["data"]["payments"]) == 2
    assert {s["subject_id"] for s in export["providers"]["mailchimp"]["subjects"]} == {
        world.anna,
        world.bert,
    }
    assert {p["id"] for p in export["here"]["administrators"]} == {world.anna, world.bert}
    assert export["here"]["subscriptions"][0]["plan"] == "plus"
    summary = subject_export.summary_markdown(export, "en")
    assert "matomo (administrator): could not be retrieved" in summary
    assert "2 × payments" in summary


def test_an_export_needs_the_export_permission_and_an_access_request(
    config: Path, editor: AppContext, world: World
) -> None:
    viewer = open_context(config, "vera")
    access = new(editor, world, "access")
    objection = new(editor, world, "objection", purpose="newsletter")
    try:
        with pytest.raises(PermissionDenied):
            subject_export.export_for_request(viewer.engine, viewer.staff, access, {})
    finally:
        viewer.close()
    with pytest.raises(rq.RequestStateError, match="objection"):
        subject_export.export_for_request(editor.engine, editor.staff, objection, {})


# --- erasure ---------------------------------------------------------------------------------


def test_erasure_request_erases_here_and_at_the_providers_and_scrubs_the_requester(
    admin: AppContext, editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "erasure", erasure_reason="consent_withdrawn")
    targets = erasure.provider_targets(admin.settings)
    with db.session_scope(editor.engine) as session, pytest.raises(PermissionDenied):
        rq.erase_for_request(session, editor.staff, editor.settings, targets, request_id, TODAY)
    with db.session_scope(admin.engine) as session, pytest.raises(rq.RequestStateError):
        rq.complete_request(session, admin.staff, request_id)  # erasure has its own step
    with db.session_scope(admin.engine) as session:
        result = rq.erase_for_request(
            session, admin.staff, admin.settings, targets, request_id, TODAY
        )
    assert {t.provider for t in result.tasks} == {"mailchimp", "matomo"}
    request = load(admin, request_id)
    assert request.status == RequestStatus.COMPLETED and request.outcome == rq.ERASED
    assert request.erasure_receipt_id == result.receipt_id
    assert request.administrator_id is None  # the person is gone
    assert request.requester_name is None and request.requester_email is None
    assert request.identity_check is None and request.scrubbed_at is not None
    assert (request.kind, request.received_on) == ("erasure", TODAY - dt.timedelta(days=3))
    with db.session_scope(admin.engine) as session:
        assert session.get(Administrator, world.anna) is None
        assert session.get(Administrator, world.bert) is not None
        receipt = session.get(ErasureReceipt, result.receipt_id)
        assert receipt is not None and receipt.basis == "request"
        assert session.scalar(select(func.count()).select_from(DeletionTask)) == 2
    with open_providers(admin.settings) as providers:
        report = deletions.run_once(admin.engine, providers.available)
    assert report.ok and report.done == 2
    assert mailchimp_member(admin.settings, world.anna_email) is None
    assert mailchimp_member(admin.settings, world.bert_email) is not None
    visits = imitation_state(admin.settings, "matomo")["visits"]
    assert len(visits) == 2  # the anonymous ones stay
    assert not [v for v in visits if world.anna_user_id in json.dumps(v)]
    for detail in audit_details(admin):
        assert world.anna_name not in detail and world.anna_email not in detail


def test_an_organisation_erasure_request_on_legal_hold_is_refused_and_stays_open(
    admin: AppContext, world: World
) -> None:
    from plusjeklas_tui.services import legal_hold

    request_id = new(admin, world, "erasure", person=False, erasure_reason="no_longer_needed")
    with db.session_scope(admin.engine) as session:
        legal_hold.set_hold(session, admin.staff, world.organisation_id, "dispute about invoices")
    with db.session_scope(admin.engine) as session, pytest.raises(erasure.OnHold):
        rq.erase_for_request(
            session,
            admin.staff,
            admin.settings,
            erasure.provider_targets(admin.settings),
            request_id,
            TODAY,
        )
    request = load(admin, request_id)
    assert request.status == RequestStatus.OPEN and request.requester_name == world.anna_name


# --- objection ---------------------------------------------------------------------------------


def test_objection_withdraws_consent_and_the_newsletter_provider_unsubscribes(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "objection", purpose="newsletter")
    assert mailchimp_member(editor.settings, world.anna_email)["status"] == "subscribed"  # type: ignore[index]
    with db.session_scope(editor.engine) as session:
        rq.withdraw_for_objection(session, editor.staff, editor.settings, request_id)
    request = load(editor, request_id)
    assert request.status == RequestStatus.COMPLETED and request.outcome == rq.CONSENT_WITHDRAWN
    with db.session_scope(editor.engine) as session:
        event = session.get(ConsentEvent, request.consent_event_id)
        assert event is not None
        assert event.action == "withdrawn" and event.source == "staff:eddie"
        assert f"#{request_id}" in (event.evidence or "")
        assert records.current_consent(session, world.anna)["newsletter"] == "withdrawn"
    with open_providers(editor.settings) as providers:
        reports = rq.push_objection(
            editor.engine, providers.available.values(), editor.staff, editor.settings, "newsletter"
        )
    assert [r.provider for r in reports] == ["mailchimp"]
    assert reports[0].ok and reports[0].pushed >= 1
    assert mailchimp_member(editor.settings, world.anna_email)["status"] == "unsubscribed"  # type: ignore[index]
    assert mailchimp_member(editor.settings, world.bert_email)["status"] == "subscribed"  # type: ignore[index]


def test_objection_to_feedback_is_a_withdrawal_no_provider_needs(
    editor: AppContext, world: World
) -> None:
    request_id = new(editor, world, "objection", purpose="feedback")
    with db.session_scope(editor.engine) as session:
        rq.withdraw_for_objection(session, editor.staff, editor.settings, request_id)
    with db.session_scope(editor.engine) as session:
        assert records.current_consent(session, world.anna)["feedback"] == "withdrawn"
        assert records.current_consent(session, world.anna)["newsletter"] == "granted"
    with open_providers(editor.settings) as providers:
        chosen = rq.providers_for_purpose(providers.available.values(), "feedback")
    assert chosen == []


# --- rectification, restriction, refusal ---------------------------------------------------------


def test_rectification_points_at_the_record_and_completes(editor: AppContext, world: World) -> None:
    request_id = new(editor, world, "rectification")
    with db.session_scope(editor.engine) as session:
        assert rq.rectification_target(session, request_id) == (world.brin, world.anna)
        rq.complete_request(session, editor.staff, request_id, "e-mail address corrected")
    request = load(editor, request_id)
    assert request.outcome == rq.RECTIFIED and request.completed_by == "eddie"
    with db.session_scope(editor.engine) as session, pytest.raises(rq.RequestStateError):
        rq.complete_request(session, editor.staff, request_id)  # closed is closed


def test_restriction_stays_visible_until_lifted(editor: AppContext, world: World) -> None:
    request_id = new(editor, world, "restriction")
    with db.session_scope(editor.engine) as session:
        rq.complete_request(session, editor.staff, request_id)
    with db.session_scope(editor.engine) as session:
        assert [r.id for r in rq.active_restrictions(session)] == [request_id]
        (row,) = rq.list_requests(session, editor.staff, TODAY)
        assert row.restricted
        rq.lift_restriction(session, editor.staff, request_id, TODAY)
    with db.session_scope(editor.engine) as session:
        assert rq.active_restrictions(session) == []
        with pytest.raises(rq.RequestStateError):
            rq.lift_restriction(session, editor.staff, request_id, TODAY)


def test_refusal_needs_the_reason_told_to_the_person(editor: AppContext, world: World) -> None:
    request_id = new(editor, world, "access")
    with db.session_scope(editor.engine) as session, pytest.raises(Exception, match="note"):
        rq.refuse_request(session, editor.staff, request_id, "")
    with db.session_scope(editor.engine) as session:
        rq.refuse_request(session, editor.staff, request_id, "identity could not be verified")
    request = load(editor, request_id)
    assert request.status == RequestStatus.REFUSED and request.outcome == rq.REFUSED
    with db.session_scope(editor.engine) as session:
        assert rq.open_requests_summary(session, TODAY).open_count == 0


# --- the CLI -------------------------------------------------------------------------------------


def cli(config: Path, *args: str, user: str | None = None, stdin: str | None = None) -> Result:
    who = ["--user", user] if user else []
    return CliRunner().invoke(
        main,
        ["--config", str(config), *who, "requests", *args],
        input=stdin,
        catch_exceptions=False,
    )


def cli_new(config: Path, world: World, kind: str, *extra: str, user: str = "eddie") -> int:
    result = cli(
        config,
        "new",
        "--kind",
        kind,
        "--brin",
        world.brin,
        "--administrator",
        str(world.anna),
        "--name",
        world.anna_name,
        "--email",
        world.anna_email,
        "--identity",
        "reply from the address on file",
        *extra,
        user=user,
    )
    assert result.exit_code == 0, result.output
    return int(result.stdout.strip())


def test_cli_new_list_show_extend_and_told(config: Path, world: World) -> None:
    today = amsterdam_today()  # now, not at collection: a run may pass midnight in Amsterdam
    request_id = cli_new(config, world, "access")
    listed = json.loads(cli(config, "list", "--json", "--open", user="eddie").stdout)
    (row,) = listed["requests"]
    assert row["id"] == request_id and row["due_on"] == due_date(today).isoformat()
    assert row["days_left"] == (due_date(today) - amsterdam_today()).days
    assert listed["open"] == 1 and listed["overdue"] == 0
    shown = json.loads(cli(config, "show", str(request_id), "--json").stdout)
    assert shown["requester_email"] == world.anna_email and shown["brin"] == world.brin
    result = cli(config, "extend", str(request_id), "--reason", "busy", user="eddie")
    assert result.exit_code == 0 and "tell the person" in result.stderr
    table = cli(config, "list", user="eddie")
    assert f"tell the person of the extension by {due_date(today).isoformat()}" in table.stdout
    assert "1 extension(s) still to tell" in table.stderr
    assert world.anna_name not in table.stdout  # lists carry no personal data
    assert cli(config, "told", str(request_id), user="eddie").exit_code == 0
    assert "tell the person" not in cli(config, "list", user="eddie").stdout


def test_cli_refuses_bad_input_naming_the_field(config: Path, world: World) -> None:
    result = cli(
        config,
        "new",
        "--kind",
        "objection",
        "--brin",
        world.brin,
        "--name",
        "X",
        "--identity",
        "seen",
        "--received",
        "2026-13-01",
        user="eddie",
    )
    assert result.exit_code == 1
    assert "received_on" in result.stderr and "purpose" in result.stderr
    assert "administrator_id" in result.stderr
    result = cli(config, "show", "999")
    assert result.exit_code == 1 and "#999 does not exist" in result.stderr


def test_cli_export_writes_private_json_and_a_summary(
    config: Path, world: World, tmp_path: Path
) -> None:
    request_id = cli_new(config, world, "portability")
    out = tmp_path / "answer"
    result = cli(config, "export", str(request_id), "--out", str(out), "--language", "en")
    assert result.exit_code == 0, result.output
    json_path, md_path = (Path(line) for line in result.stdout.split())
    assert json_path.suffix == ".json" and md_path.name.endswith(".en.md")
    assert oct(json_path.stat().st_mode & 0o777) == "0o600"
    data = json.loads(json_path.read_text())
    assert data["complete"] and data["providers"]["matomo"]["subjects"][0]["ok"]
    assert "Overview of your data" in md_path.read_text()
    denied = cli(config, "export", str(request_id), "--out", str(out), user="vera")
    assert denied.exit_code == 2 and "export" in denied.stderr


def test_cli_completes_an_objection_and_mailchimp_unsubscribes(config: Path, world: World) -> None:
    request_id = cli_new(config, world, "objection", "--purpose", "newsletter")
    result = cli(config, "complete", str(request_id), user="eddie")
    assert result.exit_code == 0, result.output
    assert "mailchimp: told" in result.stderr
    settings = load_file(config)
    assert mailchimp_member(settings, world.anna_email)["status"] == "unsubscribed"  # type: ignore[index]


def test_cli_erasure_needs_an_admin_and_confirmation_then_delivers(
    config: Path, world: World
) -> None:
    request_id = cli_new(config, world, "erasure", "--reason", "objection")
    denied = cli(config, "complete", str(request_id), "--yes", user="eddie")
    assert denied.exit_code == 2 and "erase" in denied.stderr
    unconfirmed = cli(config, "complete", str(request_id))
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    result = cli(config, "complete", str(request_id), "--yes")
    assert result.exit_code == 0, result.output
    assert "deletion tasks: mailchimp" in result.stderr
    settings = load_file(config)
    assert mailchimp_member(settings, world.anna_email) is None
    shown = json.loads(cli(config, "show", str(request_id), "--json").stdout)
    assert shown["status"] == "completed" and shown["outcome"] == "erased"
    assert shown["requester_name"] is None and shown["erasure_receipt_id"] is not None
