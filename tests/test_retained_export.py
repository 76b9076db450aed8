"""The ``retained`` section of exports: what is kept, why and until when (issue 5).

Both the school export (``plusjeklas export``) and the answer to an access or portability
request say it, computed with the erasure's own rule, so what an export promises is what a
receipt written that day would record. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from requests_world import build, migrated_config
from retention_world import PLUGINS_TOML, TARGETS, TODAY, add_school

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.models import ErasureReceipt, RestrictedRecord
from plusjeklas_tui.runtime import open_providers
from plusjeklas_tui.services import erasure, legal_hold, subject_export
from plusjeklas_tui.services import requests as rq
from plusjeklas_tui.services.deadlines import add_months
from plusjeklas_tui.services.exporter import export_organisation
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.services.retained import retained_section

ENDED = dt.date(2025, 3, 10)


def export(ctx: AppContext, brin: str, retention: RetentionSettings | None = None) -> dict:
    with db.session_scope(ctx.engine) as session:
        return export_organisation(
            session, ctx.staff, brin, retention=retention, targets=TARGETS, today=TODAY
        )


def test_an_ended_school_is_kept_two_years_and_its_payment_records_seven(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1, ended=ENDED, iban="NL91ABNA0417164300")
    retained = export(ctx, school.brin, retention=ctx.settings.retention)["retained"]
    assert retained["general"] == {
        "rule": "general",
        "rule_text": erasure.rule_text("general", ctx.settings.retention),
        "months": 24,
        "subscription_runs": False,
        "kept_until": add_months(ENDED, 24).isoformat(),
    }
    assert retained["legal_hold"] is None
    assert retained["kept_longer"] == [
        {
            "category": erasure.PAYMENT_RECORDS,
            "legal_basis": ctx.settings.retention.payment_records_legal_basis,
            "kept_until": "2032-12-31",  # end of 2025, the year of the last record, + 7 years
            "where": "mollie",
            "final": True,
        }
    ]
    assert retained["restricted_records"] == []


def test_the_export_says_what_an_erasure_that_day_would_keep(ctx: AppContext) -> None:
    """The same rule as the receipt: a dry-run erasure keeps exactly the export's categories."""
    settings = RetentionSettings(keep_local_iban_as_payment_record=True, payment_records_years=10)
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 2, ended=dt.date(2023, 11, 30), iban="NL91ABNA0417164300")
    kept = export(ctx, school.brin, retention=settings)["retained"]["kept_longer"]
    with db.session_scope(ctx.engine) as s:
        dry = erasure.erase_organisation(
            s, ctx.staff, settings, TARGETS, school.id, basis="general", today=TODAY, dry_run=True
        )
        s.rollback()
    assert [{k: v for k, v in entry.items() if k != "final"} for entry in kept] == list(
        dry.retained
    )
    assert [entry["kept_until"] for entry in kept] == ["2033-12-31", "2033-12-31"]
    assert kept[1]["where"] == "here, restricted (GDPR art. 18)"


def test_while_a_subscription_runs_the_clock_has_not_started(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 3, subscriptions=[(dt.date(2024, 8, 1), None)])
    retained = export(ctx, school.brin)["retained"]
    assert retained["general"]["subscription_runs"] is True
    assert retained["general"]["kept_until"] is None
    [payments] = retained["kept_longer"]
    assert payments["kept_until"] == f"{TODAY.year + 7}-12-31" and payments["final"] is False


def test_without_a_subscription_nothing_is_kept_longer(ctx: AppContext) -> None:
    created = dt.datetime(2025, 1, 20, 9, tzinfo=dt.UTC)
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 4, created_at=created, links=())
    retained = export(ctx, school.brin)["retained"]
    assert retained["general"]["kept_until"] == "2027-01-20"
    assert retained["kept_longer"] == []


def test_a_legal_hold_shows_since_when_but_not_why(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 5, ended=ENDED)
        legal_hold.set_hold(s, ctx.staff, school.id, "geschil met mevrouw Jansen")
    data = export(ctx, school.brin)
    hold = data["retained"]["legal_hold"]
    assert hold is not None
    since = dt.datetime.fromisoformat(hold["since"])  # a UTC moment; its day is Amsterdam's
    assert since.astimezone(ZoneInfo("Europe/Amsterdam")).date() == local_today()
    assert "Jansen" not in json.dumps(data)


