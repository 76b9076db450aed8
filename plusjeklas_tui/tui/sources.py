"""Adapters from the list services (plain query objects) to the table's rows and cells.

:class:`QuerySource` makes a service query a :class:`RowSource`. A list screen builds a new
one whenever the filter, the order or the data may have changed, and calls :meth:`prime` in a
worker thread: the count and the pages about to be drawn are then read off the UI thread, and
the table finds them waiting. Pages the user scrolls to later are fetched on demand, one page
at a time, as the table asks. A primed page is handed over once and then forgotten, so the
table's own small page cache is the only place rows live.

The ``*_row`` functions decide what each column shows; every word comes from the catalogue.
Values from the database stay plain text: :class:`Cell` text is never parsed as markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from plusjeklas_tui.services.audit_list import LOCAL_ZONE, AuditListRow
from plusjeklas_tui.services.organisation_list import OrganisationListRow
from plusjeklas_tui.services.people_list import PersonListRow
from plusjeklas_tui.tui.i18n import t
from plusjeklas_tui.tui.widgets.virtual_table import Cell, Row
from plusjeklas_tui.validation import format_phone

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class PagedQuery(Protocol[T_co]):
    """What every list service offers: a count and a page, both fresh from the database."""

    def count(self) -> int: ...

    def fetch(self, offset: int, limit: int) -> Sequence[T_co]: ...


@runtime_checkable
class CappedCount(Protocol):
    """A query that can stop counting early (see ``OrganisationList.count_at_most``)."""

    def count_at_most(self, limit: int) -> int: ...


class EmptySource:
    """A list with nothing in it (before the first load, or when the filter cannot run)."""

    def count(self) -> int:
        return 0

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        return []


class QuerySource(Generic[T]):
    """A :class:`RowSource` over a :class:`PagedQuery`, with pages read ahead by :meth:`prime`.

    *page_size* must be the table's, so primed pages match the table's requests.
    """

    def __init__(self, query: PagedQuery[T], to_row: Callable[[T], Row], *, page_size: int) -> None:
        self.query = query
        self.to_row = to_row
        self.page_size = page_size
        self._count: int | None = None
        self.exact = True
        """False while the primed count is only a lower bound (see :meth:`prime`)."""
        self._pages: dict[int, list[Row]] = {}
        self.fetches = 0
        """How many pages were read from the database (primed or not); for tests."""

    def prime(self, pages: Iterable[int] = (0,), *, count_up_to: int | None = None) -> int:
        """Count and read *pages* now (call from a worker thread); returns the count.

        With *count_up_to*, a query that can (:class:`CappedCount`) stops counting there, or
        past the pages asked for if they reach further: a single common letter matches most
        schools, and the frame after the key needs the first rows, not their number. Then
        :attr:`exact` says whether the count is the whole count; :meth:`count_exactly`
        finishes the job afterwards, off the keystroke's path.
        """
        wanted = sorted(set(pages))
        if count_up_to is not None and isinstance(self.query, CappedCount):
            limit = max(count_up_to, (max(wanted, default=0) + 1) * self.page_size) + 1
            count = self.query.count_at_most(limit)
            self.exact = count < limit
        else:
            count = self.query.count()
            self.exact = True
        for number in wanted:
            if number < 0 or number * self.page_size >= count:
                continue
            self._pages[number] = self._read(number * self.page_size, self.page_size)
        self._count = count
        return count

    def count_exactly(self) -> int:
        """The whole count, after a capped :meth:`prime` (call from a worker thread)."""
        count = self.query.count()
        self.exact = True
        return count

    def _read(self, offset: int, limit: int) -> list[Row]:
        self.fetches += 1
        return [self.to_row(item) for item in self.query.fetch(offset, limit)]

    def count(self) -> int:
        """The primed count once (the table asks right after it gets this source), then live."""
        if self._count is not None:
            count, self._count = self._count, None
            return count
        return self.query.count()

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        number, rest = divmod(offset, self.page_size)
        if rest == 0 and limit == self.page_size and number in self._pages:
            return self._pages.pop(number)
        return self._read(offset, limit)


# --------------------------------------------------------------------------- rows

URGENCY_STYLES = {
    "overdue": "bold red",
    "soon": "red",
    "near": "yellow",
    "later": "green",
    "none": "",
}
"""Named ANSI colours only, so they survive 256- and 16-colour terminals."""


def status_text(status: str | None) -> str:
    return t(f"lists.status.{status or 'none'}")


def organisation_row(item: OrganisationListRow) -> Row:
    deadline = item.deadline.isoformat() if item.deadline else t("lists.deadline.none")
    return Row(
        item.id,
        (
            item.name,
            item.city,
            item.brin,
            item.postcode,
            status_text(item.status),
            Cell(deadline, URGENCY_STYLES.get(item.urgency, "")),
        ),
    )


@dataclass(frozen=True, slots=True)
class PersonRow(Row):
    """A person's row also knows the organisation Enter opens."""

    organisation_id: int = 0


def person_row(item: PersonListRow) -> PersonRow:
    left = item.left_on.isoformat() if item.left_on else ""
    cells: tuple[str | Cell, ...] = (
        item.name,
        item.email,
        ", ".join(format_phone(number) for number in item.phones),
        item.organisation_name,
        Cell(left, "dim") if left else left,
    )
    return PersonRow(item.id, cells, organisation_id=item.organisation_id)


@dataclass(frozen=True, slots=True)
class AuditRow(Row):
    """An audit row also knows which record the event was about."""

    entity: str = ""
    entity_id: int | None = None


def local_time(moment: dt.datetime) -> str:
    """A UTC moment as staff read it: Europe/Amsterdam, to the minute."""
    return moment.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M")


def audit_row(item: AuditListRow) -> AuditRow:
    detail = "" if item.detail in ("", "{}") else item.detail
    cells: tuple[str | Cell, ...] = (
        local_time(item.occurred_at),
        item.actor,
        item.action,
        item.entity,
        "" if item.entity_id is None else str(item.entity_id),
        detail,
    )
    return AuditRow(item.id, cells, entity=item.entity, entity_id=item.entity_id)
