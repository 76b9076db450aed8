"""`plusjeklas retention plan|sweep|hold|unhold`, and the sweep's crash safety under kill -9.

The providers are the imitations each command starts itself (``imitation = true``, as in the
demo): a real sweep delivers its deletion tasks to them before it exits.

The crash test runs real sweeps in a subprocess, on both engines, kills each with SIGKILL at a
random moment, and checks after every kill that each due school is either untouched or erased
completely with its deletion tasks, and that nothing else was touched. Once a last sweep has
finished, every task is delivered and its locator destroyed, and no personal value of an erased
subject is left: on SQLite in the database file or its WAL (a raw-bytes scan); on PostgreSQL,
whose files are the server's, in any row.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from retention_world import PLUGINS_TOML, add_school, brin_for
from sqlalchemy import func, select, text

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import open_context
from plusjeklas_tui.models import (
    Administrator,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
    ProviderLink,
    Subscription,
    index_value,
)
from plusjeklas_tui.services import legal_hold
from plusjeklas_tui.services.deadlines import add_months
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID

REPO = Path(__file__).resolve().parent.parent
TODAY = local_today()
RUN_CLI = "from plusjeklas_tui.cli import main; main()"


def ago(months: int) -> dt.date:
    return add_months(TODAY, -months)


IMITATED = PLUGINS_TOML.replace("enabled = true", "enabled = true\nimitation = true").replace(
    "[plugins.mailchimp]", f'[plugins.mailchimp]\nlist_id = "{DEFAULT_LIST_ID}"'
)
"""The same providers enabled (Mailchimp, Mollie), each an imitation the command starts."""


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return _migrated(write_config(extra=IMITATED))


@pytest.fixture
def unreachable_config(write_config: Callable[..., Path]) -> Path:
    """Mailchimp and Mollie enabled without what they need (no audience, no API key)."""
    return _migrated(write_config(extra=PLUGINS_TOML))


def _migrated(path: Path) -> Path:
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


def cli(config: Path, *args: str, user: str | None = None, stdin: str | None = None) -> Result:
    who = ["--user", user] if user else []
    return CliRunner().invoke(
        main, ["--config", str(config), *who, *args], input=stdin, catch_exceptions=False
    )


def populate(config: Path, due: int = 3, keep: int = 2) -> dict[str, list]:
    context = open_context(config)
    try:
        with db.session_scope(context.engine) as s:
            schools = {
                "due": [add_school(s, n, ended=ago(25 + n), people=2) for n in range(1, due + 1)],
                "keep": [add_school(s, 500 + n, ended=ago(3)) for n in range(keep)],
            }
    finally:
        context.close()
    return schools


def count(config: Path, model: type, *where: object) -> int:
    engine = db.make_engine(load_file(config).database_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(model)
            if where:
                query = query.where(*where)  # type: ignore[arg-type]
            return conn.execute(query).scalar_one()
    finally:
        engine.dispose()


# --- plan ----------------------------------------------------------------------------------


def test_plan_lists_brin_rule_deadline_and_providers(config: Path) -> None:
    schools = populate(config, due=2)
    result = cli(config, "retention", "plan")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["BRIN", "SUBJECT", "RULE", "KEPT", "UNTIL", "STATE", "PROVIDERS"]
    assert len(lines) == 3
    for school in schools["due"]:
        (line,) = [x for x in lines if x.startswith(school.brin)]
        assert "general" in line and " due " in line and line.endswith("mailchimp, mollie")
    assert "2 due now (2 organisations)" in result.stderr
    for school in schools["due"]:
        assert not any(secret in result.output for secret in school.emails + school.people)

    as_json = cli(config, "retention", "plan", "--json", "--within", "120")
    data = json.loads(as_json.stdout)
    assert data["due_now"] == 2 and data["within_days"] == 120
    assert {i["brin"] for i in data["items"]} == {s.brin for s in schools["due"]}
    assert {tuple(i["providers"]) for i in data["items"]} == {("mailchimp", "mollie")}


def test_plan_shows_holds_and_refuses_a_negative_window(config: Path) -> None:
    schools = populate(config, due=1)
    held = schools["due"][0]
    result = cli(config, "retention", "hold", held.brin, "--reason", "Claim van ouder X")
    assert result.exit_code == 0, result.stderr
    line = cli(config, "retention", "plan").stdout.splitlines()[1]
    assert "on hold (" in line and "Claim" not in line
    assert cli(config, "retention", "plan", "--within", "-1").exit_code == 2


# --- sweep ---------------------------------------------------------------------------------


def test_dry_run_output_equals_the_real_run(config: Path) -> None:
    populate(config, due=3)
    dry = cli(config, "retention", "sweep", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert count(config, Organisation) == 5 and count(config, ErasureReceipt) == 0
    real = cli(config, "retention", "sweep", "--yes")
    assert real.exit_code == 0, real.stderr
    assert dry.stdout == real.stdout and len(real.stdout.splitlines()) == 3
    assert "dry run" in dry.stderr and "9 deletion tasks queued" in real.stderr
    assert "delivering" not in dry.stderr
    assert count(config, Organisation) == 2 and count(config, DeletionTask) == 9
    # delivered before the command ended: two people at Mailchimp, the school at Mollie
    assert "mailchimp: 6 done, 0 failed" in real.stderr
    assert "mollie: 3 done, 0 failed" in real.stderr
    assert count(config, DeletionTask, DeletionTask.state == "done") == 9
    again = cli(config, "retention", "sweep", "--yes")
    assert again.exit_code == 0 and "nothing is due" in again.stderr


def test_a_sweep_whose_delivery_fails_exits_1_and_keeps_the_tasks(
    unreachable_config: Path,
) -> None:
    """The erasures stand; the tasks stay pending with the reason; the next run tries again."""
    config = unreachable_config
    populate(config, due=2)
    result = cli(config, "retention", "sweep", "--yes")
    assert result.exit_code == 1
    assert "erased 2, skipped 0, failed 0; 6 deletion tasks queued" in result.stderr
    assert "mailchimp: 0 done, 0 failed, 4 not attempted" in result.stderr
    assert "list_id is required" in result.stderr and "no API key" in result.stderr
    assert count(config, Organisation) == 2
    assert count(config, DeletionTask, DeletionTask.state == "pending") == 6
    again = cli(config, "retention", "sweep", "--yes")  # nothing due, the tasks still wait
    assert again.exit_code == 1 and "nothing is due" in again.stderr
    assert "6 not attempted" not in again.stderr and "4 not attempted" in again.stderr


def test_sweep_without_yes_and_without_a_terminal_refuses(config: Path) -> None:
    populate(config, due=2)
    result = cli(config, "retention", "sweep")
    assert result.exit_code == 2
    assert "--yes" in result.stderr and result.stdout == ""
    assert count(config, Organisation) == 4


def _sweep_on_a_terminal(config: Path, answer: str) -> tuple[int, str]:
    """Run the sweep with a pseudo-terminal as stdin and type *answer* at the prompt."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "--config", str(config), "retention", "sweep"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    os.close(follower)
    try:
        os.write(leader, (answer + "\n").encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
    return process.returncode, out.decode() + err.decode()


def test_sweep_on_a_terminal_asks_for_the_number_of_organisations(config: Path) -> None:
    populate(config, due=2)
    code, output = _sweep_on_a_terminal(config, "3")
    assert code == 1 and "not confirmed" in output and "number of organisations" in output
    assert count(config, Organisation) == 4
    code, output = _sweep_on_a_terminal(config, "2")
    assert code == 0, output
    assert count(config, Organisation) == 2


def test_sweep_needs_the_sweep_permission(config: Path) -> None:
    populate(config, due=1)
    for user in ("vera", "eddie"):
        result = cli(config, "retention", "sweep", "--yes", user=user)
        assert result.exit_code == 2 and "'sweep' permission" in result.stderr
    preview = cli(config, "retention", "sweep", "--dry-run", user="vera")
    assert preview.exit_code == 0 and len(preview.stdout.splitlines()) == 1
    assert count(config, Organisation) == 3


def test_sweep_exits_1_when_an_erasure_fails(config: Path) -> None:
    """A subject whose erasure fails is reported (without personal data); the rest go on."""
    schools = populate(config, due=2)
    broken = schools["due"][0]
    engine = db.make_engine(load_file(config).database_url)
    trigger = (
        "CREATE TRIGGER refuse_erasure BEFORE DELETE ON organisation "
        f"WHEN old.id = {broken.id} BEGIN SELECT RAISE(ABORT, 'no {broken.emails[0]}'); END"
    )
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(trigger))
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    f"IF old.id = {broken.id} THEN RAISE EXCEPTION 'no {broken.emails[0]}'; "
                    "END IF; RETURN old; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_erasure BEFORE DELETE ON organisation "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    engine.dispose()
    result = cli(config, "retention", "sweep", "--yes")
    assert result.exit_code == 1
    assert f"organisation {broken.brin}" in result.stderr and "failed" in result.stderr
    assert broken.emails[0] not in result.output
    assert len(result.stdout.splitlines()) == 1
    assert count(config, Organisation) == 3  # the broken one (untouched) and the two kept
    assert count(config, Administrator) == 2 + 2
    assert count(config, ErasureReceipt) == 1


