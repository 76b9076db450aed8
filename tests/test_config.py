"""Configuration: every kind of mistake gives file, line, key and rule; lookup order; paths.

These tests need no database: they load TOML through the real loader and check the message a
person would read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from plusjeklas_tui.config import (
    CONFIG_ENV,
    PluginSettings,
    Settings,
    load_file,
    load_settings,
)
from plusjeklas_tui.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"


def write(tmp_path: Path, text: str, name: str = "plusjeklas.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.exit_code == 2
    return str(info.value)


# --- the file itself -------------------------------------------------------------------------


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert error_of(path) == f"{path}: configuration file does not exist"


def test_missing_file_from_environment_says_where_the_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gone.toml"
    monkeypatch.setenv(CONFIG_ENV, str(path))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: configuration file does not exist")):
        load_settings(None)
    with pytest.raises(ConfigError, match=r"named by \$PLUSJEKLAS_CONFIG"):
        load_settings(None)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path}: cannot read configuration file")


def test_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        language = "nl"

        [database
        url = "sqlite:///x.db"
        """,
    )
    message = error_of(path)
    assert message.startswith(f"{path}: TOML syntax error: ")
    assert "(at line 3, column" in message


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = load_file(write(tmp_path, ""))
    assert settings.allow_user_override is False
    assert settings.staff == {}
    assert settings.retention.general_after_end_months == 24
    assert settings.source == (tmp_path / "plusjeklas.toml").resolve()


# --- unknown keys ----------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'language = "nl"\nlangauge = "en"\n')
    assert error_of(path) == (f"{path}, line 2: langauge: unknown key (did you mean 'language'?)")


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        language = "en"

        [database]  # where the data lives
        urll = "sqlite:///x.db"
        """,
    )
    assert error_of(path) == f"{path}, line 4: database.urll: unknown key (did you mean 'url'?)"


def test_unknown_table(tmp_path: Path) -> None:
    path = write(tmp_path, "[plugin.mailchimp]\nenabled = false\n")
    assert error_of(path) == f"{path}, line 1: plugin: unknown key (did you mean 'plugins'?)"


def test_unknown_dotted_key_at_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, 'language = "nl"\nretention.general_days = 3\n')
    message = error_of(path)
    assert message.startswith(f"{path}, line 2: retention.general_days: unknown key")


def test_source_is_not_a_key_of_the_file(tmp_path: Path) -> None:
    """`source` is set by the loader; the file must not be able to claim another origin."""
    path = write(tmp_path, 'source = "/etc/other.toml"\n')
    assert error_of(path) == f"{path}, line 1: source: unknown key"


# --- wrong types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "line", "key", "rule"),
    [
        ('allow_user_override = "yes"', 2, "allow_user_override", "valid boolean (got 'yes')"),
        ("allow_user_override = 1", 2, "allow_user_override", "valid boolean (got 1)"),
        (
            '[retention]\ngeneral_after_end_months = "two years"',
            3,
            "retention.general_after_end_months",
            "valid integer (got 'two years')",
        ),
        (
            '[retention]\ngeneral_after_end_months = "24"',
            3,
            "retention.general_after_end_months",
            "valid integer (got '24')",
        ),
        (
            "[retention]\npayment_records_years = 5",
            3,
            "retention.payment_records_years",
            "greater than or equal to 7 (got 5)",
        ),
        (
            "[retention]\nanalytics_months = 36",
            3,
            "retention.analytics_months",
            "less than or equal to 25 (got 36)",
        ),
        ('language = "fr"', 2, "language", "Input should be 'nl' or 'en' (got 'fr')"),
        ('purposes = "newsletter"', 2, "purposes", "valid list (got 'newsletter')"),
        ('purposes = ["Nieuwsbrief!"]', 2, "purposes", "lower-case letters, digits, - or _"),
        ("[keys]\nfile = 42", 3, "keys.file", "not a valid path"),
        ('[breach]\ncontact = "Sascha"', 3, "breach.contact", "must be an e-mail address"),
    ],
)
def test_wrong_type_names_line_key_and_rule(
    tmp_path: Path, toml: str, line: int, key: str, rule: str
) -> None:
    path = write(tmp_path, "# settings\n" + toml + "\n")
    message = error_of(path)
    assert message.startswith(f"{path}, line {line}: {key}: "), message
    assert rule in message


def test_a_string_boolean_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, 'allow_user_override = "yes"\n')
    assert error_of(path).endswith("write true or false, without quotes")


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        language = "fr"

        [database]
        urll = "x"

        [staff]
        alice = "superuser"
        """,
    )
    lines = error_of(path).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}, line 1",
        f"{path}, line 4",
        f"{path}, line 7",
    ]
    assert [line.split(": ")[1] for line in lines] == ["language", "database.urll", "staff.alice"]


