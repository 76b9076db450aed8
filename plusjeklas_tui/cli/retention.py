"""`plusjeklas retention plan|sweep|hold|unhold`: the retention rules, from cron or a terminal.

``sweep`` is cron-friendly: ``--yes`` runs it without asking; without ``--yes`` it asks on a
terminal (type the number of organisations to be erased) and refuses when nobody can answer
(exit 2). Each action goes to stdout as one line, the same line in a dry run as in the real
run; headers and summaries go to stderr. A real sweep then delivers the deletion tasks once
(what ``deletions run --once`` does: the new tasks and any still pending), reporting per
provider on stderr. Exit 1 when anything failed: a local erasure, or a delivery (a provider
that failed or could not be reached; its tasks stay pending for the next run).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope

# The services are imported by the commands that use them: every start of the staff app loads
# this module to register the commands.


@click.group("retention")
def retention_group() -> None:
    """Retention: what is due for deletion, the sweep that deletes it, legal holds."""


@retention_group.command("plan")
@click.option(
    "--within",
    "within_days",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also list what falls due in the next DAYS days.",
    metavar="DAYS",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@pass_state
@handle_errors
def plan_command(state: CliState, within_days: int, as_json: bool) -> None:
    """List what the retention rules delete now (and within DAYS days).

    One line per subject: the school's BRIN, the rule, the last day it is kept, whether it is
    due now or on legal hold (and by whom), and the providers that hold a copy.
    """
    from plusjeklas_tui.services import retention
    from plusjeklas_tui.services.records import local_today
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.READ, "see the retention plan")
    the_plan = retention.plan(
        context.engine, context.settings, local_today(), within_days=within_days
    )
    if as_json:
        emit_json(the_plan.as_dict())
        return
    rows = [("BRIN", "SUBJECT", "RULE", "KEPT UNTIL", "STATE", "PROVIDERS")]
    for item in the_plan.items:
        if item.on_hold:
            status = f"on hold ({item.hold_set_by})"
        else:
            status = "due" if item.due else "upcoming"
        rows.append(
            (
                item.brin or "-",
                f"{item.kind} #{item.subject_id}",
                item.rule,
                item.deadline.isoformat(),
                status,
                ", ".join(item.providers) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    held = sum(1 for item in the_plan.items if item.on_hold)
    say(
        f"{len(the_plan.to_sweep)} due now ({the_plan.organisations_to_sweep} organisations), "
        f"{held} on hold, {len(the_plan.items)} listed"
    )


@retention_group.command("sweep")
@click.option("--dry-run", is_flag=True, help="Print what a real run would do; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (for cron).")
@pass_state
@handle_errors
def sweep_command(state: CliState, dry_run: bool, yes: bool) -> None:
    """Delete everything due now and not on hold, here and (through tasks) at every provider.

    Each subject is erased in its own transaction with its deletion tasks; then the tasks are
    delivered to the providers once (as `deletions run --once`). Exit 0 when everything due
    was erased and delivered, 1 when an erasure or a delivery failed (undelivered tasks stay
    pending for the next run), 2 when it needed confirmation and got none.
    """
    from plusjeklas_tui.errors import PlusjeklasError
    from plusjeklas_tui.services import erasure, retention
    from plusjeklas_tui.services.records import local_today
    from plusjeklas_tui.staff import Permission

    context = state.context()
    staff = context.staff
    staff.require(Permission.READ if dry_run else Permission.SWEEP, "run a retention sweep")
    today = local_today()
    plugin_set = _plugin_set()
    targets = erasure.provider_targets(context.settings, plugin_set)
    the_plan = retention.plan(context.engine, context.settings, today, providers=list(targets))
    due = the_plan.to_sweep
    if not due:
        say("nothing is due for deletion")
        if not dry_run and not _deliver(context, plugin_set):  # what earlier runs left
            sys.exit(1)
        return
    organisations = the_plan.organisations_to_sweep
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            say(
                f"{len(due)} subjects ({organisations} organisations) are due; not deleting "
                "without confirmation: pass --yes to run without asking"
            )
            sys.exit(2)
        expected = organisations if organisations else len(due)
        what = "organisations" if organisations else "subjects"
        answer = click.prompt(
            f"{len(due)} subjects are due, {organisations} of them organisations. "
            f"Type the number of {what} to delete them ({expected})",
            default="",
            show_default=False,
            err=True,
        )
        if answer.strip() != str(expected):
            raise PlusjeklasError("not confirmed: nothing was deleted")
    say(("dry run: " if dry_run else "") + f"{len(due)} subjects due")
    report = retention.sweep(
        context.engine,
        context.settings,
        staff,
        today,
        dry_run=dry_run,
        the_plan=the_plan,
        targets=targets,
        progress=click.echo,
    )
    for line in report.skipped:
        say(line)
    for line in report.failures:
        say(line)
    verb = "would erase" if dry_run else "erased"
    say(
        f"{verb} {len(report.actions)}, skipped {len(report.skipped)}, "
        f"failed {len(report.failures)}; {report.tasks} deletion tasks"
        + (" queued" if not dry_run else "")
    )
    delivered = dry_run or _deliver(context, plugin_set)
    if not report.ok or not delivered:
        sys.exit(1)


def _deliver(context: Any, plugin_set: Any) -> bool:
    """Deliver the due deletion tasks once, as ``deletions run --once``; True when all went.

    The providers are opened only now, so one that cannot be built never stops the local
    erasure; its tasks stay pending, and the run says why.
    """
    from plusjeklas_tui.cli.deletions import show_report
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import deletions, erasure

    say("delivering the deletion tasks to the providers")
    try:
        with open_providers(context.settings, plugin_set) as providers:
            report = deletions.run_once(
                context.engine, providers.available, problems=providers.problems
            )
    except Exception as exc:  # the erasures are committed; the tasks wait for the next run
        say(f"delivery failed: {erasure.describe_fault(exc)}")
        return False
    show_report(report, as_json=False)
    return report.ok


def _plugin_set() -> object | None:
    """The discovered plugins (for provider kinds); None when discovery itself fails."""
    from plusjeklas_tui.plugins import discover

    try:
        return discover()
    except Exception:  # kinds are a refinement; tasks are made without them
        return None


@retention_group.command("hold")
@click.argument("brin")
@click.option("--reason", required=True, help="Why deletion must wait (stored encrypted).")
@pass_state
@handle_errors
def hold_command(state: CliState, brin: str, reason: str) -> None:
    """Put the school with BRIN on legal hold: the sweep leaves it alone until lifted."""
    from plusjeklas_tui.services import legal_hold

    context = state.context()
    with session_scope(context.engine) as session:
        organisation_id = legal_hold.organisation_id_for_brin(session, brin)
        legal_hold.set_hold(session, context.staff, organisation_id, reason)
    say(f"organisation #{organisation_id} is on legal hold")


@retention_group.command("unhold")
@click.argument("brin")
@pass_state
@handle_errors
def unhold_command(state: CliState, brin: str) -> None:
    """Lift the legal hold of the school with BRIN; its deadline applies again."""
    from plusjeklas_tui.services import legal_hold

    context = state.context()
    with session_scope(context.engine) as session:
        organisation_id = legal_hold.organisation_id_for_brin(session, brin)
        info = legal_hold.lift_hold(session, context.staff, organisation_id)
    say(f"legal hold on organisation #{organisation_id} lifted (it was set by {info.set_by})")


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(retention_group)