# --- holds ---------------------------------------------------------------------------------


def test_hold_and_unhold(config: Path) -> None:
    schools = populate(config, due=1)
    brin = schools["due"][0].brin
    denied = cli(config, "retention", "hold", brin, "--reason", "x", user="eddie")
    assert denied.exit_code == 2 and "'erase' permission" in denied.stderr
    assert cli(config, "retention", "hold", brin, "--reason", "  ").exit_code == 1
    assert cli(config, "retention", "hold", brin, "--reason", "geschil").exit_code == 0
    assert count(config, LegalHold) == 1
    assert cli(config, "retention", "hold", brin, "--reason", "again").exit_code == 1
    swept = cli(config, "retention", "sweep", "--yes")
    assert swept.exit_code == 0 and "nothing is due" in swept.stderr
    assert cli(config, "retention", "unhold", brin).exit_code == 0
    assert cli(config, "retention", "unhold", brin).exit_code == 1
    unknown = cli(config, "retention", "hold", "99ZZ", "--reason", "x")
    assert unknown.exit_code == 1 and "no organisation with BRIN 99ZZ" in unknown.stderr
    assert cli(config, "retention", "sweep", "--yes").exit_code == 0
    assert count(config, Organisation) == 2


# --- crash safety --------------------------------------------------------------------------


