"""`plusjeklas breaches ...`: output, exit codes, errors naming the field, the export."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from plusjeklas_tui.cli import main
from plusjeklas_tui.context import open_context
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import AuditEvent, Breach
from plusjeklas_tui.services import breach_form, breaches
from plusjeklas_tui.sqltypes import utcnow

PERSONAL = "Pietje Puk"


def invoke(config: Path, *args: str, user: str | None = None) -> Result:
    prefix = ["--user", user] if user else []
    return CliRunner().invoke(
        main, ["--config", str(config), *prefix, "breaches", *args], catch_exceptions=False
    )


def ago(hours: float) -> str:
    """A time *hours* ago, as staff type it (Amsterdam time, to the minute)."""
    moment = utcnow() - dt.timedelta(hours=hours)
    return moment.astimezone(breaches.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def new(config: Path, *extra: str, hours_ago: float = 2) -> Result:
    return invoke(
        config,
        "new",
        "--discovered-at",
        ago(hours_ago),
        "--summary",
        f"A list with {PERSONAL}'s e-mail was sent to another school",
        "--nature",
        "read",
        "--data-type",
        "email",
        "--data-type",
        "name_address",
        "--people-min",
        "1",
        "--people-max",
        "30",
        "--contact-name",
        "Sascha",
        *extra,
    )


def test_new_prints_the_id_and_the_countdown(config_path: Path) -> None:
    result = new(config_path)
    assert result.exit_code == 0, result.stderr
    breach_id = int(result.stdout.strip())
    assert f"breach #{breach_id} recorded" in result.stderr
    assert "69 h" in result.stderr or "70 h" in result.stderr  # 72 h minus the 2 h since
    assert PERSONAL not in result.stderr


def test_list_and_show(config_path: Path) -> None:
    first = int(new(config_path, hours_ago=80).stdout)
    second = int(new(config_path).stdout)
    listed = invoke(config_path, "list")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "DISCOVERED"]
    assert [line.split()[0] for line in lines[1:]] == [str(first), str(second)]
    assert "overdue by 8 h" in lines[1] or "overdue by 7 h" in lines[1]
    assert "2 breaches, 2 open, 1 past the 72 hours" in listed.stderr
    as_json = json.loads(invoke(config_path, "list", "--json").stdout)
    assert [row["id"] for row in as_json] == [first, second]
    assert as_json[0]["time_left_seconds"] < 0 < as_json[1]["time_left_seconds"]
    assert as_json[0]["data_types"] == ["name_address", "email"]

    shown = invoke(config_path, "show", str(second))
    assert shown.exit_code == 0
    assert "people_max: 30" in shown.stdout and "data_types: name_address, email" in shown.stdout
    assert PERSONAL in shown.stdout  # staff asked for the record
    detail = json.loads(invoke(config_path, "show", str(second), "--json").stdout)
    assert detail["status"] == "open" and detail["contact_name"] == "Sascha"
    missing = invoke(config_path, "show", "999")
    assert missing.exit_code == 1 and "no breach with id 999" in missing.stderr


def test_validation_errors_name_each_field_and_write_nothing(config_path: Path) -> None:
    result = invoke(
        config_path,
        "new",
        "--discovered-at",
        "2026-13-01 10:00",
        "--summary",
        "",
        "--nature",
        "stolen",
        "--data-type",
        "other",
        "--people-min",
        "50",
        "--people-max",
        "5",
    )
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert any(e.startswith("Error: discovered_at") and "YYYY-MM-DD HH:MM" in e for e in errors)
    assert any(e.startswith("Error: summary") and "required" in e for e in errors)
    assert any(e.startswith("Error: people_max") and "(50)" in e for e in errors)
    assert any(e.startswith("Error: data_types_other") for e in errors)
    assert invoke(config_path, "list", "--json").stdout.strip() == "[]"


def test_choices_are_checked_by_the_command(config_path: Path) -> None:
    result = new(config_path, "--data-type", "ssn")
    assert result.exit_code == 2
    assert "--data-type" in result.stderr and "'ssn' is not one of" in result.stderr
    assert "bsn" in result.stderr


def test_report_late_needs_a_reason(config_path: Path) -> None:
    breach_id = new(config_path, hours_ago=75).stdout.strip()
    refused = invoke(config_path, "report", breach_id, "--reference", "M-2026-1")
    assert refused.exit_code == 1
    assert "late_reason" in refused.stderr and "more than 72 hours" in refused.stderr
    done = invoke(
        config_path, "report", breach_id, "--reference", "M-2026-1", "--late-reason", "weekend"
    )
    assert done.exit_code == 0, done.stderr
    assert "(after the 72 hours)" in done.stderr
    again = invoke(config_path, "report", breach_id, "--reference", "M-2026-2")
    assert again.exit_code == 1 and "already reported" in again.stderr
    row = json.loads(invoke(config_path, "show", breach_id, "--json").stdout)
    assert row["status"] == "reported" and row["ap_reference"] == "M-2026-1"
    assert row["reported_late"] is True and row["time_left_seconds"] is None


def test_not_reportable_needs_a_reason(config_path: Path) -> None:
    breach_id = new(config_path).stdout.strip()
    missing = invoke(config_path, "not-reportable", breach_id)
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    empty = invoke(config_path, "not-reportable", breach_id, "--reason", " ")
    assert empty.exit_code == 1 and "not_reportable_reason" in empty.stderr
    done = invoke(config_path, "not-reportable", breach_id, "--reason", "school's info@ only")
    assert done.exit_code == 0
    listed = json.loads(invoke(config_path, "list", "--status", "not_reportable", "--json").stdout)
    assert [str(row["id"]) for row in listed] == [breach_id]


def test_update_changes_fields_and_rechecks(config_path: Path) -> None:
    breach_id = new(config_path).stdout.strip()
    changed = invoke(config_path, "update", breach_id, "--people-max", "40", "--ongoing")
    assert changed.exit_code == 0, changed.stderr
    assert "changed ongoing, people_max" in changed.stderr
    bad = invoke(config_path, "update", breach_id, "--people-min", "41")
    assert bad.exit_code == 1 and "people_max" in bad.stderr
    stale = invoke(config_path, "update", breach_id, "--measures", "x", "--version", "1")
    assert stale.exit_code == 1 and "changed by someone else" in stale.stderr
    nothing = invoke(config_path, "update", breach_id)
    assert nothing.exit_code == 2
    row = json.loads(invoke(config_path, "show", breach_id, "--json").stdout)
    assert (row["people_max"], row["ongoing"], row["version"]) == (40, True, 2)


def test_viewers_may_list_but_not_record(config_path: Path) -> None:
    breach_id = new(config_path).stdout.strip()
    refused = new(config_path, "--contact-function", "x")
    assert refused.exit_code == 0  # the admin (current user) may
    as_viewer = invoke(config_path, "list", "--json", user="vera")
    assert as_viewer.exit_code == 0 and len(json.loads(as_viewer.stdout)) == 2
    denied = invoke(config_path, "not-reportable", breach_id, "--reason", "r", user="vera")
    assert denied.exit_code == 2 and "may not" in denied.stderr
    export = invoke(config_path, "export", breach_id, user="vera")
    assert export.exit_code == 2 and "export" in export.stderr


def test_export_fills_the_form(config_path: Path, tmp_path: Path) -> None:
    breach_id = new(config_path, "--contact-email", "privacy@plusjeklas.nl").stdout.strip()
    english = invoke(config_path, "export", breach_id, "--language", "en")
    assert english.exit_code == 0, english.stderr
    assert english.stdout.startswith(f"# Data breach notification #{breach_id}")
    for _key, _nl, en, _questions in breach_form.SECTIONS:
        assert f"\n## {en}\n" in english.stdout
    dutch = invoke(config_path, "export", breach_id, "--language", "nl")
    assert "## Betrokkenen" in dutch.stdout and "e-mailadressen" in dutch.stdout
    as_json = invoke(config_path, "export", breach_id, "--format", "json")
    data = json.loads(as_json.stdout)
    assert list(data["form"]) == list(breach_form.FORM_FIELDS)
    assert data["form"]["contact_email"] == "privacy@plusjeklas.nl"
    assert data["form"]["people_max"] == 30
    assert set(data["unfilled"]) <= set(breach_form.FORM_FIELDS)
    if data["unfilled"]:
        assert "not filled in yet: " + ", ".join(data["unfilled"]) in as_json.stderr
    target = tmp_path / "breach.md"
    written = invoke(config_path, "export", breach_id, "--output", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert target.read_text().startswith("# ")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    context = open_context(config_path)
    try:
        with session_scope(context.engine) as session:
            exports = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "export", AuditEvent.entity == "breach"
                )
            ).all()
            assert session.get(Breach, int(breach_id)) is not None
    finally:
        context.close()
    assert len(exports) == 4 and all(e.entity_id == int(breach_id) for e in exports)
    assert all(PERSONAL not in e.detail for e in exports)


def test_new_as_json_and_times_with_an_offset(config_path: Path) -> None:
    result = invoke(
        config_path,
        "new",
        "--discovered-at",
        "2026-10-25 02:30+01:00",  # the second 02:30 of the night the clocks go back
        "--summary",
        "laptop stolen",
        "--nature",
        "stolen",
        "--data-type",
        "login",
        "--people-min",
        "0",
        "--people-max",
        "3",
        "--encrypted",
        "YES",
        "--records-approx",
        "12",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["discovered_at"] == "2026-10-25T01:30:00+00:00"
    assert data["deadline"] == "2026-10-28T01:30:00+00:00"
    assert (data["encrypted"], data["records_approx"], data["nature"]) == ("yes", 12, ["stolen"])
    twice = invoke(
        config_path,
        "new",
        "--discovered-at",
        "2026-10-25 02:30",
        "--summary",
        "x",
        "--nature",
        "read",
        "--data-type",
        "email",
        "--people-min",
        "1",
        "--people-max",
        "1",
    )
    assert twice.exit_code == 1
    assert "discovered_at '2026-10-25 02:30': happened twice in Amsterdam" in twice.stderr
