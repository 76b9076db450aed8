"""`plusjeklas breaches new|list|show|update|report|not-reportable|export`: the breach register.

Every breach goes in the register, reported or not (GDPR art. 33(5)). Each field of the
regulator's notification form has an option; choices (nature, data types, encryption, informing)
come from fixed lists that click checks, every other value is checked by the service, and every
problem is printed with the option's field name. Times are typed in Amsterdam time
(``2026-11-27 14:30``) or with an offset; they are shown in Amsterdam time.

Output: ``new`` prints the new breach's id on stdout; ``list``/``show`` print a table or, with
``--json``, JSON; ``export`` prints the filled-in form (Markdown or JSON) or writes it to a file.
Exit codes: 0 done, 1 refused (a field, a state, not found), 2 usage or permission.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services.breaches import (
    DATA_TYPES,
    ENCRYPTED_CHOICES,
    INFORMED_CHOICES,
    LOCAL_TZ,
    NATURES,
)

F = TypeVar("F", bound=Callable[..., Any])
TIME_HELP = "Amsterdam time, YYYY-MM-DD HH:MM (or with an offset, e.g. +01:00)."


def _local(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _field_options(func: F) -> F:
    """One option per field of the form; None means 'not given' (update leaves it as it is)."""
    flag_pairs = [
        ("follow-up", "new", "follow_up", "A follow-up of an earlier report (or a new one)."),
        ("ongoing", "not-ongoing", "ongoing", "The breach is still going on."),
        ("processor", "no-processor", "processor_involved", "A processor was involved."),
        ("vulnerable", "not-vulnerable", "vulnerable_groups", "Children or other vulnerable."),
    ]
    texts = [
        ("--earlier-reference", "The regulator's number of the earlier report (follow-ups)."),
        ("--contact-name", "Contact person for the regulator."),
        ("--contact-function", "The contact person's function."),
        ("--contact-phone", "The contact person's phone."),
        ("--contact-email", "The contact person's e-mail (default: [breach] contact)."),
        ("--processor-name", "The processor involved (a company)."),
        ("--started-at", f"When the breach started; {TIME_HELP}"),
        ("--ended-at", f"When it ended; {TIME_HELP}"),
        ("--discovered-at", f"When it was discovered: the 72 hours start here; {TIME_HELP}"),
        ("--late-reason", "Why it is (or will be) reported after 72 hours."),
        ("--summary", "What happened."),
        ("--cause", "The cause."),
        ("--data-types-other", "The other data (with --data-type other)."),
        ("--records-approx", "Approximate number of records."),
        ("--groups", "Groups of people affected (e.g. administrators of schools)."),
        ("--people-min", "Number of people affected, at least."),
        ("--people-max", "Number of people affected, at most."),
        ("--consequences", "Likely consequences for the people."),
        ("--informed-how", "How and when the people were (or will be) informed."),
        ("--measures", "Measures taken."),
    ]
    choices = [
        ("--nature", NATURES, True, "What happened to the data (repeat for several)."),
        ("--data-type", DATA_TYPES, True, "A type of personal data involved (repeat)."),
        ("--encrypted", ENCRYPTED_CHOICES, False, "Was the data unintelligible to others?"),
        ("--informed", INFORMED_CHOICES, False, "Were the people informed?"),
    ]
    for name, allowed, multiple, help_ in reversed(choices):
        func = click.option(
            name,
            type=click.Choice(allowed, case_sensitive=False),
            multiple=multiple,
            default=None,
            help=help_,
        )(func)
    for name, help_ in reversed(texts):
        func = click.option(name, default=None, help=help_)(func)
    for yes, no, dest, help_ in reversed(flag_pairs):
        func = click.option(f"--{yes}/--{no}", dest, default=None, help=help_)(func)
    return func


_RENAMED = {"data_type": "data_types"}


def _changes(options: dict[str, Any]) -> dict[str, Any]:
    """The options given, as service field names; multi-choices as lists."""
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or value == ():
            continue
        changes[_RENAMED.get(name, name)] = list(value) if isinstance(value, tuple) else value
    return changes


@click.group("breaches")
def breaches_group() -> None:
    """The breach register: every incident, reported or not, and the 72-hour countdown."""


@breaches_group.command("new")
@_field_options
@click.option("--json", "as_json", is_flag=True, help="Print the new breach as JSON.")
@pass_state
@handle_errors
def new_command(state: CliState, as_json: bool, **options: Any) -> None:
    """Record a breach. Required: --discovered-at, --summary, --nature, --data-type,
    --people-min and --people-max. Prints the new breach's id."""
    from plusjeklas_tui.services import breaches
    from plusjeklas_tui.sqltypes import utcnow

    context = state.context()
    now = utcnow()
    with session_scope(context.engine) as session:
        breach = breaches.register(session, context.staff, _changes(options), now=now)
        data = breaches.as_dict(breach, now)
        left = breaches.breach_time_left(breach, now)
        due = breaches.breach_deadline(breach)
    if as_json:
        emit_json(data)
    else:
        click.echo(data["id"])
    say(
        f"breach #{data['id']} recorded; report it by {_local(due)} "
        f"({breaches.describe_time_left(left)})"
    )