# --- roles -----------------------------------------------------------------------------------


def test_bad_role_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [staff]
        vera = "viewer"
        alice = "superuser"
        """,
    )
    assert error_of(path) == (
        f"{path}, line 3: staff.alice: Input should be 'viewer', 'editor' or 'admin' "
        "(got 'superuser')"
    )


def test_quoted_staff_names_with_dots_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, '[staff]\n"j.devries" = "editor"\n"k.bakker" = "boss"\n')
    assert error_of(path).startswith(f"{path}, line 3: staff.k.bakker: Input should be")


# --- database URL ----------------------------------------------------------------------------


def _db(tmp_path: Path, url: str) -> Path:
    return write(tmp_path, f'language = "en"\n\n[database]\nurl = "{url}"\n')


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db.jongleren.biz:5432/plusjeklas",
        "postgresql+psycopg://app@db.jongleren.biz/plusjeklas?sslmode=prefer",
        "postgresql+psycopg://app@10.0.0.5/plusjeklas?sslmode=disable",
        "postgresql+psycopg://app@[2001:db8::1]/plusjeklas",
        "postgresql+psycopg:///plusjeklas?host=db.jongleren.biz",
    ],
)
def test_remote_postgresql_without_tls_is_refused(tmp_path: Path, url: str) -> None:
    path = _db(tmp_path, url)
    message = error_of(path)
    assert message.startswith(f"{path}, line 4: database.url: PostgreSQL host ")
    assert "is not local" in message
    assert "add '?sslmode=require'" in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db.jongleren.biz:5432/plusjeklas?sslmode=require",
        "postgresql+psycopg://app@db.jongleren.biz/plusjeklas?sslmode=verify-full",
        "postgresql+psycopg://app@127.0.0.1:5432/plusjeklas",
        "postgresql+psycopg://app@localhost/plusjeklas",
        "postgresql+psycopg://app@[::1]:5432/plusjeklas",
        "postgresql+psycopg:///plusjeklas?host=/var/run/postgresql",
        "postgresql+psycopg:///plusjeklas",
    ],
)
def test_local_or_tls_postgresql_is_accepted(tmp_path: Path, url: str) -> None:
    settings = load_file(_db(tmp_path, url))
    assert settings.database_url == url


def test_bare_postgresql_url_uses_psycopg(tmp_path: Path) -> None:
    settings = load_file(_db(tmp_path, "postgresql://app@localhost/plusjeklas?sslmode=require"))
    assert settings.database_url == (
        "postgresql+psycopg://app@localhost/plusjeklas?sslmode=require"
    )


def test_password_is_hidden_in_url_messages(tmp_path: Path) -> None:
    path = _db(tmp_path, "postgresql+psycopg://app:hunter2@db.jongleren.biz/plusjeklas")
    assert "hunter2" not in error_of(path)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        (
            "mysql://app@localhost/plusjeklas",
            "only sqlite and postgresql are supported, got 'mysql'",
        ),
        ("oracle://app@localhost/x", "only sqlite and postgresql are supported, got 'oracle'"),
        (
            "postgresql+psycopg2://app@localhost/plusjeklas",
            "write the URL as 'postgresql+psycopg://...', not 'postgresql+psycopg2://...'",
        ),
        ("sqlite+aiosqlite:///x.db", "write the URL as 'sqlite+pysqlite://...'"),
        ("not a url", "is not a database URL"),
    ],
)
def test_unsupported_database_is_refused(tmp_path: Path, url: str, rule: str) -> None:
    path = _db(tmp_path, url)
    message = error_of(path)
    assert message.startswith(f"{path}, line 4: database.url: ")
    assert rule in message


# --- plugin tables ---------------------------------------------------------------------------


def test_plugin_tables_accept_plugin_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [plugins.mailchimp]
        enabled = true
        api_key_env = "MAILCHIMP_API_KEY"
        list_id = "a1b2c3d4e5"
        tokens_per_minute = 5

        [plugins.matomo]
        base_url = "https://analytics.jongleren.biz"
        site_id = 3
        timeout_seconds = 2.5
        webhook_secret_env = "MATOMO_WEBHOOK_SECRET"

        [plugins.matomo.dimensions]
        school = 1
        """,
    )
    plugins = load_file(path).plugins
    mailchimp, matomo = plugins["mailchimp"], plugins["matomo"]
    assert mailchimp.enabled is True
    assert mailchimp.api_key_env == "MAILCHIMP_API_KEY"
    assert mailchimp.model_extra == {"list_id": "a1b2c3d4e5", "tokens_per_minute": 5}
    assert matomo.enabled is False
    assert matomo.timeout_seconds == 2.5
    assert matomo.model_extra is not None
    assert matomo.model_extra["site_id"] == 3
    assert matomo.model_extra["dimensions"] == {"school": 1}


