"""What every command shares: global options, opening the context, errors to exit codes.

Exit codes: 0 success, 1 failure, 2 usage or configuration error (including a user who is not
staff). Machine-readable output goes to stdout (``--json``); progress and messages to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from plusjeklas_tui.config import Settings, load_settings
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.validation import FieldError, ValidationErrors

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    config_path: Path | None = None
    user: str | None = None
    _context: AppContext | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        return load_settings(self.config_path)

    def context(self, *, require_ready: bool = True) -> AppContext:
        if self._context is None:
            self._context = open_context(self.config_path, self.user, require_ready=require_ready)
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None


pass_state = click.make_pass_decorator(CliState, ensure=True)


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays machine-readable)."""
    click.echo(message, err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def handle_errors(func: F) -> F:
    """Turn the app's own errors into a one-line message and their exit code; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PlusjeklasError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except ValidationErrors as exc:
            for error in exc.errors:
                click.echo(f"Error: {error}", err=True)  # FieldError hides personal values
            sys.exit(1)
        except FieldError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
