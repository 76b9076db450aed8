"""`plusjeklas keys ...`: create, rotate and inspect the field-encryption keys."""

from __future__ import annotations

import sys

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.services.keys import (
    DEFAULT_BATCH_SIZE,
    KeyStatus,
    RotationReport,
    init_key,
    key_source,
    key_status,
    rotate_keys,
)


@click.group("keys")
def keys_group() -> None:
    """Field-encryption keys: create, rotate, inspect."""


@keys_group.command("init")
@pass_state
@handle_errors
def init(state: CliState) -> None:
    """Create the key file with a new key (mode 0600). Never overwrites an existing key.

    Needs no staff role and no database: it is part of installing. It refuses when the key
    file exists, and when the configured database already holds data under another key.
    """
    path = init_key(state.settings())
    say(
        f"created key file {path} (mode 0600) with one new key. Keep a copy apart from the "
        "database backups: without it the personal data cannot be read."
    )


def _show_progress(table: str, done: int, to_do: int) -> None:
    say(f"{table}: {done}/{to_do} rows re-encrypted")


@keys_group.command("rotate")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows re-encrypted per committed transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@pass_state
@handle_errors
def rotate(state: CliState, batch_size: int, as_json: bool) -> None:
    """Re-encrypt every personal value under a new key (admin).

    Safe to interrupt: run it again and it finishes the same rotation. Until it has finished
    the key file holds the old and the new key. Run it while no other session is open:
    sessions opened earlier know only the old key.
    """
    context = state.context()
    report = rotate_keys(
        context.engine,
        context.settings,
        context.staff,
        batch_size=batch_size,
        progress=_show_progress,
    )
    if as_json:
        emit_json(report.to_dict())
    _summarise_rotation(report)
    if not report.complete:
        sys.exit(1)


def _summarise_rotation(report: RotationReport) -> None:
    verb = "resumed and finished" if report.resumed else "finished"
    if report.complete:
        say(
            f"rotation {verb}: {report.total_rows} rows re-encrypted in {report.batches} "
            f"batches; primary key {report.primary_key_id}; retired "
            f"{', '.join(report.retired_key_ids) or 'no key'}"
        )
    else:
        say(
            f"rotation not finished: {report.rows_left} rows are still under an old key "
            "(another session kept writing them). The key file keeps both keys, so every row "
            "stays readable; run `plusjeklas keys rotate` again when the other sessions are closed"
        )


@keys_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_state
@handle_errors
def status(state: CliState, as_json: bool) -> None:
    """Show the loaded keys and how many rows each key encrypts, per table.

    Exits 1 when some data is under a key that is not loaded (it cannot be read).
    """
    context = state.context()
    result = key_status(context.engine, context.keyring, source=key_source(context.settings))
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(_describe_status(result))
    if result.unknown_key_ids:
        sys.exit(1)  # monitoring: some data cannot be read with the configured keys


def _describe_status(result: KeyStatus) -> str:
    lines = [
        f"keys loaded: {len(result.key_ids)} ({result.source})",
        f"primary key: {result.primary_key_id}",
    ]
    for table_name, per_key in result.rows_by_key.items():
        counts = ", ".join(f"{key_id} {rows} rows" for key_id, rows in per_key.items())
        lines.append(f"{table_name}: {counts or 'no encrypted values'}")
    if result.unknown_key_ids:
        lines.append(
            f"NOT READABLE: data under key(s) {', '.join(result.unknown_key_ids)}, which are "
            "not loaded; configure the key file that holds them"
        )
    if result.rows_not_under_primary or len(result.key_ids) > 1:
        lines.append(
            f"rotation pending: {result.rows_not_under_primary} rows not yet under the primary "
            "key; run `plusjeklas keys rotate`"
        )
    return "\n".join(lines)


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(keys_group)
