"""Who is using the app, and what their role lets them do.

The staff identity is the account of the process's *real* uid, read from the password database.
``getpass.getuser()`` would trust ``LOGNAME``/``USER``, which anyone can set on the command line;
so would any flag or file the user can write. ``--user`` is honoured only where the
configuration explicitly allows it (demo and tests).
"""

from __future__ import annotations

import enum
import os
import pwd
from dataclasses import dataclass

from plusjeklas_tui.config import Settings
from plusjeklas_tui.errors import NotStaffError, PermissionDenied


class Permission(enum.StrEnum):
    READ = "read"
    EDIT = "edit"
    REVEAL = "reveal"  # see a masked value (IBAN) in full
    ERASE = "erase"
    SWEEP = "sweep"
    MANAGE_KEYS = "manage-keys"
    EXPORT = "export"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.READ}),
    "editor": frozenset({Permission.READ, Permission.EDIT, Permission.EXPORT}),
    "admin": frozenset(Permission),
}


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLE_PERMISSIONS:
            roles = ", ".join(ROLE_PERMISSIONS)
            raise ValueError(f"unknown role '{self.role}': use one of {roles}")

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission, what: str) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"{self.username} ({self.role}) may not {what}: that needs the "
                f"'{permission.value}' permission"
            )

    @property
    def source_tag(self) -> str:
        """How this member appears as a consent source."""
        return f"staff:{self.username}"


def os_account() -> str:
    """The account name of the real uid (not the effective uid, not the environment)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        # A container or NSS set-up without an entry for this uid: there is no name to trust.
        raise NotStaffError(
            f"uid {uid} has no account in the password database, so it cannot be a staff member"
        ) from None


def identify(settings: Settings, user_override: str | None = None) -> StaffMember:
    """The staff member running this process, from the real uid (or `--user` where allowed)."""
    if user_override is not None and not settings.allow_user_override:
        raise NotStaffError(
            "--user is refused: this configuration has allow_user_override = false; "
            "the staff member is the account you are logged in as"
        )
    username = user_override if user_override is not None else os_account()
    role = settings.staff.get(username)
    if role is None:
        if settings.source is None:
            raise NotStaffError(
                f"no configuration file found, so account '{username}' is not staff; "
                "try `plusjeklas demo`, or copy config.example.toml and set --config or "
                "$PLUSJEKLAS_CONFIG"
            )
        raise NotStaffError(
            f"account '{username}' is not a staff member in the configuration "
            f"({settings.source}); ask an administrator to add it under [staff]"
        )
    return StaffMember(username=username, role=role)
