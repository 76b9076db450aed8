"""`plusjeklas demo`: a demo installation with generated Dutch schools, then the app on it."""

from __future__ import annotations

from pathlib import Path

import click

from plusjeklas_tui.cli.common import CliState, handle_errors, pass_state, say

# The demo generator is imported by the command only: every start of the staff app loads this
# module to register the command. So the option defaults are literals here; a test keeps them
# equal to the service's DEFAULT_SCHOOLS and DEFAULT_SEED.
DEFAULT_SCHOOLS = 200
DEFAULT_SEED = 1


class _Progress:
    """Says how far generation is, once per tenth of the schools (on stderr)."""

    def __init__(self) -> None:
        self.last_tenth = 0

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > self.last_tenth:
            self.last_tenth = tenth
            say(f"  {done:,} of {total:,} schools ({tenth * 10}%)")


@click.command("demo")
@click.option(
    "--schools",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_SCHOOLS,
    show_default=True,
    help="How many schools to generate (only when the demo database is new).",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="Random seed: the same seed gives the same schools and people.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Demo database file; its config and key file are written next to it "
    "(default: demo/plusjeklas-demo.db in the user data directory).",
)
@click.option("--no-tui", is_flag=True, help="Prepare the demo, but do not open the app.")
@pass_state
@handle_errors
def demo(state: CliState, schools: int, seed: int, db_path: Path | None, no_tui: bool) -> None:
    """Create (or reuse) a demo database of generated Dutch schools and open the app on it.

    The demo gets its own plusjeklas.toml and key file next to the database, with you as
    admin; `PLUSJEKLAS_CONFIG=<that file> plusjeklas ...` then runs any command on it.
    """
    from plusjeklas_tui.services import demo as demo_service

    path = (db_path or demo_service.default_database_path()).expanduser().resolve()
    say(f"Preparing the demo database {path} ...")
    setup = demo_service.prepare_demo(path, schools=schools, seed=seed, progress=_Progress())
    counts = setup.counts
    summary = (
        f"{counts.schools:,} schools, {counts.administrators:,} administrators, "
        f"{counts.subscriptions:,} subscriptions, {counts.consent_events:,} consent events"
    )
    if setup.reused:
        say(f"Reusing the existing demo database ({summary}); it is not regenerated.")
        say("  Delete the database file for a new one; --schools and --seed apply only then.")
    else:
        say(f"Demo database ready: {summary}.")
    say(f"Demo configuration: {setup.config_path}")
    say(f"Use it for every command: PLUSJEKLAS_CONFIG={setup.config_path} plusjeklas ...")
    if no_tui:
        return
    from plusjeklas_tui.cli import open_app  # here: the cli package imports this module

    state.close()
    state.config_path = setup.config_path
    open_app(state)


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(demo)
