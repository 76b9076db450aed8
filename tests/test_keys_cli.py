"""`plusjeklas keys init|rotate|status`.

Creating the key file, refusing a rotation and the rotation report run as real processes
(exit codes, file modes, stdout/stderr split as a shell sees them); the rest in process
through click's CliRunner, which keeps stdout and stderr apart as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.crypto import FieldKey, Keyring, load_key_file, write_key_file
from plusjeklas_tui.models import Administrator, Organisation
from plusjeklas_tui.services.keys import rotate_keys

ConfigWriter = Callable[..., Path]
REPO = Path(__file__).resolve().parent.parent


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", "--config", str(config), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def invoke(config: Path, *args: str) -> Result:
    """The same command line, in this process."""
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def add_schools(context: AppContext, count: int) -> None:
    with db.session_scope(context.engine) as session:
        for i in range(count):
            org = Organisation(
                name=f"School {i}",
                street="Laan 1",
                postcode="3511 AB",
                city="Utrecht",
                brin=f"{i:02d}AA",
                phone="+31302345678",
                email=f"info{i}@school.example",
            )
            session.add(org)
            session.flush()
            session.add(
                Administrator(organisation_id=org.id, name=f"B {i}", email=f"b{i}@school.example")
            )


def test_keys_init_creates_a_private_file_and_refuses_a_second_time(
    write_config: ConfigWriter, key_file: Path
) -> None:
    config = write_config()
    key_file.unlink()
    first = run(config, "keys", "init")
    assert first.returncode == 0, first.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(load_key_file(key_file).keys) == 1
    assert str(key_file) in first.stderr and first.stdout == ""
    content = key_file.read_bytes()

    second = run(config, "keys", "init")
    assert second.returncode == 2
    assert "already exists" in second.stderr and "refusing to overwrite" in second.stderr
    assert "Traceback" not in second.stderr
    assert key_file.read_bytes() == content


def test_keys_init_refuses_when_the_database_holds_data_under_another_key(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    add_schools(ctx, 1)
    old_id = ctx.keyring.primary.key_id
    ctx.close()
    key_file.unlink()  # the key went missing; a fresh one would split the data
    result = invoke(config_path, "keys", "init")
    assert result.exit_code == 2
    assert f"already holds data encrypted with key(s) {old_id}" in result.stderr
    assert not key_file.exists()


def test_keys_init_with_environment_keys_is_refused(config_path: Path, key_file: Path) -> None:
    text = config_path.read_text().replace(f'file = "{key_file}"', 'env = "SOME_KEYS"')
    config_path.write_text(text)
    result = invoke(config_path, "keys", "init")
    assert result.exit_code == 2
    assert "SOME_KEYS" in result.stderr and "managed outside" in result.stderr


def test_keys_rotate_as_viewer_or_editor_is_refused(config_path: Path, key_file: Path) -> None:
    before = key_file.read_bytes()
    for user in ("vera", "eddie"):
        result = run(config_path, "--user", user, "keys", "rotate")
        assert result.returncode == 2
        assert f"{user} (" in result.stderr and "manage-keys" in result.stderr
    assert key_file.read_bytes() == before


def test_keys_rotate_json_report_and_progress_on_stderr(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    add_schools(ctx, 3)
    old_id = ctx.keyring.primary.key_id
    ctx.close()
    result = run(config_path, "keys", "rotate", "--batch-size", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["complete"] is True and report["retired_key_ids"] == [old_id]
    assert report["rows_reencrypted"] == {
        "organisation": 3,
        "provider_link": 0,
        "administrator": 3,
        "consent_event": 0,
        "provider_state": 0,
        "legal_hold": 0,
        "deletion_task": 0,
        "restricted_record": 0,
        "breach": 0,
        "data_subject_request": 0,
        "feedback_request": 0,
        "newsletter_customer_basis": 0,
        "audit_mac_key": 0,  # the one MAC key is written by the rotation itself, under the new key
    }
    assert report["batches"] == 4
    assert "organisation: 2/3 rows re-encrypted" in result.stderr
    assert "administrator: 3/3 rows re-encrypted" in result.stderr
    assert [k.key_id for k in load_key_file(key_file).keys] == [report["primary_key_id"]]


def test_keys_rotate_rejects_a_zero_batch_size(config_path: Path) -> None:
    result = invoke(config_path, "keys", "rotate", "--batch-size", "0")
    assert result.exit_code == 2
    assert "--batch-size" in result.stderr


def test_keys_status_json_counts_rows_per_key(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    add_schools(ctx, 4)
    old_id = ctx.keyring.primary.key_id

    settled = invoke(config_path, "keys", "status", "--json")
    assert settled.exit_code == 0, settled.stderr
    status = json.loads(settled.stdout)
    assert status["keys_loaded"] == 1 and status["primary_key_id"] == old_id
    assert status["source"] == f"key file {key_file}"
    assert status["tables"]["organisation"] == {old_id: 4}
    assert status["tables"]["administrator"] == {old_id: 4}
    assert status["tables"]["consent_event"] == {}
    assert status["rows_not_under_primary"] == 0 and status["rotation_pending"] is False

    # Half a rotation: organisation (4 rows) and two administrators are done.
    report = rotate_keys(ctx.engine, ctx.settings, ctx.staff, batch_size=2, stop_after_batches=3)
    ctx.close()
    halfway = invoke(config_path, "keys", "status", "--json")
    assert halfway.exit_code == 0, halfway.stderr
    status = json.loads(halfway.stdout)
    new_id = report.primary_key_id
    assert status["keys_loaded"] == 2 and status["key_ids"] == [new_id, old_id]
    assert status["tables"]["organisation"] == {new_id: 4}
    assert status["tables"]["administrator"] == {new_id: 2, old_id: 2}
    assert status["rows_not_under_primary"] == 2 and status["rotation_pending"] is True
    assert status["unknown_key_ids"] == []

    plain = invoke(config_path, "--user", "vera", "keys", "status")
    assert plain.exit_code == 0, plain.stderr
    assert f"primary key: {new_id}" in plain.stdout
    assert "rotation pending: 2 rows" in plain.stdout


def test_keys_status_flags_data_under_a_key_that_is_not_loaded(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    add_schools(ctx, 1)
    old_id = ctx.keyring.primary.key_id
    ctx.close()
    key_file.unlink()
    write_key_file(key_file, Keyring([FieldKey.generate()]))
    result = invoke(config_path, "keys", "status", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["unknown_key_ids"] == [old_id]


def test_keys_status_for_someone_who_is_not_staff(write_config: ConfigWriter) -> None:
    config = write_config(staff={"somebody-else": "admin"})
    result = invoke(config, "keys", "status")
    assert result.exit_code == 2
    assert "not a staff member" in result.stderr and result.stdout == ""
