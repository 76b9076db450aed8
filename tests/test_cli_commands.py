"""The command table of the lazy `plusjeklas` group matches what the command modules register,
and opening the app imports none of them."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click

from plusjeklas_tui.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def test_every_command_module_registers_exactly_its_commands() -> None:
    by_module: dict[str, set[str]] = {}
    for name, module in COMMANDS.items():
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        group = click.Group()
        importlib.import_module(f"plusjeklas_tui.cli.{module}").register(group)
        assert set(group.commands) == names, module


def test_every_cli_module_with_commands_is_in_the_table() -> None:
    folder = REPO / "plusjeklas_tui" / "cli"
    registering = {path.stem for path in folder.glob("*.py") if "def register(" in path.read_text()}
    assert registering == set(COMMANDS.values())


def test_each_command_resolves_and_help_lists_them_all() -> None:
    ctx = click.Context(main)
    for name in COMMANDS:
        assert main.get_command(ctx, name) is not None, name
    assert main.get_command(ctx, "no-such-command") is None
    assert main.list_commands(ctx) == sorted(COMMANDS)


def test_importing_the_command_loads_no_command_module() -> None:
    code = (
        "import sys, plusjeklas_tui.cli as cli; "
        "print(sorted(m for m in sys.modules if m.startswith('plusjeklas_tui.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "['plusjeklas_tui.cli.common']"
