"""Everything a command or screen needs, opened once: settings, key, database, staff member."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from plusjeklas_tui import db, events  # noqa: F401 - events: plugin events after commit
from plusjeklas_tui.config import Settings, load_settings
from plusjeklas_tui.crypto import Keyring, load_key_file, parse_keys
from plusjeklas_tui.errors import KeyProblem
from plusjeklas_tui.staff import StaffMember, identify


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    keyring: Keyring
    staff: StaffMember

    def close(self) -> None:
        self.engine.dispose()


def load_keyring(settings: Settings) -> Keyring:
    if settings.keys.env:
        text = os.environ.get(settings.keys.env)
        if not text:
            raise KeyProblem(
                f"keys.env names the environment variable {settings.keys.env}, but it is not set"
            )
        return parse_keys(text, f"environment variable {settings.keys.env}")
    return load_key_file(settings.key_file)


def open_context(
    config_path: Path | None = None,
    user_override: str | None = None,
    *,
    settings: Settings | None = None,
    require_ready: bool = True,
) -> AppContext:
    """Open the app's world in the order that fails early and clearly.

    Staff identity comes first: someone who is not staff learns nothing about the key or the
    database, not even whether they exist.
    """
    settings = settings or load_settings(config_path)
    staff = identify(settings, user_override)
    keyring = load_keyring(settings)
    engine = db.make_engine(settings.database_url, keyring)
    if require_ready:
        try:
            db.ensure_ready(engine)
        except Exception:
            engine.dispose()
            raise
    return AppContext(settings=settings, engine=engine, keyring=keyring, staff=staff)
