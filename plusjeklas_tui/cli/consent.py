"""`plusjeklas consent ...`: proof of consent, newsletter bases, and the audience check.

* ``proof ADMIN_ID`` prints the person's consent history with its evidence as a document
  (Markdown in the configured language, or JSON). It holds the person's name and address: it is
  meant for them or a regulator. Needs the export permission.
* ``basis ADMIN_ID`` shows whether the person may receive the newsletter and on which basis.
* ``customer-basis ADMIN_ID`` records the existing-customer exception with its evidence.
* ``audience-check`` compares the newsletter provider's members with the bases here, member by
  member, by ids only; exit code 1 on any mismatch.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import ConfigError

# The services are imported by the commands that use them: every start of the staff app loads
# this module to register the commands.


@click.group("consent")
def consent_group() -> None:
    """Consent: proof per person, newsletter bases, the audience check."""


@consent_group.command("proof")
@click.argument("administrator_id", type=int)
@click.option("--purpose", default=None, help="Only this purpose (default: every purpose).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json"]),
    default="md",
    show_default=True,
    help="Markdown document or JSON.",
)
@click.option(
    "--language",
    type=click.Choice(["nl", "en"]),
    default=None,
    help="Language of the Markdown document (default: the configured language).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of stdout.",
)
@pass_state
@handle_errors
def proof_command(
    state: CliState,
    administrator_id: int,
    purpose: str | None,
    fmt: str,
    language: str | None,
    output: Path | None,
) -> None:
    """The consent history of ADMIN_ID with its evidence, as a document."""
    from plusjeklas_tui.services import consent_proof

    context = state.context()
    with session_scope(context.engine) as session:
        proof = consent_proof.build_proof(
            session,
            context.staff,
            administrator_id,
            purpose,
            purposes=context.settings.consent_purposes,
        )
    if fmt == "json":
        text = consent_proof.to_json(proof) + "\n"
    else:
        text = consent_proof.to_markdown(proof, language or context.settings.language)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"proof of consent of administrator #{administrator_id} written to {output}")


@consent_group.command("basis")
@click.argument("administrator_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_state
@handle_errors
def basis_command(state: CliState, administrator_id: int, as_json: bool) -> None:
    """Whether ADMIN_ID may receive the newsletter, on which basis, and service mail."""
    from plusjeklas_tui.services import newsletter_basis
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.READ, "see a newsletter basis")
    with session_scope(context.engine) as session:
        standing = newsletter_basis.standing(session, administrator_id)
    if as_json:
        emit_json(standing.to_dict())
        return
    basis = standing.basis.value if standing.basis else "none"
    reason = newsletter_basis.REASONS[standing.reason][1]
    click.echo(f"administrator #{administrator_id}: newsletter basis {basis} ({reason})")
    click.echo(f"service announcements: {'yes' if standing.service else 'no'}")


def _utc(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "must be an ISO 8601 time with a zone, e.g. 2026-03-02T10:00:00+01:00"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter("must include a time zone, e.g. 2026-03-02T10:00:00Z")
    return moment


@consent_group.command("customer-basis")
@click.argument("administrator_id", type=int)
@click.option(
    "--collected-at",
    required=True,
    help="When the details were obtained with the sale (ISO 8601 with a zone).",
)
@click.option(
    "--objection-text",
    "objection_text_version",
    required=True,
    help="Version of the order form or contract text that offered the objection.",
)
@click.option(
    "--evidence", required=True, help="Where the proof is (the signed order form, its date)."
)
@pass_state
@handle_errors
def customer_basis_command(
    state: CliState,
    administrator_id: int,
    collected_at: str,
    objection_text_version: str,
    evidence: str,
) -> None:
    """Record the existing-customer exception for ADMIN_ID (Telecommunicatiewet 11.7(3))."""
    from plusjeklas_tui.services import newsletter_basis

    moment = _utc(collected_at)
    context = state.context()
    with session_scope(context.engine) as session:
        row = newsletter_basis.record_customer_basis(
            session,
            context.staff,
            administrator_id,
            collected_at=moment,
            objection_text_version=objection_text_version,
            evidence=evidence,
        )
        standing = newsletter_basis.standing(session, administrator_id)
    say(f"customer basis #{row.id} recorded for administrator #{administrator_id}")
    if standing.basis is None:
        say(f"note: no newsletter basis today: {newsletter_basis.REASONS[standing.reason][1]}")


@consent_group.command("audience-check")
@click.option("--provider", "name", default=None, help="The newsletter provider (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON on stdout.")
@pass_state
@handle_errors
def audience_check_command(state: CliState, name: str | None, as_json: bool) -> None:
    """Compare the newsletter audience with the bases here, member by member (ids only).

    Exit code 1 when any member or person does not match.
    """
    from plusjeklas_tui.runtime import open_providers
    from plusjeklas_tui.services import audience_check

    context = state.context()
    with open_providers(context.settings) as providers:
        chosen = audience_check.newsletter_providers(providers.chosen())
        if name is not None:
            chosen = [p for p in chosen if p.info.name == name]
            if not chosen:
                reason = providers.problems.get(name, "no such enabled newsletter provider")
                raise ConfigError(f"--provider {name}: {reason}")
        if not chosen:
            say("no newsletter provider is enabled")
            sys.exit(1)
        reports = [audience_check.check_audience(context.engine, p, context.staff) for p in chosen]
    if as_json:
        emit_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            click.echo(
                f"{report.provider}: {report.members} members, {report.subscribed} subscribed; "
                f"{report.with_basis} with a basis here, {report.matched} of them subscribed "
                "there"
            )
            for finding in report.findings:
                parts = [finding.kind]
                if finding.administrator_id is not None:
                    parts.append(f"administrator #{finding.administrator_id}")
                if finding.member_id is not None:
                    parts.append(f"member {finding.member_id}")
                if finding.status:
                    parts.append(f"status {finding.status}")
                if finding.reason:
                    parts.append(f"reason {finding.reason}")
                click.echo("  " + "  ".join(parts))
    sys.exit(0 if all(report.ok for report in reports) else 1)


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(consent_group)
