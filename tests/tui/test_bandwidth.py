"""What the app costs a staff member on a slow VPN: the bytes it writes to its terminal.

The real ``plusjeklas`` runs on the slave side of a pseudo-terminal (80x24, xterm-256color, the
terminal its controlling tty, as under ``sshd``); a thread drains the master side all the time,
so the app never blocks on a full terminal, and keeps every byte. The test terminal answers the
app's query for synchronized output (mode 2026) as kitty, WezTerm, foot or Windows Terminal do,
so Textual brackets every frame with ``ESC[?2026h`` ... ``ESC[?2026l`` and frames can be told
apart and counted; that adds 16 bytes a frame and changes nothing else.

The issue's rules, on the organisations list with more rows than fit:

* idle screens send nothing, also across the 5-second automatic refresh (which does run: a
  change made by someone else appears, for no more bytes than a cursor move);
* a cursor move within the visible rows sends at most 2 KB;
* no single key sends more than one full repaint of the screen, measured as the largest frame
  of a full redraw at this size (shrink the terminal a line, grow it back).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Organisation
from plusjeklas_tui.services import demo
from plusjeklas_tui.tui.app import PlusjeklasApp

ROOT = Path(__file__).resolve().parents[2]
COLUMNS, ROWS = 80, 24
SCHOOLS = 200
"""Far more than the 20 rows that fit, so `G` and PageDown scroll."""

CURSOR_MOVE_LIMIT = 2048
IDLE_SECONDS = PlusjeklasApp.auto_refresh_seconds + 1
"""Long enough that an automatic refresh happens while the list is idle."""
QUIET = 0.5
"""No output for this long: the app has finished answering a key."""

SYNC_QUERY = b"\x1b[?2026$p"
SYNC_SUPPORTED = b"\x1b[?2026;2$y"
FRAME = re.compile(rb"\x1b\[\?2026h.*?\x1b\[\?2026l", re.DOTALL)
KEYS = {
    "j": b"j",
    "k": b"k",
    "down": b"\x1b[B",
    "up": b"\x1b[A",
    "G": b"G",
    "g": b"g",
    "pagedown": b"\x1b[6~",
    "pageup": b"\x1b[5~",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "s": b"s",
    "ctrl+r": b"\x12",
}
QUIET_KEYS = {"ctrl+r"}
"""Keys that may rightly send nothing: a refresh when nothing changed."""
_CONTROL = re.compile(
    rb"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, modes
    rb"|\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    rb"|P[^\x1b]*\x1b\\"  # DCS
    rb"|[()][0-9A-Za-z]|[=>78NOMDEHc])"
)


def text_of(output: bytes) -> str:
    """The printable text in terminal output (escape sequences removed)."""
    return _CONTROL.sub(b"", output).decode("utf-8", "replace")


def frames_in(output: bytes) -> list[bytes]:
    return FRAME.findall(output)


class Terminal:
    """A pseudo-terminal running the app, with a thread that reads everything it writes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        self._set_size(slave, COLUMNS, ROWS)
        pid = os.fork()
        if pid == 0:  # the child: the pty becomes its controlling terminal, as under sshd
            try:
                os.close(master)
                os.login_tty(slave)
                # a fresh signal state, as a login has: a test runner's worker may have blocked
                # or ignored signals (SIGWINCH above all), and both survive exec
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                for number in (signal.SIGWINCH, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(number, signal.SIG_DFL)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        os.close(slave)
        self.pid = pid
        self.master = master
        self.exit_code: int | None = None
        self._output = bytearray()
        self._lock = threading.Lock()
        self._answered = False
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @staticmethod
    def _set_size(fd: int, columns: int, rows: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the app has closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk
                asked = not self._answered and SYNC_QUERY in self._output
                self._answered = self._answered or asked
            if asked:
                os.write(self.master, SYNC_SUPPORTED)

    # ------------------------------------------------------------------ reading

    @property
    def written(self) -> int:
        with self._lock:
            return len(self._output)

    def since(self, mark: int) -> bytes:
        with self._lock:
            return bytes(self._output[mark:])

    def wait_for(self, pattern: str, *, since: int = 0, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, text_of(self.since(since))):
            if time.monotonic() > deadline:
                shown = text_of(self.since(max(since, self.written - 3000)))
                raise AssertionError(f"{pattern!r} did not appear; the app last wrote {shown!r}")
            time.sleep(0.02)

    def settle(self, *, timeout: float = 15.0) -> None:
        """Wait until the app has written nothing for :data:`QUIET` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.written
            time.sleep(QUIET)
            if self.written == before:
                return
        raise AssertionError(f"the app kept writing for {timeout} s")

    # ------------------------------------------------------------------ input

    def press(self, key: bytes, *, answered: bool = True) -> bytes:
        """Send *key*; everything the app writes in answer, once it has gone quiet.

        With *answered* (the key changes the screen), first wait for the answer to start, so
        a busy machine cannot make a slow answer count for the next key.
        """
        mark = self.written
        os.write(self.master, key)
        deadline = time.monotonic() + 15
        while answered and self.written == mark:
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer to {key!r}")
            time.sleep(0.01)
        self.settle()
        return self.since(mark)

    def resize(self, columns: int, rows: int) -> bytes:
        """Resize the terminal (the kernel signals the app); what the app writes in answer."""
        mark = self.written
        self._set_size(self.master, columns, rows)
        deadline = time.monotonic() + 15
        while self.written == mark:  # a busy machine may take a while to start answering
            if time.monotonic() > deadline:
                raise AssertionError("the app did not answer the resize within 15 s")
            time.sleep(0.01)
        self.settle()
        return self.since(mark)

    # ------------------------------------------------------------------ ending

    def wait_exit(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                return self.exit_code
            time.sleep(0.05)
        raise AssertionError(f"the app did not exit within {timeout} s")

    def close(self) -> None:
        if self.exit_code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
        os.close(self.master)
        self._reader.join(timeout=5)


@pytest.fixture
def terminal(ctx: AppContext, config_path: Path) -> Iterator[Terminal]:
    """The staff app on :data:`SCHOOLS` generated schools, showing the organisations list."""
    demo.generate(ctx.engine, ctx.keyring, schools=SCHOOLS, actor=ctx.staff)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"COLORTERM", "NO_COLOR", "PLUSJEKLAS_CONFIG", "COLUMNS", "LINES"}
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PLUSJEKLAS_CONFIG=str(config_path),
        TERM="xterm-256color",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
    )
    app = Terminal([sys.executable, "-m", "plusjeklas_tui"], env)
    try:
        app.wait_for(r"\d\s*Ended")  # the dashboard with its figures (config: English)
        mark = app.written
        app.press(b"o")
        app.wait_for(rf"\b{SCHOOLS} schools\b", since=mark)
        app.settle()
        assert frames_in(app.since(mark)), "the test terminal's synchronized output is not used"
        yield app
    finally:
        app.close()


def full_repaint(
    terminal: Terminal, status: str = rf"\b{SCHOOLS} schools\b", filter_text: str = "Search"
) -> int:
    """Bytes of one full repaint of the list at 80x24: shrink a line, grow back, largest frame.

    The filter line shows *filter_text* (the placeholder when empty) and *status* (a pattern:
    the count of schools listed).
    """
    terminal.resize(COLUMNS, ROWS - 1)
    largest = max(frames_in(terminal.resize(COLUMNS, ROWS)), key=len)
    shown = text_of(largest)
    assert len(largest) >= COLUMNS * ROWS  # every cell is written at least once
    assert re.search(status, shown) and "Postcode" in shown and filter_text in shown
    return len(largest)


def quit_app(terminal: Terminal) -> None:
    terminal.press(b"\x11", answered=False)  # Ctrl+Q
    assert terminal.wait_exit() == 0


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_idle_list_sends_nothing_and_list_keys_stay_small(
    terminal: Terminal, ctx: AppContext
) -> None:
    # (a) idle: nothing at all, also while the list refreshes itself in the background
    mark = terminal.written
    time.sleep(IDLE_SECONDS)
    assert terminal.since(mark) == b""

    # ... and that refresh does run: someone else's change shows, as cheaply as a cursor move
    with session_scope(ctx.engine) as session:
        school = session.scalars(
            select(Organisation).order_by(Organisation.name, Organisation.id).limit(1)
        ).one()
        school.city = "Refreshdorp"
    mark = terminal.written
    terminal.wait_for("Refreshdorp", since=mark, timeout=IDLE_SECONDS + 5)
    terminal.settle()
    assert 0 < len(terminal.since(mark)) <= CURSOR_MOVE_LIMIT

    # (b) a cursor move within the visible rows
    moves = []
    for name in ("j", "j", "k", "j", "down", "up"):
        moved = terminal.press(KEYS[name])
        assert frames_in(moved), f"`{name}` drew nothing"
        assert len(moved) <= CURSOR_MOVE_LIMIT, f"`{name}` sent {len(moved)} bytes"
        moves.append(len(moved))

    # (c) no key sends more than one full repaint (measured after the keys: the first key
    # after a resize also draws what Textual left dirty then)
    sent = {}
    for name, key in KEYS.items():
        sent[name] = len(terminal.press(key, answered=name not in QUIET_KEYS))
    limit = full_repaint(terminal)
    too_much = {name: size for name, size in sent.items() if size > limit}
    assert not too_much, f"more than one full repaint ({limit} bytes): {too_much}"
    assert sent["G"] > 3 * max(moves)  # `G` redrew every row: the limit means something
    quit_app(terminal)


FILTER_KEYS = (("/", b"/"), ("s", b"s"), ("c", b"c"), ("h", b"h"), ("escape", b"\x1b"))
"""`/`, three letters (each settles and filters the list), Escape back to the list."""


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_filter_keys_send_at_most_one_full_repaint(terminal: Terminal) -> None:
    sent = {}
    for name, key in FILTER_KEYS:
        answer = terminal.press(key)
        assert frames_in(answer), f"`{name}` drew nothing"
        sent[name] = len(answer)
    # the letters did filter (fewer schools than all of them), and Escape left the input:
    # `j` moves the list's cursor instead of typing into the filter
    counts = re.findall(r"\b(\d+) schools\b", text_of(terminal.since(0)))
    assert counts and 1 < int(counts[-1]) < SCHOOLS
    assert frames_in(terminal.press(b"j"))
    limit = full_repaint(terminal, rf"\b{counts[-1]} schools\b", "sch")
    too_much = {name: size for name, size in sent.items() if size > limit}
    assert not too_much, f"more than one full repaint ({limit} bytes): {too_much}"
    quit_app(terminal)
