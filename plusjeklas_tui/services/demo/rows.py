"""Plain records to table rows: ids, the driver's date format, encryption and blind indexes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.models import index_value
from plusjeklas_tui.services.demo.records import DemoBatch

Rows = dict[str, list[tuple[Any, ...]]]
"""Rows per table, each a tuple in :data:`INSERT_COLUMNS` order."""

# Column order of the rows the writer builds. A test checks these against the models, so a
# migration that adds a column cannot silently leave the demo behind.
INSERT_COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": (
        "id", "name", "street", "postcode", "city", "brin", "phone", "email", "email_index",
        "iban", "notes", "created_at", "updated_at", "version",
    ),
    "administrator": (
        "id", "organisation_id", "name", "email", "email_index", "phones", "started_on",
        "left_on", "created_at", "updated_at", "version",
    ),
    "subscription": (
        "id", "organisation_id", "plan", "start_date", "end_date", "status", "created_at",
        "updated_at",
    ),
    "consent_event": (
        "id", "administrator_id", "purpose", "action", "occurred_at", "source", "evidence",
        "recorded_at", "text_version", "form_url", "confirmed_at", "channel",
    ),
}  # fmt: skip


class Codec:
    """Turns dates and UTC times into what the driver stores, as SQLAlchemy's types would.

    psycopg takes ``date`` and aware ``datetime`` as they are. On SQLite, SQLAlchemy stores
    ``Date`` as ``YYYY-MM-DD`` and :class:`~plusjeklas_tui.sqltypes.UTCDateTime` as naive UTC
    text ``YYYY-MM-DD HH:MM:SS.ffffff``; the tests compare this codec with those processors.
    """

    def __init__(self, dialect_name: str) -> None:
        self.sqlite = dialect_name == "sqlite"
        self._dates: dict[dt.date, str] = {}

    def date(self, value: dt.date | None) -> Any:
        if value is None or not self.sqlite:
            return value
        text_value = self._dates.get(value)
        if text_value is None:
            text_value = self._dates[value] = value.isoformat()
        return text_value

    def moment(self, value: dt.datetime) -> Any:
        if not self.sqlite:
            return value
        if value.tzinfo is dt.UTC and not value.microsecond:
            return f"{str(value)[:19]}.000000"  # the generator's case, 3x faster than below
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass
class Ids:
    """The next free id of each table; demo rows get consecutive ids from here."""

    organisation: int
    administrator: int
    subscription: int
    consent_event: int


def next_ids(conn: Connection) -> Ids:
    found = [
        conn.execute(text(f"SELECT MAX(id) FROM {name}")).scalar() or 0 for name in INSERT_COLUMNS
    ]
    return Ids(*(value + 1 for value in found))


def _phones_json(phones: tuple[str, ...]) -> str:
    """``json.dumps(list(phones))`` for E.164 strings (digits and '+', nothing to escape)."""
    return '["' + '", "'.join(phones) + '"]'


def _encrypt_optional(
    keyring: Keyring, values: Sequence[str | None], context: str
) -> list[str | None]:
    """:meth:`~plusjeklas_tui.crypto.Keyring.encrypt_many` of the values that are not ``None``."""
    present = iter(keyring.encrypt_many([v for v in values if v is not None], context))
    return [None if v is None else next(present) for v in values]


def _channel(source: str) -> str | None:
    """How the demo's people expressed consent, where the source tells (proof of consent)."""
    if source == "web-form":
        return "web-form"
    return "provider" if source.startswith("provider:") else None


def encode_batch(
    batch: DemoBatch, keyring: Keyring, ids: Ids, codec: Codec, now: dt.datetime
) -> Rows:
    """The rows of *batch*, per table, with personal values encrypted and blind-indexed.

    Built a column at a time (records transposed with ``zip(*records)``), so each column is
    encrypted in one call; the rows are zipped back together at the end.
    """
    encrypt, index = keyring.encrypt_many, keyring.blind_index
    org_base, admin_base = ids.organisation, ids.administrator
    stamp = codec.moment(now)
    date, moment = codec.date, codec.moment
    rows: Rows = {name: [] for name in INSERT_COLUMNS}

    if batch.schools:
        n = len(batch.schools)
        name, street, postcode, city, brin, phone, email, iban, notes = zip(
            *batch.schools, strict=True
        )
        first = org_base + batch.first_school
        rows["organisation"] = list(
            zip(
                range(first, first + n), name, street, postcode, city, brin, phone,
                encrypt(email, "organisation.email"),
                [index(index_value("email", e)) for e in email],
                encrypt(iban, "organisation.iban"),
                _encrypt_optional(keyring, notes, "organisation.notes"),
                [stamp] * n, [stamp] * n, [1] * n,
                strict=True,
            )
        )  # fmt: skip
    if batch.administrators:
        n = len(batch.administrators)
        school, name, email, phones, started_on, left_on = zip(*batch.administrators, strict=True)
        first = admin_base + batch.first_administrator
        rows["administrator"] = list(
            zip(
                range(first, first + n), [org_base + s for s in school],
                encrypt(name, "administrator.name"), encrypt(email, "administrator.email"),
                [index(index_value("email", e)) for e in email],
                encrypt([_phones_json(p) for p in phones], "administrator.phones"),
                [date(d) for d in started_on], [date(d) for d in left_on],
                [stamp] * n, [stamp] * n, [1] * n,
                strict=True,
            )
        )  # fmt: skip
    if batch.subscriptions:
        n = len(batch.subscriptions)
        school, plan, start_date, end_date, status = zip(*batch.subscriptions, strict=True)
        rows["subscription"] = list(
            zip(
                range(ids.subscription, ids.subscription + n), [org_base + s for s in school],
                plan, [date(d) for d in start_date], [date(d) for d in end_date], status,
                [stamp] * n, [stamp] * n,
                strict=True,
            )
        )  # fmt: skip
        ids.subscription += n
    if batch.consents:
        n = len(batch.consents)
        person, purpose, action, occurred_at, source, evidence = zip(*batch.consents, strict=True)
        rows["consent_event"] = list(
            zip(
                range(ids.consent_event, ids.consent_event + n),
                [admin_base + p for p in person], purpose, action,
                [moment(m) for m in occurred_at], source,
                encrypt(evidence, "consent_event.evidence"),
                [stamp] * n, [None] * n, [None] * n, [None] * n,
                [_channel(s) for s in source],
                strict=True,
            )
        )  # fmt: skip
        ids.consent_event += n
    return rows
