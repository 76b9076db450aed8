"""`plusjeklas ssh-setup`: the authorized_keys line, the [staff] entry and the commands for root.

The line itself is proven against a real sshd in tests/tui/test_ssh.py; here: what goes into it,
what is refused, and that the printed shell commands say what they mean.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from plusjeklas_tui.cli import main
from plusjeklas_tui.cli.ssh import use_utf8_output
from plusjeklas_tui.config import Settings, parse_settings
from plusjeklas_tui.services import ssh_access as service
from plusjeklas_tui.services.ssh_access import SshSetupError, parse_public_key, ssh_access
from plusjeklas_tui.staff import StaffMember

ConfigWriter = Callable[..., Path]
REPO = Path(__file__).resolve().parent.parent
ADMIN = StaffMember("ada", "admin")


def ed25519_key(comment: str = "vera@laptop") -> tuple[str, str]:
    """A fresh key pair as OpenSSH writes it: (public line, private PEM)."""
    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return f"{public.decode()} {comment}", pem.decode()


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "plusjeklas"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def public_key(tmp_path: Path) -> tuple[Path, str]:
    line, _ = ed25519_key()
    path = tmp_path / "vera.pub"
    path.write_text(line + "\n")
    return path, line


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def dequote_command(line: str) -> str:
    """The command="..." option's value as sshd reads it (only \\" is an escape)."""
    assert line.startswith('restrict,pty,command="')
    rest = line.removeprefix('restrict,pty,command="')
    value, i = [], 0
    while rest[i] != '"':
        if rest[i] == "\\" and rest[i + 1] == '"':
            i += 1
        value.append(rest[i])
        i += 1
    return "".join(value)


# --- the CLI ---------------------------------------------------------------------------------


