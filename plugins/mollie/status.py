"""Mollie objects turned into the few words the app keeps: one status per customer and kind.

A customer can have several mandates, subscriptions and payments; the app shows one status per
kind, so these functions pick the one that matters most. Problems come first (a suspended
subscription outranks an active one) so staff see them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from plusjeklas_tui.providers import PaymentStatus

CUSTOMER_ID = re.compile(r"cst_[A-Za-z0-9]+")
"""Mollie customer ids (``cst_`` and letters/digits); anything else is refused before it goes
into a URL path."""

MANDATE_ORDER = ("valid", "pending", "invalid")
"""A customer can be charged when any mandate is valid, so "valid" wins."""
SUBSCRIPTION_ORDER = ("suspended", "active", "pending", "completed", "canceled")
"""Problems first: a suspended subscription (failed charges) is what staff must see."""
CANCELLABLE_SUBSCRIPTIONS = frozenset({"active", "pending", "suspended"})
REVOCABLE_MANDATES = frozenset({"valid", "pending"})

_STATUS_TIME = {
    "paid": "paidAt",
    "failed": "failedAt",
    "expired": "expiredAt",
    "canceled": "canceledAt",
    "authorized": "authorizedAt",
}


def is_customer_id(value: str | None) -> bool:
    return value is not None and CUSTOMER_ID.fullmatch(value) is not None


def strongest(statuses: Iterable[Any], order: tuple[str, ...]) -> str | None:
    """The status that ranks first in ``order``; unknown words rank after the known ones."""
    seen = [status for status in statuses if isinstance(status, str) and status]
    if not seen:
        return None
    rank = {status: position for position, status in enumerate(order)}
    return min(seen, key=lambda status: rank.get(status, len(order)))


def parse_time(value: Any) -> dt.datetime | None:
    """Mollie's ISO 8601 times (``2018-04-06T13:23:21.0Z``, ``...+00:00``), aware, in UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def payment_time(payment: Mapping[str, Any]) -> dt.datetime | None:
    """When the payment reached its status (paid, failed, ...), else when it was created."""
    field = _STATUS_TIME.get(str(payment.get("status")))
    when = parse_time(payment.get(field)) if field else None
    return when or parse_time(payment.get("createdAt"))


def organisation_ref(customer: Mapping[str, Any]) -> str | None:
    """The BRIN the app stored in the customer's metadata when it created the customer."""
    metadata = customer.get("metadata")
    if not isinstance(metadata, dict):
        return None
    brin = metadata.get("brin")
    if not isinstance(brin, str):
        return None
    return brin.strip() or None


def payment_status(
    customer: Mapping[str, Any],
    mandates: Iterable[Mapping[str, Any]],
    subscriptions: Iterable[Mapping[str, Any]],
    latest_payment: Mapping[str, Any] | None,
) -> PaymentStatus:
    return PaymentStatus(
        external_id=str(customer["id"]),
        organisation_ref=organisation_ref(customer),
        mandate_status=strongest((m.get("status") for m in mandates), MANDATE_ORDER),
        subscription_status=strongest((s.get("status") for s in subscriptions), SUBSCRIPTION_ORDER),
        last_payment_status=str(latest_payment["status"])
        if latest_payment and latest_payment.get("status")
        else None,
        last_payment_at=payment_time(latest_payment) if latest_payment else None,
    )


def without_links(value: Any) -> Any:
    """A Mollie object without its ``_links`` (API navigation, not data held on anyone)."""
    if isinstance(value, dict):
        return {key: without_links(item) for key, item in value.items() if key != "_links"}
    if isinstance(value, list):
        return [without_links(item) for item in value]
    return value
