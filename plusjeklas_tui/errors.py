"""Exceptions that carry a message for people and an exit code for the CLI.

Messages never contain personal data: they name fields, files, keys and rules, not values
that belong to a person (those stay in the UI next to the field that holds them).
"""

from __future__ import annotations


class PlusjeklasError(Exception):
    """Base of every error this application raises on purpose."""

    exit_code = 1


class ConfigError(PlusjeklasError):
    """The configuration cannot be used: missing file, bad TOML, unknown key, wrong type."""

    exit_code = 2


class NotStaffError(PlusjeklasError):
    """The OS account running the app is not a configured staff member."""

    exit_code = 2


class PermissionDenied(PlusjeklasError):
    """A staff member tried something their role does not allow."""

    exit_code = 2


class KeyProblem(PlusjeklasError):
    """The encryption key is missing, unreadable, or does not match the data."""

    exit_code = 2


class DatabaseNotReady(PlusjeklasError):
    """The database is not migrated, or was migrated by a newer version of the code."""

    exit_code = 2


class NotFound(PlusjeklasError):
    """A record asked for by a key (BRIN, id) does not exist."""
