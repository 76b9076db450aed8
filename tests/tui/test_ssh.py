"""Staff access through a real OpenSSH server of the test's own, on a loopback port.

One installation per module, set up as docs/ssh.md says: a group owning the config, the key file
and the SQLite database; an OS account per person in that group; ``authorized_keys`` lines made
by the real ``plusjeklas ssh-setup`` (forced command, ``restrict,pty``). sshd runs with its own
config, host key and ``AuthorizedKeysFile``, and accepts ``LANG``, ``LC_*``, ``LOGNAME``,
``USER`` and ``PLUSJEKLAS_*`` from clients (as a careless server would), to show none of them
changes who you are or which configuration is used. The ``ssh`` client runs inside tmux for
the app, and as a plain subprocess for the stranger.

Needs root (to create accounts and start sshd), OpenSSH's server, tmux and, where the Python
under test sits below a folder other users cannot enter (``/root``), ``setfacl`` to let the
test's group through for the duration of the module. ``.ci/run`` installs what is missing.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import open_context
from plusjeklas_tui.crypto import FieldKey, Keyring, write_key_file
from plusjeklas_tui.models import Organisation

ROOT = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")
SCHOOL = "OBS De Klimop"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates OS accounts, starts sshd"),
    pytest.mark.skipif(
        not SSHD.exists(), reason="no /usr/sbin/sshd (.ci/run installs openssh-server)"
    ),
    pytest.mark.skipif(
        shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
        reason="no OpenSSH client (.ci/run installs it)",
    ),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux (.ci/run installs it)"),
]


def run(*command: str | Path, timeout: float = 30, **kwargs: object) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )
    if result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the installation ------------------------------------------------------------------------


@dataclass
class Installation:
    base: Path
    config: Path
    hostile_config: Path
    port: int
    group: str
    admin: str
    viewer: str
    stranger: str
    client_keys: dict[str, Path]
    sshd_log: Path

    def ssh_command(self, user: str, *options: str, tty: bool = True) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",  # no system or user client config (Debian's sends LANG/LC_*)
            "-tt" if tty else "-T",
            "-p",
            str(self.port),
            "-i",
            str(self.client_keys[user]),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            *options,
            f"{user}@127.0.0.1",
        ]


def _blocked_folders(paths: list[Path]) -> set[Path]:
    """Folders on the way to *paths* that other users may not enter (no o+x), e.g. ``/root``."""
    blocked = set()
    for path in paths:
        for folder in [path, *path.parents] if path.is_dir() else path.parents:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                blocked.add(folder)
    return blocked


def _let_group_through(stack: contextlib.ExitStack, group: str, base: Path) -> None:
    """Let *group* reach the Python under test and the code, with ACLs undone afterwards."""
    python = Path(os.path.realpath(sys.executable))
    needed = [python, base, ROOT, Path(sys.prefix)]
    needed += [Path(sysconfig.get_path(name)) for name in ("stdlib", "platstdlib", "purelib")]
    blocked = _blocked_folders([path for path in needed if path.exists()])
    if not blocked:
        return
    if shutil.which("setfacl") is None:
        pytest.skip(
            f"{', '.join(map(str, sorted(blocked)))} cannot be entered by other users and "
            "setfacl is missing (.ci/run installs acl)"
        )
    for folder in sorted(blocked):
        run("setfacl", "-m", f"g:{group}:x", folder)
        stack.callback(_remove_acl_entry, folder, group)


def _remove_acl_entry(folder: Path, group: str) -> None:
    """Take this run's entry out again, leaving any other (another run of this test may have
    its own); with no named entry left, drop the ACL whole so the folder is as it was."""
    run("setfacl", "-x", f"g:{group}", folder)
    entries = run("getfacl", "--absolute-names", "--omit-header", "-c", folder).split()
    named = [e for e in entries if e.split(":")[0] in {"user", "group"} and e.split(":")[1]]
    if not named:
        run("setfacl", "-b", folder)


def _chgrp(path: Path, group: str, mode: int) -> None:
    os.chown(path, -1, grp.getgrnam(group).gr_gid)
    os.chmod(path, mode)


def _end_processes_of(users: list[str], timeout: float = 5.0) -> None:
    """Wait for the test accounts' processes (app sessions) to end; end stragglers by pid."""
    uids = set()
    for user in users:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(user).pw_uid)
    deadline = time.monotonic() + timeout
    while True:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid in uids:
                        pids.append(int(entry.name))
        if not pids:
            return
        if time.monotonic() > deadline:
            for pid in pids:  # started by this test, through its own sshd
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            return
        time.sleep(0.1)


