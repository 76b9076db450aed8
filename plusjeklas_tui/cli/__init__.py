"""The `plusjeklas` command: a thin click shell over the services the TUI uses too."""

from __future__ import annotations

from pathlib import Path

import click

from plusjeklas_tui import __version__
from plusjeklas_tui.cli.common import CliState, handle_errors, say

COMMANDS: dict[str, str] = {
    "db": "db",
    "keys": "keys",
    "demo": "demo",
    "import": "data",
    "export": "data",
    "ssh-setup": "ssh",
    "plugins": "providers",
    "sync": "providers",
    "retention": "retention",
    "deletions": "deletions",
    "requests": "requests",
    "consent": "consent",
    "breaches": "breaches",
    "feedback": "feedback",
    "register": "register",
    "audit": "audit",
    "backup": "backup",
    "restore": "backup",
}
"""Command name -> the module of ``plusjeklas_tui.cli`` whose ``register(group)`` adds it."""


class LazyGroup(click.Group):
    """Imports a command's module only when that command is used (or listed by ``--help``).

    Plain ``plusjeklas`` opens the staff app over SSH, where every 10 ms of start-up shows; it
    should not import the code of eighteen commands it does not run.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            import importlib

            module = importlib.import_module(f"plusjeklas_tui.cli.{COMMANDS[cmd_name]}")
            module.register(self)
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: $PLUSJEKLAS_CONFIG, then the user config directory).",
)
@click.option(
    "--user",
    default=None,
    help="Act as this staff member. Only for demo and tests: refused unless the "
    "configuration sets allow_user_override = true.",
)
@click.version_option(__version__, prog_name="plusjeklas")
@click.pass_context
@handle_errors
def main(ctx: click.Context, config_path: Path | None, user: str | None) -> None:
    """Plusjeklas privacy back office. Without a command, opens the staff app."""
    state = ctx.ensure_object(CliState)
    state.config_path = config_path
    state.user = user
    ctx.call_on_close(state.close)
    if ctx.invoked_subcommand is None:
        open_app(state)


def open_app(state: CliState) -> None:
    """Open the staff app on the configured database."""
    import sys

    from plusjeklas_tui.cli.ssh import use_utf8_output
    from plusjeklas_tui.tui.run import run_app

    context = state.context()
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        say("the staff app needs a terminal; see `plusjeklas --help` for the commands")
        sys.exit(2)
    use_utf8_output()  # over SSH the client's locale may be C or not UTF-8
    sys.exit(run_app(context))