def test_prints_the_forced_command_line_entry_and_commands(
    write_config: ConfigWriter, program: Path, public_key: tuple[Path, str]
) -> None:
    config = write_config()
    key_path, key_line = public_key
    result = invoke(
        config, "ssh-setup", "j.de-vries", "--role", "editor", "--key", str(key_path),
        "--program", str(program),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    expected = (
        f'restrict,pty,command="env PLUSJEKLAS_CONFIG={config.resolve()} {program}" {key_line}'
    )
    assert expected in out.splitlines()
    assert '"j.de-vries" = "editor"' in out.splitlines()
    assert "usermod --append --groups plusjeklas j.de-vries" in out
    assert f"chmod 0640 {config.resolve()}" in out
    assert "docs/ssh.md" in out
    assert result.stderr == ""


def test_json_is_one_object_with_every_part(
    write_config: ConfigWriter, program: Path, public_key: tuple[Path, str], engine_name: str
) -> None:
    config = write_config()
    key_path, key_line = public_key
    result = invoke(
        config, "ssh-setup", "vera", "--key", str(key_path), "--program", str(program), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["username"] == "vera"
    assert data["role"] == "viewer"  # the default: least access
    assert data["current_role"] == "viewer"  # vera is already in the test config
    assert data["config_path"] == str(config.resolve())
    assert data["program"] == str(program)
    assert data["public_key"] == key_line
    assert data["authorized_keys_line"].endswith(f'" {key_line}')
    assert data["staff_entry"] == '"vera" = "viewer"'
    assert data["group"] == "plusjeklas"
    assert any("already staff" in note for note in data["notes"])
    database_lines = [c for c in data["os_commands"] if "0660" in c]
    if engine_name == "sqlite":
        db_file = config.parent / "plusjeklas.db"
        assert database_lines == [f"chgrp plusjeklas {db_file} && chmod 0660 {db_file}"]
        folder = f"chgrp plusjeklas {config.parent} && chmod 2770 {config.parent}"
        assert folder in data["os_commands"]
    else:  # PostgreSQL: no file to give to the group; a note on connecting instead
        assert database_lines == []
        assert any("not a SQLite file" in note for note in data["notes"])


def test_the_command_names_the_config_absolutely_and_survives_spaces(
    write_config: ConfigWriter,
    program: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(name="plus jeklas.toml")
    monkeypatch.chdir(tmp_path)
    result = invoke(Path("plus jeklas.toml"), "ssh-setup", "vera", "--program", str(program))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("restrict,"))
    # What the login's shell runs: exactly three words, whatever the spaces.
    assert shlex.split(dequote_command(line)) == [
        "env",
        f"PLUSJEKLAS_CONFIG={config.resolve()}",
        str(program),
    ]
    assert line.endswith(" <public key of vera>")


def test_the_printed_key_command_writes_exactly_the_line(
    write_config: ConfigWriter, program: Path, public_key: tuple[Path, str], tmp_path: Path
) -> None:
    """The printf command, run by a real shell (into a file of ours), writes the line intact."""
    config = write_config(name="it's.toml")  # a quote that the shell quoting must survive
    result = invoke(
        config, "ssh-setup", "vera", "--key", str(public_key[0]), "--program", str(program),
        "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)
    printf = next(c for c in data["os_commands"] if c.startswith("printf"))
    target = tmp_path / "authorized_keys"
    command = printf.replace("~vera/.ssh/authorized_keys", shlex.quote(str(target)))
    subprocess.run(["sh", "-c", command], check=True)
    assert target.read_text() == data["authorized_keys_line"] + "\n"
    for command in data["os_commands"]:  # every command is valid sh
        subprocess.run(["sh", "-n", "-c", command], check=True)


@pytest.mark.parametrize("user", ["eddie", "vera"])
def test_only_an_admin_may_set_up_access(
    write_config: ConfigWriter, program: Path, user: str
) -> None:
    result = invoke(
        write_config(), "--user", user, "ssh-setup", "newbie", "--program", str(program)
    )
    assert result.exit_code == 2
    assert "needs the admin role" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "username",
    ["-rf", "a b", "vera;rm", "12345", "x" * 33, "zoë", ".", "..", "", "a/b", "v\x1bra"],
)
def test_refuses_a_user_name_useradd_would_not_take(
    write_config: ConfigWriter, program: Path, username: str
) -> None:
    result = invoke(write_config(), "ssh-setup", "--program", str(program), "--", username)
    assert result.exit_code == 2
    assert "USER" in result.stderr and "POSIX user name" in result.stderr
    assert "\x1b" not in result.stderr  # a control character is shown escaped
    assert result.stdout == ""


@pytest.mark.parametrize("username", ["vera", "j.de-vries", "_svc", "a1", "Eddie_2"])
def test_accepts_posix_user_names(username: str) -> None:
    assert service.check_username(username) == username


def test_an_unknown_role_is_a_usage_error(write_config: ConfigWriter, program: Path) -> None:
    result = invoke(write_config(), "ssh-setup", "vera", "--role", "god", "--program", str(program))
    assert result.exit_code == 2
    assert "god" in result.stderr


def test_a_bad_user_name_as_a_real_process_fails_with_2_on_stderr(
    write_config: ConfigWriter,
) -> None:
    config = str(write_config())
    result = subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", "--config", config, "ssh-setup", "--", "-bad"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: USER '-bad': must be a POSIX user name")


# --- the public key --------------------------------------------------------------------------


def test_a_private_key_is_refused_without_repeating_it(
    write_config: ConfigWriter, program: Path, tmp_path: Path
) -> None:
    _, pem = ed25519_key()
    path = tmp_path / "id_ed25519"
    path.write_text(pem)
    result = invoke(
        write_config(), "ssh-setup", "vera", "--key", str(path), "--program", str(program)
    )
    assert result.exit_code == 2
    assert "private key" in result.stderr and ".pub" in result.stderr
    body = pem.splitlines()[1]
    assert body not in result.output


def _key_problem(text: str) -> str:
    with pytest.raises(SshSetupError) as caught:
        parse_public_key(text)
    return str(caught.value)


def test_key_lines_that_are_refused() -> None:
    line, _ = ed25519_key()
    other, _ = ed25519_key("eddie@pc")
    key_type, data, _comment = line.split(" ", 2)
    assert "holds no public key" in _key_problem("# only a comment\n\n")
    assert "holds 2 keys" in _key_problem(f"{line}\n{other}\n")
    assert "options" in _key_problem(f'command="/bin/sh" {line}')
    assert "options" in _key_problem(f"no-pty,restrict {line}")
    assert "not an OpenSSH public key line" in _key_problem("hello world")
    assert "not an OpenSSH public key line" in _key_problem(f"ssh-dss {data}")
    assert "no key data" in _key_problem("ssh-ed25519")
    assert "not a valid ssh-rsa key" in _key_problem(f"ssh-rsa {data} x")  # type mismatch
    assert "not a valid ssh-ed25519 key" in _key_problem(f"ssh-ed25519 {data[:-8]}!!!")
    assert "control characters" in _key_problem(f"{key_type} {data} evil\x1b[2J")


def test_a_key_line_is_kept_with_its_comment_and_tidied() -> None:
    line, _ = ed25519_key("vera@laptop 2026")
    key_type, data, _ = line.split(" ", 2)
    assert parse_public_key(f"# vera's key\n  {line}  \n") == line
    assert parse_public_key(f"{key_type}\t{data}") == f"{key_type} {data}"


def test_a_missing_key_file_is_named(
    write_config: ConfigWriter, program: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pub"
    result = invoke(
        write_config(), "ssh-setup", "vera", "--key", str(missing), "--program", str(program)
    )
    assert result.exit_code == 2
    assert f"--key {missing}: file does not exist" in result.stderr


# --- the program -----------------------------------------------------------------------------


def test_the_program_must_be_an_absolute_executable(
    write_config: ConfigWriter, tmp_path: Path, program: Path
) -> None:
    config = write_config()
    relative = invoke(config, "ssh-setup", "vera", "--program", "bin/plusjeklas")
    assert relative.exit_code == 2 and "absolute path" in relative.stderr
    plain = tmp_path / "not-executable"
    plain.write_text("")
    not_executable = invoke(config, "ssh-setup", "vera", "--program", str(plain))
    assert not_executable.exit_code == 2 and "not an executable file" in not_executable.stderr
    quoted = tmp_path / 'pj"k'
    shutil.copy(program, quoted)
    quote = invoke(config, "ssh-setup", "vera", "--program", str(quoted))
    assert quote.exit_code == 2 and "double quote" in quote.stderr


def test_the_default_program_is_the_one_this_process_runs_as(
    program: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(program), "ssh-setup"])
    assert service.default_program() == program
    # Started some other way (python -m): the one next to this Python, then the one on PATH.
    monkeypatch.setattr(sys, "argv", ["/x/__main__.py"])
    monkeypatch.setattr(sys, "executable", str(program.parent / "python"))
    assert service.default_program() == program
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(shutil, "which", lambda name: str(program))
    assert service.default_program() == program
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SshSetupError, match="--program"):
        service.default_program()


