"""What an administrator needs to give a staff member the app over SSH (no Textual here).

A staff member logs in with a key whose ``authorized_keys`` line forces one command::

    restrict,pty,command="env PLUSJEKLAS_CONFIG=/etc/pj.toml /opt/pj/bin/plusjeklas" ssh-ed25519 AAA

- ``restrict`` turns off port, agent and X11 forwarding and ``~/.ssh/rc``; ``pty`` gives back
  the one thing the app needs, a terminal.
- ``command=`` replaces whatever the client asked to run (a shell, ``sftp``, ``LOGNAME=x
  plusjeklas --user x``): sshd runs this command and nothing else.
- The configuration path is written into the command, so it is fixed by the administrator. Even
  if sshd were told to accept ``PLUSJEKLAS_CONFIG`` from clients (``AcceptEnv``), ``env`` sets
  it again right before the app starts.
- The identity is the real uid of the login (:func:`plusjeklas_tui.staff.os_account`), so
  ``LOGNAME``/``USER`` sent or set by the client change nothing.

The service builds all of that as a :class:`SshAccess`; ``plusjeklas ssh-setup`` prints it.
docs/ssh.md explains the whole set-up.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from plusjeklas_tui.config import CONFIG_ENV, Settings
from plusjeklas_tui.errors import PermissionDenied, PlusjeklasError
from plusjeklas_tui.staff import ROLE_PERMISSIONS, StaffMember

APP_GROUP = "plusjeklas"
"""The group owning the config, the key file and the SQLite database; staff accounts are in it."""

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
"""Public key types OpenSSH accepts today (``ssh-dss`` is off by default since OpenSSH 7.0)."""

USERNAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
USERNAME_RULE = (
    "must be a POSIX user name: letters, digits, '.', '_' and '-', not starting with '-', "
    "not only digits, at most 32 characters"
)
MAX_USERNAME = 32
"""useradd's limit on Linux."""

UNSAFE_IN_COMMAND = re.compile(r'["\\\x00-\x1f\x7f]')
"""Characters that cannot stand in the quoted ``command="..."`` option: sshd reads ``\\"`` as a
quote and a line break ends the entry. Paths with them are refused rather than escaped."""


class SshSetupError(PlusjeklasError):
    """Bad input to ``ssh-setup``: a user name, a key file or a program path (a usage error)."""

    exit_code = 2


@dataclass(frozen=True)
class SshAccess:
    """Everything an administrator needs to give one staff member the app over SSH."""

    username: str
    role: str
    config_path: Path
    """The configuration the forced command names: the one this command was run with."""
    program: Path
    """The plusjeklas executable the forced command runs."""
    forced_command: str
    """The command sshd runs instead of whatever the client asks (shell syntax)."""
    public_key: str | None
    """The staff member's public key line, or None when no ``--key`` was given."""
    authorized_keys_line: str
    staff_entry: str
    """The line for the ``[staff]`` table of the configuration."""
    current_role: str | None
    """The role this user already has in the configuration, if any."""
    group: str
    os_commands: tuple[str, ...]
    """Shell commands for root on the server: group, account, key line, file permissions."""
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config_path"] = str(self.config_path)
        data["program"] = str(self.program)
        data["os_commands"] = list(self.os_commands)
        data["notes"] = list(self.notes)
        return data


# --- checks ----------------------------------------------------------------------------------


def require_admin(staff: StaffMember, what: str = "set up SSH access for staff") -> None:
    """Giving someone access to the data is the admin's call, like managing the keys."""
    if staff.role != "admin":
        raise PermissionDenied(
            f"{staff.username} ({staff.role}) may not {what}: that needs the admin role"
        )


def check_username(username: str) -> str:
    """*username* if ``useradd`` and sshd accept it as a user name, else :class:`SshSetupError`."""
    if (
        not USERNAME.fullmatch(username)
        or len(username) > MAX_USERNAME
        or username.isdigit()
        or username in {".", ".."}
    ):
        shown = username if username.isprintable() else repr(username)
        raise SshSetupError(f"USER '{shown}': {USERNAME_RULE}")
    return username


def check_role(role: str) -> str:
    if role not in ROLE_PERMISSIONS:
        raise SshSetupError(f"--role '{role}': must be one of {', '.join(ROLE_PERMISSIONS)}")
    return role