KILLS = {"sqlite": 8, "postgresql": 5}
"""Kills per engine. Fewer on PostgreSQL, to keep the suite's time: its leases differ (FOR
UPDATE SKIP LOCKED) but each kill exercises the same sweep; the first kill (before or during
the first erasures) and the random later ones are all still there."""
DUE_SCHOOLS = {"sqlite": 180, "postgresql": 120}


def test_kill_9_at_random_moments_never_half_erases(config: Path, engine_name: str) -> None:
    rng = random.Random(int(os.environ.get("PLUSJEKLAS_KILL_SEED", "5")))
    context = open_context(config)
    engine, keyring = context.engine, context.keyring
    with db.session_scope(engine) as s:
        due = [
            add_school(s, n, ended=ago(25 + n % 40), people=2)
            for n in range(1, DUE_SCHOOLS[engine_name] + 1)
        ]
        keep = [add_school(s, 300 + n, ended=ago(2)) for n in range(10)]
        held = add_school(s, 400, ended=ago(40))
        legal_hold.set_hold(s, context.staff, held.id, "claim")
    untouchable = [*keep, held]
    before = {school.id: _snapshot(engine, school) for school in due + untouchable}
    needles = _personal_bytes(engine, keyring, due)
    context.close()

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-c",
        RUN_CLI,
        "--config",
        str(config),
        "retention",
        "sweep",
        "--yes",
    ]
    erased_counts = []
    for attempt in range(KILLS[engine_name]):
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO
        )
        assert process.stdout is not None
        # Kill after a random number of erasures (one line each), a random instant later: in
        # the middle of the next subject's transaction, between two, or before the first.
        lines = 0 if attempt == 0 else rng.randint(1, 25)
        for _ in range(lines):
            if not process.stdout.readline():
                break
        time.sleep(rng.uniform(0.0, 0.3 if attempt == 0 else 0.015))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        erased_counts.append(_check_invariants(config, due, untouchable, before))
    assert erased_counts == sorted(erased_counts)  # progress is never undone
    assert any(0 < n < len(due) for n in erased_counts), erased_counts  # killed mid-sweep
    env.pop("PYTHONUNBUFFERED")

    finish = subprocess.run(command, capture_output=True, env=env, cwd=REPO, timeout=300)
    assert finish.returncode == 0, finish.stderr.decode()
    assert _check_invariants(config, due, untouchable, before) == len(due)
    _assert_every_task_delivered(config, 3 * len(due))
    if engine_name == "postgresql":
        _assert_no_personal_rows(config, due, needles)
        return

    engine = db.make_engine(load_file(config).database_url)
    db.sqlite_checkpoint(engine)
    engine.dispose()
    database = Path(load_file(config).database_url.removeprefix("sqlite:///"))
    for path in (database, Path(f"{database}-wal")):
        if not path.exists():
            continue
        raw = path.read_bytes()
        found = [label for label, needle in needles if needle in raw]
        assert found == [], f"{path.name} still holds {found[:5]}"


