"""Shared fixtures: a configured, migrated database on SQLite and (when reachable) PostgreSQL.

PostgreSQL is used when ``PLUSJEKLAS_TEST_POSTGRES_URL`` is set or a server answers on
127.0.0.1:5432. Each test gets a throwaway database cloned from a migrated template, so tests
stay independent and fast.
"""

from __future__ import annotations

import itertools
import os
import socket
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.crypto import FieldKey, Keyring, write_key_file
from plusjeklas_tui.staff import os_account

PG_ENV = "PLUSJEKLAS_TEST_POSTGRES_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ME = os_account()


def _postgres_admin_url() -> str | None:
    if os.environ.get(PG_ENV):
        return os.environ[PG_ENV]
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return DEFAULT_PG_URL
    except OSError:
        return None


class PostgresServer:
    """Creates throwaway databases from a migrated template on one server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"plusjeklas_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self.counter = itertools.count()
        self.created: list[str] = []
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}"'))
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        engine = create_engine(self.url_for(self.template))
        db.upgrade(engine)
        engine.dispose()

    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def new_database(self, migrated: bool = True) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in [*self.created, self.template]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    url = _postgres_admin_url()
    if url is None:
        yield None
        return
    server = PostgresServer(url)
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request: pytest.FixtureRequest, postgres_server: PostgresServer | None) -> str:
    if request.param == "postgresql" and postgres_server is None:
        pytest.skip(f"no PostgreSQL: set {PG_ENV} or run a server on 127.0.0.1:5432")
    return request.param


@pytest.fixture
def blank_db_url(
    engine_name: str, tmp_path: Path, postgres_server: PostgresServer | None
) -> Iterator[str]:
    """A URL of an empty, unmigrated database on the engine under test."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'plusjeklas.db'}"
        return
    assert postgres_server is not None
    url = postgres_server.new_database(migrated=False)
    yield url
    postgres_server.drop(url)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "plusjeklas.key"
    write_key_file(path, Keyring([FieldKey.generate()]))
    return path


ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path, blank_db_url: str, key_file: Path) -> ConfigWriter:
    """Write a config file; keyword arguments replace top-level TOML snippets."""

    def write(
        *,
        staff: dict[str, str] | None = None,
        allow_user_override: bool = True,
        extra: str = "",
        url: str | None = None,
        name: str = "plusjeklas.toml",
    ) -> Path:
        staff = staff if staff is not None else {ME: "admin", "vera": "viewer", "eddie": "editor"}
        staff_lines = "\n".join(f'"{user}" = "{role}"' for user, role in staff.items())
        body = textwrap.dedent(
            f"""\
            language = "en"
            allow_user_override = {str(allow_user_override).lower()}

            [database]
            url = "{url or blank_db_url}"

            [keys]
            file = "{key_file}"

            [staff]
            """
        )
        path = tmp_path / name
        path.write_text(body + staff_lines + "\n" + extra)
        return path

    return write


@pytest.fixture
def config_path(write_config: ConfigWriter, blank_db_url: str) -> Path:
    """A config whose database is migrated."""
    path = write_config()
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def ctx(config_path: Path) -> Iterator[AppContext]:
    """The context of the current OS user, an admin, on a migrated database."""
    context = open_context(config_path)
    yield context
    context.close()


@pytest.fixture
def open_as(config_path: Path) -> Iterator[Callable[[str], AppContext]]:
    opened: list[AppContext] = []

    def open_(user: str) -> AppContext:
        context = open_context(config_path, user)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()


def pytest_report_header(config: Any) -> str:
    url = _postgres_admin_url()
    where = f"on {make_url(url).render_as_string()}" if url else "skipped (no server)"
    return f"plusjeklas: PostgreSQL tests {where}"