def parse_public_key(text: str, where: str = "--key") -> str:
    """The one OpenSSH public key line in *text* (``type base64 [comment]``), checked.

    Refuses a private key (and never repeats any of it), several keys, a line with
    ``authorized_keys`` options (the forced command's options must be the only ones), an unknown
    key type, and a key whose data does not decode to that type.
    """
    if "PRIVATE KEY" in text:
        raise SshSetupError(
            f"{where}: this is a private key; give the public key (the .pub file) and keep the "
            "private key on the staff member's computer"
        )
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise SshSetupError(f"{where}: holds no public key")
    if len(keys) > 1:
        raise SshSetupError(f"{where}: holds {len(keys)} keys; give one public key per staff login")
    line = keys[0]
    if any(not char.isprintable() and char != "\t" for char in line):
        raise SshSetupError(f"{where}: the key line holds control characters")
    parts = line.split(None, 2)
    key_type = parts[0]
    if key_type not in KEY_TYPES:
        if "=" in key_type or "," in key_type:
            raise SshSetupError(
                f"{where}: the line starts with authorized_keys options; give the plain public "
                "key ('ssh-ed25519 AAAA... comment'): ssh-setup adds the options itself"
            )
        raise SshSetupError(
            f"{where}: not an OpenSSH public key line: expected 'TYPE BASE64 [comment]' with TYPE "
            f"one of {', '.join(sorted(KEY_TYPES))}"
        )
    if len(parts) < 2:
        raise SshSetupError(f"{where}: the {key_type} key has no key data after its type")
    if _blob_type(parts[1]) != key_type:
        raise SshSetupError(
            f"{where}: the key data is not a valid {key_type} key (damaged when copied?)"
        )
    return " ".join(parts)


def _blob_type(data: str) -> str | None:
    """The key type written inside the base64 key blob (its first length-prefixed string)."""
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    length = int.from_bytes(blob[:4], "big")
    if length > len(blob) - 4:
        return None
    try:
        return blob[4 : 4 + length].decode("ascii")
    except UnicodeDecodeError:
        return None