@pytest.mark.parametrize(
    ("toml", "key", "rule"),
    [
        ('enabled = "yes"', "enabled", "valid boolean (got 'yes')"),
        ("enabled = 1", "enabled", "valid boolean (got 1)"),
        ("timeout_seconds = 0", "timeout_seconds", "greater than 0"),
        ('timeout_seconds = "10"', "timeout_seconds", "valid number"),
        ("base_url = 3", "base_url", "valid string"),
        (
            'api_key_env = "abc123def-us21"',
            "api_key_env",
            "must be the name of an environment variable",
        ),
    ],
)
def test_plugin_common_keys_are_still_checked(
    tmp_path: Path, toml: str, key: str, rule: str
) -> None:
    path = write(tmp_path, f'[plugins.mollie]\nlist = "ok"\n{toml}\n')
    message = error_of(path)
    assert message.startswith(f"{path}, line 3: plugins.mollie.{key}: "), message
    assert rule in message


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("api_key", "MAILCHIMP_API_KEY"),
        ("apiKey", "MAILCHIMP_APIKEY"),
        ("token_auth", "MAILCHIMP_TOKEN_AUTH"),
        ("access_token", "MAILCHIMP_ACCESS_TOKEN"),
        ("password", "MAILCHIMP_PASSWORD"),
        ("webhook_secret", "MAILCHIMP_WEBHOOK_SECRET"),
    ],
)
def test_literal_secrets_in_plugin_tables_are_refused(
    tmp_path: Path, key: str, variable: str
) -> None:
    path = write(tmp_path, f'[plugins.mailchimp]\nenabled = false\n{key} = "0123abcd-us21"\n')
    message = error_of(path)
    assert message.startswith(f"{path}, line 3: plugins.mailchimp.{key}: secrets are never read")
    assert "put the value in an environment variable" in message
    assert f'{key}_env = "{variable}"' in message
    assert "0123abcd" not in message


def test_secrets_in_nested_plugin_tables_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[plugins.mollie]\n\n[plugins.mollie.webhook]\nsecret = "s3cr3t"\n')
    message = error_of(path)
    assert message.startswith(f"{path}, line 4: plugins.mollie.webhook.secret: secrets are never")
    assert 'secret_env = "MOLLIE_SECRET"' in message


def test_plugin_env_keys_must_name_a_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[plugins.mollie]\nwebhook_secret_env = "whsec_live abc"\n')
    message = error_of(path)
    assert message.startswith(
        f"{path}, line 2: plugins.mollie.webhook_secret_env: must be the name"
    )


def test_key_env_must_name_a_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[keys]\nenv = "v1:AbCdEf=="\n')
    assert error_of(path).startswith(f"{path}, line 2: keys.env: must be the name of an env")


# --- lookup order ----------------------------------------------------------------------------


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """User config and data directories of our own (platformdirs honours XDG_* on Linux)."""
    config_home, data_home = tmp_path / "xdg-config", tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return config_home, data_home


