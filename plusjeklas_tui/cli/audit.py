"""`plusjeklas audit ...`: check the tamper-evident audit log (and audit the promises).

``audit verify`` exits 0 with one summary line when the chain is intact, and 1 with one line
per problem otherwise ("event #57 changed", "events #60-#61 deleted"), so it can run from
cron or monitoring. Any staff member may run it.
"""

from __future__ import annotations

import sys

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state
from plusjeklas_tui.services.audit_chain import ChainReport, verify


@click.group("audit")
def audit_group() -> None:
    """The audit log: verify that no event was changed, deleted, inserted or reordered."""


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@pass_state
@handle_errors
def verify_command(state: CliState, as_json: bool) -> None:
    """Check every audit event's MAC and its place in the chain (any staff member).

    Exit 0 when intact, 1 when a problem was found (one line per problem).
    """
    context = state.context()
    report = verify(context.engine, context.keyring, context.staff)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(describe(report))
    if not report.ok:
        sys.exit(1)


def describe(report: ChainReport) -> str:
    """The summary line, then one line per problem."""
    return "\n".join([report.summary(), *(problem.message for problem in report.problems)])


def _add_promises() -> None:
    """``audit promises`` lives in its own module, which may not exist in every build."""
    try:
        from plusjeklas_tui.cli.promises import promises_command
    except ImportError:
        return
    audit_group.add_command(promises_command, "promises")


_add_promises()


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(audit_group)