# --- the service -----------------------------------------------------------------------------


def _settings(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "plusjeklas.toml"
    path.write_text(body)
    return parse_settings(body, path)


def test_keys_from_the_environment_get_a_note_and_no_key_file(
    tmp_path: Path, program: Path
) -> None:
    settings = _settings(
        tmp_path,
        f'[database]\nurl = "sqlite:///{tmp_path}/p.db"\n[keys]\nenv = "PLUSJEKLAS_KEYS"\n'
        '[staff]\n"eddie" = "editor"\n',
    )
    access = ssh_access(settings, ADMIN, "eddie", "admin", program=program)
    assert any("keys.env" in note for note in access.notes)
    assert any("staff as editor" in note and '"admin"' in note for note in access.notes)
    assert not any("plusjeklas.key" in command for command in access.os_commands)
    assert access.staff_entry == '"eddie" = "admin"'


def test_without_a_config_file_there_is_nothing_to_force(program: Path) -> None:
    with pytest.raises(SshSetupError, match="no configuration file"):
        ssh_access(Settings(), ADMIN, "vera", program=program)


def test_the_service_refuses_non_admins(tmp_path: Path, program: Path) -> None:
    settings = _settings(tmp_path, "")
    with pytest.raises(Exception, match="needs the admin role") as caught:
        ssh_access(settings, StaffMember("eddie", "editor"), "vera", program=program)
    assert caught.value.exit_code == 2  # type: ignore[attr-defined]


# --- UTF-8 under a C locale ------------------------------------------------------------------


def test_streams_that_cannot_write_utf8_are_switched(monkeypatch: pytest.MonkeyPatch) -> None:
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    latin_err = io.TextIOWrapper(io.BytesIO(), encoding="iso-8859-1", errors="backslashreplace")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    monkeypatch.setattr(sys, "stderr", latin_err)
    use_utf8_output()
    for stream in (ascii_out, latin_err):
        stream.write("╭─ Beëindigd ─╮")
        stream.flush()
        assert stream.buffer.getvalue().decode("utf-8") == "╭─ Beëindigd ─╮"  # type: ignore[attr-defined]
    assert latin_err.errors == "backslashreplace"  # only the encoding changes


def test_utf8_streams_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="UTF8")
    monkeypatch.setattr(sys, "stdout", utf8)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no reconfigure(): skipped, no error
    use_utf8_output()
    assert utf8.encoding == "UTF8"