def _write_config(path: Path, database: Path, key: Path, staff: dict[str, str], **top: str) -> None:
    lines = [f"{name} = {value}" for name, value in {"language": '"en"', **top}.items()]
    staff_lines = "\n".join(f'"{user}" = "{role}"' for user, role in staff.items())
    path.write_text(
        "\n".join(lines)
        + textwrap.dedent(
            f"""

            [database]
            url = "sqlite:///{database}"

            [keys]
            file = "{key}"

            [staff]
            """
        )
        + staff_lines
        + "\n"
    )


def _seed(config: Path) -> None:
    engine = db.make_engine(load_file(config).database_url)
    db.upgrade(engine)
    engine.dispose()
    context = open_context(config)  # as root, the admin who installs
    try:
        with db.session_scope(context.engine) as session:
            for name, brin in ((SCHOOL, "05KO"), ("CBS De Regenboog", "06RB")):
                session.add(
                    Organisation(
                        name=name,
                        street="Kerkstraat 1",
                        postcode="1234 AB",
                        city="Utrecht",
                        brin=brin,
                        phone="+31201234567",
                    )
                )
    finally:
        context.close()


def _ssh_setup(config: Path, user: str, role: str, key: Path, program: Path) -> dict[str, str]:
    """The real `plusjeklas ssh-setup`, run by root (an admin in the config)."""
    out = run(
        sys.executable,
        "-m",
        "plusjeklas_tui",
        "--config",
        config,
        "ssh-setup",
        user,
        "--role",
        role,
        "--key",
        key,
        "--program",
        program,
        "--json",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out)


