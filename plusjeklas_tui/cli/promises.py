"""`plusjeklas audit promises`: each promise of the privacy statement, pass or fail, for cron.

The command is :data:`promises_command`; the ``audit`` group (``cli/audit.py``) adds it. One
line per promise on stdout (``PASS``/``FAIL``, its title and counts), then the records at
fault by id and the note; ``--json`` prints the whole report instead. The run is saved for
the dashboard. Exit 0 when every promise holds, 1 when any fails (a check that could not run
fails too), 2 for usage, configuration or permission errors.
"""

from __future__ import annotations

import sys

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say

PROMISE_KEYS = (
    "retention",
    "newsletter",
    "erasure",
    "no_bsn",
    "encrypted",
    "register",
    "access",
    "audit_log",
)
"""The keys of :data:`plusjeklas_tui.services.promises.PROMISES` (a test keeps them equal);
written out so that loading the command line does not load the audit."""
SHOWN_IDS = 20
"""Ids printed per list on a terminal; ``--json`` has them all (up to the audit's cap)."""


@click.command("promises")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(PROMISE_KEYS),
    help="Check only this promise (repeatable).",
)
@pass_state
@handle_errors
def promises_command(state: CliState, as_json: bool, only: tuple[str, ...]) -> None:
    """Check every promise of the privacy statement against the data and the providers.

    Prints each promise as PASS or FAIL with its counts and the records at fault (by id,
    never personal data), and saves the result for the dashboard. Exit 1 when any fails.
    """
    from plusjeklas_tui.services import promises

    context = state.context()
    chosen = [promises.promise(key) for key in dict.fromkeys(only)] if only else None
    report = promises.audit_promises(context, promises=chosen)
    if as_json:
        emit_json(report.as_dict())
    else:
        for result in report.results:
            counts = ", ".join(f"{name} {value}" for name, value in result.counts.items())
            verdict = "PASS" if result.passed else "FAIL"
            click.echo(f"{verdict}  {result.key:<10}  {result.title}  ({counts})")
            _ids("at fault", result.fault_ids)
            _ids("on legal hold (not a fault)", result.held_ids)
            if result.note:
                click.echo(f"      {result.note}")
        failed = len(report.failures)
        say(
            f"{len(report.results) - failed} of {len(report.results)} promises kept"
            + (f"; {failed} failed" if failed else "")
            + f" (saved as run #{report.audit_id})"
        )
    if not report.passed:
        sys.exit(1)


def _ids(label: str, ids: tuple[str, ...]) -> None:
    if not ids:
        return
    shown = ", ".join(ids[:SHOWN_IDS])
    more = f" and {len(ids) - SHOWN_IDS} more (see --json)" if len(ids) > SHOWN_IDS else ""
    click.echo(f"      {label}: {shown}{more}")