@breaches_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "reported", "not_reportable"]),
    default=None,
    help="Only breaches in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the register as JSON.")
@pass_state
@handle_errors
def list_command(state: CliState, status: str | None, as_json: bool) -> None:
    """The register: open breaches first (most urgent first), then the rest, newest first."""
    from plusjeklas_tui.services import breaches
    from plusjeklas_tui.sqltypes import utcnow

    context = state.context()
    now = utcnow()
    with session_scope(context.engine) as session:
        rows = breaches.list_breaches(session, context.staff, now, status=status)
    if as_json:
        emit_json(
            [
                {
                    "id": row.id,
                    "status": row.status,
                    "discovered_at": row.discovered_at.isoformat(),
                    "deadline": row.deadline.isoformat(),
                    "time_left_seconds": (
                        None if row.time_left is None else int(row.time_left.total_seconds())
                    ),
                    "people_min": row.people_min,
                    "people_max": row.people_max,
                    "data_types": row.data_types,
                    "reported_at": row.reported_at.isoformat() if row.reported_at else None,
                    "ap_reference": row.ap_reference,
                }
                for row in rows
            ]
        )
        return
    table = [("ID", "STATUS", "DISCOVERED", "DEADLINE", "TIME LEFT", "PEOPLE", "REFERENCE")]
    for row in rows:
        table.append(
            (
                str(row.id),
                row.status,
                _local(row.discovered_at),
                _local(row.deadline),
                breaches.describe_time_left(row.time_left),
                f"{row.people_min}-{row.people_max}",
                row.ap_reference or "-",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    still_open = sum(1 for row in rows if row.time_left is not None)
    overdue = sum(
        1 for row in rows if row.time_left is not None and row.time_left.total_seconds() < 0
    )
    say(f"{len(rows)} breaches, {still_open} open, {overdue} past the 72 hours")


@breaches_group.command("show")
@click.argument("breach_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print every field as JSON.")
@pass_state
@handle_errors
def show_command(state: CliState, breach_id: int, as_json: bool) -> None:
    """Every field of one breach."""
    from plusjeklas_tui.services import breaches
    from plusjeklas_tui.sqltypes import utcnow

    context = state.context()
    now = utcnow()
    with session_scope(context.engine) as session:
        data = breaches.as_dict(breaches.get_breach(session, context.staff, breach_id), now)
    if as_json:
        emit_json(data)
        return
    left = data["time_left_seconds"]
    for key, value in data.items():
        if key in (
            "discovered_at",
            "started_at",
            "ended_at",
            "deadline",
            "reported_at",
            "created_at",
        ):
            value = _local(dt.datetime.fromisoformat(value)) if value else "-"
        elif key == "time_left_seconds":
            key = "time_left"
            value = breaches.describe_time_left(
                None if left is None else dt.timedelta(seconds=left)
            )
        elif isinstance(value, list):
            value = ", ".join(value) or "-"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None or value == "":
            value = "-"
        text = str(value)
        if "\n" in text:
            text = "\n    " + text.replace("\n", "\n    ")
        click.echo(f"{key}: {text}")


@breaches_group.command("update")
@click.argument("breach_id", type=int)
@_field_options
@click.option(
    "--version",
    "expected_version",
    type=int,
    default=None,
    help="Refuse if the breach was saved since this version (from `show`).",
)
@pass_state
@handle_errors
def update_command(
    state: CliState, breach_id: int, expected_version: int | None, **options: Any
) -> None:
    """Change some fields of a breach; the whole record is checked again. Empty text ('')
    clears a field."""
    from plusjeklas_tui.services import breaches

    changes = _changes(options)
    if not changes:
        raise click.UsageError("give at least one field to change (see --help)")
    context = state.context()
    with session_scope(context.engine) as session:
        changed = breaches.update_breach(
            session, context.staff, breach_id, changes, expected_version=expected_version
        )
    say(f"breach #{breach_id}: " + (f"changed {', '.join(changed)}" if changed else "no change"))


@breaches_group.command("report")
@click.argument("breach_id", type=int)
@click.option("--reference", required=True, help="The number the regulator gave the report.")
@click.option(
    "--reported-at", default=None, help=f"When it was reported (default now); {TIME_HELP}"
)
@click.option("--late-reason", default=None, help="Required when reported after 72 hours.")
@pass_state
@handle_errors
def report_command(
    state: CliState,
    breach_id: int,
    reference: str,
    reported_at: str | None,
    late_reason: str | None,
) -> None:
    """Record that the breach was reported to the Autoriteit Persoonsgegevens."""
    from plusjeklas_tui.services import breaches

    context = state.context()
    with session_scope(context.engine) as session:
        breach = breaches.mark_reported(
            session,
            context.staff,
            breach_id,
            ap_reference=reference,
            reported_at=reported_at,
            late_reason=late_reason,
        )
        late = breach.reported_at is not None and breach.reported_at > breaches.breach_deadline(
            breach
        )
    say(
        f"breach #{breach_id} reported on {_local(breach.reported_at)}"
        + (" (after the 72 hours)" if late else "")
    )


@breaches_group.command("not-reportable")
@click.argument("breach_id", type=int)
@click.option("--reason", required=True, help="Why the breach need not be reported.")
@pass_state
@handle_errors
def not_reportable_command(state: CliState, breach_id: int, reason: str) -> None:
    """Judge the breach not reportable; it stays in the register and the countdown stops."""
    from plusjeklas_tui.services import breaches

    context = state.context()
    with session_scope(context.engine) as session:
        breaches.mark_not_reportable(session, context.staff, breach_id, reason)
    say(f"breach #{breach_id} marked not reportable")


@breaches_group.command("export")
@click.argument("breach_id", type=int)
@click.option(
    "--format", "format_", type=click.Choice(["md", "json"]), default="md", show_default=True
)
@click.option(
    "--language",
    type=click.Choice(["nl", "en"]),
    default=None,
    help="Language of the Markdown form (default: the configured language).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (created with mode 0600) instead of stdout.",
)
@pass_state
@handle_errors
def export_command(
    state: CliState, breach_id: int, format_: str, language: str | None, output: Path | None
) -> None:
    """The breach as the regulator's notification form asks it, to copy into that form."""
    import json
    import os

    from plusjeklas_tui.services import audit, breach_form, breaches
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.EXPORT, "export a breach")
    with session_scope(context.engine) as session:
        breach = breaches.get_breach(session, context.staff, breach_id)
        form = breach_form.build_form(breach, context.settings)
        audit.record(session, context.staff, "export", "breach", breach_id, format=format_)
    if format_ == "json":
        body = json.dumps(breach_form.as_json(form), indent=2, ensure_ascii=False) + "\n"
    else:
        body = breach_form.as_markdown(form, language or context.settings.language)  # type: ignore[arg-type]
    if output is None:
        click.echo(body, nl=False)
    else:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(body)
        say(f"breach #{breach_id} written to {output}")
    if form.unfilled:
        say(f"not filled in yet: {', '.join(form.unfilled)}")


def register(main: click.Group) -> None:
    main.add_command(breaches_group)
