"""`plusjeklas plugins` and `plusjeklas sync`: the providers, from cron or a terminal."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.staff import identify


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_state
@handle_errors
def plugins_command(state: CliState, as_json: bool) -> None:
    """List every provider plugin found: version, kind, enabled, healthy (and why not).

    Exit code 1 when an enabled provider is unhealthy or a plugin failed to load.
    """
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services.provider_health import plugin_statuses

    settings = state.settings()
    identify(settings, state.user)
    with open_providers(settings) as providers:
        statuses = plugin_statuses(settings, providers)
    if as_json:
        emit_json([dataclasses.asdict(status) for status in statuses])
    else:
        rows = [("NAME", "VERSION", "KIND", "ENABLED", "HEALTHY", "REASON")]
        for s in statuses:
            healthy = "-" if s.healthy is None else ("yes" if s.healthy else "NO")
            rows.append(
                (s.name, s.version, s.kind, "yes" if s.enabled else "no", healthy, s.reason)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            click.echo("  ".join([*cells, row[5]]).rstrip())
    bad = any(s.healthy is False and s.enabled for s in statuses) or any(
        s.reason.startswith("failed to load") for s in statuses
    )
    sys.exit(1 if bad else 0)


@click.command("sync")
@click.option(
    "--provider",
    "names",
    multiple=True,
    help="Sync only this provider (repeatable). Default: every enabled provider.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each provider's run as JSON.")
@pass_state
@handle_errors
def sync_command(state: CliState, names: tuple[str, ...], as_json: bool) -> None:
    """Pull each provider's state and push local consent and contact changes to it.

    Shows a progress bar on a terminal and plain lines otherwise; Ctrl+C stops after the current
    page (the next sync resumes there). Exit code 1 when any provider failed.
    """
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import sync

    context = state.context()
    settings = context.settings
    with open_providers(settings) as providers:
        unknown = [n for n in names if n not in providers.available]
        for name in unknown:
            if name in providers.problems:
                raise ConfigError(f"provider {name} cannot be used: {providers.problems[name]}")
            known = ", ".join(sorted(providers.available)) or "none enabled"
            raise ConfigError(f"--provider {name}: no such enabled provider (enabled: {known})")
        chosen = providers.chosen(list(names))
        if not chosen:
            say("no provider is enabled: set enabled = true in a [plugins.<name>] table")
            sys.exit(1)
        problems = {} if names else dict(providers.problems)
        cancel = threading.Event()
        with ProgressDisplay(sys.stderr.isatty()) as show:
            reports = _run_interruptibly(
                lambda: sync.sync(
                    context.engine,
                    chosen,
                    context.staff,
                    settings.consent_purposes,
                    cancel=cancel,
                    progress=show,
                ),
                cancel,
            )
    if as_json:
        emit_json([dataclasses.asdict(report) for report in reports])
    for report in reports:
        line = (
            f"{report.provider}: {report.state} — {report.fetched} fetched, "
            f"{report.applied} applied, {report.unknown} unknown, {report.pushed} pushed, "
            f"{report.push_failed} push failures, {report.no_basis} not pushed (no basis)"
        )
        say(line + (f"; {report.error}" if report.error else ""))
    for name, reason in problems.items():
        say(f"{name}: not synced — {reason}")
    failed = problems or any(report.state == sync.RunState.FAILED for report in reports)
    cancelled = any(report.state == sync.RunState.CANCELLED for report in reports)
    sys.exit(1 if failed else (130 if cancelled else 0))


def _run_interruptibly(work: Callable[[], list], cancel: threading.Event) -> list:
    """Run ``work`` in a thread; Ctrl+C asks it to stop between pages instead of killing it."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="sync-main", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            say("stopping after the current page…")
            cancel.set()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class ProgressDisplay:
    """A rich progress bar per provider on a terminal; a plain line per page otherwise."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.tasks: dict[str, int] = {}
        self.progress = None

    def __enter__(self) -> Callable:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self.progress.start()
        return self.show

    def show(self, update: object) -> None:
        from plusjeklas_tui.services.sync import SyncProgress

        assert isinstance(update, SyncProgress)
        note = f"{update.phase} · {update.applied} applied · {update.unknown} unknown"
        if self.progress is None:
            total = f"/{update.total}" if update.total is not None else ""
            say(f"{update.provider}: {update.phase} {update.done}{total} ({note})")
            return
        task = self.tasks.get(update.provider)
        if task is None:
            task = self.progress.add_task(update.provider, total=update.total, note=note)
            self.tasks[update.provider] = task
        self.progress.update(task, completed=update.done, total=update.total, note=note)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def register(group: click.Group) -> None:
    group.add_command(plugins_command)
    group.add_command(sync_command)
