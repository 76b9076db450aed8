"""Staff identity and roles: who runs the process decides, not the environment or a flag.

The CLI tests run the real command in a subprocess, so nothing in this test process (no
monkeypatch, no cached settings) can make them pass by accident.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from plusjeklas_tui.config import CONFIG_ENV, load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import NotStaffError, PermissionDenied
from plusjeklas_tui.staff import Permission, StaffMember, identify, os_account

REPO = Path(__file__).resolve().parent.parent
ME = os_account()
ConfigWriter = Callable[..., Path]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`plusjeklas ARGS` in a fresh interpreter, as the OS account running the tests."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop(CONFIG_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


PRETEND = {"LOGNAME": "someadmin", "USER": "someadmin"}


# --- the real uid decides --------------------------------------------------------------------


def test_identify_ignores_logname_and_user(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_file(
        write_config(staff={ME: "viewer", "someadmin": "admin"}, allow_user_override=False)
    )
    for name, value in PRETEND.items():
        monkeypatch.setenv(name, value)
    assert getpass.getuser() == "someadmin"  # what a naive implementation would trust
    assert identify(settings) == StaffMember(ME, "viewer")


def test_logname_does_not_make_a_viewer_an_admin(write_config: ConfigWriter) -> None:
    config = write_config(staff={ME: "viewer", "someadmin": "admin"}, allow_user_override=False)
    result = run_cli("--config", str(config), "db", "upgrade", env=PRETEND)
    assert result.returncode == 2, result.stderr
    assert f"Error: {ME} (viewer) may not migrate the database" in result.stderr
    assert "'manage-keys' permission" in result.stderr
    assert "someadmin" not in result.stderr


def test_the_same_command_succeeds_for_a_real_admin(write_config: ConfigWriter) -> None:
    """The control for the test above: only the role of the real account differs."""
    config = write_config(staff={ME: "admin", "someadmin": "viewer"}, allow_user_override=False)
    result = run_cli("--config", str(config), "db", "upgrade", env=PRETEND)
    assert result.returncode == 0, result.stderr
    assert "migrated to revision" in result.stderr


def test_logname_of_a_viewer_does_not_demote_the_real_admin(config_path: Path) -> None:
    """In the fixture config vera is a viewer and the current account an admin."""
    env = {"LOGNAME": "vera", "USER": "vera"}
    result = run_cli("--config", str(config_path), "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "already at revision" in result.stderr
    status = run_cli("--config", str(config_path), "db", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert '"ready": true' in status.stdout


# --- not staff -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["db", "status"], ["db", "upgrade"], []])
def test_an_account_not_in_the_config_cannot_open_the_data(
    write_config: ConfigWriter, command: list[str]
) -> None:
    config = write_config(staff={"someone-else": "admin"}, allow_user_override=False)
    result = run_cli("--config", str(config), *command, env={"LOGNAME": "someone-else"})
    assert result.returncode == 2, result.stderr
    assert f"Error: account '{ME}' is not a staff member in the configuration" in result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_not_staff_learns_nothing_about_the_key(write_config: ConfigWriter, key_file: Path) -> None:
    """Identity is checked before the key is read: the error is 'not staff', not 'no key'."""
    config = write_config(staff={"someone-else": "admin"})
    key_file.unlink()
    with pytest.raises(NotStaffError, match=f"account '{ME}' is not a staff member"):
        open_context(config)


# --- --user ----------------------------------------------------------------------------------


def test_user_flag_is_refused_without_allow_user_override(write_config: ConfigWriter) -> None:
    config = write_config(allow_user_override=False)
    result = run_cli("--config", str(config), "--user", "vera", "db", "status")
    assert result.returncode == 2, result.stderr
    assert "Error: --user is refused: this configuration has allow_user_override = false" in (
        result.stderr
    )
    assert result.stdout == ""


def test_user_flag_is_honoured_with_allow_user_override(config_path: Path) -> None:
    as_vera = run_cli("--config", str(config_path), "--user", "vera", "db", "upgrade")
    assert as_vera.returncode == 2, as_vera.stderr
    assert "Error: vera (viewer) may not migrate the database" in as_vera.stderr
    status = run_cli("--config", str(config_path), "--user", "vera", "db", "status")
    assert status.returncode == 0, status.stderr


def test_user_flag_still_needs_a_staff_member(config_path: Path) -> None:
    result = run_cli("--config", str(config_path), "--user", "mallory", "db", "status")
    assert result.returncode == 2
    assert "Error: account 'mallory' is not a staff member" in result.stderr


def test_identify_refuses_override_in_process(write_config: ConfigWriter) -> None:
    settings = load_file(write_config(allow_user_override=False))
    with pytest.raises(NotStaffError, match="allow_user_override = false"):
        identify(settings, "vera")
    with pytest.raises(NotStaffError, match="allow_user_override = false"):
        identify(settings, ME)  # even naming yourself: the flag itself is not allowed


# --- what each role may do -------------------------------------------------------------------

EXPECTED = {
    "viewer": {Permission.READ},
    "editor": {Permission.READ, Permission.EDIT, Permission.EXPORT},
    "admin": set(Permission),
}


def test_viewer_cannot_change(open_as: Callable[[str], AppContext]) -> None:
    vera = open_as("vera").staff
    assert vera == StaffMember("vera", "viewer")
    vera.require(Permission.READ, "list schools")
    with pytest.raises(PermissionDenied) as info:
        vera.require(Permission.EDIT, "change a school")
    assert str(info.value) == (
        "vera (viewer) may not change a school: that needs the 'edit' permission"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "permission", [Permission.REVEAL, Permission.ERASE, Permission.MANAGE_KEYS, Permission.SWEEP]
)
def test_editor_can_edit_but_not_reveal_erase_or_manage_keys(
    open_as: Callable[[str], AppContext], permission: Permission
) -> None:
    eddie = open_as("eddie").staff
    assert eddie.role == "editor"
    eddie.require(Permission.EDIT, "change a school")
    with pytest.raises(PermissionDenied, match=f"eddie \\(editor\\) .*'{permission.value}'"):
        eddie.require(permission, "do this")


def test_admin_can_do_everything(ctx: AppContext) -> None:
    assert ctx.staff == StaffMember(ME, "admin")
    for permission in Permission:
        ctx.staff.require(permission, f"use {permission.value}")


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_permission_matrix(role: str) -> None:
    member = StaffMember("someone", role)
    assert {p for p in Permission if member.can(p)} == EXPECTED[role]


def test_an_unknown_role_cannot_be_constructed() -> None:
    with pytest.raises(ValueError, match="unknown role 'superuser'"):
        StaffMember("alice", "superuser")
