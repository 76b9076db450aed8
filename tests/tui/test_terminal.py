"""The real thing: `plusjeklas` in a real terminal (tmux), driven by keys, read off the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
)


class Terminal:
    def __init__(self, command: str, *, term: str, size: tuple[int, int] = (80, 24)) -> None:
        self.name = f"plusjeklas-{uuid.uuid4().hex[:8]}"
        cols, rows = size
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(cols),
                "-y",
                str(rows),
                f"env TERM={term} {command}; sleep 30",
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear; the screen shows:\n{self.screen()}")

    def press(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.15)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize("term", ["xterm-256color", "screen-256color"])
def test_app_runs_in_a_real_terminal(ctx: AppContext, config_path: Path, term: str) -> None:
    with session_scope(ctx.engine) as s:
        s.add(
            Organisation(
                name="OBS De Klimop",
                street="Kerkstraat 1",
                postcode="1234 AB",
                city="Utrecht",
                brin="05KO",
                phone="+31201234567",
            )
        )
    env = f"PYTHONPATH={shlex.quote(str(ROOT))} PLUSJEKLAS_CONFIG={shlex.quote(str(config_path))}"
    done = config_path.parent / "exit-code"
    command = f"{env} {shlex.quote(sys.executable)} -m plusjeklas_tui; echo $? > {done}"
    terminal = Terminal(command, term=term)
    try:
        terminal.wait_for("Subscriptions")  # the dashboard (config language is English)
        terminal.press("?")
        terminal.wait_for("Keys on this screen")
        terminal.press("Escape")
        terminal.press("o")
        terminal.wait_for("Schools")
        terminal.press("q")
        terminal.wait_for("Subscriptions")
        terminal.press("q")
        _wait_for_file(done)
        assert done.read_text().strip() == "0"
    finally:
        terminal.close()
    assert not os.environ.get("PLUSJEKLAS_CONFIG")  # nothing leaked into this process


def _wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_demo_opens_the_app_in_a_real_terminal(tmp_path: Path) -> None:
    """README's first command, minus the install: `plusjeklas demo` prepares and opens the app."""
    done = tmp_path / "exit-code"
    database = tmp_path / "demo" / "plusjeklas-demo.db"
    command = (
        f"PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m plusjeklas_tui "
        f"demo --schools 40 --db {shlex.quote(str(database))}; echo $? > {done}"
    )
    terminal = Terminal(command, term="xterm-256color", size=(100, 30))
    try:
        terminal.wait_for("Abonnementen", timeout=40)  # the demo's config is Dutch, the default
        terminal.press("o")
        terminal.wait_for("40 scholen")
        terminal.press("G")
        terminal.press("q")
        terminal.wait_for("Abonnementen")
        terminal.press("q")
        _wait_for_file(done)
        assert done.read_text().strip() == "0"
    finally:
        terminal.close()
    assert (database.parent / "plusjeklas.toml").exists()
