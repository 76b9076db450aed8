"""`plusjeklas feedback list|asked|answered`: schools to ask how they look back on the lessons.

``list`` shows the schools whose last subscription ended and whose retention deadline has not
passed (:mod:`plusjeklas_tui.services.feedback`): by default those still to do (not asked yet,
or asked and awaiting an answer); ``--all`` adds the answered ones. ``asked`` and ``answered``
record a step with a required note; the note is stored encrypted and never printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope

if TYPE_CHECKING:
    from plusjeklas_tui.services.feedback import FeedbackEntry

# The services are imported by the commands that use them: every start of the staff app loads
# this module to register the commands.


@click.group("feedback")
def feedback_group() -> None:
    """Feedback: schools whose subscription ended, to ask how they look back on the lessons."""


@feedback_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list schools that answered.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON on stdout.")
@pass_state
@handle_errors
def list_command(state: CliState, show_all: bool, as_json: bool) -> None:
    """List the schools to ask (and those asked, awaiting an answer).

    One line per school: BRIN, internal id, state, the day its last subscription ended, the
    last day its data is kept, and how many of its administrators may be asked. Schools whose
    administrators all objected are left out (and counted).
    """
    from plusjeklas_tui.services import feedback
    from plusjeklas_tui.services.records import local_today
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.READ, "see the feedback list")
    today = local_today()
    retention = context.settings.retention
    states = set(feedback.FeedbackState) if show_all else feedback.OPEN_STATES
    with session_scope(context.engine) as session:
        entries = feedback.feedback_list(session, today, retention, states=states)
        summary = feedback.feedback_summary(session, today, retention)
    if as_json:
        emit_json(
            {
                "today": today.isoformat(),
                "summary": summary.as_dict(),
                "entries": [entry.as_dict() for entry in entries],
            }
        )
        return
    rows = [("BRIN", "ID", "STATE", "ENDED", "KEPT UNTIL", "MAY ASK", "SCHOOL")]
    for entry in entries:
        may_ask = f"{entry.may_ask}/{entry.administrators}" if entry.administrators else "school"
        rows.append(
            (
                entry.brin,
                f"#{entry.organisation_id}",
                entry.state.value,
                entry.ended_on.isoformat(),
                entry.keep_until.isoformat(),
                may_ask,
                _printable(entry.name),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    say(
        f"{summary.due} due, {summary.asked} asked, {summary.answered} answered, "
        f"{summary.objected} left out (every administrator objected)"
    )


@feedback_group.command("asked")
@click.argument("organisation_id", metavar="ORG_ID", type=int)
@click.option("--note", required=True, help="How and whom you asked (stored encrypted).")
@pass_state
@handle_errors
def asked_command(state: CliState, organisation_id: int, note: str) -> None:
    """Record that the school with ORG_ID was asked for feedback."""
    entry = _mark(state, "asked", organisation_id, note)
    say(
        f"organisation #{organisation_id} ({entry.brin}) marked asked about the subscription "
        f"that ended on {entry.ended_on.isoformat()}"
    )


@feedback_group.command("answered")
@click.argument("organisation_id", metavar="ORG_ID", type=int)
@click.option("--note", required=True, help="What the school said (stored encrypted).")
@pass_state
@handle_errors
def answered_command(state: CliState, organisation_id: int, note: str) -> None:
    """Record the answer of the school with ORG_ID (it must have been marked asked)."""
    entry = _mark(state, "answered", organisation_id, note)
    say(f"organisation #{organisation_id} ({entry.brin}) marked answered")


def _mark(
    state: CliState, step: Literal["asked", "answered"], organisation_id: int, note: str
) -> FeedbackEntry:
    """Record *step* for the school with *organisation_id*, in one transaction."""
    from plusjeklas_tui.services import feedback
    from plusjeklas_tui.services.records import local_today

    mark = feedback.mark_asked if step == "asked" else feedback.mark_answered
    context = state.context()
    with session_scope(context.engine) as session:
        return mark(
            session, context.staff, organisation_id, note, local_today(), context.settings.retention
        )


def _printable(text: str) -> str:
    """Data from the database on a terminal: control characters escaped, never interpreted."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(feedback_group)