def _start_sshd(stack: contextlib.ExitStack, inst: Installation, users: list[str]) -> None:
    folder = inst.base / "sshd"
    host_key = folder / "host_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
    config = folder / "sshd_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            ListenAddress 127.0.0.1
            Port {inst.port}
            HostKey {host_key}
            PidFile {folder / "sshd.pid"}
            AuthorizedKeysFile {folder}/authorized_keys/%u
            AllowUsers {" ".join(users)}
            UsePAM no
            StrictModes no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PrintMotd no
            PrintLastLog no
            LogLevel VERBOSE
            # A careless server: it takes these from the client. The app must not care.
            AcceptEnv LANG LC_* LOGNAME USER PLUSJEKLAS_*
            """
        )
    )
    # sshd's privilege-separation folder. Left in place afterwards: it is where a system sshd
    # expects it, and another run of this test may be using it at the same time.
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    run(SSHD, "-t", "-f", config)
    log = inst.sshd_log.open("w")
    stack.callback(log.close)
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=log, stdout=log)

    def stop() -> None:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)

    stack.callback(stop)
    deadline = time.monotonic() + 10
    while True:
        if server.poll() is not None:
            raise AssertionError(f"sshd exited {server.returncode}:\n{inst.sshd_log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", inst.port), 1):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd did not listen:\n{inst.sshd_log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def installation() -> Iterator[Installation]:
    tag = uuid.uuid4().hex[:6]
    group = f"pjk-test-{tag}"
    admin, viewer, stranger = (f"pjk-{who}-{tag}" for who in ("admin", "viewer", "stranger"))
    users = [admin, viewer, stranger]
    with contextlib.ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="plusjeklas-ssh-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        base.chmod(0o711)  # accounts may pass through, not list

        run("groupadd", group)
        stack.callback(run, "groupdel", group)
        home = base / "home"
        home.mkdir(mode=0o755)
        for user in users:
            # '*': no password can log in, but the account is not locked ('!'), which sshd
            # refuses when UsePAM is off. /bin/sh only starts the forced command.
            run("useradd", "-M", "-N", "-g", group, "-d", home, "-s", "/bin/sh", "-p", "*", user)
            stack.callback(run, "userdel", user)
        stack.callback(_end_processes_of, users)  # before userdel (callbacks run last-first)
        _let_group_through(stack, group, base)

        # The app's files, as docs/ssh.md sets them up.
        app = base / "app"
        app.mkdir()
        key = app / "plusjeklas.key"
        write_key_file(key, Keyring([FieldKey.generate()]))
        database = app / "plusjeklas.db"
        config = app / "plusjeklas.toml"
        staff = {pwd.getpwuid(os.getuid()).pw_name: "admin", admin: "admin", viewer: "viewer"}
        _write_config(config, database, key, staff)
        # What the viewer would become if the client could choose the config or the user.
        hostile = app / "hostile.toml"
        _write_config(hostile, database, key, {viewer: "admin"}, allow_user_override="true")
        _seed(config)
        _chgrp(app, group, 0o2770)  # setgid: SQLite's -wal/-shm files stay in the group
        for path in (config, hostile, key):
            _chgrp(path, group, 0o640)
        for path in app.glob("plusjeklas.db*"):
            _chgrp(path, group, 0o660)

        # The launcher: what `pip install` would put in a venv's bin, for this checkout.
        program = base / "bin" / "plusjeklas"
        program.parent.mkdir(mode=0o755)
        program.write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
            '-m plusjeklas_tui "$@"\n'
        )
        program.chmod(0o755)
        # Fail here, clearly, if the accounts cannot run the app at all (unreadable code...).
        check = subprocess.run(
            ["runuser", "-u", viewer, "--", str(program), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=base,
        )
        assert check.returncode == 0, f"a test account cannot run the app: {check.stderr}"

        (base / "sshd").mkdir(mode=0o711)  # sshd reads the keys as the user
        (base / "sshd" / "authorized_keys").mkdir(mode=0o755)
        (base / "client").mkdir(mode=0o700)
        client_keys = {}
        for user, role in ((admin, "admin"), (viewer, "viewer"), (stranger, "viewer")):
            private = base / "client" / user
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{user}@test", "-f", private)
            client_keys[user] = private
            setup = _ssh_setup(config, user, role, private.with_suffix(".pub"), program)
            line = base / "sshd" / "authorized_keys" / user
            line.write_text(setup["authorized_keys_line"] + "\n")
            line.chmod(0o644)

        inst = Installation(
            base=base,
            config=config,
            hostile_config=hostile,
            port=free_port(),
            group=group,
            admin=admin,
            viewer=viewer,
            stranger=stranger,
            client_keys=client_keys,
            sshd_log=base / "sshd.log",
        )
        _start_sshd(stack, inst, users)
        yield inst


# --- a terminal ------------------------------------------------------------------------------


class Terminal:
    """A command in a detached tmux session, read with capture-pane; its exit code to a file."""

    def __init__(self, command: list[str], done: Path, env: dict[str, str] | None = None) -> None:
        self.name = f"plusjeklas-ssh-{uuid.uuid4().hex[:8]}"
        self.done = done
        settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        line = f"env TERM=xterm-256color {settings} {shlex.join(command)}; echo $? > {done}"
        # remain-on-exit: the last screen stays readable after the session ended.
        run(
            *("tmux", "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", line),
            *(";", "set-option", "-t", self.name, "remain-on-exit", "on"),
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if all(text in shown for text in texts):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{texts!r} did not appear; the screen shows:\n{self.screen()}")

    def press(self, *keys: str) -> None:
        for key in keys:
            run("tmux", "send-keys", "-t", self.name, key)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        run("tmux", "send-keys", "-t", self.name, "-l", text)

    def resize(self, columns: int, rows: int) -> None:
        run("tmux", "resize-window", "-t", self.name, "-x", str(columns), "-y", str(rows))

    def exit_code(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.done.exists() and self.done.read_text().strip():
                return int(self.done.read_text())
            time.sleep(0.1)
        raise AssertionError(f"the session did not end; the screen shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@contextlib.contextmanager
def terminal(
    inst: Installation, command: list[str], env: dict[str, str] | None = None
) -> Iterator[Terminal]:
    done = inst.base / f"exit-{uuid.uuid4().hex[:8]}"
    term = Terminal(command, done, env)
    try:
        yield term
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- sshd log ---\n{inst.sshd_log.read_text()}") from None
    finally:
        term.close()


def open_school(term: Terminal) -> str:
    """Ctrl+P, the school's name, Enter: its record; returns the screen."""
    term.press("C-p")
    term.wait_for("Search")
    term.type("Klimop")
    term.wait_for(f"Open school: {SCHOOL}")
    term.press("Enter")
    return term.wait_for("BRIN 05KO", "1234 AB")  # the record's title and its loaded fields


def app_environment(user: str) -> dict[str, str]:
    """The environment of *user*'s running app (the Python process), read from /proc."""
    uid = pwd.getpwnam(user).pw_uid
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
            if b"plusjeklas_tui" not in (entry / "cmdline").read_bytes():
                continue
            raw = (entry / "environ").read_bytes().split(b"\0")
            pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
            return {name: value for name, _, value in pairs}
    raise AssertionError(f"no app process of {user}")


