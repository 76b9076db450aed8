"""`plusjeklas db ...`: schema migrations."""

from __future__ import annotations

import click

from plusjeklas_tui import db as database
from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.staff import Permission, identify


@click.group("db")
def db_group() -> None:
    """Database schema: migrations and status."""


@db_group.command("upgrade")
@pass_state
@handle_errors
def upgrade(state: CliState) -> None:
    """Migrate the database to this version's schema (creates it when new)."""
    settings = state.settings()
    identify(settings, state.user).require(Permission.MANAGE_KEYS, "migrate the database")
    engine = database.make_engine(settings.database_url)
    try:
        before = database.current_revision(engine)
        database.upgrade(engine)
        after = database.current_revision(engine)
    finally:
        engine.dispose()
    say(f"database {'already at' if before == after else 'migrated to'} revision {after}")


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_state
@handle_errors
def status(state: CliState, as_json: bool) -> None:
    """Show the database's revision and the revision this version needs."""
    settings = state.settings()
    identify(settings, state.user)
    engine = database.make_engine(settings.database_url)
    try:
        current = database.current_revision(engine)
    finally:
        engine.dispose()
    head = database.head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "ready": current == head})
    else:
        click.echo(f"current: {current or '(none)'}\nhead:    {head}")


def register(group: click.Group) -> None:
    group.add_command(db_group)
