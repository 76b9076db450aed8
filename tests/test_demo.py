"""Demo data: valid, varied, deterministic, fast to write; and `plusjeklas demo` around it."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import sqlite3
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Date, func, select
from sqlalchemy.dialects import sqlite

from plusjeklas_tui import validation
from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import (
    DEFAULT_PURPOSES,
    Administrator,
    AuditEvent,
    Breach,
    ConsentEvent,
    DataSubjectRequest,
    Organisation,
    Subscription,
)
from plusjeklas_tui.services import demo, queries
from plusjeklas_tui.services.demo import rows as demo_rows
from plusjeklas_tui.sqltypes import UTCDateTime

TODAY = dt.date(2026, 3, 2)
REPO = Path(__file__).resolve().parent.parent
BRIN = re.compile(r"\d{2}[A-Z]{2}(\d{2})?")


def plain_records(schools: int, seed: int) -> list[demo.DemoBatch]:
    return list(demo.iter_demo_batches(schools, seed, today=TODAY))


def flatten(batches: list[demo.DemoBatch]) -> tuple[list, list, list, list]:
    return (
        [s for b in batches for s in b.schools],
        [a for b in batches for a in b.administrators],
        [s for b in batches for s in b.subscriptions],
        [c for b in batches for c in b.consents],
    )


# --- generation into the database, on both engines -----------------------------------------


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker"])
def test_database_holds_exactly_the_generated_records(ctx: AppContext, parallel: bool) -> None:
    counts = demo.generate(
        ctx.engine, ctx.keyring, schools=50, seed=7, actor=ctx.staff, today=TODAY,
        parallel=parallel, batch_schools=20,
    )  # fmt: skip
    schools, people, subscriptions, consents = flatten(
        list(demo.iter_demo_batches(50, 7, today=TODAY, batch_schools=20))
    )
    assert counts == demo.DemoCounts(50, len(people), len(subscriptions), len(consents))

    with session_scope(ctx.engine) as session:
        orgs = session.scalars(select(Organisation).order_by(Organisation.id)).all()
        admins = session.scalars(select(Administrator).order_by(Administrator.id)).all()
        subs = session.scalars(select(Subscription).order_by(Subscription.id)).all()
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        org_index = {org.id: n for n, org in enumerate(orgs)}
        admin_index = {admin.id: n for n, admin in enumerate(admins)}
        assert [
            demo.DemoSchool(
                o.name, o.street, o.postcode, o.city, o.brin, o.phone, o.email, o.iban, o.notes
            )
            for o in orgs
        ] == schools
        assert [
            demo.DemoAdministrator(
                org_index[a.organisation_id], a.name, a.email, tuple(json.loads(a.phones)),
                a.started_on, a.left_on,
            )
            for a in admins
        ] == people  # fmt: skip
        assert [
            demo.DemoSubscription(
                org_index[s.organisation_id], s.plan, s.start_date, s.end_date, s.status
            )
            for s in subs
        ] == subscriptions
        assert [
            demo.DemoConsent(
                admin_index[c.administrator_id], c.purpose, c.action, c.occurred_at, c.source,
                c.evidence,
            )
            for c in events
        ] == consents  # fmt: skip
        assert all(o.version == 1 and o.created_at is not None for o in orgs)


def test_generated_values_are_valid_and_already_normal(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=50, seed=11, actor=ctx.staff, today=TODAY)
    with session_scope(ctx.engine) as session:
        orgs = session.scalars(select(Organisation)).all()
        admins = session.scalars(select(Administrator)).all()
    assert len(orgs) == 50
    assert len({o.brin for o in orgs}) == 50
    for org in orgs:
        assert validation.normalize_brin(org.brin) == org.brin
        assert validation.normalize_postcode(org.postcode) == org.postcode
        assert validation.normalize_phone(org.phone) == org.phone
        assert validation.normalize_iban(org.iban) == org.iban
        assert validation.normalize_email(org.email) == org.email
        assert validation.normalize_name(org.name) == org.name
        assert validation.normalize_text(org.street, "street") == org.street
        assert org.notes is None or validation.check_free_text(org.notes) == org.notes
    assert 50 <= len(admins) <= 150
    assert Counter(a.organisation_id for a in admins).keys() == {o.id for o in orgs}
    assert len({a.email for a in admins}) == len(admins)
    for admin in admins:
        assert validation.normalize_name(admin.name) == admin.name
        assert validation.normalize_email(admin.email) == admin.email
        phones = json.loads(admin.phones)
        assert 1 <= len(phones) <= 2
        assert all(validation.normalize_phone(p) == p for p in phones)
    mobiles = [p for a in admins for p in json.loads(a.phones) if p.startswith("+316")]
    assert len(mobiles) >= len(admins) // 2


def test_subscriptions_cover_every_state_and_spread_end_dates(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=60, seed=3, actor=ctx.staff, today=TODAY)
    with session_scope(ctx.engine) as session:
        subs = session.scalars(select(Subscription).order_by(Subscription.id)).all()
    by_status = Counter(s.status for s in subs)
    assert set(by_status) == {"trial", "active", "cancelled", "ended"}
    latest: dict[int, Subscription] = {}
    for sub in subs:
        assert sub.end_date is None or sub.start_date < sub.end_date
        if (
            sub.organisation_id not in latest
            or sub.start_date > latest[sub.organisation_id].start_date
        ):
            latest[sub.organisation_id] = sub
    assert len(latest) == 60
    three_years_ago = TODAY - dt.timedelta(days=3 * 365 + 1)
    for sub in latest.values():
        if sub.status == "ended":
            assert three_years_ago <= sub.end_date < TODAY
        elif sub.status in {"trial", "cancelled"}:
            assert sub.end_date > TODAY
        else:
            assert sub.end_date is None or sub.end_date > TODAY
    ends = sorted(s.end_date for s in latest.values() if s.end_date is not None)
    assert ends[0] < TODAY - dt.timedelta(days=365) and ends[-1] > TODAY + dt.timedelta(days=60)
    assert any(s.end_date is None for s in latest.values())


def test_consent_histories_grant_and_withdraw_before_today(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=60, seed=5, actor=ctx.staff, today=TODAY)
    with session_scope(ctx.engine) as session:
        events = session.scalars(
            select(ConsentEvent).order_by(ConsentEvent.administrator_id, ConsentEvent.occurred_at)
        ).all()
    assert {e.purpose for e in events} == set(DEFAULT_PURPOSES)
    assert {e.action for e in events} == {"granted", "withdrawn"}
    sources = {e.source for e in events}
    assert {"web-form", "import"} <= sources
    assert any(s.startswith("staff:") for s in sources)
    assert all(e.evidence for e in events)
    assert any(e.evidence.startswith("web form v") for e in events)
    midnight = dt.datetime.combine(TODAY, dt.time(), dt.UTC)
    state: dict[tuple[int, str], str] = {}
    for event in events:
        assert event.occurred_at < midnight
        key = (event.administrator_id, event.purpose)
        # A history starts with a grant and a withdrawal follows a grant.
        assert state.get(key, "withdrawn") != event.action
        state[key] = event.action


def test_generation_is_audited_without_personal_data(ctx: AppContext) -> None:
    counts = demo.generate(ctx.engine, ctx.keyring, schools=20, seed=2, actor=ctx.staff)
    with session_scope(ctx.engine) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        people = session.scalars(select(Administrator)).all()
    event = events[0]
    assert (event.action, event.actor, event.entity) == (
        "demo.generate",
        ctx.staff.username,
        "organisation",
    )
    assert json.loads(event.detail) == {"seed": 2, **vars(counts)}
    # the rest is the privacy office's work, by the same actor, ids and codes only
    assert [e.action for e in events].count("demo.generate") == 1
    assert {e.actor for e in events} == {ctx.staff.username}
    for other in events[1:]:
        for person in people:
            assert person.name not in other.detail and person.email not in other.detail


def test_the_privacy_office_has_requests_breaches_and_feedback(ctx: AppContext) -> None:
    from plusjeklas_tui.services import breaches, feedback
    from plusjeklas_tui.services import requests as rq
    from plusjeklas_tui.services.demo.privacy_office import OPEN_BREACH_AGE, demo_now

    started = dt.datetime.now(dt.UTC)
    demo.generate(ctx.engine, ctx.keyring, schools=200, seed=9, actor=ctx.staff, today=TODAY)
    now = demo_now(TODAY, started)
    assert now == dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)  # noon in Amsterdam (CET)
    with session_scope(ctx.engine) as session:
        rows = rq.list_requests(session, ctx.staff, TODAY)
        first = session.scalars(select(DataSubjectRequest).order_by(DataSubjectRequest.id)).all()
        people = {p.id: p for p in session.scalars(select(Administrator))}
        register = breaches.list_breaches(session, ctx.staff, now)
        open_breaches = breaches.open_breaches_summary(session, now)
        marks = feedback.feedback_summary(session, TODAY, ctx.settings.retention)
        stored = session.scalars(select(Breach).order_by(Breach.id)).all()
        ids = [request.administrator_id for request in first]
        requesters = [(r.requester_name, r.requester_email) for r in first]
        for person_id, requester in zip(ids, requesters, strict=True):
            assert requester == (people[person_id].name, people[person_id].email)
    by_kind = {row.kind: row for row in rows}
    assert set(by_kind) == {"access", "portability", "rectification"}
    soon = by_kind["access"]
    assert soon.status == "open" and soon.days_left is not None and 0 < soon.days_left <= 10
    extended = by_kind["portability"]
    assert extended.status == "open" and extended.extended and not extended.tell_person
    assert extended.days_left is not None and extended.days_left > 0  # the extended deadline
    assert extended.first_due_on < TODAY  # the first one passed: hence the extension
    assert by_kind["rectification"].status == "completed"
    assert by_kind["rectification"].outcome == "rectified"
    assert len(set(ids)) == 3 and all(people[i].left_on is None for i in ids)

    assert {b.status for b in register} == {"open", "reported"}
    assert open_breaches.open_count == 1
    (still_open,) = [b for b in stored if b.status == "open"]
    assert still_open.discovered_at == now - OPEN_BREACH_AGE
    left = breaches.breach_time_left(still_open, now)
    assert left == dt.timedelta(hours=42)  # the countdown shows: 72 - 30 hours
    (reported,) = [b for b in stored if b.status == "reported"]
    assert reported.ap_reference and reported.reported_at is not None
    assert reported.reported_at <= breaches.breach_deadline(reported)  # in time

    assert (marks.asked, marks.answered) == (1, 1)

    # the same seed makes the same choices
    again = plain_choices(ctx, seed=9)
    assert again == (ids, [b.people_min for b in stored])


def plain_choices(ctx: AppContext, seed: int) -> tuple[list[int | None], list[int]]:
    """Generate the same demo into a second, throw-away SQLite database; its choices."""
    import tempfile

    from plusjeklas_tui import db

    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/again.db", ctx.keyring)
        try:
            db.upgrade(engine)
            demo.generate(engine, ctx.keyring, schools=200, seed=seed, actor=ctx.staff,
                          today=TODAY)  # fmt: skip
            with session_scope(engine) as session:
                ids = list(
                    session.scalars(
                        select(DataSubjectRequest.administrator_id).order_by(DataSubjectRequest.id)
                    )
                )
                counts = list(session.scalars(select(Breach.people_min).order_by(Breach.id)))
        finally:
            engine.dispose()
    return ids, counts


def test_new_records_after_the_demo_get_fresh_ids(ctx: AppContext) -> None:
    """On PostgreSQL explicit ids leave the sequences behind unless they are moved."""
    demo.generate(ctx.engine, ctx.keyring, schools=10, seed=1, actor=ctx.staff)
    with session_scope(ctx.engine) as session:
        org = Organisation(
            name="Nieuwe School", street="Dorpsstraat 1", postcode="1234 AB", city="Utrecht",
            brin="99ZZ99", phone="+31201234567",
        )  # fmt: skip
        session.add(org)
        session.flush()
        admin = Administrator(organisation_id=org.id, name="Nieuw", email="nieuw@school.nl")
        session.add(admin)
        session.flush()
        assert org.id == 11
        assert admin.id == session.scalar(select(func.max(Administrator.id)))


def test_refuses_a_database_that_already_has_organisations(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=5, seed=1, actor=ctx.staff)
    with pytest.raises(PlusjeklasError, match="already holds organisations"):
        demo.generate(ctx.engine, ctx.keyring, schools=5, seed=2, actor=ctx.staff)
    assert demo.count_rows(ctx.engine).schools == 5


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker"])
def test_a_failure_halfway_leaves_nothing_written(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    encode = demo_rows.encode_batch
    calls = []

    def fail_on_second_batch(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return encode(*args)

    monkeypatch.setattr(demo_rows, "encode_batch", fail_on_second_batch)  # the fork inherits it
    expected = PlusjeklasError if parallel else RuntimeError
    with pytest.raises(expected, match="disk on fire"):
        demo.generate(
            ctx.engine, ctx.keyring, schools=30, seed=1, actor=ctx.staff, batch_schools=10,
            parallel=parallel,
        )  # fmt: skip
    assert demo.count_rows(ctx.engine) == demo.DemoCounts(0, 0, 0, 0)
    with session_scope(ctx.engine) as session:
        assert session.scalars(select(AuditEvent)).all() == []


def test_email_blind_index_finds_generated_people(ctx: AppContext) -> None:
    demo.generate(ctx.engine, ctx.keyring, schools=10, seed=4, actor=ctx.staff)
    with session_scope(ctx.engine) as session:
        admin = session.scalars(select(Administrator).order_by(Administrator.id.desc())).first()
        org = session.get(Organisation, admin.organisation_id)
    assert queries.find_people_by_email(ctx.engine, ctx.keyring, admin.email.upper()) == [admin.id]
    assert org.id in queries.find_organisations_by_email(ctx.engine, ctx.keyring, org.email)


# --- the pure generator ----------------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = flatten(plain_records(120, seed=9))
    assert flatten(plain_records(120, seed=9)) == first
    other = flatten(plain_records(120, seed=10))
    assert other[0] != first[0] and other[1] != first[1]
    names = Counter(s.name.split(" ")[0] for s in first[0])
    assert len(names) > 5  # prefixes vary
    assert len({s.city for s in first[0]}) > 60


def test_batches_are_consecutive_and_sized() -> None:
    batches = list(demo.iter_demo_batches(1_234, 1, today=TODAY, batch_schools=500))
    assert [b.first_school for b in batches] == [0, 500, 1_000]
    assert [len(b.schools) for b in batches] == [500, 500, 234]
    people = 0
    for batch in batches:
        assert batch.first_administrator == people
        assert {a.school for a in batch.administrators} == set(
            range(batch.first_school, batch.first_school + len(batch.schools))
        )
        assert {c.administrator for c in batch.consents} <= set(
            range(people, people + len(batch.administrators))
        )
        people += len(batch.administrators)


def test_brins_are_unique_and_valid_at_100k() -> None:
    brins = demo.demo_brins(100_000, random.Random(1))
    assert len(set(brins)) == 100_000
    assert all(BRIN.fullmatch(b) for b in brins)
    assert sum(len(b) == 4 for b in brins) == demo.BRIN_BASE_CODES
    sample = random.Random(2).sample(brins, 2_000)
    assert all(validation.normalize_brin(b) == b for b in sample)
    with pytest.raises(ValueError, match="at most"):
        demo.demo_brins(demo.BRIN_CAPACITY + 1, random.Random(1))


def test_nl_iban_check_digits() -> None:
    assert demo.nl_iban("ABNA", "0417164300") == "NL91ABNA0417164300"
    assert demo.nl_iban("INGB", "0001234567") == "NL20INGB0001234567"
    rng = random.Random(5)
    for _ in range(500):
        iban = demo.nl_iban(rng.choice(["RABO", "TRIO", "KNAB"]), f"{rng.randrange(10**10):010d}")
        assert validation.normalize_iban(iban) == iban


def test_postcodes_never_use_the_unused_letter_pairs() -> None:
    schools = flatten(plain_records(3_000, seed=6))[0]
    letters = {s.postcode[-2:] for s in schools}
    assert not letters & {"SA", "SD", "SS"}
    assert len(letters) > 300


def test_sqlite_codec_writes_what_sqlalchemy_writes() -> None:
    dialect = sqlite.dialect()
    stamp = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    day = Date().dialect_impl(dialect).bind_processor(dialect)
    codec = demo_rows.Codec("sqlite")
    moments = [
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123, tzinfo=dt.UTC),
        dt.datetime(2024, 7, 2, 23, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    assert [codec.moment(m) for m in moments] == [stamp(m) for m in moments]
    assert codec.date(TODAY) == day(TODAY)
    assert codec.date(None) is None


@pytest.mark.parametrize(
    "model", [Organisation, Administrator, Subscription, ConsentEvent], ids=lambda m: m.__name__
)
def test_bulk_insert_columns_match_the_model(model: type) -> None:
    """A column added by a migration must be added to the demo writer too."""
    assert sorted(demo.INSERT_COLUMNS[model.__tablename__]) == sorted(
        model.__table__.columns.keys()
    )


# --- `plusjeklas demo` -----------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "PLUSJEKLAS_CONFIG"}
    full_env = {**inherited, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "plusjeklas_tui", *args],
        capture_output=True, text=True, env=full_env, timeout=120, check=False,
    )  # fmt: skip


def count_in(database: Path, table: str) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_demo_command_writes_config_and_key_then_reuses(tmp_path: Path) -> None:
    database = tmp_path / "demo" / "demo.db"
    first = run_cli("demo", "--schools", "30", "--no-tui", "--db", str(database))
    assert first.returncode == 0, first.stderr
    config, key = database.parent / "plusjeklas.toml", database.parent / "plusjeklas.key"
    assert config.is_file() and key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"PLUSJEKLAS_CONFIG={config}" in first.stderr
    assert "100%" in first.stderr
    assert first.stdout == ""
    assert count_in(database, "organisation") == 30
    audited = count_in(database, "audit_event")

    status = run_cli("db", "status", "--json", env={"PLUSJEKLAS_CONFIG": str(config)})
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["ready"] is True
    as_viewer = run_cli(
        "--user", "demo-viewer", "db", "status", env={"PLUSJEKLAS_CONFIG": str(config)}
    )
    assert as_viewer.returncode == 0, as_viewer.stderr

    again = run_cli("demo", "--schools", "40", "--no-tui", "--db", str(database))
    assert again.returncode == 0, again.stderr
    assert "Reusing" in again.stderr and "30 schools" in again.stderr
    assert count_in(database, "organisation") == 30
    assert count_in(database, "audit_event") == audited  # reused: nothing generated again
    with sqlite3.connect(database) as conn:
        generated = conn.execute(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'demo.generate'"
        ).fetchone()[0]
    assert generated == 1


def test_demo_refuses_to_replace_a_real_config(tmp_path: Path) -> None:
    real = tmp_path / "plusjeklas.toml"
    real.write_text('allow_user_override = false\n[staff]\n"sascha" = "admin"\n')
    result = run_cli("demo", "--schools", "5", "--no-tui", "--db", str(tmp_path / "demo.db"))
    assert result.returncode == 2
    assert "was not written by `plusjeklas demo`" in result.stderr
    assert real.read_text().startswith("allow_user_override = false")
    assert not (tmp_path / "plusjeklas.key").exists()
    assert not (tmp_path / "demo.db").exists()


def test_demo_refuses_data_without_its_key(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    assert run_cli("demo", "--schools", "5", "--no-tui", "--db", str(database)).returncode == 0
    (tmp_path / "plusjeklas.key").unlink()
    result = run_cli("demo", "--no-tui", "--db", str(database))
    assert result.returncode == 2
    assert "key file" in result.stderr and "missing" in result.stderr
    assert not (tmp_path / "plusjeklas.key").exists()


def test_demo_opens_the_app_on_its_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path | None] = []
    monkeypatch.setattr(
        "plusjeklas_tui.cli.open_app", lambda state: opened.append(state.config_path)
    )
    database = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--schools", "3", "--db", str(database)])
    assert result.exit_code == 0, result.output
    assert opened == [tmp_path / "plusjeklas.toml"]


def test_demo_without_db_uses_the_user_data_directory(tmp_path: Path) -> None:
    result = run_cli("demo", "--schools", "3", "--no-tui", env={"XDG_DATA_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "plusjeklas" / "demo"
    assert (folder / "plusjeklas-demo.db").is_file()
    assert f"PLUSJEKLAS_CONFIG={folder / 'plusjeklas.toml'}" in result.stderr
