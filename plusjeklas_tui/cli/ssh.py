"""`plusjeklas ssh-setup USER`: what an administrator gives a staff member for SSH access.

Also :func:`use_utf8_output`, which the staff app calls before Textual starts: over SSH the
locale is whatever the client sent (or nothing).
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import click

from plusjeklas_tui.cli.common import CliState, emit_json, handle_errors, pass_state
from plusjeklas_tui.services.ssh_access import SshAccess, ssh_access
from plusjeklas_tui.staff import ROLE_PERMISSIONS, identify


def use_utf8_output() -> None:
    """Make stdout and stderr UTF-8 whatever the locale says.

    An SSH client may send ``LANG=C``, a locale the server does not have, or nothing. Python
    coerces a plain C locale to UTF-8 by itself (PEP 538/540), but a non-UTF-8 locale that
    exists on the server (``en_US.ISO-8859-1``) or ``PYTHONIOENCODING=ascii`` would leave the
    streams in an encoding that cannot write the box-drawing characters Textual paints with
    (Textual writes to stderr), and the app would die on its first frame. Every terminal emulator
    a staff member uses speaks UTF-8.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        reconfigure = getattr(stream, "reconfigure", None)
        if not encoding or reconfigure is None:
            continue
        try:
            is_utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            is_utf8 = False
        if not is_utf8:
            reconfigure(encoding="utf-8", errors=stream.errors)  # keep how it handles errors


@click.command("ssh-setup")
@click.argument("username", metavar="USER")
@click.option(
    "--role",
    type=click.Choice(list(ROLE_PERMISSIONS)),
    default="viewer",
    show_default=True,
    help="The role for the [staff] entry.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The staff member's OpenSSH public key file (.pub); without it the line has a "
    "placeholder.",
)
@click.option(
    "--program",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Absolute path of the plusjeklas executable the forced command runs "
    "(default: this installation's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object on stdout.")
@pass_state
@handle_errors
def ssh_setup(
    state: CliState,
    username: str,
    role: str,
    key_file: Path | None,
    program: Path | None,
    as_json: bool,
) -> None:
    """Print what gives USER the staff app over SSH (admin).

    The authorized_keys line with the forced command (it names this configuration, so the
    client cannot choose another), the [staff] entry, and the commands for root on the server.
    Nothing is changed: read it, then run it. docs/ssh.md explains the whole set-up.
    """
    settings = state.settings()
    staff = identify(settings, state.user)
    access = ssh_access(settings, staff, username, role, key_file=key_file, program=program)
    if as_json:
        emit_json(access.to_dict())
    else:
        click.echo(describe(access))


def describe(access: SshAccess) -> str:
    """The set-up as text an administrator reads top to bottom."""
    lines = [
        f"# 1. In {access.config_path}, under [staff]:",
        access.staff_entry,
        "",
        f"# 2. The authorized_keys line for {access.username} (one line):",
        access.authorized_keys_line,
        "",
        f"# 3. As root on this server (group {access.group}, account, key line, permissions):",
        *access.os_commands,
    ]
    if access.notes:
        lines += ["", "# Notes:", *(f"# - {note}" for note in access.notes)]
    lines += ["", "# The whole set-up, and why: docs/ssh.md"]
    return "\n".join(lines)


def register(group: click.Group) -> None:
    """Add this module's commands to *group*."""
    group.add_command(ssh_setup)
