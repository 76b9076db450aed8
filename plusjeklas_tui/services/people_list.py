"""The people list: administrators across all organisations, paged in SQL.

Names, e-mail addresses and phones are encrypted, so SQL can neither search nor sort them:
the list is searchable by *exact* e-mail address only (through the blind index), and sorts by
id, organisation name or leaving date. Only the rows of the requested page are decrypted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from plusjeklas_tui.models import Administrator, Organisation
from plusjeklas_tui.services.organisation_list import email_index_candidates
from plusjeklas_tui.validation import FieldError

SORT_COLUMNS = ("id", "organisation", "left_on")

_org = Organisation.__table__
_adm = Administrator.__table__


@dataclass(frozen=True, slots=True)
class PersonListRow:
    id: int
    organisation_id: int
    organisation_name: str
    name: str
    email: str
    phones: tuple[str, ...]
    """E.164 numbers, as stored."""
    left_on: dt.date | None


def _phones(value: str | None) -> tuple[str, ...]:
    """The stored JSON list; anything unreadable shows as no phones rather than failing a page."""
    try:
        numbers = json.loads(value or "[]")
    except ValueError:
        return ()
    if not isinstance(numbers, list):
        return ()
    return tuple(str(number) for number in numbers)


class PeopleList:
    """Administrators, optionally only those with e-mail address *email* (exact, any case).

    An *email* that is not a valid address raises :class:`FieldError` (field ``email``), so
    the caller can ask for a complete address instead of showing an empty list.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        email: str | None = None,
        sort: str = "id",
        descending: bool = False,
    ) -> None:
        if sort not in SORT_COLUMNS:
            raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
        self.engine = engine
        self.sort = sort
        self.descending = descending
        self.candidates: list[str] | None = None
        if email is not None and email.strip():
            candidates = email_index_candidates(engine, email.strip())
            if candidates is None:
                raise FieldError("email", email, "is not a complete e-mail address")
            self.candidates = candidates

    def _filtered(self, *columns: Any) -> Select:
        query = select(*columns).select_from(_adm.join(_org, _org.c.id == _adm.c.organisation_id))
        if self.candidates is not None:
            query = query.where(_adm.c.email_index.in_(self.candidates))
        return query

    def _order(self) -> list[Any]:
        def direction(expression: Any) -> Any:
            return expression.desc() if self.descending else expression.asc()

        if self.sort == "organisation":
            return [direction(_org.c.name), direction(_adm.c.id)]
        if self.sort == "left_on":
            # People still at their school have no leaving date: last in either direction.
            left = _adm.c.left_on
            return [case((left.is_(None), 1), else_=0), direction(left), direction(_adm.c.id)]
        return [direction(_adm.c.id)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._filtered(func.count(_adm.c.id))).scalar_one())

    def fetch(self, offset: int, limit: int) -> list[PersonListRow]:
        """Rows ``offset`` to ``offset + limit - 1``; only these are decrypted."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if limit == 0:
            return []
        query = (
            self._filtered(
                _adm.c.id,
                _adm.c.organisation_id,
                _org.c.name.label("organisation_name"),
                _adm.c.name,
                _adm.c.email,
                _adm.c.phones,
                _adm.c.left_on,
            )
            .order_by(*self._order())
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                PersonListRow(
                    id=row.id,
                    organisation_id=row.organisation_id,
                    organisation_name=row.organisation_name,
                    name=row.name,
                    email=row.email,
                    phones=_phones(row.phones),
                    left_on=row.left_on,
                )
                for row in conn.execute(query)
            ]