def test_restricted_records_show_category_basis_and_date_never_the_payload(
    ctx: AppContext,
) -> None:
    created = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 6, ended=ENDED, created_at=created)
        for erased_at, keep_until in (
            (dt.datetime(2026, 1, 5, tzinfo=dt.UTC), dt.date(2033, 12, 31)),
            # a receipt from before this school was created: an earlier school with the same id
            (dt.datetime(2024, 1, 5, tzinfo=dt.UTC), dt.date(2031, 12, 31)),
        ):
            receipt = ErasureReceipt(
                subject_type="organisation",
                subject_id=school.id,
                erased_at=erased_at,
                basis="request",
                rule="test",
                actor="tester",
            )
            s.add(receipt)
            s.flush()
            s.add(
                RestrictedRecord(
                    receipt_id=receipt.id,
                    category=erasure.LOCAL_PAYMENT_RECORD,
                    legal_basis="art. 52 AWR",
                    keep_until=keep_until,
                    payload=json.dumps({"iban": "NL02RABO0123456789"}),
                )
            )
    data = export(ctx, school.brin)
    records = data["retained"]["restricted_records"]
    assert [(r["category"], r["legal_basis"], r["keep_until"]) for r in records] == [
        (erasure.LOCAL_PAYMENT_RECORD, "art. 52 AWR", "2033-12-31")
    ]
    assert "NL02RABO" not in json.dumps(data) and "payload" not in records[0]


def test_a_person_who_left_has_their_own_deadline_and_no_payment_records(
    ctx: AppContext,
) -> None:
    left = dt.date(2026, 2, 1)
    with db.session_scope(ctx.engine) as s:
        school = add_school(
            s, 8, subscriptions=[(dt.date(2024, 8, 1), None)], people=2, left_on=left
        )
    with db.session_scope(ctx.engine) as s:
        gone = retained_section(
            s, ctx.settings.retention, school.id, today=TODAY, administrator_id=school.admin_ids[0]
        )
        stays = retained_section(
            s, ctx.settings.retention, school.id, today=TODAY, administrator_id=school.admin_ids[1]
        )
    assert gone["general"]["rule"] == "administrator_left"
    assert gone["general"]["kept_until"] == (left + dt.timedelta(days=365)).isoformat()
    assert gone["general"]["days"] == 365 and gone["kept_longer"] == []
    assert stays["general"]["rule"] == "general" and stays["general"]["kept_until"] is None
    assert stays["kept_longer"] == []


def test_plusjeklas_export_names_the_payment_provider(
    write_config: Callable[..., Path],
) -> None:
    config = migrated_config(lambda **kw: write_config(extra=PLUGINS_TOML))
    context = open_context(config)
    try:
        with db.session_scope(context.engine) as s:
            school = add_school(s, 9, ended=ENDED)
    finally:
        context.close()
    result = CliRunner().invoke(
        main, ["--config", str(config), "export", "--brin", school.brin], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    retained = json.loads(result.stdout)["retained"]
    assert [(e["category"], e["where"]) for e in retained["kept_longer"]] == [
        (erasure.PAYMENT_RECORDS, "mollie")
    ]


# --- the answer to an access or portability request ------------------------------------------


def _request(context: AppContext, organisation_id: int, person: int | None, kind: str) -> int:
    today = local_today()
    raw = {
        "kind": kind,
        "received_on": (today - dt.timedelta(days=1)).isoformat(),
        "organisation_id": str(organisation_id),
        "administrator_id": "" if person is None else str(person),
        "requester_name": "Aanvrager",
        "requester_email": "aanvrager@example.org",
        "identity_check": "called back on the number in our records",
    }
    data = rq.validate_request(raw, purposes=context.settings.consent_purposes, today=today)
    with db.session_scope(context.engine) as session:
        request = rq.create_request(session, context.staff, data)
        assert request.id is not None
        return request.id


def test_request_exports_say_what_is_kept_in_json_and_in_both_summaries(
    write_config: Callable[..., Path],
) -> None:
    config = migrated_config(write_config)
    context = open_context(config)
    try:
        world = build(context)
        school_request = _request(context, world.organisation_id, None, "portability")
        person_request = _request(context, world.organisation_id, world.anna, "access")
        with open_providers(context.settings) as providers:
            school, person = (
                subject_export.export_for_request(
                    context.engine,
                    context.staff,
                    request_id,
                    providers.available,
                    problems=providers.problems,
                    retention=context.settings.retention,
                )
                for request_id in (school_request, person_request)
            )
    finally:
        context.close()
    year = local_today().year + context.settings.retention.payment_records_years
    [payments] = school["here"]["retained"]["kept_longer"]
    assert payments["where"] == "mollie" and payments["kept_until"] == f"{year}-12-31"
    assert school["here"]["retained"]["general"]["subscription_runs"] is True
    assert person["here"]["retained"]["kept_longer"] == []  # the school's records, not hers
    assert person["here"]["retained"]["general"]["rule"] == "general"

    dutch = subject_export.summary_markdown(school, "nl")
    english = subject_export.summary_markdown(school, "en")
    assert "## Hoe lang wij gegevens bewaren" in dutch
    assert "De betaalgegevens bewaart mollie langer" in dutch and f"{year}-12-31" in dutch
    assert "daarna nog 24 maanden" in dutch
    assert "## How long we keep data" in english
    assert "Mollie keeps the payment records longer" in english
    assert "each new payment moves this date" in english
    person_en = subject_export.summary_markdown(person, "en")
    assert "How long we keep data" in person_en and "payment records" not in person_en
