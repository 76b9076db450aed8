"""The TOML configuration, validated by pydantic.

Lookup order: ``--config PATH``, ``$PLUSJEKLAS_CONFIG``, then ``config.toml`` in the platformdirs
user config directory. With none of these the app runs on a default SQLite file in the user data
directory. Secrets are never in the file: a plugin names the environment variable that holds its
API key (``api_key_env``). Relative paths in a file are relative to that file's folder.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from plusjeklas_tui.errors import ConfigError

APP_NAME = "plusjeklas"
CONFIG_ENV = "PLUSJEKLAS_CONFIG"
Role = Literal["viewer", "editor", "admin"]
SECURE_SSLMODES = {"require", "verify-ca", "verify-full"}


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Strict):
    url: str | None = None
    """SQLAlchemy URL; empty means a SQLite file in the user data directory."""


class KeySettings(_Strict):
    file: Path | None = None
    """Key file (created by `plusjeklas keys init`, mode 0600)."""
    env: str | None = None
    """Name of an environment variable holding the key lines instead of a file."""


class RetentionSettings(_Strict):
    general_after_end_days: int = Field(default=730, ge=1)
    """General data (organisation and people): kept this long after the last subscription ended."""
    administrator_after_leaving_days: int = Field(default=365, ge=0)
    payment_records_years: int = Field(default=7, ge=1)
    analytics_months: int = Field(default=25, ge=1)


class BreachSettings(_Strict):
    contact: str = "sascha@jongleren.biz"


class PluginSettings(BaseModel):
    """A ``[plugins.<name>]`` table: common keys checked here, the rest belongs to the plugin."""

    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = False
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


class Settings(_Strict):
    language: Literal["nl", "en"] = "nl"
    allow_user_override: bool = False
    """Let `--user` pick the staff member. Only for demo and tests; never on a shared install."""
    database: DatabaseSettings = DatabaseSettings()
    keys: KeySettings = KeySettings()
    staff: dict[str, Role] = Field(default_factory=dict)
    retention: RetentionSettings = RetentionSettings()
    breach: BreachSettings = BreachSettings()
    purposes: list[str] = Field(default_factory=list)
    """Consent purposes beyond newsletter, analytics and feedback."""
    plugins: dict[str, PluginSettings] = Field(default_factory=dict)

    source: Path | None = Field(default=None, exclude=True)
    """The file this was read from (not a TOML key; set by the loader)."""

    @field_validator("purposes")
    @classmethod
    def _purposes_are_slugs(cls, value: list[str]) -> list[str]:
        for purpose in value:
            if not purpose.replace("-", "").replace("_", "").isalnum() or not purpose.islower():
                raise ValueError(f"purpose '{purpose}' must be lower-case letters, digits, - or _")
        return value

    # --- derived -------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else user_data_dir()

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        if self.database.url:
            url = self.database.url
            if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
                rel = url.removeprefix("sqlite:///")
                if rel and rel != ":memory:":
                    return f"sqlite:///{self.resolve(Path(rel))}"
            return url
        return f"sqlite:///{user_data_dir() / 'plusjeklas.db'}"

    @property
    def key_file(self) -> Path:
        return (
            self.resolve(self.keys.file) if self.keys.file else user_data_dir() / "plusjeklas.key"
        )

    @property
    def consent_purposes(self) -> list[str]:
        from plusjeklas_tui.models import DEFAULT_PURPOSES

        return [*DEFAULT_PURPOSES, *(p for p in self.purposes if p not in DEFAULT_PURPOSES)]


def check_database_url(url: str, where: str = "database.url") -> None:
    """Refuse URLs this app cannot run on safely (unknown engine, remote PostgreSQL without TLS)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{where}: '{_redact(url)}' is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(f"{where}: only sqlite and postgresql are supported, got '{backend}'")
    if backend == "postgresql":
        host = parsed.host or parsed.query.get("host") or ""
        if isinstance(host, tuple):
            host = host[0]
        if not _is_local_host(str(host)):
            sslmode = parsed.query.get("sslmode")
            if isinstance(sslmode, tuple):
                sslmode = sslmode[0]
            if sslmode not in SECURE_SSLMODES:
                raise ConfigError(
                    f"{where}: PostgreSQL host '{host}' is not local, so the connection must use "
                    "TLS: add '?sslmode=require' (or verify-ca / verify-full) to the URL"
                )


def _is_local_host(host: str) -> bool:
    if host in {"", "localhost"} or host.startswith("/"):
        return True  # empty or a path: the Unix socket
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable>"


# --- loading ---------------------------------------------------------------------------------


def find_config_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    default = user_config_file()
    return default if default.exists() else None


def load_settings(explicit: Path | None = None) -> Settings:
    path = find_config_file(explicit)
    if path is None:
        return Settings()
    return load_file(path)


def load_file(path: Path) -> Settings:
    path = path.expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file does not exist") from exc
    except (PermissionError, IsADirectoryError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc.strerror})") from exc
    return parse_settings(text, path)


def parse_settings(text: str, path: Path) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from exc
    try:
        settings = Settings.model_validate({**data})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, text, path)) from None
    settings = settings.model_copy(update={"source": path.resolve()})
    check_database_url(settings.database_url)
    return settings


def _describe(exc: ValidationError, text: str, path: Path) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        line = _line_of(text, loc)
        where = f"{path}, line {line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            problem = "unknown key"
        elif err["type"] == "missing":
            problem = "required key is missing"
        else:
            problem = f"{err['msg']} (got {_shorten(err.get('input'))})"
        lines.append(f"{where}: {key}: {problem}")
    return "\n".join(lines)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a dotted key: the table header, then the key inside it."""
    if not loc:
        return None
    *tables, key = loc
    current: list[str] = []
    fallback = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = [p.strip().strip('"') for p in line.strip("[]").split(".")]
            if current == loc:
                return number
            if current == tables:
                fallback = number
            continue
        name = line.split("=", 1)[0].strip().strip('"')
        if "=" in line and name == key and current == tables:
            return number
        if "=" in line and tables and name == tables[-1] and current == tables[:-1]:
            fallback = fallback or number
    return fallback
