"""Who may receive the newsletter and on which basis: consent with proof, or the customer
exception only for contacts of paying schools, with the objection offered at collection."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from newsletter_world import add_organisation, add_subscription
from sqlalchemy import func, select

from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import Administrator, AuditEvent, CustomerBasis
from plusjeklas_tui.services import newsletter_basis as nb
from plusjeklas_tui.services import records
from plusjeklas_tui.services.consent_proof import record_with_proof
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.validation import ValidationErrors

_numbers = itertools.count(10)
TODAY = local_today()
COLLECTED = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


def school(ctx: AppContext, *subscriptions: tuple[str, int, int | None]) -> int:
    """A school with subscriptions given as (status, start offset, end offset) in days."""
    n = next(_numbers)
    with session_scope(ctx.engine) as session:
        org_id = add_organisation(session, ctx, n)
        for i, (status, start, end) in enumerate(subscriptions):
            add_subscription(
                session,
                ctx,
                org_id,
                today=TODAY,
                start=TODAY + dt.timedelta(days=start),
                end=None if end is None else TODAY + dt.timedelta(days=end),
                status=status,
                plan=f"plan {i}",
            )
        return org_id


def person(ctx: AppContext, organisation_id: int) -> int:
    n = next(_numbers)
    with session_scope(ctx.engine) as session:
        return records.add_administrator(
            session,
            ctx.staff,
            organisation_id,
            records.validate_administrator(
                {"name": f"Anna {n}", "email": f"anna{n}@school.example", "phones": "0612345678"}
            ),
        ).id


def customer_basis(ctx: AppContext, person_id: int, **overrides: object) -> int:
    values: dict[str, object] = {
        "collected_at": COLLECTED,
        "objection_text_version": "bestelformulier-2025-03",
        "evidence": "signed order form of 1 March 2025, newsletter box left unticked",
    }
    values.update(overrides)
    with session_scope(ctx.engine) as session:
        row = nb.record_customer_basis(session, ctx.staff, person_id, **values)  # type: ignore[arg-type]
        assert row.id is not None
        return row.id


def consent(ctx: AppContext, person_id: int, action: str, **kw: object) -> None:
    with session_scope(ctx.engine) as session:
        record_with_proof(
            session,
            ctx.staff,
            person_id,
            "newsletter",
            action,
            kw.pop("evidence", None),  # type: ignore[arg-type]
            kw.pop("source", "web-form"),  # type: ignore[arg-type]
            purposes=ctx.settings.consent_purposes,
            **kw,  # type: ignore[arg-type]
        )


def standing(ctx: AppContext, person_id: int) -> nb.Standing:
    with session_scope(ctx.engine) as session:
        return nb.standing(session, person_id)


ACTIVE = ("active", -30, None)


def test_consent_counts_only_with_proof_of_what_was_agreed(ctx: AppContext) -> None:
    org = school(ctx, ACTIVE)
    with_text, with_evidence, without = person(ctx, org), person(ctx, org), person(ctx, org)
    consent(ctx, with_text, "granted", text_version="nieuwsbrief-v3")
    consent(ctx, with_evidence, "granted", evidence="web form v2")
    consent(ctx, without, "granted", source="import")
    assert standing(ctx, with_text).basis is nb.Basis.CONSENT
    assert standing(ctx, with_evidence).basis is nb.Basis.CONSENT
    unproven = standing(ctx, without)
    assert unproven.basis is None and unproven.reason == "consent-without-proof"
    assert unproven.tags() == {"newsletter": False, "service": True}


@pytest.mark.parametrize(
    ("subscriptions", "paying"),
    [
        ([ACTIVE], True),
        ([("cancelled", -300, 20)], True),  # cancelled, still running and paid to its end
        ([("active", -30, 60)], True),  # a fixed term that has not ended
        ([("ended", -400, -10)], False),  # a former customer
        ([("cancelled", -400, -10), ("trial", -5, None)], False),  # past sale, now a trial
        ([("active", 10, None)], False),  # sold, but it has not started yet
    ],
)
def test_customer_basis_holds_only_while_the_school_pays(
    ctx: AppContext, subscriptions: list[tuple[str, int, int | None]], paying: bool
) -> None:
    org = school(ctx, *subscriptions)
    anna = person(ctx, org)
    basis_id = customer_basis(ctx, anna)
    got = standing(ctx, anna)
    if paying:
        assert got.basis is nb.Basis.CUSTOMER and got.customer_basis_id == basis_id
    else:
        assert got.basis is None and got.reason == "customer-not-paying"
    with session_scope(ctx.engine) as session:
        assert (org in nb.paying_organisation_ids(session)) is paying


def test_a_trial_school_is_no_customer_but_gets_service_mail(ctx: AppContext) -> None:
    org = school(ctx, ("trial", -3, None))
    anna = person(ctx, org)
    with pytest.raises(ValidationErrors) as caught:
        customer_basis(ctx, anna)
    assert caught.value.errors[0].field == "basis"
    assert "needs a sale" in str(caught.value)
    got = standing(ctx, anna)
    assert got.basis is None and got.reason == "no-basis" and got.service is True
    with session_scope(ctx.engine) as session:
        assert session.scalar(select(func.count()).select_from(CustomerBasis)) == 0


def test_customer_basis_needs_its_evidence(ctx: AppContext) -> None:
    anna = person(ctx, school(ctx, ACTIVE))
    with pytest.raises(ValidationErrors) as caught:
        customer_basis(
            ctx,
            anna,
            evidence="  ",
            objection_text_version="",
            collected_at=dt.datetime(2025, 3, 1, 9, 30),  # no zone
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {"evidence", "objection_text_version", "collected_at"}
    with pytest.raises(ValidationErrors) as caught:
        customer_basis(ctx, anna, collected_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert caught.value.errors[0].field == "collected_at"
    with pytest.raises(ValidationErrors) as caught:
        customer_basis(ctx, anna, evidence="BSN 111222333 on the form")
    assert caught.value.errors[0].field == "evidence"
    assert "111222333" not in str(caught.value)
    assert standing(ctx, anna).basis is None


def test_an_objection_ends_the_customer_basis_for_good(ctx: AppContext) -> None:
    anna = person(ctx, school(ctx, ACTIVE))
    customer_basis(ctx, anna)
    assert standing(ctx, anna).basis is nb.Basis.CUSTOMER
    consent(ctx, anna, "withdrawn", evidence="unsubscribe link", channel="unsubscribe-link")
    assert standing(ctx, anna).reason == "withdrawn"
    with pytest.raises(ValidationErrors, match="withdrew"):
        customer_basis(ctx, anna)  # nothing here brings someone who left back ...
    consent(ctx, anna, "granted", text_version="nieuwsbrief-v3")  # ... but their own consent
    assert standing(ctx, anna).basis is nb.Basis.CONSENT


def test_leaving_the_school_ends_the_customer_basis_and_service_mail(ctx: AppContext) -> None:
    anna = person(ctx, school(ctx, ACTIVE))
    customer_basis(ctx, anna)
    with session_scope(ctx.engine) as session:
        row = session.get(Administrator, anna)
        assert row is not None
        row.left_on = TODAY - dt.timedelta(days=1)
    got = standing(ctx, anna)
    assert got.basis is None and got.reason == "customer-left" and got.service is False


def test_only_editors_record_a_customer_basis_and_the_audit_holds_ids(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    anna = person(ctx, school(ctx, ACTIVE))
    viewer = open_as("vera")
    with pytest.raises(PermissionDenied), session_scope(viewer.engine) as session:
        nb.record_customer_basis(
            session,
            viewer.staff,
            anna,
            collected_at=COLLECTED,
            objection_text_version="v1",
            evidence="order form",
        )
    basis_id = customer_basis(ctx, anna)
    with session_scope(ctx.engine) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "newsletter_basis")
        ).one()
        assert event.entity_id == anna
        assert str(basis_id) in event.detail and "order form" not in event.detail


def test_standings_in_bulk_agree_with_one_by_one(ctx: AppContext) -> None:
    paying, ended = school(ctx, ACTIVE), school(ctx, ("ended", -400, -1))
    people = [person(ctx, paying), person(ctx, paying), person(ctx, ended), person(ctx, ended)]
    customer_basis(ctx, people[0])
    consent(ctx, people[1], "granted", evidence="web form v2")
    customer_basis(ctx, people[2])
    with session_scope(ctx.engine) as session:
        everyone = nb.standings(session)
    assert {p: everyone[p].basis for p in people} == {
        people[0]: nb.Basis.CUSTOMER,
        people[1]: nb.Basis.CONSENT,
        people[2]: None,
        people[3]: None,
    }
    for p in people:
        assert standing(ctx, p) == everyone[p]


def test_cli_records_and_shows_a_customer_basis(ctx: AppContext, config_path) -> None:  # type: ignore[no-untyped-def]
    anna = person(ctx, school(ctx, ACTIVE))
    runner = CliRunner()
    base = ["--config", str(config_path)]
    result = runner.invoke(
        main,
        [
            *base,
            "consent",
            "customer-basis",
            str(anna),
            "--collected-at",
            "2025-03-01T10:30:00+01:00",
            "--objection-text",
            "bestelformulier-2025-03",
            "--evidence",
            "order form 2025-0412",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, [*base, "consent", "basis", str(anna), "--json"])
    assert result.exit_code == 0, result.output
    assert '"basis": "customer"' in result.stdout
    result = runner.invoke(
        main,
        [
            *base,
            "consent",
            "customer-basis",
            str(anna),
            "--collected-at",
            "2025-03-01",
            "--objection-text",
            "v1",
            "--evidence",
            "x",
        ],
    )
    assert result.exit_code == 2 and "time zone" in result.output


def test_erasing_the_person_erases_their_customer_basis(ctx: AppContext) -> None:
    from plusjeklas_tui.services import erasure

    org = school(ctx, ACTIVE)
    anna, bert = person(ctx, org), person(ctx, org)
    customer_basis(ctx, anna)
    customer_basis(ctx, bert)
    with session_scope(ctx.engine) as session:
        result = erasure.request_erasure(
            session,
            ctx.staff,
            ctx.settings.retention,
            {},
            "administrator",
            anna,
            "consent_withdrawn",
            TODAY,
        )
    assert result.receipt_id is not None
    with session_scope(ctx.engine) as session:
        left = session.scalars(select(CustomerBasis.administrator_id)).all()
    assert left == [bert]  # the evidence about Anna went with her
