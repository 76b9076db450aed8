"""The list services: filters, orders and pages computed in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, AuditEvent, Organisation, Subscription
from plusjeklas_tui.services import dashboard
from plusjeklas_tui.services.audit_list import (
    AuditFilter,
    AuditFilterError,
    AuditList,
    organisation_of_event,
    parse_audit_filter,
)
from plusjeklas_tui.services.deadlines import RetentionRule
from plusjeklas_tui.services.organisation_list import (
    SORT_COLUMNS,
    OrganisationList,
    OrganisationListRow,
)
from plusjeklas_tui.services.people_list import PeopleList
from plusjeklas_tui.validation import FieldError

TODAY = dt.date(2026, 11, 27)
RULE = RetentionRule(months=24)
CREATED = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)


@dataclass(frozen=True)
class School:
    name: str
    city: str
    brin: str
    postcode: str
    subscriptions: tuple[tuple[str, str | None, str], ...]  # (start, end, status)
    email: str | None = None


SCHOOLS = {
    # deadline 2026-06-30: overdue
    "regenboog": School(
        "Regenboog", "Utrecht", "01AA", "3511 AB", (("2020-01-01", "2024-06-30", "ended"),),
        email="info@regenboog.nl",
    ),
    # deadline 2026-12-10: within 30 days
    "kompas": School(
        "Kompas", "Amsterdam", "02BB", "1012 CD", (("2021-01-01", "2024-12-10", "ended"),)
    ),
    # deadline 2027-02-01: within 90 days; '%' and '_' in the name
    "natuur": School(
        "Natuurschool 100%_X", "Den Haag", "03CC", "2511 EF",
        (("2021-01-01", "2025-02-01", "ended"),),
    ),
    # running: no deadline
    "vlinder": School("Vlinder", "Zwolle", "04DD", "8011 GH", (("2022-01-01", None, "active"),)),
    "jozef": School(
        "Jozef", "Utrecht", "05EE", "3512 JK", (("2026-10-01", "2027-01-01", "trial"),)
    ),
    # latest subscription ended 2025-06-15: deadline 2027-06-15, later
    "montessori": School(
        "Montessori", "Rotterdam", "06FF", "3011 LM",
        (("2019-01-01", "2023-01-01", "ended"), ("2024-01-01", "2025-06-15", "ended")),
    ),
    # never subscribed: counts from creation (2024-03-01), overdue
    "prospect": School("Prospect", "Groningen", "07GG", "9711 NP", ()),
    # deadline 2026-12-20: within 30 days
    "linde": School(
        "Lindeboom", "Leiden", "08HH", "2311 AB", (("2022-01-01", "2024-12-20", "cancelled"),)
    ),
}  # fmt: skip

ADMIN_EMAIL = "J.Jansen@Vlinder.example"


def _add_school(session: Session, school: School) -> int:
    org = Organisation(
        name=school.name,
        street="Kerkstraat 1",
        postcode=school.postcode,
        city=school.city,
        brin=school.brin,
        phone="+31201234567",
        email=school.email,
        created_at=CREATED,
    )
    session.add(org)
    session.flush()
    for start, end, status in school.subscriptions:
        session.add(
            Subscription(
                organisation_id=org.id,
                plan="basis",
                start_date=dt.date.fromisoformat(start),
                end_date=dt.date.fromisoformat(end) if end else None,
                status=status,
            )
        )
    session.flush()
    assert org.id is not None
    return org.id


@pytest.fixture
def ids(ctx: AppContext) -> dict[str, int]:
    with session_scope(ctx.engine) as s:
        result = {key: _add_school(s, school) for key, school in SCHOOLS.items()}
        s.add(
            Administrator(
                organisation_id=result["vlinder"],
                name="Jan Jansen",
                email=ADMIN_EMAIL.lower(),
                phones=json.dumps(["+31612345678"]),
            )
        )
    return result


def orgs(ctx: AppContext, **options: object) -> OrganisationList:
    return OrganisationList(ctx.engine, RULE, TODAY, **options)  # type: ignore[arg-type]


def names(query: OrganisationList) -> set[str]:
    return {row.name for row in query.fetch(0, 100)}


def all_rows(query: OrganisationList) -> list[OrganisationListRow]:
    rows = query.fetch(0, 1000)
    assert len(rows) == query.count()
    return rows


# --------------------------------------------------------------------------- text filter


@pytest.mark.parametrize(
    "text,expected",
    [
        ("REGEN", {"Regenboog"}),  # name, any case
        ("utrecht", {"Regenboog", "Jozef"}),  # city
        ("den h", {"Natuurschool 100%_X"}),
        ("03c", {"Natuurschool 100%_X"}),  # BRIN
        ("3511", {"Regenboog"}),  # postcode
        ("3511 ab", {"Regenboog"}),
        ("3511ab", {"Regenboog"}),  # postcode typed without its space
        ("%", {"Natuurschool 100%_X"}),  # a literal percent sign, not a wildcard
        ("_", {"Natuurschool 100%_X"}),  # a literal underscore
        ("0%_", {"Natuurschool 100%_X"}),
        ("nowhere", set()),
        ("", set(SCHOOLS[k].name for k in SCHOOLS)),
    ],
)
def test_substring_filter(ctx: AppContext, ids: dict[str, int], text: str, expected: set) -> None:
    query = orgs(ctx, text=text)
    assert names(query) == expected
    assert query.count() == len(expected)


def test_email_finds_the_organisation_contact_through_the_blind_index(
    ctx: AppContext, ids: dict[str, int]
) -> None:
    query = orgs(ctx, text="  INFO@Regenboog.NL ")
    assert [row.id for row in query.fetch(0, 10)] == [ids["regenboog"]]
    assert query.count() == 1
    # A fragment of an address is not an e-mail: no substring search on encrypted data.
    assert names(orgs(ctx, text="info@regenboog")) == set()


def test_email_finds_the_organisation_of_an_administrator(
    ctx: AppContext, ids: dict[str, int]
) -> None:
    query = orgs(ctx, text=ADMIN_EMAIL.upper())
    assert [row.id for row in query.fetch(0, 10)] == [ids["vlinder"]]
    assert orgs(ctx, text="someone.else@vlinder.example").count() == 0


# --------------------------------------------------------------------------- columns, status


def test_rows_carry_status_deadline_and_urgency(ctx: AppContext, ids: dict[str, int]) -> None:
    rows = {row.id: row for row in all_rows(orgs(ctx))}
    assert (rows[ids["regenboog"]].deadline, rows[ids["regenboog"]].urgency) == (
        dt.date(2026, 6, 30),
        "overdue",
    )
    assert rows[ids["kompas"]].urgency == "soon"
    assert rows[ids["natuur"]].urgency == "near"
    assert rows[ids["montessori"]].deadline == dt.date(2027, 6, 15)
    assert rows[ids["montessori"]].status == "ended"  # the latest subscription's
    assert rows[ids["vlinder"]].deadline is None
    assert rows[ids["vlinder"]].urgency == "none"
    assert rows[ids["vlinder"]].status == "active"
    assert rows[ids["jozef"]].status == "trial"
    assert rows[ids["prospect"]].status is None
    assert rows[ids["prospect"]].deadline == dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    "status,expected",
    [
        ("ended", {"regenboog", "kompas", "natuur", "montessori"}),
        ("active", {"vlinder"}),
        ("trial", {"jozef"}),
        ("cancelled", {"linde"}),
    ],
)
def test_status_filter(ctx: AppContext, ids: dict[str, int], status: str, expected: set) -> None:
    query = orgs(ctx, status=status)
    assert {row.id for row in query.fetch(0, 100)} == {ids[k] for k in expected}
    assert query.count() == len(expected)


def test_filters_combine(ctx: AppContext, ids: dict[str, int]) -> None:
    query = orgs(ctx, text="utrecht", status="ended", urgency="overdue")
    assert [row.id for row in query.fetch(0, 10)] == [ids["regenboog"]]


def test_bad_filter_values_are_refused(ctx: AppContext) -> None:
    with pytest.raises(ValueError, match="urgency"):
        orgs(ctx, urgency="later")
    with pytest.raises(ValueError, match="YYYY-MM"):
        orgs(ctx, due_month="2026-13")
    with pytest.raises(ValueError, match="status"):
        orgs(ctx, status="paused")
    with pytest.raises(ValueError, match="sort"):
        orgs(ctx, sort="iban")


# --------------------------------------------------------------------------- retention bands


def test_urgency_counts_equal_the_dashboard(ctx: AppContext, ids: dict[str, int]) -> None:
    stats = dashboard.collect(ctx.engine, RULE, TODAY)
    assert (stats.overdue, stats.due_within_30, stats.due_within_90) == (2, 2, 3)
    assert orgs(ctx, urgency="overdue").count() == stats.overdue
    assert orgs(ctx, urgency="soon").count() == stats.due_within_30
    assert orgs(ctx, urgency="near").count() == stats.due_within_90
    assert names(orgs(ctx, urgency="overdue")) == {"Regenboog", "Prospect"}
    assert names(orgs(ctx, urgency="soon")) == {"Kompas", "Lindeboom"}
    assert names(orgs(ctx, urgency="near")) == {"Kompas", "Lindeboom", "Natuurschool 100%_X"}


def test_due_month_counts_equal_the_dashboard_chart(ctx: AppContext, ids: dict[str, int]) -> None:
    stats = dashboard.collect(ctx.engine, RULE, TODAY)
    assert sum(m.count for m in stats.due_per_month) == 4
    for month in stats.due_per_month:
        key = month.month.strftime("%Y-%m")
        assert orgs(ctx, due_month=key).count() == month.count, key
    assert names(orgs(ctx, due_month="2026-12")) == {"Kompas", "Lindeboom"}
    assert names(orgs(ctx, due_month="2027-06")) == {"Montessori"}
    # The current month counts from today on, as the chart does: the overdue are elsewhere.
    assert orgs(ctx, due_month="2026-06").count() == 0


def test_band_edges_follow_calendar_months(ctx: AppContext) -> None:
    """A deadline exactly 30 days ahead is 'soon'; yesterday's is overdue; today's is not."""
    edges = {
        "today": TODAY,  # deadline today: due, not yet overdue
        "yesterday": TODAY - dt.timedelta(days=1),
        "day30": TODAY + dt.timedelta(days=30),
        "day31": TODAY + dt.timedelta(days=31),
    }
    with session_scope(ctx.engine) as s:
        made = {}
        for n, (key, deadline) in enumerate(edges.items()):
            end = deadline.replace(year=deadline.year - 2)
            school = School(
                key, "X", f"1{n}AA", "1000 AA", (("2020-01-01", end.isoformat(), "ended"),)
            )
            made[key] = _add_school(s, school)
    stats = dashboard.collect(ctx.engine, RULE, TODAY)
    assert orgs(ctx, urgency="overdue").count() == stats.overdue == 1
    assert orgs(ctx, urgency="soon").count() == stats.due_within_30 == 2
    assert {r.name for r in orgs(ctx, urgency="soon").fetch(0, 10)} == {"today", "day30"}
    rows = {r.name: r.urgency for r in all_rows(orgs(ctx))}
    assert rows == {"today": "soon", "yesterday": "overdue", "day30": "soon", "day31": "near"}


# --------------------------------------------------------------------------- sorting and paging


def _expected_order(rows: list[OrganisationListRow], column: str, descending: bool) -> list[int]:
    status_rank = {"trial": 0, "active": 1, "cancelled": 2, "ended": 3}

    def value(row: OrganisationListRow) -> object:
        if column == "status":
            return None if row.status is None else status_rank[row.status]
        if column == "deadline":
            return row.deadline
        return getattr(row, column)

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]

    def key(r: OrganisationListRow) -> tuple:
        if column in ("city", "brin", "postcode"):
            return (value(r), r.id)  # the column's index order
        return (value(r), r.name, r.id) if column != "name" else (r.name, r.id)

    ordered = sorted(present, key=key, reverse=descending)
    ordered += sorted(missing, key=lambda r: (r.name, r.id), reverse=descending)
    return [r.id for r in ordered]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", SORT_COLUMNS)
def test_sort_by_each_column(
    ctx: AppContext, ids: dict[str, int], column: str, descending: bool
) -> None:
    rows = all_rows(orgs(ctx))
    query = orgs(ctx, sort=column, descending=descending)
    got = [row.id for row in query.fetch(0, 100)]
    assert got == _expected_order(rows, column, descending)
    # paging: pages of 3 put together are the whole list, with no row twice and none missing
    paged = [row.id for offset in range(0, 12, 3) for row in query.fetch(offset, 3)]
    assert paged == got
    assert len(set(paged)) == len(SCHOOLS)


def test_paging_a_filtered_list(ctx: AppContext, ids: dict[str, int]) -> None:
    query = orgs(ctx, text="e", sort="city")
    whole = [row.id for row in query.fetch(0, 100)]
    assert len(whole) == query.count() > 3
    assert [r.id for o in range(0, len(whole), 2) for r in query.fetch(o, 2)] == whole
    assert query.fetch(len(whole), 10) == []
    assert query.fetch(0, 0) == []
    with pytest.raises(ValueError):
        query.fetch(-1, 10)


def test_a_new_organisation_is_seen_by_the_next_count(ctx: AppContext, ids: dict[str, int]) -> None:
    query = orgs(ctx)
    assert query.count() == len(SCHOOLS)
    with session_scope(ctx.engine) as s:
        _add_school(s, School("Aardvark", "Assen", "09JJ", "9401 AA", ()))
    assert query.count() == len(SCHOOLS) + 1
    assert query.fetch(0, 1)[0].name == "Aardvark"


# --------------------------------------------------------------------------- people


def _add_people(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
    people = [
        ("Anna de Vries", "anna@kompas.example", "kompas", None),
        ("Bert Bakker", "bert@linde.example", "linde", dt.date(2025, 8, 1)),
        ("Cor Claassen", "cor@regenboog.example", "regenboog", dt.date(2024, 1, 31)),
        ("Dirk Dekker", "dirk@kompas.example", "kompas", None),
    ]
    made = {}
    with session_scope(ctx.engine) as s:
        for name, email, school, left in people:
            admin = Administrator(
                organisation_id=ids[school],
                name=name,
                email=email,
                phones=json.dumps(["+31201234567", "+32 2 123 45 67"]),
                left_on=left,
            )
            s.add(admin)
            s.flush()
            made[email] = admin.id
    return made


def test_people_list_pages_by_id_and_decrypts(ctx: AppContext, ids: dict[str, int]) -> None:
    made = _add_people(ctx, ids)
    query = PeopleList(ctx.engine)
    assert query.count() == 5  # four here and the one of the fixture
    rows = query.fetch(0, 100)
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    anna = next(r for r in rows if r.id == made["anna@kompas.example"])
    assert (anna.name, anna.email, anna.organisation_name) == (
        "Anna de Vries",
        "anna@kompas.example",
        "Kompas",
    )
    assert anna.organisation_id == ids["kompas"]
    assert anna.phones == ("+31201234567", "+32 2 123 45 67")
    assert [r.id for o in range(0, 5, 2) for r in query.fetch(o, 2)] == [r.id for r in rows]


def test_people_list_decrypts_only_the_page(
    ctx: AppContext, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_people(ctx, ids)
    decrypted: list[str] = []
    real = ctx.keyring.decrypt

    def counting(token: str, context: str) -> str:
        decrypted.append(context)
        return real(token, context)

    monkeypatch.setattr(ctx.keyring, "decrypt", counting)
    assert len(PeopleList(ctx.engine).fetch(1, 2)) == 2
    assert sorted(decrypted) == sorted(
        ["administrator.name", "administrator.email", "administrator.phones"] * 2
    )


def test_people_found_by_exact_email_only(ctx: AppContext, ids: dict[str, int]) -> None:
    made = _add_people(ctx, ids)
    query = PeopleList(ctx.engine, email=" Bert@LINDE.example ")
    assert [r.id for r in query.fetch(0, 10)] == [made["bert@linde.example"]]
    assert query.count() == 1
    assert PeopleList(ctx.engine, email="nobody@linde.example").count() == 0
    assert PeopleList(ctx.engine, email="").count() == 5
    for partial in ("bert", "bert@linde", "Bakker"):
        with pytest.raises(FieldError) as caught:
            PeopleList(ctx.engine, email=partial)
        assert partial not in str(caught.value)  # an e-mail field never echoes its value


@pytest.mark.parametrize("descending", [False, True])
def test_people_sort(ctx: AppContext, ids: dict[str, int], descending: bool) -> None:
    _add_people(ctx, ids)
    rows = PeopleList(ctx.engine, sort="organisation", descending=descending).fetch(0, 10)
    expected = sorted(rows, key=lambda r: (r.organisation_name, r.id), reverse=descending)
    assert [r.id for r in rows] == [r.id for r in expected]
    rows = PeopleList(ctx.engine, sort="left_on", descending=descending).fetch(0, 10)
    left = [r.left_on for r in rows]
    dated = sorted((d for d in left if d), reverse=descending)
    assert left == [*dated, None, None, None]
    assert [r.id for r in PeopleList(ctx.engine, descending=True).fetch(0, 10)] == sorted(
        (r.id for r in rows), reverse=True
    )


# --------------------------------------------------------------------------- audit


def _event(s: Session, when: str, actor: str, action: str, entity: str, entity_id: int | None):
    s.add(
        AuditEvent(
            occurred_at=dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=json.dumps({"fields": ["name"]}),
        )
    )


@pytest.fixture
def events(ctx: AppContext, ids: dict[str, int]) -> dict[str, int]:
    with session_scope(ctx.engine) as s:
        admin = s.query(Administrator).one()
        # 22:30 UTC on 31 Oct is 23:30 in Amsterdam (CET): still October there
        _event(s, "2026-10-31T22:30:00", "vera", "export", "organisation", ids["kompas"])
        # 23:30 UTC on 31 Oct is 00:30 on 1 Nov in Amsterdam
        _event(s, "2026-10-31T23:30:00", "eddie", "update", "organisation", ids["regenboog"])
        _event(s, "2026-11-15T10:00:00", "Vera", "keys.rotate", "keyring", None)
        _event(s, "2026-11-30T22:59:00", "eddie", "consent", "administrator", admin.id)
        _event(s, "2026-11-30T23:00:00", "eddie", "create", "subscription", 424242)
    return ids


def audit(ctx: AppContext, text: str = "", **options: object) -> list[tuple[str, str]]:
    query = AuditList(ctx.engine, parse_audit_filter(text), **options)  # type: ignore[arg-type]
    rows = query.fetch(0, 100)
    assert query.count() == len(rows)
    return [(r.actor, r.action) for r in rows]


def test_audit_newest_first(ctx: AppContext, events: dict[str, int]) -> None:
    assert audit(ctx) == [
        ("eddie", "create"),
        ("eddie", "consent"),
        ("Vera", "keys.rotate"),
        ("eddie", "update"),
        ("vera", "export"),
    ]
    assert audit(ctx, sort="occurred_at", descending=False)[0] == ("vera", "export")
    assert audit(ctx, sort="actor", descending=False)[0] == ("Vera", "keys.rotate")


def test_audit_filters(ctx: AppContext, events: dict[str, int]) -> None:
    assert audit(ctx, "actor:vera") == [("Vera", "keys.rotate"), ("vera", "export")]
    assert audit(ctx, "action:keys") == [("Vera", "keys.rotate")]  # a family of actions
    assert audit(ctx, "action:key") == []  # not a prefix search
    assert audit(ctx, "actor:eddie entity:organisation") == [("eddie", "update")]
    assert audit(ctx, "since:2026-11-01 until:2026-11-01") == [("eddie", "update")]
    assert audit(ctx, "until:2026-10-31") == [("vera", "export")]
    # 30 Nov ends at 23:00 UTC in Amsterdam: the 23:00 event belongs to 1 December
    assert audit(ctx, "since:2026-12-01") == [("eddie", "create")]
    assert audit(ctx, "until:2026-11-30")[0] == ("eddie", "consent")
    assert audit(ctx, "rotate") == [("Vera", "keys.rotate")]  # a free word


def test_audit_filter_syntax_errors() -> None:
    for text, problem, key in [
        ("who:vera", "unknown_key", "who"),
        ("actor:", "empty_value", "actor"),
        ("since:1-11-2026", "bad_date", "since"),
        ("since:2026-02-30", "bad_date", "since"),
        ("since:2026-11-02 until:2026-11-01", "bad_range", "until"),
        ('actor:"vera', "bad_quotes", ""),
    ]:
        with pytest.raises(AuditFilterError) as caught:
            parse_audit_filter(text)
        assert (caught.value.problem, caught.value.key) == (problem, key), text
    assert parse_audit_filter('ACTOR:vera "free word"') == AuditFilter(
        actor="vera", words=("free word",)
    )


def test_organisation_of_event(ctx: AppContext, events: dict[str, int]) -> None:
    rows = AuditList(ctx.engine).fetch(0, 10)
    found: Callable[[int], int | None] = lambda n: organisation_of_event(  # noqa: E731
        ctx.engine, rows[n].entity, rows[n].entity_id
    )
    assert found(0) is None  # a subscription that no longer exists
    assert found(1) == events["vlinder"]  # the administrator's school
    assert found(2) is None  # the keyring is no school
    assert found(3) == events["regenboog"]
