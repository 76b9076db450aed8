"""Issue 2's benchmarks: demo generation, the name filter, decryption and e-mail lookup."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from functools import partial

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from benchmarks.harness import (
    FULL_SCHOOLS,
    DemoWorld,
    Result,
    Workspace,
    benchmark,
    median_seconds,
    say,
)
from plusjeklas_tui.models import Administrator, Organisation, index_value
from plusjeklas_tui.services import demo, queries

# Search texts typed into the list filter: common and rare, at the start and inside names, and
# one that matches nothing (the whole name index is scanned).
SUBSTRINGS = ("regenboog", "kompas", "de w", "obs", "montessori", "zuid", "het m", "ijk", "xyzzy")


@benchmark("demo_100k_schools")
def demo_100k_schools(workspace: Workspace) -> Result:
    """`plusjeklas demo --schools 100000 --no-tui`'s work, through the service it calls.

    Target 30 s at 100,000 schools (3 s at 10,000 with --quick).
    """
    schools = workspace.size(FULL_SCHOOLS)
    folder = workspace.new_dir("demo-timed")
    start = time.perf_counter()
    setup = demo.prepare_demo(folder / "demo.db", schools=schools)
    elapsed = time.perf_counter() - start
    workspace.adopt_demo(setup.config_path, schools)
    return Result.of("demo_100k_schools", elapsed, "s", target=workspace.scale_target(30.0))


@benchmark("list_100_by_name_substring")
def list_100_by_name_substring(workspace: Workspace) -> Result:
    """The first 100 organisations whose name contains a text, among 100,000.

    Median over several substrings, after warming up. Target 20 ms; floor: the same SQL and
    parameters through plain ``sqlite3`` on the same file, with floor factor 2.
    """
    world = workspace.demo()
    app_ops = [
        partial(queries.list_organisations, world.engine, name_contains=text, limit=100)
        for text in SUBSTRINGS
    ]
    connection = sqlite3.connect(world.database_path)
    try:
        bare_ops = []
        for text in SUBSTRINGS:
            compiled = queries.organisations_query(
                world.engine, name_contains=text, limit=100
            ).compile(world.engine)
            params = tuple(compiled.params[key] for key in compiled.positiontup or ())
            bare = partial(_fetch_all, connection, str(compiled), params)
            if [tuple(row) for row in app_ops[len(bare_ops)]()] != bare():
                raise AssertionError(f"the app and plain sqlite3 disagree for {text!r}")
            bare_ops.append(bare)
        value = median_seconds(app_ops, warmup=2, repeat=7)
        floor = median_seconds(bare_ops, warmup=2, repeat=7)
    finally:
        connection.close()
    return Result.of(
        "list_100_by_name_substring",
        value * 1000,
        "ms",
        target=20.0,
        floor=floor * 1000,
        floor_factor=2.0,
    )


def _fetch_all(connection: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list:
    return connection.execute(sql, params).fetchall()


@benchmark("decrypt_1000_people")
def decrypt_1000_people(workspace: Workspace) -> Result:
    """Load 1,000 administrators through the ORM and read their name, e-mail and phones.

    Decryption happens as the rows load (EncryptedText), so this is load + decrypt. Median over
    windows of 1,000 consecutive ids. Target 50 ms.
    """
    world = workspace.demo()
    with world.engine.connect() as conn:
        highest = conn.execute(select(func.max(Administrator.id))).scalar_one()
    rng = random.Random(2)
    starts = [rng.randint(1, highest - 1_000) for _ in range(7)]
    value = median_seconds(
        [partial(_load_people, world, start) for start in starts], warmup=1, repeat=3
    )
    return Result.of("decrypt_1000_people", value * 1000, "ms", target=50.0)


def _load_people(world: DemoWorld, first_id: int) -> None:
    query = select(Administrator).where(
        Administrator.id >= first_id, Administrator.id < first_id + 1_000
    )
    with Session(world.engine) as session:
        people = session.scalars(query).all()
        for person in people:
            _ = (person.name, person.email, json.loads(person.phones))
    if len(people) != 1_000:
        raise AssertionError(f"expected 1,000 people from id {first_id}, got {len(people)}")


@benchmark("lookup_by_email_200k")
def lookup_by_email_200k(workspace: Workspace) -> Result:
    """Find a person by exact e-mail (any letter case) via the blind index, among 200,000.

    Median over 150 lookups: known addresses as stored and in upper case, and unknown ones.
    Every answer is checked. Target 5 ms.
    """
    world = workspace.demo()
    _top_up_people(world, workspace.size(200_000))
    with world.engine.connect() as conn:
        highest = conn.execute(select(func.max(Administrator.id))).scalar_one()
    ids = random.Random(3).sample(range(1, highest + 1), 100)
    query = select(Administrator.email, Administrator.id).where(Administrator.id.in_(ids))
    with Session(world.engine) as session:
        known = {address: person_id for address, person_id in session.execute(query)}
    cases: list[tuple[str, int | None]] = []
    for position, (address, person_id) in enumerate(sorted(known.items())):
        cases.append((address.upper() if position % 2 else address, person_id))
    cases += [(f"nobody{n}@nowhere-school{n}.nl", None) for n in range(50)]
    for address, person_id in cases:
        found = queries.find_people_by_email(world.engine, world.keyring, address)
        if (person_id in found) if person_id is not None else not found:
            continue
        raise AssertionError(f"lookup case {cases.index((address, person_id))} answered {found}")
    value = median_seconds(
        [
            partial(queries.find_people_by_email, world.engine, world.keyring, address)
            for address, _ in cases
        ],
        warmup=1,
        repeat=3,
    )
    return Result.of("lookup_by_email_200k", value * 1000, "ms", target=5.0)


def _top_up_people(world: DemoWorld, people: int) -> None:
    """Add administrators until there are *people* (the demo has 1-3 per school at random)."""
    with world.engine.begin() as conn:
        present = conn.execute(select(func.count()).select_from(Administrator)).scalar_one()
        missing = people - present
        if missing <= 0:
            return
        say(f"adding {missing:,} administrators to reach {people:,} ...")
        schools = conn.execute(select(func.max(Organisation.id))).scalar_one()
        rng = random.Random(4)
        rows = []
        for n in range(missing):
            address = f"extra.person{n}@benchmark-school{n % 97}.nl"
            rows.append(
                {
                    "organisation_id": rng.randint(1, schools),
                    "name": f"Extra Persoon {n}",
                    "email": address,
                    "email_index": world.keyring.blind_index(index_value("email", address)),
                    "phones": '["+31612345678"]',
                }
            )
        conn.execute(insert(Administrator.__table__), rows)
