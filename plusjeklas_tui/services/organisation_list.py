"""The organisations list: filtered, sorted and paged in SQL, so 100,000 schools stay quick.

A query object answers two questions, both cheap: how many organisations match
(:meth:`OrganisationList.count`) and which ones are on a page (:meth:`OrganisationList.fetch`).
Nothing here holds more than one page.

The page itself is read in two steps. The first selects the page's ids and plain columns in the
requested order (an indexed ``ORDER BY name, id`` for the default list); the second computes the
current subscription status and the retention clock for *those ids only*. The retention
aggregate over every organisation is joined only when the list is filtered or sorted by it.

Retention bands and due months are compared on the clock start, with the cut-offs from
:meth:`RetentionRule.latest_clock_due_before`, exactly as :mod:`plusjeklas_tui.services.dashboard`
counts them, so a list opened from a dashboard tile shows as many rows as the tile says.

The text filter is answered from an index, not by reading every row (migration 0002):

* On SQLite, the trigram table ``organisation_search`` (FTS5). A term of three or more
  characters is one phrase query. A term of one or two characters has no trigram of its own,
  but the index stores every value followed by two U+001F characters, so such a term is the
  *start* of a trigram wherever it occurs; those trigrams are read in order from the
  vocabulary table and OR-ed. A short term that starts very many trigrams (a common letter
  such as ``e``) is cheaper as a plain ``LIKE`` scan, which finds a page of matches within
  the first rows it reads.
* On PostgreSQL, ``ILIKE`` on the four columns joined by spaces, which the ``pg_trgm`` GIN
  index over that expression serves (or a scan when the extension was not available), and
  then on each column, so a match across two columns does not count.

Both ignore the letter case of every letter (``Ë`` finds ``ë``); SQLite's own ``LIKE``, used
for the common short terms and when nothing else fits, ignores only ASCII case, so it is used
only for terms made of ASCII characters, where the two agree.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from plusjeklas_tui.models import (
    Administrator,
    LegalHold,
    Organisation,
    Subscription,
    index_value,
)
from plusjeklas_tui.services.deadlines import RetentionRule, as_date, clock_starts, urgency
from plusjeklas_tui.sqltypes import keyring_of
from plusjeklas_tui.validation import FieldError, email_lookup_key

SORT_COLUMNS = ("name", "city", "brin", "postcode", "status", "deadline")
URGENCY_BANDS = ("overdue", "soon", "near")
"""'overdue': deadline passed; 'soon': within 30 days; 'near': within 90 days (soon included,
as the dashboard's "due within 90 days" tile counts)."""
STATUS_ORDER = ("trial", "active", "cancelled", "ended")
"""Sorting by status follows a subscription's life, not the alphabet of either language."""

_org = Organisation.__table__
_sub = Subscription.__table__
_adm = Administrator.__table__

SEARCH_TABLE = "organisation_search"
"""SQLite's trigram index over name, city, BRIN and postcode (migration 0002)."""
SEARCH_PAD = "\x1f"
"""Each indexed value is followed by two of these (the migration's ``char(31, 31)``)."""
TRIGRAM = 3
SAMPLE_ROWS = 1_000
COMMON_SHARE = 0.5
"""A single character found in half the rows of a sample is matched by a ``LIKE`` scan at
once (two characters start few enough trigrams for the index to stay cheaper)."""
TRIGRAM_COST = 500
SCAN_COST_PER_ROW = 1.7
"""A short term's index query costs about ``TRIGRAM_COST`` per trigram it starts plus one per
row each of them is in; a ``LIKE`` scan ``SCAN_COST_PER_ROW`` per organisation. The cheaper
one answers (for ASCII terms; others always use the index).

Measured at 100,000 schools, where the scan takes 20-27 ms for any letter: ``z`` starts 124
trigrams in 38,854 rows and the index counts its matches in 10 ms; ``e`` starts 368 in 371,000
rows (90 ms), ``1`` 1,067 trigrams (124 ms). The scan also finds a page of such a common
letter's matches within its first few hundred rows."""
SEARCH_INDEX_OBJECTS = re.compile(
    rf"{SEARCH_TABLE}(_(data|idx|docsize|config|content|vocab))?"
    r"|ix_organisation_search_trgm"
)
"""What migration 0002 makes for the search besides the models' own tables and indexes."""


def not_search_index(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: False for the search index's tables and indexes.

    They are built by migration 0002, not declared on the models, so an autogenerate run
    must not offer to drop them.
    """
    return not (type_ in ("table", "index") and SEARCH_INDEX_OBJECTS.fullmatch(name or ""))


WALK_SORT_INDEX_FROM = 1_000
"""With more matches than this a page walks the sort column's index (checking each row's id
against the matches) instead of looking every match up and sorting them all.

Measured at 100,000 schools, a page with its details: ``de w`` (6,460 matches) 12 ms sorted,
7 ms walking; ``komp`` (1,007) 5 ms either way; ``sch`` (53,098) 28 ms against 9 ms."""
SCAN_PAGE_WITHIN_ROWS = 600
"""A page whose matches lie, by the match rate, within this many rows of the sort column's
index is read by walking that index with ``LIKE`` (ASCII terms), without the trigram index:
each row read costs a table lookup, but there are few. Measured: ``z`` (a third of all
schools) 18 ms walking with the trigram index, 4 ms this way; ``de w`` (one in sixteen)
7 ms against 18 ms."""
INDEXED_SORTS = ("name", "city", "brin", "postcode")

_SPACE = literal_column("' '")  # written out, as in the index: a parameter would not match it
_PG_SEARCH_TEXT = (
    _org.c.name + _SPACE + _org.c.city + _SPACE + _org.c.brin + _SPACE + _org.c.postcode
)
"""PostgreSQL's trigram index is on exactly this expression (migration 0002)."""


@dataclass(frozen=True, slots=True)
class OrganisationListRow:
    id: int
    name: str
    city: str
    brin: str
    postcode: str
    status: str | None
    """Status of the organisation's latest subscription (by start date); None: it has none."""
    deadline: dt.date | None
    """Retention deadline; None while a subscription runs."""
    urgency: str
    """'overdue', 'soon', 'near', 'later' or 'none', from :func:`deadlines.urgency`."""
    on_hold: bool = False
    """A legal hold pauses its deletion: the list shows that instead of the urgency."""


def email_index_candidates(engine: Engine, text: str) -> list[str] | None:
    """Blind-index values to look *text* up by, or None when it is not an e-mail address.

    One value per loaded key, so a lookup works halfway through a key rotation.
    """
    if "@" not in text:
        return None
    try:
        key = email_lookup_key(text)
    except FieldError:
        return None
    return keyring_of(engine.dialect).blind_index_candidates(index_value("email", key))


_POSTCODE_WITHOUT_SPACE = re.compile(r"([0-9]{4})([A-Za-z]{1,2})")
LIKE_ESCAPE = "/"


def escape_like(text: str) -> str:
    """*text* for a LIKE pattern in which it matches only itself (``%``, ``_`` literal)."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def _fts_phrase(text: str) -> str:
    """*text* as one FTS5 phrase: everything in it literal (``"`` doubled)."""
    return '"' + text.replace('"', '""') + '"'


def _matching(expression: str, column: str = "rowid") -> Select:
    """``SELECT column FROM organisation_search WHERE organisation_search MATCH expression``."""
    return (
        select(sql_text(column))
        .select_from(sql_text(SEARCH_TABLE))
        .where(
            sql_text(f"{SEARCH_TABLE} MATCH :search_expression").bindparams(
                search_expression=expression
            )
        )
    )


def _padded(column: str) -> str:
    return f"{column} || char(31, 31)"


def rebuild_search_index(conn: Connection) -> None:
    """Index every organisation afresh in one statement (SQLite; after a bulk load).

    Writes exactly what the triggers of migration 0002 write row by row: each value followed
    by two U+001F, so the triggers can delete these entries later.
    """
    columns = ("name", "city", "brin", "postcode")
    conn.exec_driver_sql(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('delete-all')")
    conn.exec_driver_sql(
        f"INSERT INTO {SEARCH_TABLE} (rowid, {', '.join(columns)}) "
        f"SELECT id, {', '.join(_padded(column) for column in columns)} FROM organisation"
    )


@contextmanager
def search_index_suspended(conn: Connection) -> Iterator[None]:
    """Bulk-insert organisations without the per-row index triggers, then index them at once.

    The triggers cost a 100,000-school demo more than its whole write (20 s against 8 s);
    one rebuild afterwards costs under a second. The triggers are dropped and created again
    from their own stored SQL, inside the caller's transaction: if the load fails, the
    rollback brings them back untouched. Does nothing on PostgreSQL (its GIN indexes need no
    help) or where the index does not exist.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    triggers = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = 'organisation' AND name LIKE ? ESCAPE '/'",
        (f"{escape_like(SEARCH_TABLE)}/_%",),
    ).all()
    if not triggers:
        yield
        return
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        # pysqlite opens its transaction only at the first INSERT; DDL before it would be
        # committed on its own, and a failed load would then leave the triggers gone.
        conn.exec_driver_sql("BEGIN")
    for name, _sql in triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    yield
    for _name, sql in triggers:
        conn.exec_driver_sql(sql)
    rebuild_search_index(conn)


def _contains(engine: Engine, column: Any, pattern: str) -> ColumnElement[bool]:
    """Case-insensitive LIKE without ``lower()`` on every row.

    SQLite's LIKE already ignores ASCII case (it leaves other letters as typed); PostgreSQL
    has ILIKE. Calling ``lower()`` per row made a keystroke over 100,000 schools twice as slow.
    """
    if engine.dialect.name == "postgresql":
        return column.ilike(pattern, escape=LIKE_ESCAPE)
    return column.like(pattern, escape=LIKE_ESCAPE)


def parse_month(value: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month; ValueError naming the rule otherwise."""
    try:
        if len(value) != 7 or value[4] != "-":
            raise ValueError
        return dt.date(int(value[:4]), int(value[5:]), 1)
    except ValueError:
        raise ValueError("due_month must be a month written as YYYY-MM, e.g. 2026-03") from None


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def latest_status() -> Any:
    """Correlated scalar subquery: the status of an organisation's latest subscription.

    Uses its own alias of ``subscription`` so it can sit in a query that already joins it.
    """
    latest = _sub.alias("latest_subscription")
    return (
        select(latest.c.status)
        .where(latest.c.organisation_id == _org.c.id)
        .order_by(latest.c.start_date.desc(), latest.c.id.desc())
        .limit(1)
        .correlate(_org)
        .scalar_subquery()
    )


class OrganisationList:
    """Organisations matching a filter, in one order; ``count()`` and ``fetch()`` query afresh.

    ``text``: case-insensitive substring of name, city, BRIN or postcode (``%`` and ``_`` are
    literal; the postcode also matches without its space), or, when it is an e-mail address,
    the exact contact e-mail of the organisation or of one of its administrators (through the
    blind index). ``status``: has a subscription in that state. ``urgency``: a band of
    :data:`URGENCY_BANDS`. ``due_month``: ``YYYY-MM``, deadline in that month and not before
    *today* (as the dashboard's chart counts).
    """

    def __init__(
        self,
        engine: Engine,
        rule: RetentionRule,
        today: dt.date,
        *,
        text: str = "",
        status: str | None = None,
        urgency: str | None = None,
        due_month: str | None = None,
        sort: str = "name",
        descending: bool = False,
    ) -> None:
        if sort not in SORT_COLUMNS:
            raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
        if status is not None and status not in STATUS_ORDER:
            raise ValueError(f"status must be one of {', '.join(STATUS_ORDER)}, got {status!r}")
        if urgency is not None and urgency not in URGENCY_BANDS:
            raise ValueError(f"urgency must be one of {', '.join(URGENCY_BANDS)}, got {urgency!r}")
        self.engine = engine
        self.rule = rule
        self.today = today
        self.text = text.strip()
        self.status = status
        self.urgency = urgency
        self.month = None if due_month is None else parse_month(due_month)
        self.sort = sort
        self.descending = descending
        self._needs_clock = urgency is not None or due_month is not None or sort == "deadline"
        self._search: str | bool | None = None
        """SQLite: the MATCH expression for the text, False for a ``LIKE`` scan, None: not
        decided yet (:meth:`_search_expression`)."""
        self._email: list[str] | None = (
            email_index_candidates(engine, self.text) if self.text else None
        )
        self._count: int | None = None
        """The last :meth:`count` (chooses how :meth:`fetch` reads a page)."""
        self._estimate: int | None = None
        """After a :meth:`count_at_most` that stopped: about how many match (see there)."""
        self._organisations: int | None = None

    def _all_organisations(self, conn: Connection) -> int:
        """How many organisations there are (once per list; SQLite counts its smallest index)."""
        if self._organisations is None:
            self._organisations = conn.execute(select(func.count()).select_from(_org)).scalar_one()
        return self._organisations

    # ------------------------------------------------------------------ the text search

    def _search_expression(self) -> str | bool:
        """SQLite: an FTS5 MATCH expression for the text, or False to scan with ``LIKE``.

        An expression that cannot match anything is returned as ``""``.
        """
        if self._search is None:
            self._search = self._decide_search()
        return self._search

    def _decide_search(self) -> str | bool:
        term = self.text
        if SEARCH_PAD in term:
            return False  # it would match the padding: only a scan is exact
        if len(term) >= TRIGRAM:
            expression = _fts_phrase(term)
            postcode = _POSTCODE_WITHOUT_SPACE.fullmatch(term)
            if postcode:  # '3511ab' finds '3511 AB': the stored form has the space
                expression += f" OR postcode : {_fts_phrase(f'{postcode[1]} {postcode[2]}')}"
            return expression
        # One or two characters: the trigrams that start with them, from the vocabulary
        # (terms are stored case-folded; compared as UTF-8 bytes, so this is a prefix range).
        folded = term.lower()
        trigrams: list[str] = []
        with self.engine.connect() as conn:
            scan_cost = math.inf
            if term.isascii():  # only then does LIKE ignore case as the index does
                if len(term) == 1 and self._common_in_sample(conn):
                    return False
                scan_cost = SCAN_COST_PER_ROW * self._all_organisations(conn)
            cost = 0
            vocabulary = conn.execute(
                sql_text(
                    f"SELECT term, doc FROM {SEARCH_TABLE}_vocab "
                    "WHERE term >= :low AND term < :high"
                ),
                {"low": folded, "high": folded + "\U0010ffff"},
            )
            for trigram, rows in vocabulary:
                trigrams.append(trigram)
                cost += TRIGRAM_COST + rows
                if cost > scan_cost:
                    vocabulary.close()
                    return False
        return " OR ".join(_fts_phrase(trigram) for trigram in trigrams)

    def _common_in_sample(self, conn: Connection) -> bool:
        """Whether at least :data:`COMMON_SHARE` of the first :data:`SAMPLE_ROWS` rows match.

        Such a term (``e``, ``k``, ``1``) is scanned for anyway; the sample saves reading
        hundreds of its trigrams' entries in the vocabulary to find that out.
        """
        sample = select(_org.c.name, _org.c.city, _org.c.brin, _org.c.postcode).limit(SAMPLE_ROWS)
        rows = sample.subquery("sample")
        pattern = f"%{escape_like(self.text)}%"
        matching = conn.execute(
            select(
                func.count(),
                func.count().filter(
                    or_(
                        *(
                            rows.c[column].like(pattern, escape=LIKE_ESCAPE)
                            for column in ("name", "city", "brin", "postcode")
                        )
                    )
                ),
            )
        ).one()
        return matching[0] > 0 and matching[1] >= COMMON_SHARE * matching[0]

    # ------------------------------------------------------------------ query building

    def _text_condition(self, mode: str = "index") -> ColumnElement[bool] | None:
        """The text filter, in one of three forms that SQLite plans differently.

        ``index``: organisations by id from the trigram index; ``walk``: the same, written so
        that SQLite walks the sort column's index and checks each row; ``scan``: ``LIKE`` on
        each column. All three find the same rows (``scan`` is chosen for ASCII terms only).
        """
        if not self.text:
            return None
        conditions: list[ColumnElement[bool]] = []
        expression = False
        if self.engine.dialect.name == "sqlite" and mode != "scan":
            expression = self._search_expression()
        if expression is False:
            conditions.extend(self._like_conditions())
        elif expression:
            matches = _matching(expression)
            # ``id + 0`` hides the primary key from the planner, which would otherwise look up
            # every match by id and then sort them all
            ids = _org.c.id + 0 if mode == "walk" else _org.c.id
            conditions.append(ids.in_(matches))
        if self._email:
            conditions.append(_org.c.email_index.in_(self._email))
            conditions.append(
                _org.c.id.in_(
                    select(_adm.c.organisation_id).where(_adm.c.email_index.in_(self._email))
                )
            )
        return or_(*conditions) if conditions else false()

    def _like_conditions(self) -> list[ColumnElement[bool]]:
        pattern = f"%{escape_like(self.text)}%"
        columns = [_org.c.name, _org.c.city, _org.c.brin, _org.c.postcode]
        postcode = _POSTCODE_WITHOUT_SPACE.fullmatch(self.text)
        if self.engine.dialect.name == "postgresql":
            # the trigram index finds candidates; the per-column test below decides
            indexed = [_PG_SEARCH_TEXT.ilike(pattern, escape=LIKE_ESCAPE)]
            if postcode:
                spaced = f"%{postcode[1]} {postcode[2]}%"
                indexed.append(_PG_SEARCH_TEXT.ilike(spaced, escape=LIKE_ESCAPE))
            per_column = [_contains(self.engine, column, pattern) for column in columns]
            if postcode:
                per_column.append(_contains(self.engine, _org.c.postcode, spaced))
            return [and_(or_(*indexed), or_(*per_column))]
        # '3511ab' finds '3511 AB': the stored form has the space
        patterns = [(column, pattern) for column in columns]
        if postcode:
            patterns.append((_org.c.postcode, f"%{postcode[1]} {postcode[2]}%"))
        return [_contains(self.engine, column, value) for column, value in patterns]

    def _clock_condition(self, clock: Any) -> ColumnElement[bool] | None:
        rule, today = self.rule, self.today
        conditions: list[ColumnElement[bool]] = []

        def between(start: dt.date, end: dt.date) -> ColumnElement[bool]:
            """Deadlines in [start, end)."""
            if start >= end:
                return false()
            low = rule.latest_clock_due_before(start)
            high = rule.latest_clock_due_before(end)
            return and_(clock > low, clock <= high)

        if self.urgency == "overdue":
            conditions.append(clock <= rule.latest_clock_due_before(today))
        elif self.urgency == "soon":
            conditions.append(between(today, today + dt.timedelta(days=31)))
        elif self.urgency == "near":
            conditions.append(between(today, today + dt.timedelta(days=91)))
        if self.month is not None:
            conditions.append(between(max(self.month, today), _next_month(self.month)))
        return and_(*conditions) if conditions else None

    def _filtered(self, *columns: Any, order: bool = False, mode: str = "index") -> Select:
        """SELECT *columns* FROM the matching organisations (ordered when *order*)."""
        query = select(*columns).select_from(_org)
        clock = None
        if self._needs_clock:
            clocks = clock_starts(self.today).subquery("clocks")
            clock = clocks.c.clock_start
            query = query.join(clocks, clocks.c.organisation_id == _org.c.id)
            condition = self._clock_condition(clock)
            if condition is not None:
                query = query.where(condition)
        text_condition = self._text_condition(mode)
        if text_condition is not None:
            query = query.where(text_condition)
        if self.status is not None:
            query = query.where(
                exists().where(_sub.c.organisation_id == _org.c.id, _sub.c.status == self.status)
            )
        if order:
            query = query.order_by(*self._order(clock))
        return query

    def _order(self, clock: Any) -> list[Any]:
        def direction(expression: Any) -> Any:
            return expression.desc() if self.descending else expression.asc()

        tail = [direction(_org.c.name), direction(_org.c.id)]
        if self.sort == "name":
            return tail
        if self.sort in ("city", "brin", "postcode"):
            # (column, id) is exactly the column's index order: a page deep in the list is
            # read from the index, not sorted afresh.
            return [direction(_org.c[self.sort]), direction(_org.c.id)]
        if self.sort == "status":
            key: Any = case(
                {status: n for n, status in enumerate(STATUS_ORDER)},
                value=latest_status(),
                else_=None,
            )
        else:
            key = clock  # the deadline grows with the clock start
        # Organisations without a value (no subscription; deadline not running) go last
        # in either direction.
        return [case((key.is_(None), 1), else_=0), direction(key), *tail]

    # ------------------------------------------------------------------ answers

    def count(self) -> int:
        query: Select = self._filtered(func.count(_org.c.id))
        if self._only_searched():
            # the index holds exactly one row per organisation: count there, without
            # looking every match up in the table
            query = select(func.count()).select_from(
                _matching(str(self._search_expression()), "1").subquery()
            )
        with self.engine.connect() as conn:
            self._count = int(conn.execute(query).scalar_one())
        return self._count

    def count_at_most(self, limit: int) -> int:
        """How many organisations match, counting no further than *limit*.

        For showing "more than N" while someone types: a single common letter matches most
        schools, and counting them all reads every row (20-30 ms at 100,000); this stops at
        *limit*. :meth:`count` stays exact, for when the list needs its length.

        A page read after a stopped count still needs to know roughly how many match, to
        choose how to read it (:meth:`_page_mode`). The index returns matches in id order,
        so the id of the last one counted says how far into the table *limit* matches
        reached: ``z`` reaching id 3,070 of 100,000 with 1,000 matches means about a third.
        """
        if limit < 0:
            raise ValueError("limit must not be negative")
        if self._only_searched():
            matches = (
                select(literal_column("rowid").label("id"))
                .select_from(sql_text(SEARCH_TABLE))
                .where(_matching(str(self._search_expression())).whereclause)
                .limit(limit)
            )
        else:
            matches = self._filtered(_org.c.id).limit(limit)
        counted = matches.subquery()
        with self.engine.connect() as conn:
            found, last = conn.execute(
                select(func.count(), func.max(counted.c.id)).select_from(counted)
            ).one()
            found = int(found)
            if found < limit:
                self._count = found  # that is the whole count
            elif self._only_searched() and last is not None:
                # two scalar subqueries: SQLite reads one end of the primary key for each, where
                # min() and max() in one SELECT would read the whole table
                first, final = conn.execute(
                    select(
                        select(func.min(_org.c.id)).scalar_subquery(),
                        select(func.max(_org.c.id)).scalar_subquery(),
                    )
                ).one()
                reached = max(1, int(last) - int(first) + 1)
                self._estimate = max(found, found * (int(final) - int(first) + 1) // reached)
        return found

    def _only_searched(self) -> bool:
        """Whether the filter is just a text the SQLite index answers (nothing else to check)."""
        return (
            bool(self.text)
            and self.engine.dialect.name == "sqlite"
            and not self._needs_clock
            and self.status is None
            and not self._email
            and bool(self._search_expression())
        )

    def fetch(self, offset: int, limit: int) -> list[OrganisationListRow]:
        """Rows ``offset`` to ``offset + limit - 1`` in list order."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if limit == 0:
            return []
        mode = self._page_mode(offset, limit)
        query = (
            self._filtered(
                _org.c.id,
                _org.c.name,
                _org.c.city,
                _org.c.brin,
                _org.c.postcode,
                order=True,
                mode=mode,
            )
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            page = conn.execute(query).all()
            details = self._details(conn, [row.id for row in page])
            held = _held(conn, [row.id for row in page])
        rows = []
        for row in page:
            status, clock = details.get(row.id, (None, None))
            deadline = self.rule.deadline(clock)
            rows.append(
                OrganisationListRow(
                    id=row.id,
                    name=row.name,
                    city=row.city,
                    brin=row.brin,
                    postcode=row.postcode,
                    status=status,
                    deadline=deadline,
                    urgency=urgency(deadline, self.today),
                    on_hold=row.id in held,
                )
            )
        return rows

    def _page_mode(self, offset: int, limit: int) -> str:
        """How :meth:`_text_condition` should read a page (see there), from the last count."""
        count = self._count if self._count is not None else self._estimate
        if (
            not self.text
            or self.engine.dialect.name != "sqlite"
            or count is None
            or count == 0
            or self.sort not in INDEXED_SORTS
            or not self._search_expression()
        ):
            return "index"
        if self.text.isascii():
            with self.engine.connect() as conn:
                organisations = self._all_organisations(conn)
            if (offset + limit) * organisations <= SCAN_PAGE_WITHIN_ROWS * count:
                return "scan"
        return "walk" if count > WALK_SORT_INDEX_FROM else "index"

    def _details(
        self, conn: Any, ids: Sequence[int]
    ) -> dict[int, tuple[str | None, dt.date | None]]:
        """Status and clock start of just these organisations."""
        if not ids:
            return {}
        query = (
            clock_starts(self.today)
            .add_columns(latest_status().label("status"))
            .where(Organisation.id.in_(ids))  # type: ignore[union-attr]
        )
        return {
            row.organisation_id: (row.status, as_date(row.clock_start))
            for row in conn.execute(query)
        }


def _held(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Which of these organisations are on legal hold (one indexed look-up per page)."""
    if not ids:
        return set()
    query = select(LegalHold.organisation_id).where(
        LegalHold.organisation_id.in_(ids)  # type: ignore[attr-defined]
    )
    return set(conn.execute(query).scalars())
