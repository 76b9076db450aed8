"""`plusjeklas requests new|list|show|extend|told|complete|refuse|lift|export`: data-subject
requests (GDPR art. 15-21) from a terminal.

``complete`` does the work of the request's kind and closes it: an erasure request erases the
subject (admins only; it asks for the request number unless ``--yes``) and delivers the deletion
tasks once; an objection withdraws the consent and pushes it to the providers that hold that
purpose; access, portability, rectification and restriction requests are closed (export first
with ``export``; correct the record in the app or with ``data``). Lists and ``show`` go to
stdout (``--json`` for machines); messages to stderr. Exit 1 when a provider step failed (the
local step is kept; the provider is told on its next run).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope

KINDS = ("access", "rectification", "erasure", "restriction", "objection", "portability")


@click.group("requests")
def requests_group() -> None:
    """Data-subject requests: intake, deadlines, extension, and the work per kind.

    `complete` does the kind's work and closes the request: erasure erases the subject here
    and queues it at the providers (admins; asks unless --yes), objection withdraws the consent
    and pushes it to the providers, the other kinds are closed (run `export` first for access
    and portability; correct the record for rectification).
    """


def _today() -> Any:
    from plusjeklas_tui.services.request_deadlines import amsterdam_today

    return amsterdam_today()


@requests_group.command("new")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the person asks.")
@click.option("--received", default="", help="Date received, YYYY-MM-DD (default: today).")
@click.option("--brin", default="", help="The organisation (school) the request is about.")
@click.option("--administrator", "administrator_id", default="", help="The person, by id.")
@click.option("--name", "requester_name", required=True, help="Who asks (stored encrypted).")
@click.option("--email", "requester_email", default="", help="Their e-mail (encrypted).")
@click.option(
    "--identity", "identity_check", required=True, help="How their identity was verified."
)
@click.option("--purpose", default="", help="Objection: the consent purpose objected to.")
@click.option("--reason", "erasure_reason", default="", help="Erasure: the art. 17(1) ground.")
@click.option("--note", default="", help="A note (stored encrypted).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
@pass_state
@handle_errors
def new_command(state: CliState, as_json: bool, brin: str, received: str, **fields: str) -> None:
    """Record a request; its deadline is one month from receipt (working days, NL holidays)."""
    from plusjeklas_tui.services import legal_hold
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    today = _today()
    raw: dict[str, str] = {**fields, "received_on": received or today.isoformat()}
    with session_scope(context.engine) as session:
        if brin.strip():
            raw["organisation_id"] = str(legal_hold.organisation_id_for_brin(session, brin))
        data = rq.validate_request(raw, purposes=context.settings.consent_purposes, today=today)
        request = rq.create_request(session, context.staff, data)
        row = rq.row_of(request, today)
    if as_json:
        emit_json(row.as_dict())
        return
    click.echo(f"{row.id}")
    say(f"request #{row.id} ({row.kind}) recorded; due {row.due_on.isoformat()}")


def _flags(row: Any) -> str:
    flags = []
    if row.overdue:
        flags.append("OVERDUE")
    if row.tell_person and row.tell_by is not None:
        flags.append(f"tell the person of the extension by {row.tell_by.isoformat()}")
    if row.extended:
        flags.append("extended")
    if row.restricted:
        flags.append("restricted")
    return ", ".join(flags)


@requests_group.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only open requests.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@pass_state
@handle_errors
def list_command(state: CliState, open_only: bool, as_json: bool) -> None:
    """Requests with deadline and days left; open ones first, most urgent first."""
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    today = _today()
    with session_scope(context.engine) as session:
        rows = rq.list_requests(session, context.staff, today, open_only=open_only)
        summary = rq.open_requests_summary(session, today)
    if as_json:
        emit_json(
            {
                "today": today.isoformat(),
                "open": summary.open_count,
                "overdue": summary.overdue_count,
                "tell_person": summary.tell_person_count,
                "requests": [row.as_dict() for row in rows],
            }
        )
        return
    table = [("ID", "KIND", "STATUS", "SUBJECT", "RECEIVED", "DUE", "DAYS LEFT", "")]
    for row in rows:
        table.append(
            (
                str(row.id),
                row.kind,
                row.status if row.outcome is None else f"{row.status} ({row.outcome})",
                row.subject,
                row.received_on.isoformat(),
                row.due_on.isoformat(),
                "-" if row.days_left is None else str(row.days_left),
                _flags(row),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())
    say(
        f"{summary.open_count} open, {summary.overdue_count} overdue, "
        f"{summary.tell_person_count} extension(s) still to tell the person"
    )


@requests_group.command("show")
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
@pass_state
@handle_errors
def show_command(state: CliState, request_id: int, as_json: bool) -> None:
    """One request, with who asked and how their identity was verified."""
    from plusjeklas_tui.services import requests as rq
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.READ, "see data-subject requests")
    with session_scope(context.engine) as session:
        request = rq.get_request(session, request_id)
        data = rq.details(request, _today())
        target = rq.rectification_target(session, request_id)
    data["brin"] = target[0]
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if value is not None and value != "":
            click.echo(f"{key.replace('_', ' ')}: {value}")


@requests_group.command("extend")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why; the person is told (stored encrypted).")
@pass_state
@handle_errors
def extend_command(state: CliState, request_id: int, reason: str) -> None:
    """Extend once to three months from receipt (before the first deadline)."""
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    with session_scope(context.engine) as session:
        request = rq.extend_request(session, context.staff, request_id, reason, _today())
        due, tell_by = request.extended_due_on, request.due_on
    assert due is not None
    say(
        f"request #{request_id} extended to {due.isoformat()}; tell the person, with the "
        f"reasons, by {tell_by.isoformat()}, then run `plusjeklas requests told {request_id}`"
    )


@requests_group.command("told")
@click.argument("request_id", type=int)
@pass_state
@handle_errors
def told_command(state: CliState, request_id: int) -> None:
    """Record that the person was told of the extension and its reasons."""
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    with session_scope(context.engine) as session:
        rq.mark_extension_told(session, context.staff, request_id)
    say(f"request #{request_id}: the person was told of the extension")


@requests_group.command("refuse")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="The reason the person is told (encrypted).")
@pass_state
@handle_errors
def refuse_command(state: CliState, request_id: int, reason: str) -> None:
    """Refuse a request, with the reason the person is told (GDPR article 12(5))."""
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    with session_scope(context.engine) as session:
        rq.refuse_request(session, context.staff, request_id, reason)
    say(f"request #{request_id} refused")


@requests_group.command("lift")
@click.argument("request_id", type=int)
@pass_state
@handle_errors
def lift_command(state: CliState, request_id: int) -> None:
    """Lift the restriction a restriction request put in place (tell the person first)."""
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    with session_scope(context.engine) as session:
        rq.lift_restriction(session, context.staff, request_id, _today())
    say(f"request #{request_id}: restriction lifted")


@requests_group.command("complete")
@click.argument("request_id", type=int)
@click.option("--note", default="", help="What was done (stored encrypted).")
@click.option("--yes", is_flag=True, help="Erasure: do not ask for the request number.")
@pass_state
@handle_errors
def complete_command(state: CliState, request_id: int, note: str, yes: bool) -> None:
    """Do the request's work and close it (see `plusjeklas requests --help`)."""
    from plusjeklas_tui.models import RequestKind
    from plusjeklas_tui.services import requests as rq

    context = state.context()
    with session_scope(context.engine) as session:
        request = rq.get_request(session, request_id)
        kind, purpose = request.kind, request.purpose
    if kind == RequestKind.ERASURE:
        ok = _erase(context, request_id, yes)
    elif kind == RequestKind.OBJECTION:
        ok = _object(context, request_id, purpose or "")
    else:
        with session_scope(context.engine) as session:
            done = rq.complete_request(session, context.staff, request_id, note)
            outcome = done.outcome
        say(f"request #{request_id} completed ({outcome})")
        ok = True
    if not ok:
        sys.exit(1)