def _marked(path: Path, contact: str) -> Path:
    """A config recognisable by its breach contact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[breach]\ncontact = "{contact}"\n', encoding="utf-8")
    return path


def test_lookup_without_any_config_uses_defaults_in_user_data_dir(
    isolated_dirs: tuple[Path, Path],
) -> None:
    _, data_home = isolated_dirs
    settings = load_settings(None)
    assert settings.source is None
    assert settings.database_url == f"sqlite:///{data_home / 'plusjeklas' / 'plusjeklas.db'}"
    assert settings.key_file == data_home / "plusjeklas" / "plusjeklas.key"


def test_lookup_order(
    tmp_path: Path, isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_home, _ = isolated_dirs
    user_file = _marked(config_home / "plusjeklas" / "config.toml", "user@jongleren.biz")
    env_file = _marked(tmp_path / "env.toml", "env@jongleren.biz")
    explicit = _marked(tmp_path / "explicit.toml", "explicit@jongleren.biz")

    assert load_settings(None).breach.contact == "user@jongleren.biz"
    assert load_settings(None).source == user_file.resolve()

    monkeypatch.setenv(CONFIG_ENV, str(env_file))
    assert load_settings(None).breach.contact == "env@jongleren.biz"

    assert load_settings(explicit).breach.contact == "explicit@jongleren.biz"
    assert load_settings(explicit).source == explicit.resolve()


def test_an_empty_environment_variable_is_ignored(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_home, _ = isolated_dirs
    _marked(config_home / "plusjeklas" / "config.toml", "user@jongleren.biz")
    monkeypatch.setenv(CONFIG_ENV, "")
    assert load_settings(None).breach.contact == "user@jongleren.biz"


# --- relative paths --------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "plusjeklas"
    path = write(
        folder,
        """\
        [database]
        url = "sqlite:///data/plusjeklas.db"

        [keys]
        file = "../keys/plusjeklas.key"
        """,
    )
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_file(Path(os.path.relpath(path, elsewhere)))
    assert settings.database_url == f"sqlite:///{folder / 'data' / 'plusjeklas.db'}"
    assert settings.key_file == folder / "../keys/plusjeklas.key"
    assert settings.key_file.resolve() == tmp_path / "etc" / "keys" / "plusjeklas.key"


def test_absolute_and_home_paths_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(
        tmp_path,
        """\
        [database]
        url = "sqlite:////srv/plusjeklas/plusjeklas.db"

        [keys]
        file = "~/plusjeklas.key"
        """,
    )
    settings = load_file(path)
    assert settings.database_url == "sqlite:////srv/plusjeklas/plusjeklas.db"
    assert settings.key_file == tmp_path / "home" / "plusjeklas.key"


# --- the example file ------------------------------------------------------------------------


def test_example_config_loads() -> None:
    settings = load_file(EXAMPLE)
    assert settings.source == EXAMPLE
    assert settings.allow_user_override is False
    assert set(settings.staff.values()) == {"viewer", "editor", "admin"}
    assert settings.retention.general_after_end_months == 24  # the privacy statement's 2 years
    assert settings.retention.payment_records_years == 7
    assert settings.retention.analytics_months < 24
    assert settings.breach.contact == "sascha@jongleren.biz"
    assert set(settings.plugins) == {"mailchimp", "mollie", "matomo"}
    assert all(plugin.enabled is False for plugin in settings.plugins.values())
    assert {name: p.api_key_env for name, p in settings.plugins.items()} == {
        "mailchimp": "MAILCHIMP_API_KEY",
        "mollie": "MOLLIE_API_KEY",
        "matomo": "MATOMO_TOKEN_AUTH",
    }
    assert (settings.plugins["mailchimp"].model_extra or {}).keys() == {"list_id"}
    assert (settings.plugins["matomo"].model_extra or {}).get("site_id") == 1


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(table, key) for every key of *model* and its sub-tables."""
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(_fields(annotation, name))
        elif name not in {"source", "staff", "plugins"}:  # tables of free keys: see below
            found.append((prefix, name))
    return found


def test_example_config_mentions_every_key() -> None:
    """Complete means: every setting appears, active or as a commented example, in its table."""
    text = EXAMPLE.read_text(encoding="utf-8")
    tables = re.split(r"^\[([\w.]+)\]\s*$", text, flags=re.MULTILINE)
    body = {"": tables[0], **dict(zip(tables[1::2], tables[2::2], strict=True))}
    expected = [
        *_fields(Settings),
        *(("plugins.mailchimp", n) for n in PluginSettings.model_fields),
    ]
    expected += [(f"plugins.{name}", "enabled") for name in ("mollie", "matomo")]
    missing = [
        f"{table}.{key}".strip(".")
        for table, key in expected
        if not re.search(rf"^#? ?{key} = ", body.get(table, ""), flags=re.MULTILINE)
    ]
    assert missing == []
    assert re.search(r'^"?[\w.-]+"? = "viewer"$', body["staff"], flags=re.MULTILINE)


def test_example_config_holds_no_secret_values() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assigned = re.findall(r"^#? ?([\w.-]+) = ", text, flags=re.MULTILINE)
    secretish = [k for k in assigned if re.search(r"key|token|secret|password", k, re.I)]
    assert secretish and all(k.endswith("_env") for k in secretish), secretish


# --- through the CLI -------------------------------------------------------------------------


def test_cli_reports_config_errors_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurll = "sqlite:///x.db"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CONFIG_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", "--config", str(path), "db", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"Error: {path}, line 2: database.urll: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