def footer(screen: str) -> str:
    return screen.rstrip("\n").splitlines()[-1]


# --- the tests -------------------------------------------------------------------------------


def test_admin_reaches_the_dashboard_and_ctrl_q_ends_the_session_with_0(
    installation: Installation,
) -> None:
    inst = installation
    # A client with a C locale and no COLORTERM: the app still paints UTF-8 and colours.
    env = {"LANG": "C", "LC_ALL": "C"}
    command = inst.ssh_command(inst.admin, "-o", "SendEnv=LANG LC_ALL")
    with terminal(inst, command, env) as term:
        screen = term.wait_for("Subscriptions", f"{inst.admin} (admin)")
        assert "╭" in screen and "\\u" not in screen  # box drawing arrives as UTF-8

        open_school(term)
        record = term.wait_for("Edit school")  # an admin may edit (the viewer check below)
        assert "Edit school" in footer(record)

        def widest() -> int:
            return max(map(len, term.screen().splitlines()), default=0)

        assert widest() <= 80
        term.resize(100, 30)  # the window size travels through ssh to the app, which relays out
        deadline = time.monotonic() + 10
        while widest() < 95:
            assert time.monotonic() < deadline, f"no resize:\n{term.screen()}"
            time.sleep(0.1)

        term.press("C-q")
        assert term.exit_code() == 0


def test_viewer_stays_a_read_only_viewer_whatever_the_client_sends(
    installation: Installation,
) -> None:
    inst = installation
    # Everything a client could try: environment sent over the connection (this sshd accepts
    # it), and a command line of its own. The forced command ignores the command line and sets
    # PLUSJEKLAS_CONFIG itself; the identity is the login's uid.
    env = {
        "LOGNAME": inst.admin,
        "USER": inst.admin,
        "PLUSJEKLAS_CONFIG": str(inst.hostile_config),
        "PLUSJEKLAS_PROBE": "sent",
    }
    sent = "SendEnv=LOGNAME USER PLUSJEKLAS_CONFIG PLUSJEKLAS_PROBE"
    own_command = (
        f"LOGNAME={inst.admin} USER={inst.admin} plusjeklas --config {inst.hostile_config} "
        f"--user {inst.admin}"
    )
    command = [*inst.ssh_command(inst.viewer, "-o", sent), own_command]
    with terminal(inst, command, env) as term:
        screen = term.wait_for("Subscriptions", f"{inst.viewer} (viewer)")
        assert "(admin)" not in screen
        environment = app_environment(inst.viewer)
        assert environment["PLUSJEKLAS_PROBE"] == "sent"  # sshd did pass what the client sent,
        assert environment["PLUSJEKLAS_CONFIG"] == str(inst.config)  # but the command fixes this
        assert environment["LOGNAME"] == environment["USER"] == inst.viewer  # sshd sets these
        assert "--user" in environment["SSH_ORIGINAL_COMMAND"]  # asked for, never run

        record = open_school(term)
        assert SCHOOL in record
        assert "Edit school" not in footer(record)  # read-only: edit keys hidden
        assert "Reveal IBAN" not in record
        term.press("e")  # and nothing happens when pressed anyway
        time.sleep(0.5)
        assert "Edit school" not in term.screen()  # no form (its title is "Edit school: ...")
        term.press("C-q")
        assert term.exit_code() == 0


def test_a_login_that_is_not_staff_gets_one_line_and_exit_2(installation: Installation) -> None:
    inst = installation
    result = subprocess.run(
        inst.ssh_command(inst.stranger, "-o", "SendEnv=LOGNAME", tty=False),
        env={**os.environ, "LOGNAME": inst.admin},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, (result, inst.sshd_log.read_text())
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"account '{inst.stranger}' is not a staff member" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_app_paints_utf8_when_the_locale_encoding_is_not(installation: Installation) -> None:
    """Without SSH: a stdout/stderr encoding that cannot write box drawing (PYTHONIOENCODING,
    or a non-UTF-8 locale the client chose) is switched to UTF-8 before Textual starts."""
    inst = installation
    env = {
        "PYTHONIOENCODING": "ascii",
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONPATH": str(ROOT),
        "PLUSJEKLAS_CONFIG": str(inst.config),
    }
    with terminal(inst, [sys.executable, "-m", "plusjeklas_tui"], env) as term:
        screen = term.wait_for("Subscriptions")
        assert "╭" in screen and "\\u" not in screen
        term.press("C-q")
        assert term.exit_code() == 0
