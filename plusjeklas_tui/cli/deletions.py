"""`plusjeklas deletions run|list|retry`: the erasure outbox from cron or a terminal.

``run --once`` is the cron form: deliver what is due, print one line per provider, exit 1 when
anything failed or was left for an unavailable provider. Without ``--once`` it keeps running,
waking when the next task falls due; Ctrl+C stops it after the deliveries under way.

Any staff member may run the worker: it only carries out erasures an admin already decided,
and several workers at once are safe (leases). ``retry`` needs the erase permission.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say

if TYPE_CHECKING:
    from plusjeklas_tui.services.deletions import RunReport, TaskView


@click.group("deletions")
def deletions_group() -> None:
    """Erasures waiting to be delivered to the providers (the deletion outbox)."""


@deletions_group.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option("--json", "as_json", is_flag=True, help="Print each run's report as JSON.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Simultaneous deliveries per provider (default: what each provider accepts at once, "
    "e.g. 10 for Mailchimp).",
)
@pass_state
@handle_errors
def run_command(state: CliState, once: bool, as_json: bool, concurrency: int | None) -> None:
    """Deliver due erasures to the providers, with backoff, verifying where possible.

    Exit code 1 when a delivery failed or a provider with due tasks is not available.
    """
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import deletions

    context = state.context()
    options = deletions.WorkerOptions(default_concurrency=concurrency)
    with open_providers(context.settings) as providers:
        if once:
            report = deletions.run_once(
                context.engine,
                providers.available,
                problems=providers.problems,
                options=options,
            )
            show_report(report, as_json)
            sys.exit(0 if report.ok else 1)
        cancel = threading.Event()

        def on_report(report: RunReport) -> None:
            if report.providers:  # quiet while nothing is due
                show_report(report, as_json)

        _run_until_interrupted(
            lambda: deletions.run_forever(
                context.engine,
                providers.available,
                cancel=cancel,
                problems=providers.problems,
                options=options,
                on_report=on_report,
            ),
            cancel,
        )
    sys.exit(130)


def show_report(report: RunReport, as_json: bool) -> None:
    if as_json:
        emit_json(report.to_dict())
    if not report.providers:
        say("nothing due")
    for name, result in sorted(report.providers.items()):
        parts = [f"{result.done} done", f"{result.failed} failed"]
        if result.not_attempted:
            parts.append(f"{result.not_attempted} not attempted")
        if result.lease_lost:
            parts.append(f"{result.lease_lost} taken over by another worker")
        line = f"{name}: " + ", ".join(parts)
        if result.reason:
            line += f" — {result.reason}"
        say(line)
        for error in result.errors:
            say(f"  {name}: {error}")


def _run_until_interrupted(work: Callable[[], None], cancel: threading.Event) -> None:
    """Run ``work`` in a thread; Ctrl+C asks it to stop after the deliveries under way."""
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="deletions-main", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            say("stopping after the deliveries under way…")
            cancel.set()
    if "error" in box:
        raise box["error"]


@deletions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("--all", "include_done", is_flag=True, help="Include delivered tasks.")
@pass_state
@handle_errors
def list_command(state: CliState, as_json: bool, include_done: bool) -> None:
    """Tasks not yet delivered: provider, state, attempts, next attempt and the last error."""
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import deletions

    context = state.context()
    with open_providers(context.settings) as providers:
        available, problems = set(providers.available), dict(providers.problems)
    tasks = deletions.list_tasks(
        context.engine, include_done=include_done, available=available, problems=problems
    )
    if as_json:
        emit_json([task.to_dict() for task in tasks])
        return
    if not tasks:
        say("no deletion tasks" if include_done else "no pending deletion tasks")
        return
    now = dt.datetime.now(dt.UTC)
    rows = [("ID", "PROVIDER", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "REASON")]
    rows += [_row(task, now) for task in tasks]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[5]]).rstrip())


def _row(task: TaskView, now: dt.datetime) -> tuple[str, str, str, str, str, str]:
    if task.state != "pending":
        state = task.outcome or task.state
        if task.verified:
            state += ", verified"
        when = "-"
    else:
        state = "delivering" if task.leased_by else "pending"
        due = task.next_attempt_at
        when = "now" if due is None or due <= now else _local(due)
    return (
        str(task.id),
        task.provider,
        state,
        str(task.attempts),
        when,
        task.reason.replace("\n", " "),
    )


def _local(value: dt.datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


@deletions_group.command("retry")
@click.argument("task_id", type=int)
@pass_state
@handle_errors
def retry_command(state: CliState, task_id: int) -> None:
    """Make task TASK_ID due now; the next `deletions run` delivers it (audited)."""
    from plusjeklas_tui.services import deletions

    context = state.context()
    deletions.retry(context.engine, task_id, context.staff)
    say(f"deletion task {task_id} is due now; `plusjeklas deletions run --once` delivers it")


def register(group: click.Group) -> None:
    group.add_command(deletions_group)
