"""Read-side queries for lists and lookups: plain columns, no decryption, one round trip each.

Lists read only the public school columns (name, city, postcode, BRIN), so they filter and
sort in SQL and never decrypt anything. Exact e-mail lookups go through the blind index.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.engine import Engine

from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.models import Administrator, Organisation
from plusjeklas_tui.validation import email_lookup_key

_ORG = Organisation.__table__.c
_ADMIN = Administrator.__table__.c


class OrganisationRow(NamedTuple):
    """One line of the organisations list."""

    id: int
    name: str
    city: str
    postcode: str
    brin: str


def _name_filter(engine: Engine, name_contains: str | None) -> ColumnElement[bool] | None:
    """Case-insensitive substring match on the name; ``%``, ``_`` and ``\\`` match themselves.

    SQLite's ``LIKE`` is already case-insensitive (for ASCII letters, as is its ``lower()``),
    and plain ``LIKE`` lets it walk the name index in order and stop after *limit* rows;
    PostgreSQL needs ``ILIKE``.
    """
    if not name_contains:
        return None
    if engine.dialect.name == "sqlite":
        return _ORG.name.contains(name_contains, autoescape=True)
    return _ORG.name.icontains(name_contains, autoescape=True)


def _where(query: Select[Any], condition: ColumnElement[bool] | None) -> Select[Any]:
    return query if condition is None else query.where(condition)


def organisations_query(
    engine: Engine, *, name_contains: str | None = None, limit: int = 100, offset: int = 0
) -> Select[Any]:
    """The statement behind :func:`list_organisations` (the benchmarks run it bare, too)."""
    query = _where(
        select(_ORG.id, _ORG.name, _ORG.city, _ORG.postcode, _ORG.brin),
        _name_filter(engine, name_contains),
    )
    return query.order_by(_ORG.name, _ORG.id).limit(limit).offset(offset)


def list_organisations(
    engine: Engine, *, name_contains: str | None = None, limit: int = 100, offset: int = 0
) -> list[OrganisationRow]:
    """Organisations ordered by name (then id), optionally those whose name contains a text."""
    query = organisations_query(engine, name_contains=name_contains, limit=limit, offset=offset)
    with engine.connect() as conn:
        return [OrganisationRow(*row) for row in conn.execute(query)]


def count_organisations(engine: Engine, name_contains: str | None = None) -> int:
    """How many organisations :func:`list_organisations` would page through."""
    query = _where(
        select(func.count()).select_from(Organisation.__table__),
        _name_filter(engine, name_contains),
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _by_email_index(engine: Engine, keyring: Keyring, table: Any, email: str) -> list[int]:
    candidates = keyring.blind_index_candidates(email_lookup_key(email))
    query = select(table.c.id).where(table.c.email_index.in_(candidates)).order_by(table.c.id)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def find_people_by_email(engine: Engine, keyring: Keyring, email: str) -> list[int]:
    """Ids of the administrators with exactly this e-mail address (any letter case).

    Raises :class:`~plusjeklas_tui.validation.FieldError` when *email* is not an address at
    all: no stored address can match it, and the person typing should hear why.
    """
    return _by_email_index(engine, keyring, Administrator.__table__, email)


def find_organisations_by_email(engine: Engine, keyring: Keyring, email: str) -> list[int]:
    """Ids of the organisations whose contact e-mail is exactly this address (any letter case)."""
    return _by_email_index(engine, keyring, Organisation.__table__, email)


def search_organisations(engine: Engine, text: str, limit: int = 20) -> list[OrganisationRow]:
    """Organisations for the command palette: a BRIN that starts with *text*, then names.

    A BRIN is typed whole or by its first characters (``05KO``), so it is matched as a prefix
    on the unique index; names match as a substring like the list filter.
    """
    text = text.strip()
    if not text:
        return []
    columns = (_ORG.id, _ORG.name, _ORG.city, _ORG.postcode, _ORG.brin)
    brin_prefix = text.replace(" ", "").upper()
    with engine.connect() as conn:
        by_brin = [
            OrganisationRow(*row)
            for row in conn.execute(
                select(*columns)
                .where(_ORG.brin.startswith(brin_prefix, autoescape=True))
                .order_by(_ORG.brin)
                .limit(limit)
            )
        ]
        seen = {row.id for row in by_brin}
        by_name = [
            OrganisationRow(*row)
            for row in conn.execute(organisations_query(engine, name_contains=text, limit=limit))
            if row.id not in seen
        ]
    return (by_brin + by_name)[:limit]
