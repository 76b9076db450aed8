"""The organisations' search index (migration 0002): same rows as a substring scan, kept in step.

The reference is plain Python: an organisation matches when the lower-cased text is a
substring of its lower-cased name, city, BRIN or postcode (or the postcode typed without its
space). Every way the list can answer (SQLite: trigram phrase, trigram vocabulary for short
terms, ``LIKE`` scan, and three ways to read a page; PostgreSQL: ``ILIKE`` over trigram
indexes) must give exactly those rows, in list order, on both engines.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from alembic import command
from sqlalchemy import create_engine, delete, inspect, text, update
from sqlalchemy.engine import Engine, make_url

from plusjeklas_tui import db
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, Organisation
from plusjeklas_tui.services import demo
from plusjeklas_tui.services import organisation_list as module
from plusjeklas_tui.services.deadlines import RetentionRule
from plusjeklas_tui.services.organisation_list import OrganisationList

TODAY = dt.date(2026, 11, 27)
RULE = RetentionRule(months=24)

# (name, city, BRIN, postcode): case, accents, wildcards, quotes, a two-letter city
SCHOOLS = [
    ("OBS De Regenboog", "Utrecht", "01AA", "3511 AB"),
    ("obs de regenboog zuid", "Zuidhorn", "02AB", "9801 CD"),
    ("Het Mozaïek", "Ee", "03AC", "9131 EF"),
    ("HET MOZAÏEK NOORD", "Eext", "04AD", "9463 GH"),
    ("École Élan", "Dïever", "05AE", "7981 JK"),
    ("CBS 100% Kids", "Den Haag", "06AF", "2511 LM"),
    ('Basisschool "Het_Anker"', "'s-Hertogenbosch", "07AG", "5211 NP"),
    ("Kompas", "Kampen", "08AH", "8261 RS"),
    ("De Wegwijzer", "Wijk bij Duurstede", "09AJ12", "3961 TV"),
    ("Xaverius", "Oss", "10AK", "5341 WX"),
    ("Sint-Jozef", "Weert", "11AL", "6001 ZZ"),
    ("Pius X", "Zwolle", "12XY", "8011 AA"),
    ("Zonnewijzer", "Ede", "13AN", "6711 BB"),
    ("De Zuiderzee", "Urk", "14AP", "8321 CC"),
    ("Noël", "Ëlst", "15AQ", "6661 DD"),
]

TERMS = [
    # one character: common, rare, accented, digit, wildcard
    "e", "E", "x", "q", "ë", "Ë", "é", "1", "%", "_", '"', "'",
    # two characters
    "de", "DE", "ee", "xy", "ïe", "aï", "zz", "1%", "a ",
    # three and more
    "reg", "REGENBOOG", "de w", "mozaïek", "MOZAÏEK", "ecole", "école", "École", "100%",
    "het_", '"het', "'s-h", "kompas", "9801", "3511 ab", "3511ab", "3511AB", "09aj12", "12xy",
    "bij duur", "nowhere", "zuid",
]  # fmt: skip

POSTCODE_WITHOUT_SPACE = re.compile(r"([0-9]{4})([A-Za-z]{1,2})")


def expected_ids(ctx: AppContext, term: str) -> list[int]:
    """The matching organisations in list order (name, then id), by the reference semantics."""
    folded = term.strip().lower()
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, name, city, brin, postcode FROM organisation ORDER BY name, id")
        ).all()
    if not folded:
        return [row.id for row in rows]
    spaced = POSTCODE_WITHOUT_SPACE.fullmatch(folded)
    found = []
    for row in rows:
        values = [row.name, row.city, row.brin, row.postcode]
        if any(folded in value.lower() for value in values) or (
            spaced and f"{spaced[1]} {spaced[2]}" in row.postcode.lower()
        ):
            found.append(row.id)
    return found


def listed_ids(ctx: AppContext, term: str, page: int = 1000) -> list[int]:
    query = OrganisationList(ctx.engine, RULE, TODAY, text=term)
    count = query.count()
    ids = [row.id for offset in range(0, count, page) for row in query.fetch(offset, page)]
    assert len(ids) == count
    return ids


def add_schools(ctx: AppContext, schools: list[tuple[str, str, str, str]]) -> dict[str, int]:
    with session_scope(ctx.engine) as session:
        organisations = [
            Organisation(
                name=name,
                street="Kerkstraat 1",
                postcode=postcode,
                city=city,
                brin=brin,
                phone="+31201234567",
            )
            for name, city, brin, postcode in schools
        ]
        session.add_all(organisations)
        session.flush()
        return {org.name: org.id for org in organisations if org.id is not None}


@pytest.fixture
def schools(ctx: AppContext) -> dict[str, int]:
    return add_schools(ctx, SCHOOLS)


# --------------------------------------------------------------------------- same rows


@pytest.mark.parametrize("term", TERMS)
def test_search_finds_what_a_substring_scan_finds(
    ctx: AppContext, schools: dict[str, int], term: str
) -> None:
    expected = expected_ids(ctx, term)
    assert listed_ids(ctx, term) == expected
    assert listed_ids(ctx, term, page=3) == expected  # paged, in the same order


def test_accents_and_case_of_every_letter(ctx: AppContext, schools: dict[str, int]) -> None:
    """Both engines ignore the case of accented letters too (SQLite's LIKE alone did not)."""
    mozaiek = {schools["Het Mozaïek"], schools["HET MOZAÏEK NOORD"]}
    assert set(listed_ids(ctx, "mozaïek")) == mozaiek
    assert set(listed_ids(ctx, "MOZAÏEK")) == mozaiek
    assert set(listed_ids(ctx, "élan")) == {schools["École Élan"]}
    assert schools["École Élan"] not in listed_ids(ctx, "ecole")  # accents are not dropped


def test_a_two_letter_city_and_the_end_of_values(ctx: AppContext, schools: dict[str, int]) -> None:
    """Short values and the last characters of a value are indexed too (the padding)."""
    assert schools["Het Mozaïek"] in listed_ids(ctx, "ee")  # the city "Ee"
    assert schools["Pius X"] in listed_ids(ctx, "x")  # last character of the name
    assert set(listed_ids(ctx, "zz")) == {schools["Sint-Jozef"]}  # postcode "6001 ZZ"
    assert set(listed_ids(ctx, "ZZ")) == {schools["Sint-Jozef"]}


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "settings",
    [
        {"COMMON_SHARE": 0.0},  # every single character: LIKE scan
        {"COMMON_SHARE": 2.0, "SCAN_COST_PER_ROW": 1e9},  # every short term: vocabulary
        {"COMMON_SHARE": 2.0, "SCAN_COST_PER_ROW": 0.0},  # short terms: LIKE scan
        {"SCAN_PAGE_WITHIN_ROWS": 10**9},  # pages: walk with LIKE
        {"SCAN_PAGE_WITHIN_ROWS": 0, "WALK_SORT_INDEX_FROM": 0},  # pages: walk the index
        {"SCAN_PAGE_WITHIN_ROWS": 0, "WALK_SORT_INDEX_FROM": 10**9},  # pages: sort matches
    ],
    ids=["common-scan", "vocabulary", "short-scan", "page-like", "page-walk", "page-sort"],
)
def test_every_sqlite_strategy_gives_the_same_rows(
    ctx: AppContext,
    schools: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, float],
) -> None:
    for name, value in settings.items():
        monkeypatch.setattr(module, name, value)
    for term in TERMS:
        assert listed_ids(ctx, term, page=4) == expected_ids(ctx, term), term


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_the_strategies_are_really_taken(
    ctx: AppContext, schools: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list above is not vacuous: each kind of term takes the path its settings say."""

    def decided(term: str) -> str | bool:
        return OrganisationList(ctx.engine, RULE, TODAY, text=term)._search_expression()

    assert decided("regenboog") == '"regenboog"'
    assert decided("3511ab") == '"3511ab" OR postcode : "3511 ab"'
    assert decided("e") is False  # in most names: scanned
    assert decided("xy") is False  # 15 rows: a scan is cheaper than any index query
    assert decided("a\x1f") is False  # would match the padding
    monkeypatch.setattr(module, "SCAN_COST_PER_ROW", 1e9)  # as if there were very many rows
    assert decided("xy") == '"xy\x1f"'  # BRIN "12XY" ends with it
    assert decided("Ë") == '"ël\x1f" OR "ëls"'  # "Noël", "Ëlst": trigrams are case-folded
    assert decided("qq") == ""  # nowhere: no trigram starts with it


def test_sorted_and_descending_orders_agree(ctx: AppContext, schools: dict[str, int]) -> None:
    for sort in ("name", "city", "brin", "postcode"):
        for descending in (False, True):
            query = OrganisationList(
                ctx.engine, RULE, TODAY, text="e", sort=sort, descending=descending
            )
            rows = query.fetch(0, 100)
            assert len(rows) == query.count()
            assert {row.id for row in rows} == set(expected_ids(ctx, "e"))

            def key(row: module.OrganisationListRow, sort: str = sort) -> tuple[str, int]:
                return (getattr(row, sort), row.id)

            # ids break ties; the byte order of the column is the database's own
            ordered = sorted(rows, key=key, reverse=descending)
            if sort in ("brin", "postcode"):  # plain ASCII: the same order everywhere
                assert [r.id for r in rows] == [r.id for r in ordered]


def test_count_at_most_stops_at_the_limit(ctx: AppContext, schools: dict[str, int]) -> None:
    for term in ("e", "de", "regenboog", "nowhere", ""):
        full = len(expected_ids(ctx, term))
        query = OrganisationList(ctx.engine, RULE, TODAY, text=term)
        assert query.count_at_most(3) == min(full, 3)
        assert query.count_at_most(1000) == full
        assert query.count() == full
    with pytest.raises(ValueError, match="limit must not be negative"):
        OrganisationList(ctx.engine, RULE, TODAY).count_at_most(-1)


@pytest.mark.parametrize("term", ["e", "de", "ee", "reg", "x", "mozaïek"])
def test_pages_after_a_stopped_count_are_the_same_rows(
    ctx: AppContext, schools: dict[str, int], term: str
) -> None:
    """A page read after :meth:`count_at_most` stopped early is read another way (the
    estimate chooses), but holds exactly the rows a page after a full count holds."""
    expected = expected_ids(ctx, term)
    for limit in (1, 2, 3):
        query = OrganisationList(ctx.engine, RULE, TODAY, text=term)
        assert query.count_at_most(limit) == min(len(expected), limit)
        for size in (1, 2, 5):
            assert [row.id for row in query.fetch(0, size)] == expected[:size]
            assert [row.id for row in query.fetch(size, size)] == expected[size : 2 * size]


def test_exact_email_still_finds_through_the_blind_index(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org = Organisation(
            name="Vlinder", street="Kerkstraat 1", postcode="8011 GH", city="Zwolle",
            brin="04DD", phone="+31201234567", email="info@vlinder.example",
        )  # fmt: skip
        other = Organisation(
            name="Kever", street="Kerkstraat 2", postcode="8011 GJ", city="Zwolle",
            brin="04DE", phone="+31201234567",
        )  # fmt: skip
        session.add_all([org, other])
        session.flush()
        session.add(
            Administrator(
                organisation_id=other.id, name="Jan", email="jan@kever.example", phones="[]"
            )
        )
    by_contact = OrganisationList(ctx.engine, RULE, TODAY, text="INFO@Vlinder.example")
    assert [row.name for row in by_contact.fetch(0, 10)] == ["Vlinder"]
    query = OrganisationList(ctx.engine, RULE, TODAY, text="jan@kever.example")
    assert [row.name for row in query.fetch(0, 10)] == ["Kever"]
    assert query.count() == 1


# --------------------------------------------------------------------------- kept in step


def test_inserts_updates_and_deletes_keep_the_index_in_step(
    ctx: AppContext, schools: dict[str, int]
) -> None:
    terms = ["regenboog", "zuid", "ee", "x", "3511ab", "noord", "vlieland", "e"]

    def check() -> None:
        for term in terms:
            assert listed_ids(ctx, term) == expected_ids(ctx, term), term

    new = add_schools(ctx, [("Vlieland School", "Oost-Vlieland", "20AA", "8899 AA")])
    check()
    assert listed_ids(ctx, "vlieland") == [new["Vlieland School"]]

    with session_scope(ctx.engine) as session:  # through the ORM: only changed columns
        org = session.get(Organisation, schools["OBS De Regenboog"])
        assert org is not None
        org.name = "OBS De Noordster"
        org.postcode = "3512 XX"
    check()
    assert schools["OBS De Regenboog"] not in listed_ids(ctx, "regenboog")
    assert schools["OBS De Regenboog"] in listed_ids(ctx, "noordster")

    with ctx.engine.begin() as conn:  # plain SQL, several rows at once
        conn.execute(update(Organisation).where(Organisation.city == "Ee").values(city="Eenrum"))
        conn.execute(
            update(Organisation).where(Organisation.brin == "12XY").values(version=5)
        )  # a column the index does not hold
    check()

    with session_scope(ctx.engine) as session:
        org = session.get(Organisation, schools["Pius X"])
        session.delete(org)
    with ctx.engine.begin() as conn:
        conn.execute(delete(Organisation).where(Organisation.name.like("%Zuid%")))
    check()
    assert schools["Pius X"] not in listed_ids(ctx, "x")


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_deleting_everything_empties_the_index(ctx: AppContext, schools: dict[str, int]) -> None:
    """A contentless index forgets a row only when told exactly what it indexed: after the
    triggers have deleted every organisation, no trigram may be left over."""
    with session_scope(ctx.engine) as session:
        org = session.get(Organisation, schools["Kompas"])
        assert org is not None
        org.city = "IJsselmuiden"
    assert vocabulary_size(ctx.engine) > 0
    with ctx.engine.begin() as conn:
        conn.execute(delete(Organisation))
    assert vocabulary_size(ctx.engine) == 0


def vocabulary_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM organisation_search_vocab")).scalar_one()


# --------------------------------------------------------------------------- the demo


def test_a_bulk_demo_load_is_indexed_like_row_by_row(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=150, actor=ctx.staff, today=TODAY)
    for term in ("e", "de", "school", "a", "1", "zz", "kompas"):
        assert listed_ids(ctx, term) == expected_ids(ctx, term), term
    # the triggers are back: a school added after the demo is found
    added = add_schools(ctx, [("Na De Demo", "Nergenshuizen", "99ZZ", "1234 ZZ")])
    assert listed_ids(ctx, "nergensh") == [added["Na De Demo"]]
    if ctx.engine.dialect.name == "sqlite":
        # the bulk rebuild wrote what the delete trigger removes, padding and all
        with ctx.engine.begin() as conn:
            conn.execute(delete(Organisation))
        assert vocabulary_size(ctx.engine) == 0


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_failed_demo_load_keeps_the_triggers(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plusjeklas_tui.services.demo import writer

    real_write = writer._write_rows
    calls = []

    def failing(conn: object, rows: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real_write(conn, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        demo.generate(
            ctx.engine, ctx.keyring, schools=40, actor=ctx.staff, today=TODAY, batch_schools=10
        )
    assert trigger_names(ctx.engine) == {
        "organisation_search_insert", "organisation_search_update", "organisation_search_delete",
    }  # fmt: skip
    added = add_schools(ctx, [("Na De Fout", "Ergens", "98ZZ", "1234 ZY")])
    assert listed_ids(ctx, "na de fout") == [added["Na De Fout"]]


def trigger_names(engine: Engine) -> set[str]:
    """The search index's triggers (the audit log's own, migration 0006, are not its business)."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'organisation'"
                )
            ).scalars()
        )


