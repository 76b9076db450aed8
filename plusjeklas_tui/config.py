"""The TOML configuration, validated by pydantic.

Lookup order: ``--config PATH``, ``$PLUSJEKLAS_CONFIG``, then ``config.toml`` in the platformdirs
user config directory. With none of these the app runs on a default SQLite file in the user data
directory. Relative paths in a file are relative to that file's folder.

Every failure is a :class:`ConfigError` whose message starts with the file and, where it can be
found, the line: ``/etc/plusjeklas.toml, line 7: database.urll: unknown key``.

Types are checked strictly: ``allow_user_override = "yes"`` is an error, not ``true``, because a
config that silently means something else than it says is worse than one that does not load.

Secrets are never read from the file. A plugin names the environment variable that holds its
secret (``api_key_env = "MAILCHIMP_API_KEY"``); a plugin key that looks like a secret
(``api_key``, ``token``, ``password``, ``secret``, ...) with a literal value is refused.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from plusjeklas_tui.errors import ConfigError

APP_NAME = "plusjeklas"
CONFIG_ENV = "PLUSJEKLAS_CONFIG"
Role = Literal["viewer", "editor", "admin"]
SECURE_SSLMODES = {"require", "verify-ca", "verify-full"}
SUPPORTED_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
"""Backend -> the one DBAPI driver this app ships with."""

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_KEY_NAME = re.compile(
    r"(^|[_-])(api[_-]?key|secret|token|password|passwd|passphrase|private[_-]?key)([_-]|$)",
    re.IGNORECASE,
)
"""Plugin keys that hold a secret. Such a key is allowed only as ``<key>_env`` naming a variable."""


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


ENV_NAME_RULE = (
    "must be the name of an environment variable (upper-case letters, digits and _, "
    "e.g. MAILCHIMP_API_KEY), not the secret itself"
)


def _env_name(value: str) -> str:
    if not ENV_NAME.fullmatch(value):
        raise ValueError(ENV_NAME_RULE)
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
FilePath = Annotated[Path, Field(strict=False)]
"""TOML has no path type: a path is a string, so this one field type is not strict."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DatabaseSettings(_Strict):
    url: str | None = None
    """SQLAlchemy URL; empty means a SQLite file in the user data directory."""


class KeySettings(_Strict):
    file: FilePath | None = None
    """Key file (created by `plusjeklas keys init`, mode 0600)."""
    env: EnvName | None = None
    """Name of an environment variable holding the key lines instead of a file."""


class RetentionSettings(_Strict):
    general_after_end_months: int = Field(default=24, ge=1)
    """General data (organisation and people): kept this many calendar months after the last
    subscription ended. The privacy statement promises two years. Counted in months, not days,
    so a leap day never moves a deadline."""
    administrator_after_leaving_days: int = Field(default=365, ge=0)
    """An administrator who left while the school stays a customer."""
    payment_records_years: int = Field(default=7, ge=7)
    """Invoices and payment records: Dutch fiscal law (art. 52 AWR) demands at least seven years."""
    analytics_months: int = Field(default=13, ge=1, le=25)
    """Raw analytics data; must stay under the two years of general data."""
    keep_local_iban_as_payment_record: bool = False
    """Whether the IBAN stored here is part of the payment records the law makes us keep. When
    true, erasing an organisation moves its name, address and IBAN into a restricted record kept
    until the end of the financial year plus ``payment_records_years``; when false (the default:
    the payment provider keeps the payment records) the IBAN is erased with the rest."""
    payment_records_legal_basis: str = Field(
        default="Dutch fiscal law (art. 52 AWR, art. 2:10 BW); GDPR art. 17(3)(b)", min_length=1
    )
    """The legal basis named on erasure receipts for kept payment records (wording for people,
    so it lives in config)."""


class BreachSettings(_Strict):
    contact: str = "sascha@jongleren.biz"

    @field_validator("contact")
    @classmethod
    def _looks_like_address(cls, value: str) -> str:
        if "@" not in value.strip(" @"):
            raise ValueError("must be an e-mail address")
        return value.strip()