def _erase(context: Any, request_id: int, yes: bool) -> bool:
    from plusjeklas_tui.cli.retention import _deliver, _plugin_set
    from plusjeklas_tui.errors import PlusjeklasError
    from plusjeklas_tui.services import erasure
    from plusjeklas_tui.services import requests as rq
    from plusjeklas_tui.staff import Permission

    context.staff.require(Permission.ERASE, "erase on request")
    if not yes:
        if not sys.stdin.isatty():
            say("erasure cannot be undone; not erasing without confirmation: pass --yes")
            sys.exit(2)
        answer = click.prompt(
            f"Erasure cannot be undone. Type the request number ({request_id}) to erase",
            default="",
            show_default=False,
            err=True,
        )
        if answer.strip() != str(request_id):
            raise PlusjeklasError("not confirmed: nothing was erased")
    plugin_set = _plugin_set()
    targets = erasure.provider_targets(context.settings, plugin_set)
    with session_scope(context.engine) as session:
        result = rq.erase_for_request(
            session, context.staff, context.settings, targets, request_id, _today()
        )
    say(f"request #{request_id} completed: {result.summary()}")
    return _deliver(context, plugin_set)


def _object(context: Any, request_id: int, purpose: str) -> bool:
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import erasure
    from plusjeklas_tui.services import requests as rq

    with session_scope(context.engine) as session:
        rq.withdraw_for_objection(session, context.staff, context.settings, request_id)
    say(f"request #{request_id} completed: {purpose} consent withdrawn")
    try:
        with open_providers(context.settings) as providers:
            for name, problem in sorted(providers.problems.items()):
                say(f"{name}: not available ({problem}); it is told on its next sync")
            reports = rq.push_objection(
                context.engine,
                providers.available.values(),
                context.staff,
                context.settings,
                purpose,
            )
    except Exception as exc:  # the withdrawal is committed; the next sync pushes it
        say(f"push failed: {erasure.describe_fault(exc)}; the next sync pushes it")
        return False
    if not reports:
        say(f"no enabled provider holds {purpose} consent: nothing to push")
    for report in reports:
        state = "told" if report.ok else f"failed ({report.error}); the next sync retries"
        say(f"{report.provider}: {state}")
    return all(report.ok for report in reports)


@requests_group.command("export")
@click.argument("request_id", type=int)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for the JSON file and the readable summary.",
)
@click.option(
    "--language",
    type=click.Choice(("nl", "en")),
    default="nl",
    show_default=True,
    help="Language of the summary.",
)
@pass_state
@handle_errors
def export_command(state: CliState, request_id: int, out_dir: Path, language: str) -> None:
    """Export everything held about the subject here and at every provider (access and
    portability): a JSON file and a Markdown summary, readable only by you (0600).

    Exit 1 when a provider could not be asked: the files are written and say which."""
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import subject_export

    context = state.context()
    with open_providers(context.settings) as providers:
        export = subject_export.export_for_request(
            context.engine,
            context.staff,
            request_id,
            providers.available,
            problems=providers.problems,
            purposes=context.settings.consent_purposes,
            retention=context.settings.retention,
        )
    paths = subject_export.write_files(export, out_dir, _today(), language)
    for path in paths:
        click.echo(str(path))
    failed = subject_export.failed_providers(export)
    for name in failed:
        say(f"{name}: {export['providers'][name]['reason']}")
    if failed:
        say("the export is incomplete: ask again when the providers above answer")
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(requests_group)
