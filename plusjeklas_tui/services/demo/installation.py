"""The demo installation ``plusjeklas demo`` runs in: config, key file, migrated database."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.config import Settings, load_file, user_data_dir
from plusjeklas_tui.crypto import FieldKey, Keyring, load_key_file, write_key_file
from plusjeklas_tui.errors import ConfigError, DatabaseNotReady, KeyProblem, PlusjeklasError
from plusjeklas_tui.models import Administrator
from plusjeklas_tui.services.demo.generator import DEFAULT_SEED
from plusjeklas_tui.services.demo.records import DemoCounts
from plusjeklas_tui.services.demo.words import DEMO_EDITOR, DEMO_VIEWER
from plusjeklas_tui.services.demo.writer import (
    DEFAULT_SCHOOLS,
    ProgressCallback,
    count_rows,
    count_schools,
    generate,
)
from plusjeklas_tui.staff import identify, os_account

DEMO_DB_NAME = "plusjeklas-demo.db"
CONFIG_NAME = "plusjeklas.toml"
KEY_NAME = "plusjeklas.key"
CONFIG_MARKER = "# Written by `plusjeklas demo`"


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`prepare_demo` made or found."""

    config_path: Path
    database_path: Path
    key_path: Path
    reused: bool
    counts: DemoCounts


def default_database_path() -> Path:
    return user_data_dir() / "demo" / DEMO_DB_NAME


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def demo_config_text(database_path: Path) -> str:
    """The demo's own configuration: relative paths, so the folder can be moved as a whole."""
    me = os_account()
    staff = {DEMO_VIEWER: "viewer", DEMO_EDITOR: "editor", me: "admin"}
    staff_lines = "".join(
        f"{_toml_string(user)} = {_toml_string(role)}\n" for user, role in staff.items()
    )
    return (
        f"{CONFIG_MARKER}: a throw-away demo installation with generated data.\n"
        "# Use it for every command with: PLUSJEKLAS_CONFIG=<this file> plusjeklas ...\n"
        "# allow_user_override lets you try the roles: plusjeklas --user demo-viewer ...\n"
        'language = "nl"\n'
        "allow_user_override = true\n"
        "\n[database]\n"
        f"url = {_toml_string('sqlite:///' + database_path.name)}\n"
        "\n[keys]\n"
        f"file = {_toml_string(KEY_NAME)}\n"
        "\n[staff]\n" + staff_lines + _plugin_tables()
    )


def _plugin_tables() -> str:
    from plusjeklas_tui.testing.demo_providers import demo_plugin_tables

    return demo_plugin_tables()


def _check_config_is_ours(path: Path) -> None:
    """Never replace a real configuration (one that, say, sets allow_user_override = false)."""
    if path.exists() and not path.read_text(errors="replace").startswith(CONFIG_MARKER):
        raise ConfigError(
            f"{path} exists and was not written by `plusjeklas demo`; refusing to replace it. "
            "Give the demo a folder of its own with --db"
        )


def _write_config(path: Path, content: str) -> None:
    _check_config_is_ours(path)
    if path.exists() and path.read_text(errors="replace") == content:
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _has_schools(database_path: Path) -> bool:
    """Whether a migrated database with organisations is already there (no key needed)."""
    if not database_path.exists():
        return False
    engine = db.make_engine(f"sqlite:///{database_path}")
    try:
        if db.current_revision(engine) is None:
            return False
        return count_schools(engine) > 0
    except SQLAlchemyError as exc:
        raise PlusjeklasError(
            f"{database_path} exists but is not a usable SQLite database "
            f"({type(getattr(exc, 'orig', None) or exc).__name__}); choose another path with --db"
        ) from None
    finally:
        engine.dispose()


def _migrate(engine: Engine) -> None:
    try:
        db.ensure_ready(engine)
    except DatabaseNotReady as not_ready:
        from alembic.util import CommandError

        try:
            db.upgrade(engine)
        except CommandError:
            raise not_ready from None  # migrated by a newer version: say so, not alembic
        db.ensure_ready(engine)


def _check_key_fits(engine: Engine) -> None:
    """Decrypt one stored value, so a wrong key is reported now rather than on the first screen."""
    with Session(engine) as session:
        session.scalars(select(Administrator).limit(1)).first()


def prepare_demo(
    database_path: Path | None = None,
    *,
    schools: int = DEFAULT_SCHOOLS,
    seed: int = DEFAULT_SEED,
    progress: ProgressCallback | None = None,
) -> DemoSetup:
    """Create (or reuse) a demo installation around *database_path*.

    Next to the database: ``plusjeklas.toml`` (this account as admin, a demo viewer and editor,
    ``allow_user_override = true``) and ``plusjeklas.key`` (0600). A migrated database that
    already holds schools is reused as it is, never regenerated. A ``plusjeklas.toml`` that
    the demo did not write is never replaced.
    """
    path = (database_path or default_database_path()).expanduser().resolve()
    if set(path.name) & set("?#%"):
        raise ConfigError(f"--db: the file name '{path.name}' may not contain ?, # or %")
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    config_path, key_path = folder / CONFIG_NAME, folder / KEY_NAME
    config_text = demo_config_text(path)
    _check_config_is_ours(config_path)
    has_schools = _has_schools(path)
    if not key_path.exists():
        if has_schools:
            raise KeyProblem(
                f"the demo database {path} holds data but its key file {key_path} is missing; "
                "remove the database to start a new demo"
            )
        write_key_file(key_path, Keyring([FieldKey.generate()]), exclusive=True)
    _write_config(config_path, config_text)
    settings: Settings = load_file(config_path)
    staff = identify(settings)
    keyring = load_key_file(settings.key_file)
    engine = db.make_engine(settings.database_url, keyring)
    try:
        _migrate(engine)
        if has_schools:
            _check_key_fits(engine)
            counts, reused = count_rows(engine), True
        else:
            counts = generate(
                engine, keyring, schools=schools, seed=seed, actor=staff, progress=progress
            )
            reused = False
        from plusjeklas_tui.testing.demo_providers import seed

        seed(settings, engine)  # the imitated providers hold the demo's people (once)
    finally:
        engine.dispose()
    return DemoSetup(config_path, path, key_path, reused, counts)