# --------------------------------------------------------------------------- the migration


def search_objects(engine: Engine) -> set[str]:
    """The search index's tables, triggers and indexes that exist now."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE name LIKE 'organisation_search%' "
                        "OR name LIKE '%_trgm'"
                    )
                ).scalars()
            )
    indexes = {index["name"] for index in inspect(engine).get_indexes("organisation")}
    return {name for name in indexes if name and name.endswith("_trgm")}


def dashboard_indexes(engine: Engine) -> set[str]:
    names = set()
    for table in ("organisation", "subscription", "consent_event"):
        names |= {index["name"] for index in inspect(engine).get_indexes(table)}
    return names & {
        "ix_subscription_status", "ix_consent_event_purpose_time", "ix_organisation_created_at",
    }  # fmt: skip


def migrate(engine: Engine, where: str) -> None:
    with db.migration_connection(engine) as conn:
        if where == "down":
            command.downgrade(db.alembic_config(conn), "0001")
        else:
            command.upgrade(db.alembic_config(conn), "head")


def test_upgrade_downgrade_upgrade(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    try:
        db.upgrade(engine)
        if engine.dialect.name == "sqlite":
            assert search_objects(engine) >= {
                "organisation_search", "organisation_search_vocab", "organisation_search_insert",
                "organisation_search_update", "organisation_search_delete",
            }  # fmt: skip
        else:
            assert search_objects(engine) == {"ix_organisation_search_trgm"}
        assert len(dashboard_indexes(engine)) == 3

        migrate(engine, "down")
        assert search_objects(engine) == set()
        assert dashboard_indexes(engine) == set()
        # organisations written while the index is away are indexed by the next upgrade
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisation (name, street, postcode, city, brin, phone, "
                    "created_at, updated_at, version) VALUES ('Tussendoor', 'Kerkstraat 1', "
                    "'1234 AB', 'Ergens', '77QQ', '+31201234567', '2026-01-01', '2026-01-01', 1)"
                )
            )
        migrate(engine, "up")
        assert db.current_revision(engine) == db.head_revision()
        assert len(dashboard_indexes(engine)) == 3
        query = OrganisationList(engine, RULE, TODAY, text="tussendoor")
        assert [row.name for row in query.fetch(0, 10)] == ["Tussendoor"]
        assert OrganisationList(engine, RULE, TODAY, text="ss").count() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_an_old_sqlite_is_refused_clearly(blank_db_url: str) -> None:
    """SQLite before 3.34 has no trigram tokenizer: the upgrade stops and says what to do.

    The connection reports an old version through an application function of the same name,
    which SQLite lets override its own ``sqlite_version()``.
    """
    engine = db.make_engine(blank_db_url)

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def old_version(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.create_function("sqlite_version", 0, lambda: "3.31.1")  # type: ignore[attr-defined]

    try:
        with pytest.raises(
            RuntimeError, match=r"needs SQLite 3\.34\.0 or newer.*uses SQLite 3\.31\.1"
        ):
            db.upgrade(engine)
        assert "organisation_search" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_without_pg_trgm_the_search_still_works(
    blank_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may not create extensions: a warning, no trigram indexes, same answers."""
    url = make_url(blank_db_url)
    role = f"{url.database}_nocreate"
    admin = create_engine(blank_db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'REVOKE CREATE ON DATABASE "{url.database}" FROM PUBLIC'))
    engine = db.make_engine(url.set(username=role).render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.WARNING, logger="plusjeklas_tui.migrations"):
            db.upgrade(engine)
        assert "pg_trgm extension could not be created" in caplog.text
        assert search_objects(engine) == set()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisation (name, street, postcode, city, brin, phone, "
                    "created_at, updated_at, version) VALUES ('Het Mozaïek', 'Kerkstraat 1', "
                    "'1234 AB', 'Ee', '77QQ', '+31201234567', now(), now(), 1)"
                )
            )
        for term in ("MOZAÏEK", "ee", "1234ab"):
            assert OrganisationList(engine, RULE, TODAY, text=term).count() == 1, term
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()