KVK_NUMBER = re.compile(r"^\d{8}$")
LegalBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
]
"""The six bases of GDPR art. 6(1), (a) to (f), by name."""


def _email_rule(value: str) -> str:
    from plusjeklas_tui.validation import FieldError, normalize_email

    try:
        return normalize_email(value)
    except FieldError as exc:
        raise ValueError(f"must be an e-mail address ({exc.rule})") from None


def _phone_rule(value: str) -> str:
    from plusjeklas_tui.validation import FieldError, normalize_phone

    try:
        return normalize_phone(value)
    except FieldError as exc:
        raise ValueError(f"must be a phone number, e.g. 020 123 4567 ({exc.rule})") from None


class ControllerSettings(_Strict):
    """The controller (art. 30(1)(a)): who decides on the processing, and how to reach them.

    The defaults are what the privacy statement says: Jongleren.biz, sascha@jongleren.biz.
    """

    name: str = Field(default="Jongleren.biz", min_length=1)
    address: str | None = Field(default=None, min_length=1)
    """Postal address, one line (the statement gives none; fill it in)."""
    contact_email: str = "sascha@jongleren.biz"
    phone: str | None = None
    """Stored in E.164 (+31...), written any way the validator accepts."""
    chamber_of_commerce: str | None = None
    """KvK number: eight digits."""
    dpo: str | None = Field(default=None, min_length=1)
    """Data protection officer (name and contact), only when one is appointed (art. 37)."""

    @field_validator("contact_email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return _email_rule(value)

    @field_validator("phone")
    @classmethod
    def _valid_phone(cls, value: str | None) -> str | None:
        return None if value is None else _phone_rule(value)

    @field_validator("chamber_of_commerce")
    @classmethod
    def _valid_kvk(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(" ", "")
        if not KVK_NUMBER.fullmatch(compact):
            raise ValueError("must be a KvK number of eight digits, e.g. 12345678")
        return compact


class ActivitySettings(_Strict):
    """A processing activity outside the app's own (the app's own are built in, in code)."""

    name: str = Field(min_length=1)
    purpose: str = Field(min_length=1)
    legal_basis: list[LegalBasis] = Field(min_length=1)
    data_subjects: list[str] = Field(min_length=1)
    data_categories: list[str] = Field(min_length=1)
    recipients: list[str] = Field(default_factory=list)
    transfers: str | None = Field(default=None, min_length=1)
    """Transfers outside the EEA and their safeguard, in words; leave out when there are none."""
    retention: str = Field(min_length=1)


class ProcessingSettings(_Strict):
    """What the register of processing (art. 30) cannot learn from the code or the plugins."""

    activities: list[ActivitySettings] = Field(default_factory=list)
    organisational_measures: list[str] = Field(default_factory=list)
    """Security measures outside this app (laptops, backups, training): listed as given."""


class PluginSettings(BaseModel):
    """A ``[plugins.<name>]`` table: common keys checked here, the rest belongs to the plugin."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    enabled: bool = False
    base_url: str | None = None
    api_key_env: EnvName | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    imitation: bool = False
    """Demo only: run against the bundled imitation of this provider's API, started in-process
    on a loopback port, its state kept beside the configuration file."""


class Settings(_Strict):
    language: Literal["nl", "en"] = "nl"
    allow_user_override: bool = False
    """Let `--user` pick the staff member. Only for demo and tests; never on a shared install."""
    database: DatabaseSettings = DatabaseSettings()
    keys: KeySettings = KeySettings()
    staff: dict[str, Role] = Field(default_factory=dict)
    retention: RetentionSettings = RetentionSettings()
    breach: BreachSettings = BreachSettings()
    controller: ControllerSettings = ControllerSettings()
    processing: ProcessingSettings = ProcessingSettings()
    purposes: list[str] = Field(default_factory=list)
    """Consent purposes beyond newsletter, analytics and feedback."""
    plugins: dict[str, PluginSettings] = Field(default_factory=dict)

    source: FilePath | None = Field(default=None, exclude=True)
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
        """A path from the file, made absolute against the file's folder."""
        path = path.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        if not self.database.url:
            return f"sqlite:///{user_data_dir() / 'plusjeklas.db'}"
        url = self.database.url
        try:
            parsed = make_url(url)
        except ArgumentError:
            return url  # check_database_url reports it
        if parsed.drivername == "postgresql":
            # SQLAlchemy 2.0 would pick psycopg2 for a bare postgresql://; we ship psycopg (3).
            return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        name = parsed.database or ""
        is_file = name not in {"", ":memory:"} and not name.startswith("file:")
        if parsed.get_backend_name() == "sqlite" and is_file:
            resolved = self.resolve(Path(name))
            return parsed.set(database=str(resolved)).render_as_string(hide_password=False)
        return url

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
    """Refuse URLs this app cannot run on safely (unknown engine, remote PostgreSQL without TLS).

    *where* prefixes the message (the loader passes ``"<file>, line N: database.url"``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{where}: '{_redact(url)}' is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DRIVERS:
        raise ConfigError(f"{where}: only sqlite and postgresql are supported, got '{backend}'")
    driver = SUPPORTED_DRIVERS[backend]
    if parsed.get_driver_name() != driver:
        raise ConfigError(
            f"{where}: the {backend} driver this app uses is {driver}: write the URL as "
            f"'{backend}+{driver}://...', not '{parsed.drivername}://...'"
        )
    if backend == "postgresql":
        host = _first(parsed.host or parsed.query.get("host") or "")
        if not _is_local_host(host):
            sslmode = _first(parsed.query.get("sslmode") or "")
            if sslmode not in SECURE_SSLMODES:
                raise ConfigError(
                    f"{where}: PostgreSQL host '{host}' is not local, so the connection must use "
                    "TLS: add '?sslmode=require' (or verify-ca / verify-full) to the URL"
                )


def _first(value: str | tuple[str, ...]) -> str:
    """A URL query value, which SQLAlchemy gives as a tuple when the key is repeated."""
    return value[0] if isinstance(value, tuple) else value


def _is_local_host(host: str) -> bool:
    if host in {"", "localhost"} or host.startswith("/"):
        return True  # empty or a path: the Unix socket
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable>"


# --- loading ---------------------------------------------------------------------------------


def locate_config(explicit: Path | None) -> tuple[Path, str] | None:
    """The config file to read and where its name came from, or None for the defaults."""
    if explicit is not None:
        return explicit, "given with --config"
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env), f"named by ${CONFIG_ENV}"
    default = user_config_file()
    return (default, "the user config file") if default.exists() else None


def find_config_file(explicit: Path | None) -> Path | None:
    found = locate_config(explicit)
    return found[0] if found else None


def load_settings(explicit: Path | None = None) -> Settings:
    found = locate_config(explicit)
    if found is None:
        return Settings()
    return load_file(*found)


def load_file(path: Path, origin: str | None = None) -> Settings:
    path = path.expanduser()
    why = f" ({origin})" if origin else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file does not exist{why}") from exc
    except (PermissionError, IsADirectoryError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc.strerror}){why}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: configuration file is not UTF-8 text") from exc
    return parse_settings(text, path)


def parse_settings(text: str, path: Path) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)": keep it whole.
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    problems = _loader_problems(data)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc))
    if problems or settings is None:
        raise ConfigError(_describe(problems, text, path))
    settings = settings.model_copy(update={"source": path.resolve()})
    line = _line_of(text, ["database", "url"])
    where = f"{path}, line {line}: database.url" if line else f"{path}: database.url"
    check_database_url(settings.database_url, where)
    return settings


Problem = tuple[list[str], str]
"""A key's path in the TOML document and what is wrong with it."""


def _loader_problems(data: dict[str, Any]) -> list[Problem]:
    """Rules pydantic cannot express: the loader-only ``source`` field, and literal secrets."""
    problems: list[Problem] = []
    if "source" in data:
        problems.append((["source"], "unknown key"))
    plugins = data.get("plugins")
    if isinstance(plugins, dict):
        for name, table in plugins.items():
            if isinstance(table, dict):
                problems.extend(_plugin_secrets(["plugins", name], table, name))
    return problems


def _plugin_secrets(loc: list[str], table: dict[str, Any], plugin: str) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in table.items():
        here = [*loc, key]
        if isinstance(value, dict):
            problems.extend(_plugin_secrets(here, value, plugin))
        elif key.endswith("_env"):
            if key not in PluginSettings.model_fields and not (
                isinstance(value, str) and ENV_NAME.fullmatch(value)
            ):
                problems.append((here, ENV_NAME_RULE))
        elif SECRET_KEY_NAME.search(key) and not isinstance(value, bool):
            variable = re.sub(r"[^A-Z0-9]+", "_", f"{plugin}_{key}".upper())
            problems.append(
                (
                    here,
                    "secrets are never read from the configuration file: put the value in an "
                    f'environment variable and name that variable instead, e.g. {key}_env = "'
                    f'{variable}"',
                )
            )
    return problems


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "extra_forbidden":
            problem = "unknown key" + _suggestion(loc)
        elif err["type"] == "missing":
            problem = "required key is missing"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            problem = f"{message} (got {_shorten(err.get('input'))})"
            if err["type"] == "bool_type":
                problem += "; write true or false, without quotes"
        problems.append((loc, problem))
    return problems


def _suggestion(loc: list[str]) -> str:
    """' (did you mean 'url'?)' for a misspelt key, when a close known key exists."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    known = [name for name in model.model_fields if name != "source"]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(problems: list[Problem], text: str, path: Path) -> str:
    located = [(_line_of(text, loc), loc, problem) for loc, problem in problems]
    located.sort(key=lambda item: item[0] or 0)
    lines = []
    for line, loc, problem in located:
        where = f"{path}, line {line}" if line else str(path)
        key = ".".join(loc)
        lines.append(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
    return "\n".join(lines)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- finding a key's line --------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parse_key(text: str) -> tuple[list[str], str] | None:
    """Split a dotted TOML key (bare, "basic" or 'literal' parts) off the start of *text*."""
    parts: list[str] = []
    rest = text
    while True:
        rest = rest.lstrip()
        if rest[:1] in {'"', "'"}:
            quote = rest[0]
            end = rest.find(quote, 1)
            while quote == '"' and end > 0 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :]
        else:
            match = _BARE_KEY.match(rest)
            if not match:
                return None
            parts.append(match.group())
            rest = rest[match.end() :]
        rest = rest.lstrip()
        if not rest.startswith("."):
            return parts, rest
        rest = rest[1:]


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a key path: the line defining it, else the first line inside
    it (a table defined only through ``[a.b]``), else its closest parent.

    Understands table headers (also ``[[arrays]]`` and trailing comments), dotted and quoted
    keys; skips the inside of multi-line strings.
    """
    if not loc:
        return None
    table: list[str] = []
    best: tuple[int, int] | None = None  # (depth of the closest parent, its line)
    first_inside: int | None = None
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            parsed = _parse_key(line.lstrip("["))
            if parsed is None or not parsed[1].startswith("]"):
                continue
            table = full = parsed[0]
        else:
            parsed = _parse_key(line)
            if parsed is None or not parsed[1].startswith("="):
                continue
            full = [*table, *parsed[0]]
            for quotes in ('"""', "'''"):
                if parsed[1].count(quotes) % 2 == 1:
                    in_multiline = quotes
        if full == loc:
            return number
        if full[: len(loc)] == loc:
            first_inside = first_inside or number  # [a.b] defines table a implicitly
        elif loc[: len(full)] == full and (best is None or len(full) > best[0]):
            best = (len(full), number)
    return first_inside or (best[1] if best else None)
