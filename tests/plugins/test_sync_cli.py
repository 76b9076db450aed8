"""`plusjeklas plugins` and `plusjeklas sync` as a newcomer and cron use them: real commands in
subprocesses, on a demo whose providers are the bundled imitations, and on broken set-ups."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from plusjeklas_tui import db
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import load_keyring
from plusjeklas_tui.models import ConsentEvent, ProviderLink, SyncRun
from plusjeklas_tui.services.demo import prepare_demo

REPO = Path(__file__).resolve().parents[2]


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", "--config", str(config), *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    return prepare_demo(folder / "demo.db", schools=40, seed=5).config_path


def counts(config: Path) -> dict[str, int]:
    settings = load_file(config)
    engine = db.make_engine(settings.database_url, load_keyring(settings))
    try:
        with engine.connect() as conn:
            return {
                "withdrawn_by_mailchimp": conn.scalar(
                    select(func.count())
                    .select_from(ConsentEvent)
                    .where(ConsentEvent.source == "provider:mailchimp")
                ),
                "mollie_links": conn.scalar(
                    select(func.count())
                    .select_from(ProviderLink)
                    .where(ProviderLink.provider == "mollie")
                ),
                "runs": conn.scalar(select(func.count()).select_from(SyncRun)),
            }
    finally:
        engine.dispose()


def test_demo_plugins_are_all_enabled_and_healthy(demo_config: Path) -> None:
    result = run(demo_config, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"mailchimp", "mollie", "matomo"}
    assert all(row["enabled"] and row["healthy"] for row in rows.values())
    assert {row["kind"] for row in rows.values()} == {"newsletter", "payment", "analytics"}


def test_demo_sync_pulls_pushes_and_the_next_command_sees_the_provider_state(
    demo_config: Path,
) -> None:
    first = run(demo_config, "sync")
    assert first.returncode == 0, first.stderr
    for name in ("mailchimp", "mollie", "matomo"):
        assert f"{name}: succeeded" in first.stderr
    after_first = counts(demo_config)
    # the demo audience has people who unsubscribed at Mailchimp, and addresses we never had
    assert after_first["withdrawn_by_mailchimp"] >= 1
    assert "12 unknown" in first.stderr
    assert after_first["mollie_links"] >= 1
    state = json.loads((demo_config.parent / "mailchimp-imitation.json").read_text())
    assert state["lists"], "the imitation kept its state beside the demo database"

    second = run(demo_config, "sync", "--provider", "mailchimp", "--json")
    assert second.returncode == 0, second.stderr
    (report,) = json.loads(second.stdout)
    assert report["provider"] == "mailchimp" and report["state"] == "succeeded"
    assert report["applied"] == 0  # the withdrawals were recorded once, not again
    assert counts(demo_config)["withdrawn_by_mailchimp"] == after_first["withdrawn_by_mailchimp"]


def test_sync_of_an_unknown_provider_is_a_usage_error(demo_config: Path) -> None:
    result = run(demo_config, "sync", "--provider", "nope")
    assert result.returncode == 2
    assert "--provider nope: no such enabled provider" in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_unreachable_or_unconfigured_providers_fail_with_reasons(write_config) -> None:  # type: ignore[no-untyped-def]
    port = _closed_port()
    config = write_config(
        extra=f"""
[plugins.mollie]
enabled = true
api_key_env = "PJK_TEST_MOLLIE_KEY"
base_url = "http://127.0.0.1:{port}/v2"
timeout_seconds = 1

[plugins.mailchimp]
enabled = true
api_key_env = "PJK_TEST_UNSET_KEY"
list_id = "abc"
"""
    )
    env = {"PJK_TEST_MOLLIE_KEY": "test_key"}
    os.environ.pop("PJK_TEST_UNSET_KEY", None)
    assert run(config, "db", "upgrade").returncode == 0
    plugins = run(config, "plugins", env=env)
    assert plugins.returncode == 1
    lines = {line.split()[0]: line for line in plugins.stdout.splitlines()[1:]}
    assert "NO" in lines["mollie"] and "NO" in lines["mailchimp"]
    assert "PJK_TEST_UNSET_KEY, but it is not set" in lines["mailchimp"]
    assert "disabled" in lines["matomo"]

    synced = run(config, "sync", env=env)
    assert synced.returncode == 1
    assert "mollie: failed" in synced.stderr
    assert "mailchimp: not synced" in synced.stderr and "not set" in synced.stderr
