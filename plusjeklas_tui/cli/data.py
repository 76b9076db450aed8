"""`plusjeklas import FILE.csv` and `plusjeklas export --brin BRIN`: shells over the services."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.orm import Session

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope

# The importer and exporter are imported by their commands only: every start of the staff app
# loads this module to register the commands, and pays for what it imports.


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--dry-run", is_flag=True, help="Check every row and report what would change; change nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON on stdout.")
@pass_state
@handle_errors
def import_command(state: CliState, file: Path, dry_run: bool, as_json: bool) -> None:
    """Import schools, administrators and subscriptions from FILE (CSV, UTF-8).

    Header: name,street,postcode,city,brin,phone,email,iban,admin_name,admin_phones,
    admin_email,plan,start_date,end_date. All-or-nothing: one rejected row and nothing is
    imported. Re-importing the same file changes nothing (the BRIN is the key). No consent
    is imported: the file has no consent columns. Exit code 0 when imported (or a clean dry
    run), 1 when rows were rejected or the file is unusable.
    """
    from plusjeklas_tui.services.importer import ImportFileError, import_csv

    context = state.context()
    with Session(context.engine, expire_on_commit=False) as session:
        try:
            report = import_csv(session, context.staff, file, dry_run=dry_run)
        except ImportFileError as exc:
            if as_json:
                emit_json({"ok": False, "committed": False, "error": str(exc)})
            raise
    for line in report.lines():
        say(line)
    if as_json:
        emit_json(report.to_dict())
    if not report.ok:
        raise SystemExit(1)


@click.command("export")
@click.option("--brin", required=True, help="BRIN of the school to export, e.g. 05KO.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Accepted; output is JSON.")
@pass_state
@handle_errors
def export_command(state: CliState, brin: str, as_json: bool) -> None:
    """Print one school, its people, subscriptions and consent history as JSON (audited)."""
    from plusjeklas_tui.cli.retention import _plugin_set
    from plusjeklas_tui.services.erasure import provider_targets
    from plusjeklas_tui.services.exporter import export_organisation

    context = state.context()
    targets = provider_targets(context.settings, _plugin_set())
    with session_scope(context.engine) as session:
        data = export_organisation(
            session,
            context.staff,
            brin,
            purposes=context.settings.consent_purposes,
            retention=context.settings.retention,
            targets=targets,
        )
    emit_json(data)  # only once the audit event is committed


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(import_command)
    group.add_command(export_command)
