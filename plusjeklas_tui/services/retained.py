"""What is kept of a subject, why and until when: the ``retained`` section of an access export.

The issue's promise: "the erasure receipt and any access export say what was kept, why and
until when". A receipt lists what an erasure kept (:mod:`~plusjeklas_tui.services.erasure`);
an export, made while the subject is still here, says:

* **general** — until when the general data (the school and its people) is kept under the
  general rule: the deadline the retention plan uses, or, while a subscription runs, that the
  clock has not started. For a person who left the school, their own (earlier) deadline.
* **legal_hold** — that a hold pauses the deletion, and since when (never its reason: free text
  staff typed, which may name people).
* **kept_longer** — the categories kept beyond the general rule, computed with the erasure's
  own facts and rule (:func:`erasure.subscription_facts`, :func:`payment_records_until`, the
  configured legal basis), so the export says what a receipt written today would: the payment
  records at the payment provider and, when configured, the restricted local copy of name,
  address and IBAN. While a subscription runs the date is the earliest possible one: each new
  payment record moves it on.
* **restricted_records** — restricted rows already kept here for the subject (category, legal
  basis, end date; never the payload), found through the subject's erasure receipts written
  after the record was created (an id SQLite hands out again is a new school).

Payment records are the school's, not a person's: a person's section has no ``kept_longer``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    Administrator,
    ErasureReceipt,
    Organisation,
    ProviderLink,
    RestrictedRecord,
)
from plusjeklas_tui.services.erasure import (
    LOCAL_PAYMENT_RECORD,
    PAYMENT_RECORDS,
    ProviderTarget,
    subscription_facts,
)
from plusjeklas_tui.services.legal_hold import current_hold
from plusjeklas_tui.services.retention import (
    ADMINISTRATOR_LEFT,
    GENERAL,
    ORGANISATION,
    administrator_deadline,
    general_rule,
    payment_records_until,
    rule_text,
)

PAYMENT_KIND = "payment"
HERE_RESTRICTED = "here, restricted (GDPR art. 18)"
"""The ``where`` of a restricted local copy, as on the erasure receipt."""


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def retained_section(
    session: Session,
    settings: RetentionSettings,
    organisation_id: int,
    *,
    today: dt.date,
    targets: Mapping[str, ProviderTarget] | None = None,
    administrator_id: int | None = None,
) -> dict[str, Any]:
    """What is kept of the school (or, with *administrator_id*, of that person), why and until
    when, as JSON-ready data. Ids, categories and dates only.

    *targets* (:func:`erasure.provider_targets`) name the payment providers holding the school's
    payment records; without them the entry says "the payment provider", as a receipt does.
    """
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"organisation #{organisation_id} does not exist")
    facts = subscription_facts(session, organisation_id, today)
    deadline = general_rule(settings).deadline(facts.clock_start)
    general: dict[str, Any] = {
        "rule": GENERAL,
        "rule_text": rule_text(GENERAL, settings),
        "months": settings.general_after_end_months,
        "subscription_runs": facts.clock_start is None,
        "kept_until": _iso(deadline),
    }
    if administrator_id is not None:
        left_on = session.scalar(
            select(Administrator.left_on).where(
                Administrator.id == administrator_id,
                Administrator.organisation_id == organisation_id,
            )
        )
        if left_on is not None:
            own = administrator_deadline(left_on, settings)
            if deadline is None or own < deadline:
                general.update(
                    rule=ADMINISTRATOR_LEFT,
                    rule_text=rule_text(ADMINISTRATOR_LEFT, settings),
                    kept_until=own.isoformat(),
                    days=settings.administrator_after_leaving_days,
                )
    hold = current_hold(session, organisation_id)
    section: dict[str, Any] = {
        "general": general,
        "legal_hold": None if hold is None else {"since": _iso(hold.set_at)},
        "kept_longer": [],
        "restricted_records": _restricted_records(session, organisation),
    }
    if administrator_id is None and facts.had_subscription:
        until = payment_records_until(facts.last_payment_year, settings).isoformat()
        section["kept_longer"].append(
            {
                "category": PAYMENT_RECORDS,
                "legal_basis": settings.payment_records_legal_basis,
                "kept_until": until,
                "where": _payers(session, organisation_id, targets) or "the payment provider",
                "final": facts.clock_start is not None,
            }
        )
        if settings.keep_local_iban_as_payment_record and organisation.iban:
            section["kept_longer"].append(
                {
                    "category": LOCAL_PAYMENT_RECORD,
                    "legal_basis": settings.payment_records_legal_basis,
                    "kept_until": until,
                    "where": HERE_RESTRICTED,
                    "final": facts.clock_start is not None,
                }
            )
    return section


def _payers(
    session: Session, organisation_id: int, targets: Mapping[str, ProviderTarget] | None
) -> str:
    """The enabled payment providers linked to the school, as the erasure names them."""
    if not targets:
        return ""
    linked = session.scalars(
        select(ProviderLink.provider).where(
            ProviderLink.subject_type == ORGANISATION,
            ProviderLink.subject_id == organisation_id,
        )
    ).all()
    payers = {
        name
        for name in linked
        if (target := targets.get(name)) is not None and target.kind == PAYMENT_KIND
    }
    return ", ".join(sorted(payers))


def _restricted_records(session: Session, organisation: Organisation) -> list[dict[str, Any]]:
    """Restricted rows kept for this school: category, legal basis and end date only."""
    receipts = select(ErasureReceipt.id).where(
        ErasureReceipt.subject_type == ORGANISATION,
        ErasureReceipt.subject_id == organisation.id,
    )
    if organisation.created_at is not None:
        receipts = receipts.where(ErasureReceipt.erased_at >= organisation.created_at)
    rows = session.execute(
        select(
            RestrictedRecord.id,
            RestrictedRecord.category,
            RestrictedRecord.legal_basis,
            RestrictedRecord.keep_until,
        )
        .where(RestrictedRecord.receipt_id.in_(receipts.scalar_subquery()))  # type: ignore[attr-defined]
        .order_by(RestrictedRecord.keep_until, RestrictedRecord.id)  # type: ignore[arg-type]
    ).all()
    return [
        {
            "id": row.id,
            "category": row.category,
            "legal_basis": row.legal_basis,
            "keep_until": _iso(row.keep_until),
            "where": HERE_RESTRICTED,
        }
        for row in rows
    ]
