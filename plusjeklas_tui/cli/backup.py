"""`plusjeklas backup PATH` and `plusjeklas restore PATH`: the whole database, erasures kept.

``restore`` replaces every record, so it asks first on a terminal (type ``restore``) and refuses
without one unless ``--yes`` (exit 2). What it says before asking comes from the backup file
and the current database: when the backup was taken, its schema revision, and how many
erasure receipts were made after it (those are replayed, so their subjects stay erased).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say

# The service is imported by the commands: every start of the staff app loads this module.


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what the backup holds as JSON.")
@pass_state
@handle_errors
def backup_command(state: CliState, path: Path, force: bool, as_json: bool) -> None:
    """Back up the database to PATH while the app stays in use (admin only).

    SQLite: a consistent copy by SQLite's online backup API. PostgreSQL: pg_dump's custom
    format. PATH gets mode 0600 and appears only when complete.
    """
    from plusjeklas_tui.services import backup

    context = state.context()
    info = backup.backup(context.engine, context.staff, path, force=force)
    if as_json:
        emit_json(info.as_dict())
        return
    say(
        f"backed up to {info.path} (revision {info.revision}, "
        f"{info.receipt_high_water} as the last erasure receipt)"
    )


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Restore without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
@handle_errors
def restore_command(state: CliState, path: Path, yes: bool, as_json: bool) -> None:
    """Replace the database with the backup at PATH, keeping every erasure made since (admin).

    Erasure receipts made after the backup are replayed: their subjects are erased again and
    their provider deletion tasks are carried over as they are (pending ones stay pending).
    """
    from sqlalchemy import func, select

    from plusjeklas_tui.errors import PlusjeklasError
    from plusjeklas_tui.models import ErasureReceipt
    from plusjeklas_tui.services import backup
    from plusjeklas_tui.staff import Permission

    context = state.context(require_ready=False)
    context.staff.require(Permission.MANAGE_KEYS, "restore the database from a backup")
    info = backup.describe(path)
    if not yes:
        if not sys.stdin.isatty():
            say("a restore replaces every record; not restoring without confirmation: pass --yes")
            sys.exit(2)
        later = 0
        try:
            with context.engine.connect() as conn:
                later = conn.execute(
                    select(func.count())
                    .select_from(ErasureReceipt)
                    .where(ErasureReceipt.id > info.receipt_high_water)
                ).scalar_one()
        except Exception:  # an empty or damaged database: nothing to count
            later = 0
        taken = "unknown" if info.taken_at is None else f"{info.taken_at:%Y-%m-%d %H:%M} UTC"
        answer = click.prompt(
            f"Replace every record with the backup taken {taken} (revision {info.revision})? "
            f"{later} erasure receipts made after it will be replayed. Type 'restore'",
            default="",
            show_default=False,
            err=True,
        )
        if answer.strip() != "restore":
            raise PlusjeklasError("not confirmed: nothing was restored")
    result = backup.restore(context.engine, context.staff, path)
    if as_json:
        emit_json(result.as_dict())
    say(result.summary())


def register(group: click.Group) -> None:
    group.add_command(backup_command)
    group.add_command(restore_command)
