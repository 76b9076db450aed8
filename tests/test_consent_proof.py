"""Proof of consent: the full history per person and purpose with its evidence, exported as a
Markdown document (nl/en) and JSON; what a record's proof lacks is named."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import Administrator, AuditEvent, ConsentEvent
from plusjeklas_tui.services import consent_proof as cp
from plusjeklas_tui.services import newsletter_basis as nb
from plusjeklas_tui.services import records
from plusjeklas_tui.validation import ValidationErrors

GRANTED_AT = dt.datetime(2025, 4, 2, 8, 15, 3, tzinfo=dt.UTC)
CONFIRMED_AT = dt.datetime(2025, 4, 2, 8, 21, 40, tzinfo=dt.UTC)
WITHDRAWN_AT = dt.datetime(2025, 9, 30, 17, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
FORM = "https://plusjeklas.nl/nieuwsbrief?bron=footer"


def setup_person(ctx: AppContext) -> int:
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(
            session,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "De Klimop",
                    "street": "Kerkstraat 1",
                    "postcode": "1234ab",
                    "city": "Utrecht",
                    "brin": "05KO",
                    "phone": "030 123 4567",
                }
            ),
        )
        person = records.add_administrator(
            session,
            ctx.staff,
            org.id,
            records.validate_administrator(
                {
                    "name": "Annelies Zwart",
                    "email": "a.zwart@klimop.example",
                    "phones": "0612345678",
                }
            ),
        )
        return person.id


def history(ctx: AppContext, person_id: int) -> None:
    """Newsletter: granted by double opt-in, withdrawn by e-mail. Analytics: a bare import."""
    purposes = ctx.settings.consent_purposes
    with session_scope(ctx.engine) as session:
        cp.record_with_proof(
            session,
            ctx.staff,
            person_id,
            "newsletter",
            "granted",
            None,
            "web-form",
            GRANTED_AT,
            text_version="nieuwsbrief-2025-03",
            form_url=FORM,
            confirmed_at=CONFIRMED_AT,
            channel="web-form",
            purposes=purposes,
        )
        cp.record_with_proof(
            session,
            ctx.staff,
            person_id,
            "newsletter",
            "withdrawn",
            "mail of 30 September | [stop](https://evil.example)",
            None,
            WITHDRAWN_AT,
            channel="e-mail",
            purposes=purposes,
        )
        records.record_consent(
            session,
            ctx.staff,
            person_id,
            "analytics",
            "granted",
            None,
            "import",
            GRANTED_AT,
            purposes=purposes,
        )


def build(ctx: AppContext, person_id: int, purpose: str | None = None) -> cp.ConsentProof:
    with session_scope(ctx.engine) as session:
        return cp.build_proof(
            session, ctx.staff, person_id, purpose, purposes=ctx.settings.consent_purposes
        )


def test_json_export_holds_every_proof_field_in_utc(ctx: AppContext) -> None:
    anna = setup_person(ctx)
    history(ctx, anna)
    data = json.loads(cp.to_json(build(ctx, anna)))
    assert data["administrator"]["id"] == anna
    assert data["administrator"]["email"] == "a.zwart@klimop.example"
    by_purpose = {section["purpose"]: section for section in data["purposes"]}
    assert set(by_purpose) == {"newsletter", "analytics", "feedback"}
    newsletter = by_purpose["newsletter"]
    assert newsletter["current"] == "withdrawn"
    granted, withdrawn = newsletter["events"]
    assert granted == {
        "id": granted["id"],
        "action": "granted",
        "occurred_at": "2025-04-02T08:15:03+00:00",
        "source": "web-form",
        "channel": "web-form",
        "form_url": FORM,
        "text_version": "nieuwsbrief-2025-03",
        "evidence": None,
        "double_opt_in_confirmed_at": "2025-04-02T08:21:40+00:00",
        "recorded_at": granted["recorded_at"],
        "gaps": [],
    }
    assert granted["recorded_at"].endswith("+00:00")
    assert withdrawn["action"] == "withdrawn"
    assert withdrawn["occurred_at"] == "2025-09-30T15:00:00+00:00"  # given at +02:00
    assert withdrawn["channel"] == "e-mail" and withdrawn["source"].startswith("staff:")
    assert withdrawn["gaps"] == []
    analytics = by_purpose["analytics"]["events"][0]
    assert analytics["gaps"] == ["text"]  # an import without evidence proves nothing
    assert by_purpose["feedback"] == {"purpose": "feedback", "current": None, "events": []}
    assert data["newsletter_basis"]["basis"] is None
    assert data["newsletter_basis"]["reason"] == "withdrawn"


def test_markdown_in_both_languages_with_values_made_inert(ctx: AppContext) -> None:
    anna = setup_person(ctx)
    history(ctx, anna)
    proof = build(ctx, anna, "newsletter")
    dutch, english = cp.to_markdown(proof, "nl"), cp.to_markdown(proof, "en")
    assert dutch.startswith("# Bewijs van toestemming\n")
    assert english.startswith("# Proof of consent\n")
    assert "## Doel: newsletter" in dutch and "## Purpose: newsletter" in english
    assert "Tijdstip (UTC):** 2025-04-02 08:15:03" in dutch
    assert "Confirmed (double opt-in, UTC):** 2025-04-02 08:21:40" in english
    assert "Time (UTC):** 2025-09-30 15:00:00" in english
    assert "Text version:** nieuwsbrief-2025-03" in english
    assert "Channel:** e-mail" in english
    # staff's free text cannot become a link or break the layout
    assert "\\| \\[stop\\]\\(https://evil.example\\)" in english
    assert "[stop](" not in english
    assert "analytics" not in english  # only the purpose asked for
    with pytest.raises(ValidationErrors) as caught:
        cp.to_markdown(proof, "de")
    assert caught.value.errors[0].field == "language"


def test_gaps_name_what_the_proof_lacks(ctx: AppContext) -> None:
    anna = setup_person(ctx)
    with session_scope(ctx.engine) as session:
        records.record_consent(
            session,
            ctx.staff,
            anna,
            "newsletter",
            "granted",
            None,
            "web-form",
            GRANTED_AT,
            purposes=ctx.settings.consent_purposes,
        )
        records.record_consent(
            session,
            ctx.staff,
            anna,
            "newsletter",
            "withdrawn",
            "asked by phone",
            purposes=ctx.settings.consent_purposes,
        )
    granted, withdrawn = build(ctx, anna, "newsletter").purposes[0].events
    assert granted.gaps == ("text", "form_url", "double_opt_in")
    assert withdrawn.gaps == ("channel",)
    english = cp.to_markdown(build(ctx, anna, "newsletter"), "en")
    assert "Missing:** no version or evidence of the text agreed to; no address of the form" in (
        english
    )


def test_bad_proof_fields_are_refused_and_nothing_is_written(ctx: AppContext) -> None:
    anna = setup_person(ctx)
    with pytest.raises(ValidationErrors) as caught, session_scope(ctx.engine) as session:
        cp.record_with_proof(
            session,
            ctx.staff,
            anna,
            "newsletter",
            "granted",
            "web form",
            "web-form",
            GRANTED_AT,
            text_version="v\x07",
            form_url="javascript:alert(1)",
            confirmed_at=GRANTED_AT - dt.timedelta(minutes=1),
            channel="pigeon",
            purposes=ctx.settings.consent_purposes,
        )
    fields = [error.field for error in caught.value.errors]
    assert fields == ["text_version", "form_url", "channel", "confirmed_at"]
    assert "before the consent" in str(caught.value)
    with (
        pytest.raises(ValidationErrors, match="grant of consent only"),
        session_scope(ctx.engine) as session,
    ):
        cp.record_with_proof(
            session,
            ctx.staff,
            anna,
            "newsletter",
            "withdrawn",
            "mail",
            confirmed_at=GRANTED_AT,
            purposes=ctx.settings.consent_purposes,
        )
    with session_scope(ctx.engine) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_customer_basis_evidence_is_part_of_the_newsletter_proof(ctx: AppContext) -> None:
    anna = setup_person(ctx)
    with session_scope(ctx.engine) as session:
        person = session.get(Administrator, anna)
        assert person is not None
        records.add_subscription(
            session,
            ctx.staff,
            person.organisation_id,
            records.validate_subscription(
                {"plan": "school", "start_date": "2025-01-01", "status": "active"}
            ),
        )
        nb.record_customer_basis(
            session,
            ctx.staff,
            anna,
            collected_at=GRANTED_AT,
            objection_text_version="bestelformulier-2025-01",
            evidence="order form 2025-0412",
        )
    proof = build(ctx, anna)
    assert proof.newsletter is not None and proof.newsletter.basis is nb.Basis.CUSTOMER
    data = json.loads(cp.to_json(proof))
    assert data["customer_bases"][0]["objection_text_version"] == "bestelformulier-2025-01"
    assert data["customer_bases"][0]["collected_at"] == "2025-04-02T08:15:03+00:00"
    dutch = cp.to_markdown(proof, "nl")
    assert "Grondslag nieuwsbrief:** klantuitzondering" in dutch
    assert "Bezwaar aangeboden in tekstversie:** bestelformulier-2025-01" in dutch


def test_export_needs_the_export_permission_and_is_audited_without_personal_data(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    anna = setup_person(ctx)
    history(ctx, anna)
    viewer = open_as("vera")
    with pytest.raises(PermissionDenied), session_scope(viewer.engine) as session:
        cp.build_proof(session, viewer.staff, anna, purposes=viewer.settings.consent_purposes)
    build(ctx, anna, "newsletter")
    with session_scope(ctx.engine) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "consent_proof")
        ).one()
    assert event.entity_id == anna
    assert json.loads(event.detail)["events"] == 2
    assert "zwart" not in event.detail.lower() and "klimop" not in event.detail.lower()
    with pytest.raises(ValidationErrors) as caught, session_scope(ctx.engine) as session:
        cp.build_proof(session, ctx.staff, anna, "marketing", purposes=("newsletter",))
    assert caught.value.errors[0].field == "purpose"


def test_cli_writes_the_document(ctx: AppContext, config_path: Path, tmp_path: Path) -> None:
    anna = setup_person(ctx)
    history(ctx, anna)
    runner = CliRunner()
    base = ["--config", str(config_path), "consent", "proof", str(anna)]
    result = runner.invoke(main, [*base, "--format", "json", "--purpose", "newsletter"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["purpose"] for s in data["purposes"]] == ["newsletter"]
    target = tmp_path / "proof.md"
    result = runner.invoke(main, [*base, "--language", "nl", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("# Bewijs van toestemming")
    result = runner.invoke(main, ["--config", str(config_path), "consent", "proof", "999999"])
    assert result.exit_code != 0 and "#999999 does not exist" in result.output