def read_public_key(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SshSetupError(f"--key {path}: file does not exist") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise SshSetupError(f"--key {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SshSetupError(f"--key {path}: not a text file (a public key is one line)") from None
    return parse_public_key(text, f"--key {path}")


def check_program(program: Path) -> Path:
    """The executable for the forced command: absolute, runnable, safe inside ``command="..."``."""
    if not program.is_absolute():
        raise SshSetupError(
            f"--program {program}: must be an absolute path (sshd does not search PATH "
            "the way a login shell does)"
        )
    if UNSAFE_IN_COMMAND.search(str(program)):
        raise SshSetupError(
            f"--program {program!r}: must not contain a double quote, a backslash or a control "
            "character (they cannot stand in the authorized_keys command option)"
        )
    if not program.is_file() or not os.access(program, os.X_OK):
        raise SshSetupError(f"--program {program}: not an executable file")
    return program


def default_program() -> Path:
    """The ``plusjeklas`` executable of this installation.

    In order: the command this process was started as, the one next to this Python (a venv's
    ``bin``), the one on PATH. Symlinks are kept: ``/usr/local/bin/plusjeklas`` pointing into a
    venv stays valid when the venv is rebuilt elsewhere and the link updated.
    """
    started_as = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = []
    if started_as is not None and started_as.name == "plusjeklas":
        candidates.append(started_as.absolute())
    candidates.append(Path(sys.executable).parent / "plusjeklas")
    on_path = shutil.which("plusjeklas")
    if on_path:
        candidates.append(Path(on_path).absolute())
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SshSetupError(
        "cannot find the plusjeklas executable of this installation (not next to "
        f"{sys.executable}, not on PATH); give it with --program /absolute/path/to/plusjeklas"
    )


# --- building --------------------------------------------------------------------------------


def forced_command(config_path: Path, program: Path) -> str:
    """``env PLUSJEKLAS_CONFIG=<config> <program>``: run by the login's shell, nothing else."""
    for name, path in (("configuration path", config_path), ("--program", program)):
        if UNSAFE_IN_COMMAND.search(str(path)):
            raise SshSetupError(
                f"{name} {str(path)!r}: must not contain a double quote, a backslash or a "
                "control character (they cannot stand in the authorized_keys command option)"
            )
    return f"env {CONFIG_ENV}={shlex.quote(str(config_path))} {shlex.quote(str(program))}"


def authorized_keys_line(command: str, public_key: str | None, username: str) -> str:
    key = public_key if public_key is not None else f"<public key of {username}>"
    return f'restrict,pty,command="{command}" {key}'


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file, or None for PostgreSQL or an in-memory database."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if name in {"", ":memory:"} or name.startswith("file:"):
        return None
    return Path(name)


def os_commands(
    username: str,
    group: str,
    line: str,
    config_path: Path,
    key_file: Path | None,
    database: Path | None,
) -> tuple[str, ...]:
    """The commands for root on the server, in order; each is safe to run twice."""
    q = shlex.quote
    user, grp = q(username), q(group)
    ssh_dir = f"~{username}/.ssh"  # tilde expansion: the account's home, whatever it is
    readable = [q(str(config_path))] + ([q(str(key_file))] if key_file else [])
    commands = [
        f"getent group {grp} >/dev/null || groupadd --system {grp}",
        f"id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "
        f"--password '*' {user}",
        f"usermod --append --groups {grp} {user}",
        f"install -d -o root -g root -m 0755 {ssh_dir}",
        f"printf '%s\\n' {q(line)} >> {ssh_dir}/authorized_keys",
        f"chown root:root {ssh_dir}/authorized_keys && chmod 0644 {ssh_dir}/authorized_keys",
        f"chgrp {grp} {' '.join(readable)} && chmod 0640 {' '.join(readable)}",
    ]
    if database is not None:
        folder = q(str(database.parent))
        commands += [
            # WAL mode creates -wal and -shm files next to the database: the folder must be
            # writable by the group; setgid keeps new files in the group (SQLite copies the
            # database file's mode to them).
            f"chgrp {grp} {folder} && chmod 2770 {folder}",
            f"chgrp {grp} {q(str(database))} && chmod 0660 {q(str(database))}",
        ]
    return tuple(commands)


def ssh_access(
    settings: Settings,
    staff: StaffMember,
    username: str,
    role: str = "viewer",
    *,
    key_file: Path | None = None,
    program: Path | None = None,
    group: str = APP_GROUP,
) -> SshAccess:
    """What to give *username* for SSH access with *role* (admin only).

    The forced command names the configuration this process loaded (``settings.source``), as
    an absolute path, and *program* (default: this installation's ``plusjeklas``).
    """
    require_admin(staff)
    username = check_username(username)
    role = check_role(role)
    if settings.source is None:
        raise SshSetupError(
            "no configuration file is loaded: the forced command must name one; run with "
            f"--config /path/to/config.toml or ${CONFIG_ENV}"
        )
    config_path = Path(os.path.abspath(settings.source))
    program = check_program(program) if program is not None else default_program()
    public_key = read_public_key(key_file) if key_file is not None else None
    command = forced_command(config_path, program)
    line = authorized_keys_line(command, public_key, username)
    database = sqlite_file(settings)
    uses_key_file = not settings.keys.env
    notes = _notes(settings, username, role, public_key, database, uses_key_file, group)
    return SshAccess(
        username=username,
        role=role,
        config_path=config_path,
        program=program,
        forced_command=command,
        public_key=public_key,
        authorized_keys_line=line,
        staff_entry=f'"{username}" = "{role}"',
        current_role=settings.staff.get(username),
        group=group,
        os_commands=os_commands(
            username,
            group,
            line,
            config_path,
            settings.key_file if uses_key_file else None,
            database,
        ),
        notes=notes,
    )


def _notes(
    settings: Settings,
    username: str,
    role: str,
    public_key: str | None,
    database: Path | None,
    uses_key_file: bool,
    group: str,
) -> tuple[str, ...]:
    notes: list[str] = []
    current = settings.staff.get(username)
    if current == role:
        notes.append(f"{username} is already staff ({role}) in {settings.source}")
    elif current is not None:
        notes.append(
            f'{username} is staff as {current} in {settings.source}: change that entry to "{role}"'
        )
    if public_key is None:
        notes.append(
            f"no --key given: replace <public key of {username}> with the staff member's public "
            "key (their ~/.ssh/id_ed25519.pub)"
        )
    if not uses_key_file:
        notes.append(
            f"keys.env is set ({settings.keys.env}): an SSH login does not have that variable; "
            f"use a key file (keys.file) readable by the group {group}"
        )
    if database is None:
        notes.append(
            "the database is not a SQLite file: every staff account must be able to connect "
            "with database.url (for PostgreSQL on this host: peer authentication and a role per "
            "account, granted one shared role)"
        )
    notes.append(
        f"the folders holding the configuration, the key file and the database must be "
        f"traversable (x) by the group {group}"
    )
    return tuple(notes)