def _assert_every_task_delivered(config: Path, expected: int) -> None:
    """After the finishing sweep: every task done, and nothing left that finds the subject."""
    engine = db.make_engine(load_file(config).database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(DeletionTask.state, DeletionTask.locator.is_(None))  # type: ignore[union-attr]
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == expected
    assert Counter(rows) == Counter({("done", True): expected}), Counter(rows)


def _assert_no_personal_rows(config: Path, schools: list, needles: list) -> None:
    """PostgreSQL: the erased subjects' rows are gone, and no row of any table that held
    personal values or blind indexes still carries one of theirs."""
    organisation_ids = [school.id for school in schools]
    person_ids = [person for school in schools for person in school.admin_ids]
    stored = {needle.decode() for label, needle in needles if not label.startswith("plain")}
    engine = db.make_engine(load_file(config).database_url)
    try:
        with engine.connect() as conn:
            left = {
                "organisation": conn.scalar(
                    text("SELECT count(*) FROM organisation WHERE id = ANY(:ids)"),
                    {"ids": organisation_ids},
                ),
                "administrator": conn.scalar(
                    text("SELECT count(*) FROM administrator WHERE id = ANY(:ids)"),
                    {"ids": person_ids},
                ),
                "consent_event": conn.scalar(
                    text("SELECT count(*) FROM consent_event WHERE administrator_id = ANY(:ids)"),
                    {"ids": person_ids},
                ),
                "stored values": conn.scalar(
                    text(
                        "SELECT count(*) FROM administrator WHERE name = ANY(:v) "
                        "OR email = ANY(:v) OR email_index = ANY(:v)"
                    ),
                    {"v": sorted(stored)},
                ),
            }
    finally:
        engine.dispose()
    assert left == dict.fromkeys(left, 0), left


def _snapshot(engine: object, school: object) -> tuple[int, int, int]:
    with db.session_scope(engine) as s:  # type: ignore[arg-type]
        return _state(s, school)


def _state(s: object, school: object) -> tuple[int, int, int]:
    people = s.scalar(  # type: ignore[attr-defined]
        select(func.count()).where(Administrator.organisation_id == school.id)  # type: ignore[attr-defined]
    )
    subscriptions = s.scalar(  # type: ignore[attr-defined]
        select(func.count()).where(Subscription.organisation_id == school.id)  # type: ignore[attr-defined]
    )
    links = s.scalar(  # type: ignore[attr-defined]
        select(func.count()).where(
            ((ProviderLink.subject_type == "organisation") & (ProviderLink.subject_id == school.id))  # type: ignore[attr-defined]
            | (
                (ProviderLink.subject_type == "administrator")
                & ProviderLink.subject_id.in_(school.admin_ids)  # type: ignore[attr-defined]
            )
        )
    )
    return people, subscriptions, links


def _check_invariants(
    config: Path, due: list, untouchable: list, before: dict[int, tuple[int, int, int]]
) -> int:
    """Every due school untouched or fully erased with its tasks; the rest untouched."""
    context = open_context(config)
    engine = context.engine
    erased = 0
    try:
        with db.session_scope(engine) as s:
            for school in untouchable:
                assert s.get(Organisation, school.id) is not None
                assert _state(s, school) == before[school.id]
            for school in due:
                receipts = s.scalars(
                    select(ErasureReceipt).where(
                        ErasureReceipt.subject_type == "organisation",
                        ErasureReceipt.subject_id == school.id,
                    )
                ).all()
                if s.get(Organisation, school.id) is not None:
                    assert receipts == [], f"{school.brin} has a receipt but was not erased"
                    assert _state(s, school) == before[school.id], f"{school.brin} half erased"
                    continue
                erased += 1
                assert len(receipts) == 1, f"{school.brin}: {len(receipts)} receipts"
                assert _state(s, school) == (0, 0, 0)
                tasks = s.execute(
                    select(
                        DeletionTask.provider, DeletionTask.subject_type, DeletionTask.subject_id
                    ).where(DeletionTask.receipt_id == receipts[0].id)
                ).all()
                expected = {("mollie", "organisation", school.id)} | {
                    ("mailchimp", "administrator", person) for person in school.admin_ids
                }
                assert sorted(tasks) == sorted(expected), f"{school.brin} tasks {tasks}"
            total_tasks = s.scalar(select(func.count()).select_from(DeletionTask))
            assert total_tasks == 3 * erased  # no stray task from a rolled-back erasure
    finally:
        context.close()
    return erased


def _personal_bytes(engine: object, keyring: object, schools: list) -> list[tuple[str, bytes]]:
    """What identifies the schools' people in the file: their values as stored (ciphertext
    tokens), the e-mail blind indexes, and the plain values for good measure."""
    needles: list[tuple[str, bytes]] = []
    ids = [person for school in schools for person in school.admin_ids]
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            text(
                "SELECT id, name, email, email_index, phones FROM administrator "
                f"WHERE id IN ({', '.join(map(str, ids))})"
            )
        ).all()
        for row in rows:
            for column in ("name", "email", "email_index", "phones"):
                needles.append(
                    (f"administrator {row.id} {column}", str(row._mapping[column]).encode())
                )
        evidence = conn.execute(
            text(
                "SELECT administrator_id, evidence FROM consent_event "
                f"WHERE administrator_id IN ({', '.join(map(str, ids))})"
            )
        ).all()
        needles += [(f"consent {r[0]} evidence", r[1].encode()) for r in evidence]
        organisation_ids = ", ".join(str(school.id) for school in schools)
        for row in conn.execute(
            text(f"SELECT id, email FROM organisation WHERE id IN ({organisation_ids})")
        ):
            needles.append((f"organisation {row.id} email", row.email.encode()))
    for school in schools:
        for email, name in zip(school.emails, school.people, strict=True):
            needles.append(("plain e-mail", email.encode()))
            needles.append(("plain name", name.encode()))
            blind = keyring.blind_index(index_value("email", email))  # type: ignore[attr-defined]
            needles.append(("blind index", blind.encode()))
    assert len(needles) > 4 * len(schools)
    return needles


def test_brins_of_the_crash_test_are_distinct() -> None:
    assert len({brin_for(n) for n in range(1, 420)}) == 419
