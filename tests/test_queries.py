"""The read-side list and lookup queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.crypto import FieldKey, Keyring
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, Organisation
from plusjeklas_tui.services import queries
from plusjeklas_tui.services.queries import OrganisationRow
from plusjeklas_tui.validation import FieldError

NAMES = [
    "OBS De Regenboog",
    "obs de regenboog zuid",
    "CBS 100% Kids",
    "CBS 100 Kids",
    "Basisschool Het_Anker",
    "Basisschool HetXAnker",
    "School a\\b",
    "School ab",
    "Het Mozaïek",
    "Montessorischool Delft",
]


def add_organisations(ctx: AppContext, names: list[str]) -> dict[str, int]:
    ids = {}
    with session_scope(ctx.engine) as session:
        for number, name in enumerate(names):
            org = Organisation(
                name=name, street="Kerkstraat 1", postcode=f"{1000 + number} AB",
                city="Utrecht", brin=f"{number % 100:02d}AA{number // 100:02d}",
                phone="+31301234567", email=f"info{number}@school{number}.nl",
            )  # fmt: skip
            session.add(org)
            session.flush()
            ids[name] = org.id
    return ids


def names_matching(ctx: AppContext, text: str | None) -> list[str]:
    return [row.name for row in queries.list_organisations(ctx.engine, name_contains=text)]


def test_name_filter_is_case_insensitive(ctx: AppContext) -> None:
    add_organisations(ctx, NAMES)
    expected = ["OBS De Regenboog", "obs de regenboog zuid"]
    assert names_matching(ctx, "REGENBOOG") == expected
    assert names_matching(ctx, "Regenboog") == expected
    assert names_matching(ctx, "obs DE") == expected
    assert names_matching(ctx, "mozaïek") == ["Het Mozaïek"]
    assert queries.count_organisations(ctx.engine, "regenBOOG") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100%", ["CBS 100% Kids"]),
        ("%", ["CBS 100% Kids"]),
        ("Het_", ["Basisschool Het_Anker"]),
        ("_", ["Basisschool Het_Anker"]),
        ("a\\b", ["School a\\b"]),
        ("/", []),
        ("'; DROP TABLE organisation; --", []),
    ],
)
def test_wildcards_in_the_text_match_themselves(
    ctx: AppContext, text: str, expected: list[str]
) -> None:
    add_organisations(ctx, NAMES)
    assert names_matching(ctx, text) == expected
    assert queries.count_organisations(ctx.engine, text) == len(expected)


def test_rows_carry_the_plain_columns_ordered_by_name_then_id(ctx: AppContext) -> None:
    ids = add_organisations(ctx, ["Zonnewijzer", "Anker", "Zonnewijzer", "Baken"])
    rows = queries.list_organisations(ctx.engine)
    assert [row.name for row in rows] == ["Anker", "Baken", "Zonnewijzer", "Zonnewijzer"]
    zonnewijzers = [row.id for row in rows if row.name == "Zonnewijzer"]
    assert zonnewijzers == sorted(zonnewijzers)
    assert rows[0] == OrganisationRow(ids["Anker"], "Anker", "Utrecht", "1001 AB", "01AA00")
    assert names_matching(ctx, None) == names_matching(ctx, "")


def test_paging_walks_every_row_once(ctx: AppContext) -> None:
    add_organisations(ctx, [f"School {n:02d}" for n in range(25)] + ["Other"])
    everything = queries.list_organisations(ctx.engine, name_contains="school", limit=100)
    assert len(everything) == 25 == queries.count_organisations(ctx.engine, "school")
    pages = [
        queries.list_organisations(ctx.engine, name_contains="school", limit=10, offset=offset)
        for offset in (0, 10, 20, 30)
    ]
    assert [len(page) for page in pages] == [10, 10, 5, 0]
    assert [row for page in pages for row in page] == everything
    assert queries.count_organisations(ctx.engine) == 26


def add_person(ctx: AppContext, organisation_id: int, email: str) -> int:
    with session_scope(ctx.engine) as session:
        person = Administrator(organisation_id=organisation_id, name="Jan Jansen", email=email)
        session.add(person)
        session.flush()
        return person.id


def test_people_by_email_exact_and_any_case(ctx: AppContext) -> None:
    ids = add_organisations(ctx, ["School A", "School B"])
    jan = add_person(ctx, ids["School A"], "Jan.Jansen@school-a.nl")
    also_jan = add_person(ctx, ids["School B"], "jan.jansen@school-a.nl")
    add_person(ctx, ids["School B"], "jan.jansen@school-b.nl")
    for typed in ("jan.jansen@school-a.nl", "JAN.JANSEN@SCHOOL-A.NL", "  Jan.Jansen@School-A.nl "):
        assert queries.find_people_by_email(ctx.engine, ctx.keyring, typed) == [jan, also_jan]
    assert queries.find_people_by_email(ctx.engine, ctx.keyring, "jan.jansen@school-c.nl") == []
    assert queries.find_people_by_email(ctx.engine, ctx.keyring, "jan@school-a.nl") == []


def test_organisations_by_contact_email(ctx: AppContext) -> None:
    ids = add_organisations(ctx, ["School A", "School B"])
    assert queries.find_organisations_by_email(ctx.engine, ctx.keyring, "INFO1@School1.NL") == [
        ids["School B"]
    ]
    assert queries.find_organisations_by_email(ctx.engine, ctx.keyring, "info9@school9.nl") == []


def test_lookup_works_halfway_through_a_key_rotation(ctx: AppContext) -> None:
    """Rows not yet re-indexed carry the old key's index; the new key comes first."""
    ids = add_organisations(ctx, ["School A"])
    person = add_person(ctx, ids["School A"], "piet@school-a.nl")
    rotating = Keyring([FieldKey.generate(), *ctx.keyring.keys])
    assert queries.find_people_by_email(ctx.engine, rotating, "Piet@school-a.nl") == [person]
    other = Keyring([FieldKey.generate()])
    assert queries.find_people_by_email(ctx.engine, other, "piet@school-a.nl") == []


def test_lookup_of_something_that_is_no_address_names_the_rule(ctx: AppContext) -> None:
    with pytest.raises(FieldError) as raised:
        queries.find_people_by_email(ctx.engine, ctx.keyring, "not-an-address")
    assert raised.value.field == "email"
    assert "not-an-address" not in str(raised.value)


def test_search_organisations_matches_brin_prefix_then_names(ctx) -> None:
    from plusjeklas_tui.db import session_scope
    from plusjeklas_tui.models import Organisation
    from plusjeklas_tui.services.queries import search_organisations

    with session_scope(ctx.engine) as s:
        for name, brin in (
            ("OBS De Klimop", "05KO"),
            ("CBS 05KO Vrienden", "11AA"),
            ("Het Anker", "05KP"),
        ):
            s.add(
                Organisation(
                    name=name,
                    street="Kerkstraat 1",
                    postcode="1234 AB",
                    city="Utrecht",
                    brin=brin,
                    phone="+31201234567",
                )
            )
    assert [r.brin for r in search_organisations(ctx.engine, "05k")] == ["05KO", "05KP", "11AA"]
    assert [r.name for r in search_organisations(ctx.engine, "05KO")] == [
        "OBS De Klimop",
        "CBS 05KO Vrienden",
    ]
    assert [r.name for r in search_organisations(ctx.engine, "anker")] == ["Het Anker"]
    assert search_organisations(ctx.engine, "   ") == []
