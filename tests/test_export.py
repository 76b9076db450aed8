"""Export of one organisation: shape, decrypted values, consent history, audit, permissions."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import AuditEvent, ProviderLink
from plusjeklas_tui.services import records
from plusjeklas_tui.services.exporter import EXPORT_SCHEMA, export_organisation

PYTHON = "/tmp/venv/bin/python"
PURPOSES = ("newsletter", "analytics", "feedback")
GRANTED_AT = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)


def seed(ctx: AppContext) -> dict[str, int]:
    """A school with two administrators, two subscriptions, consent and provider links."""
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(
            session,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "OBS De Klimop",
                    "street": "Kerkstraat 1",
                    "postcode": "1234 AB",
                    "city": "Utrecht",
                    "brin": "05KO",
                    "phone": "030 123 4567",
                    "email": "info@klimop.example",
                    "iban": "NL91ABNA0417164300",
                    "notes": "call before 10",
                }
            ),
        )
        jan = records.add_administrator(
            session,
            ctx.staff,
            org.id,
            records.validate_administrator(
                {
                    "name": "Jan Jansen",
                    "phones": "0612345678;0307654321",
                    "email": "j@klimop.example",
                }
            ),
        )
        els = records.add_administrator(
            session,
            ctx.staff,
            org.id,
            records.validate_administrator(
                {"name": "Els de Wit", "phones": "0687654321", "email": "els@klimop.example"}
            ),
        )
        for plan, start, end, status in [
            ("plus", "2025-08-01", "", "active"),
            ("basis", "2023-08-01", "2024-07-31", "ended"),
        ]:
            records.add_subscription(
                session,
                ctx.staff,
                org.id,
                records.validate_subscription(
                    {"plan": plan, "start_date": start, "end_date": end, "status": status}
                ),
            )
        records.record_consent(
            session, ctx.staff, jan.id, "newsletter", "granted", None,
            source="web-form", occurred_at=GRANTED_AT, purposes=PURPOSES,
        )  # fmt: skip
        records.record_consent(
            session, ctx.staff, jan.id, "newsletter", "withdrawn", "asked by e-mail of 2 Feb",
            occurred_at=GRANTED_AT + dt.timedelta(days=28), purposes=PURPOSES,
        )  # fmt: skip
        session.add(
            ProviderLink(
                provider="mailchimp", subject_type="administrator", subject_id=jan.id,
                external_id="5d41402abc4b2a76b9719d911017c592",
            )
        )  # fmt: skip
        session.add(
            ProviderLink(
                provider="mollie", subject_type="organisation", subject_id=org.id,
                external_id="cst_8wmqcHMN4U",
            )
        )  # fmt: skip
        assert org.id is not None and jan.id is not None and els.id is not None
        return {"org": org.id, "jan": jan.id, "els": els.id}


def audit_count(ctx: AppContext, action: str) -> int:
    with Session(ctx.engine) as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            )
            or 0
        )


def test_export_shape_and_decrypted_values(ctx: AppContext) -> None:
    ids = seed(ctx)
    with session_scope(ctx.engine) as session:
        data = export_organisation(session, ctx.staff, " 05ko ")
    assert json.loads(json.dumps(data)) == data  # JSON-serialisable as is
    assert data["schema"] == EXPORT_SCHEMA == "plusjeklas-export/1"
    assert data["exported_by"] == ctx.staff.username
    exported_at = dt.datetime.fromisoformat(data["exported_at"])
    assert exported_at.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - exported_at) < dt.timedelta(minutes=1)

    org = data["organisation"]
    assert org["id"] == ids["org"] and org["brin"] == "05KO"
    assert (org["email"], org["iban"], org["notes"]) == (
        "info@klimop.example",
        "NL91ABNA0417164300",
        "call before 10",
    )
    assert org["iban_masked"] is False
    assert org["provider_links"][0]["provider"] == "mollie"
    assert org["provider_links"][0]["external_id"] == "cst_8wmqcHMN4U"

    people = {p["name"]: p for p in data["administrators"]}
    assert set(people) == {"Jan Jansen", "Els de Wit"}
    jan = people["Jan Jansen"]
    assert jan["email"] == "j@klimop.example"
    assert jan["phones"] == ["+31612345678", "+31307654321"]
    newsletter = jan["consent"]["newsletter"]
    assert newsletter["current"] == "withdrawn"
    assert [(h["action"], h["source"], h["evidence"]) for h in newsletter["history"]] == [
        ("granted", "web-form", None),
        ("withdrawn", ctx.staff.source_tag, "asked by e-mail of 2 Feb"),
    ]
    assert dt.datetime.fromisoformat(newsletter["history"][0]["occurred_at"]) == GRANTED_AT
    assert jan["consent"]["analytics"] == {"current": None, "history": []}
    assert jan["provider_links"][0]["external_id"] == "5d41402abc4b2a76b9719d911017c592"
    assert people["Els de Wit"]["provider_links"] == []

    subs = data["subscriptions"]
    assert [(s["plan"], s["start_date"], s["end_date"], s["status"]) for s in subs] == [
        ("basis", "2023-08-01", "2024-07-31", "ended"),
        ("plus", "2025-08-01", None, "active"),
    ]


def test_export_is_audited_without_personal_values(ctx: AppContext) -> None:
    ids = seed(ctx)
    with session_scope(ctx.engine) as session:
        export_organisation(session, ctx.staff, "05KO")
    with Session(ctx.engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).one()
    assert (event.entity, event.entity_id, event.actor) == (
        "organisation",
        ids["org"],
        ctx.staff.username,
    )
    detail = json.loads(event.detail)
    assert detail == {
        "administrators": 2,
        "subscriptions": 2,
        "consent_events": 2,
        "provider_links": 2,
        "iban_revealed": True,
    }


def test_editor_sees_the_iban_masked(ctx: AppContext, open_as: Callable[[str], AppContext]) -> None:
    seed(ctx)
    editor = open_as("eddie")
    with session_scope(editor.engine) as session:
        data = export_organisation(session, editor.staff, "05KO")
    assert data["organisation"]["iban"] == "NL** **** **** **43 00"
    assert data["organisation"]["iban_masked"] is True
    assert data["administrators"][0]["email"] == "j@klimop.example"  # still decrypted


def test_viewer_may_not_export(ctx: AppContext, open_as: Callable[[str], AppContext]) -> None:
    seed(ctx)
    viewer = open_as("vera")
    with (
        pytest.raises(PermissionDenied, match="'export' permission"),
        session_scope(viewer.engine) as session,
    ):
        export_organisation(session, viewer.staff, "05KO")
    assert audit_count(ctx, "export") == 0


def test_unknown_or_invalid_brin(ctx: AppContext) -> None:
    seed(ctx)
    with (
        pytest.raises(NotFound, match="no organisation with BRIN 07NU"),
        session_scope(ctx.engine) as session,
    ):
        export_organisation(session, ctx.staff, "07nu")
    with pytest.raises(NotFound, match="BRIN '05K0'"), session_scope(ctx.engine) as session:
        export_organisation(session, ctx.staff, "05K0")
    assert audit_count(ctx, "export") == 0


def test_school_without_people(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        records.create_organisation(
            session,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "Het Anker",
                    "street": "Dorpsweg 2",
                    "postcode": "2611 ET",
                    "city": "Delft",
                    "brin": "07NU00",
                    "phone": "015 212 3456",
                }
            ),
        )
    with session_scope(ctx.engine) as session:
        data = export_organisation(session, ctx.staff, "07NU00")
    assert data["administrators"] == [] and data["subscriptions"] == []
    assert data["organisation"]["iban"] is None and data["organisation"]["iban_masked"] is False


# --- the command ---------------------------------------------------------------------------


def cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": "/work/main"}
    env.pop("PLUSJEKLAS_CONFIG", None)
    return subprocess.run(
        [PYTHON, "-m", "plusjeklas_tui", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_export(config_path: Path, ctx: AppContext) -> None:
    seed(ctx)
    done = cli(config_path, "export", "--brin", "05KO")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "plusjeklas-export/1"
    assert data["organisation"]["iban"] == "NL91ABNA0417164300"
    assert {p["name"] for p in data["administrators"]} == {"Jan Jansen", "Els de Wit"}
    assert audit_count(ctx, "export") == 1

    unknown = cli(config_path, "export", "--brin", "99ZZ")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert "no organisation with BRIN 99ZZ" in unknown.stderr

    viewer = cli(config_path, "--user", "vera", "export", "--brin", "05KO")
    assert viewer.returncode == 2 and viewer.stdout == ""
    assert audit_count(ctx, "export") == 1

    usage = cli(config_path, "export")
    assert usage.returncode == 2 and "--brin" in usage.stderr
