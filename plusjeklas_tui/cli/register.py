"""`plusjeklas register`: the register of processing activities (GDPR art. 30), and its check.

The register is Markdown on stdout (``--json`` for machines). The self-check against the
database always runs: its problems go to stderr and make the exit code 1, after the register
was printed, so a cron job that keeps the register up to date also notices when it is wrong.
``--check`` prints only the check.
"""

from __future__ import annotations

import sys

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state, say


@click.command("register")
@click.option("--check", "check_only", is_flag=True, help="Only run the self-check; no register.")
@click.option(
    "--language",
    type=click.Choice(["nl", "en"]),
    default=None,
    help="Language of the register (default: the configuration's language).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the register and problems as JSON.")
@pass_state
@handle_errors
def register_command(
    state: CliState, check_only: bool, language: str | None, as_json: bool
) -> None:
    """Print the register of processing activities and check it against the database.

    Controller, purposes with their legal basis, categories of people and of data, the
    processors of the enabled plugins, transfers outside the EEA with their safeguard,
    retention per category and the security measures in force. Exit 1 when the database holds
    something the register does not name.
    """
    from plusjeklas_tui.plugins import discover
    from plusjeklas_tui.services.register import (
        build_register,
        check_register,
        provider_infos_of,
        render_markdown,
    )
    from plusjeklas_tui.staff import Permission

    context = state.context()
    context.staff.require(Permission.READ, "see the register of processing")
    plugin_set = discover()
    for failure in plugin_set.failures:
        say(f"plugin {failure.name} did not load: {failure.reason}")
    register = build_register(
        context.settings, provider_infos_of(plugin_set, context.settings), engine=context.engine
    )
    problems = check_register(context.engine, register)
    if as_json:
        emit_json(
            {
                "register": None if check_only else register.as_dict(),
                "problems": [{"code": p.code, "message": p.message} for p in problems],
            }
        )
    elif not check_only:
        chosen = language or context.settings.language
        click.echo(render_markdown(register, "nl" if chosen == "nl" else "en"), nl=False)
    for problem in problems:
        say(f"Problem: {problem.message}")
    if problems:
        say(f"the register is not complete: {len(problems)} problem(s)")
        sys.exit(1)
    if check_only:
        say("the register names every category of data the database holds")


def register(main: click.Group) -> None:
    main.add_command(register_command)
