"""Encryption at rest: raw-file scan, wrong and missing keys, AAD binding, blind index, rotation."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine

from plusjeklas_tui import db
from plusjeklas_tui.config import Settings, load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.crypto import FieldKey, Keyring, format_keys, load_key_file, write_key_file
from plusjeklas_tui.errors import KeyProblem, PermissionDenied
from plusjeklas_tui.models import (
    Administrator,
    AuditEvent,
    ConsentAction,
    ConsentEvent,
    Organisation,
    ProviderLink,
    index_value,
)
from plusjeklas_tui.services.keys import encrypted_tables, rotate_keys

REPO = Path(__file__).resolve().parent.parent
SQLITE_ONLY = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)


# --- helpers ---------------------------------------------------------------------------------


def seed(engine: Engine, count: int, prefix: str = "p") -> None:
    """*count* schools, each with an administrator, a consent event and a provider link (ORM)."""
    with db.session_scope(engine) as session:
        for i in range(count):
            org = Organisation(
                name=f"School {prefix}{i}",
                street=f"Schoolstraat {i + 1}",
                postcode="1234 AB",
                city="Utrecht",
                brin=f"{i % 100:02d}{prefix[0].upper()}{chr(65 + i // 100)}",
                phone="+31302345678",
                email=f"Info.{prefix}{i}@School{i}.example",
                iban="NL91ABNA0417164300",
                notes=f"notitie {prefix}{i}" if i % 2 else None,
            )
            session.add(org)
            session.flush()
            admin = Administrator(
                organisation_id=org.id,
                name=f"Beheerder {prefix}{i}",
                email=f"Beheerder.{prefix}{i}@School{i}.example",
                phones=json.dumps([f"+316{i:08d}"]),
            )
            session.add(admin)
            session.flush()
            session.add(
                ConsentEvent(
                    administrator_id=admin.id,
                    purpose="newsletter",
                    action=ConsentAction.GRANTED,
                    occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                    source="web-form",
                    evidence=f"formulier v3 {prefix}{i}",
                )
            )
            session.add(
                ProviderLink(
                    provider="mollie",
                    subject_type="organisation",
                    subject_id=org.id,
                    external_id=f"cst_{prefix}{i}",
                )
            )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every personal value, decrypted through the ORM, in id order."""
    with db.session_scope(engine) as session:
        return {
            "organisation": [
                (o.id, o.email, o.iban, o.notes, o.email_index is not None)
                for o in session.scalars(select(Organisation).order_by(Organisation.id))
            ],
            "administrator": [
                (a.id, a.name, a.email, a.phones)
                for a in session.scalars(select(Administrator).order_by(Administrator.id))
            ],
            "consent_event": [
                (c.id, c.evidence)
                for c in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))
            ],
            "provider_link": [
                (p.id, p.external_id)
                for p in session.scalars(select(ProviderLink).order_by(ProviderLink.id))
            ],
        }


NEW_TABLES_NOT_SEEDED = (
    "breach",
    "data_subject_request",
    "feedback_request",
    "newsletter_customer_basis",
)
NEW_TABLES = {**dict.fromkeys(NEW_TABLES_NOT_SEEDED, 0), "audit_mac_key": 0}
"""Tables with encrypted columns that these tests leave empty (issue 6's areas); the audit
MAC key is first written by the rotation's own audit event, under the new key."""


def raw_tokens(engine: Engine) -> list[tuple[str, int, str, str]]:
    """(table, row id, context, token) of every stored encrypted value, read as plain text."""
    found = []
    with engine.connect() as conn:
        for spec in encrypted_tables():
            for name, context in spec.encrypted:
                rows = conn.execute(
                    text(f"SELECT id, {name} FROM {spec.name} WHERE {name} IS NOT NULL")
                )
                found.extend((spec.name, row_id, context, token) for row_id, token in rows)
    return found


def data_tokens(engine: Engine) -> list[tuple[str, int, str, str]]:
    """:func:`raw_tokens` without the audit chain's MAC keys: a rotation writes its own audit
    event, which may store the first MAC key (under the new key), so those are counted apart."""
    return [token for token in raw_tokens(engine) if token[0] != "audit_mac_key"]


def key_ids_in_use(engine: Engine) -> Counter[str]:
    return Counter(Keyring.key_id_of(token) for *_, token in raw_tokens(engine))


def assert_every_row_readable_from_file(url: str, key_file: Path) -> Counter[str]:
    """The invariant: the key file *as it is on disk now* decrypts every stored value."""
    keyring = load_key_file(key_file)
    engine = db.make_engine(url)
    try:
        tokens = raw_tokens(engine)
        for _table, _row_id, context, token in tokens:
            keyring.decrypt(token, context)  # raises KeyProblem if no key in the file fits
    finally:
        engine.dispose()
    return Counter(Keyring.key_id_of(token) for *_, token in tokens)


def find_admins(engine: Engine, keyring: Keyring, email: str) -> list[int]:
    """Exact e-mail lookup through the blind index, under every loaded key."""
    candidates = keyring.blind_index_candidates(index_value("email", email))
    with db.session_scope(engine) as session:
        return list(
            session.scalars(
                select(Administrator.id).where(Administrator.email_index.in_(candidates))
            )
        )


def key_ids_on_file(key_file: Path) -> list[str]:
    return [k.key_id for k in load_key_file(key_file).keys]


# --- a copy of the database without the key reveals nothing ---------------------------------

SCHOOL_NAME = "Basisschool De Zeldzame Zwaluw"
SCHOOL_BRIN = "31QX"
PERSONAL = {
    "org_email": "Directie.Qwertyuiop@Kwakmail.example",
    "iban": "NL20INGB0001234567",
    "notes": "Gesprek met Hieronymus Kwakkelstein over het rooster",
    "admin_name": "Hieronymus Kwakkelstein",
    "admin_email": "H.Kwakkelstein@Kwakmail.example",
    "phone_mobile": "+31687654321",
    "phone_landline": "+31501234567",
    "evidence": "Aanmeldformulier v7 bevestigd door Philippa Vlinderboom",
    "external_id": "cst_KwakkelVlinder42",
    "second_admin": "Philippa Vlinderboom",
}


def _variants(values: dict[str, str]) -> set[str]:
    """Each value, lower- and upper-cased, IBAN grouped, phones as E.164 and nationally."""
    found: set[str] = set()
    for value in values.values():
        found |= {value, value.lower(), value.upper()}
    found |= {"NL20 INGB 0001 2345 67", "Kwakkelstein", "Vlinderboom", "Qwertyuiop"}
    for e164 in (values["phone_mobile"], values["phone_landline"]):
        national = "0" + e164.removeprefix("+31")
        found |= {e164, e164.removeprefix("+"), national, national[:2] + " " + national[2:]}
    return found


def _scan(paths: list[Path], needles: set[str]) -> set[str]:
    data = b"".join(p.read_bytes() for p in paths if p.exists())
    return {n for n in needles if n.encode() in data}


@SQLITE_ONLY
def test_raw_database_and_wal_hold_no_personal_plaintext(ctx: AppContext) -> None:
    db_file = Path(ctx.engine.url.database or "")
    wal_file = db_file.with_name(db_file.name + "-wal")
    keeper = ctx.engine.connect()  # an open connection keeps SQLite from folding the WAL away
    try:
        with db.session_scope(ctx.engine) as session:
            org = Organisation(
                name=SCHOOL_NAME,
                street="Vogelweg 12",
                postcode="9711 AB",
                city="Groningen",
                brin=SCHOOL_BRIN,
                phone="+31503000000",
                email=PERSONAL["org_email"],
                iban=PERSONAL["iban"],
                notes=PERSONAL["notes"],
            )
            session.add(org)
            session.flush()
            for name in (PERSONAL["admin_name"], PERSONAL["second_admin"]):
                admin = Administrator(
                    organisation_id=org.id,
                    name=name,
                    email=PERSONAL["admin_email"],
                    phones=json.dumps([PERSONAL["phone_mobile"], PERSONAL["phone_landline"]]),
                )
                session.add(admin)
                session.flush()
                session.add(
                    ConsentEvent(
                        administrator_id=admin.id,
                        purpose="newsletter",
                        action=ConsentAction.GRANTED,
                        occurred_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                        source="web-form",
                        evidence=PERSONAL["evidence"],
                    )
                )
                session.add(
                    ProviderLink(
                        provider="mollie",
                        subject_type="administrator",
                        subject_id=admin.id,
                        external_id=PERSONAL["external_id"],
                    )
                )
        needles = _variants(PERSONAL)
        public = {SCHOOL_NAME, SCHOOL_BRIN}

        # Before a checkpoint the new rows live in the WAL: the scan must see them there.
        assert wal_file.stat().st_size > 0
        assert _scan([wal_file], public) == public, "the scan cannot see the WAL's content"
        assert _scan([db_file, wal_file], needles) == set()

        db.sqlite_checkpoint(ctx.engine)
        assert wal_file.stat().st_size == 0
        assert _scan([db_file], public) == public, "the scan cannot see the database's content"
        assert _scan([db_file, wal_file], needles) == set()
    finally:
        keeper.close()
    # And the values are really there, readable with the key.
    with db.session_scope(ctx.engine) as session:
        admins = session.scalars(select(Administrator).order_by(Administrator.id)).all()
        assert [a.name for a in admins] == [PERSONAL["admin_name"], PERSONAL["second_admin"]]


# --- wrong, missing, exposed and environment keys ------------------------------------------


def test_wrong_key_file_names_the_field_and_never_returns_garbage(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    seed(ctx.engine, 1)
    ctx.close()
    write_key_file(key_file, Keyring([FieldKey.generate()]))  # someone else's key
    other = open_context(config_path)
    try:
        with db.session_scope(other.engine) as session:
            with pytest.raises(KeyProblem) as caught:
                session.scalars(select(Organisation.iban)).all()
            message = str(caught.value)
            assert "field organisation.iban" in message
            assert "not in the loaded key set" in message and "right key file" in message
            assert "NL91ABNA0417164300" not in message
        with db.session_scope(other.engine) as session, pytest.raises(KeyProblem):
            session.scalars(select(Administrator)).all()
    finally:
        other.close()


def test_key_with_same_id_but_other_secret_says_wrong_key(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    seed(ctx.engine, 1)
    ctx.close()
    real = load_key_file(key_file).primary
    write_key_file(key_file, Keyring([FieldKey(key_id=real.key_id, secret=os.urandom(32))]))
    other = open_context(config_path)
    try:
        with db.session_scope(other.engine) as session, pytest.raises(KeyProblem) as caught:
            session.scalars(select(Administrator.email)).all()
        assert "field administrator.email" in str(caught.value)
        assert "wrong key file" in str(caught.value)
    finally:
        other.close()


def test_missing_key_file_says_to_run_keys_init(config_path: Path, key_file: Path) -> None:
    key_file.unlink()
    with pytest.raises(KeyProblem) as caught:
        open_context(config_path)
    assert str(key_file) in str(caught.value)
    assert "plusjeklas keys init" in str(caught.value)


def test_world_readable_key_file_is_refused(config_path: Path, key_file: Path) -> None:
    key_file.chmod(0o644)
    with pytest.raises(KeyProblem) as caught:
        open_context(config_path)
    assert "readable by every user" in str(caught.value)
    key_file.chmod(0o640)  # group-readable is how a shared install runs
    open_context(config_path).close()


def _env_config(config_path: Path, variable: str) -> Path:
    lines = config_path.read_text().splitlines()
    swapped = [f'env = "{variable}"' if ln.startswith("file = ") else ln for ln in lines]
    path = config_path.with_name("env.toml")
    path.write_text("\n".join(swapped) + "\n")
    return path


def test_key_from_environment_variable(
    ctx: AppContext, config_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(ctx.engine, 2)
    expected = snapshot(ctx.engine)
    env_config = _env_config(config_path, "PLUSJEKLAS_TEST_KEYS")
    monkeypatch.delenv("PLUSJEKLAS_TEST_KEYS", raising=False)
    with pytest.raises(KeyProblem, match="PLUSJEKLAS_TEST_KEYS"):
        open_context(env_config)
    monkeypatch.setenv("PLUSJEKLAS_TEST_KEYS", format_keys(load_key_file(key_file)))
    key_file.unlink()  # proves the file is not what is being read
    from_env = open_context(env_config)
    try:
        assert snapshot(from_env.engine) == expected
        with pytest.raises(KeyProblem, match="managed outside"):
            rotate_keys(from_env.engine, from_env.settings, from_env.staff)
    finally:
        from_env.close()


# --- tokens are bound to their column ------------------------------------------------------


def test_token_moved_to_another_column_does_not_decrypt(ctx: AppContext) -> None:
    seed(ctx.engine, 1)
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE administrator SET email = (SELECT email FROM organisation)"))
        conn.execute(text("UPDATE organisation SET notes = iban"))
    with db.session_scope(ctx.engine) as session:
        with pytest.raises(KeyProblem, match=r"field administrator\.email"):
            session.scalars(select(Administrator.email)).all()
        with pytest.raises(KeyProblem, match=r"field organisation\.notes"):
            session.scalars(select(Organisation.notes)).all()
        # The untouched columns still read: the failure is the binding, not the key.
        assert session.scalars(select(Organisation.iban)).one() == "NL91ABNA0417164300"


# --- blind index ---------------------------------------------------------------------------


def test_blind_index_lookup_is_case_insensitive(ctx: AppContext) -> None:
    seed(ctx.engine, 3)
    assert find_admins(ctx.engine, ctx.keyring, "  beheerder.P1@SCHOOL1.EXAMPLE ") == [2]
    assert find_admins(ctx.engine, ctx.keyring, "beheerder.p1@school2.example") == []
    with ctx.engine.connect() as conn:
        stored = conn.execute(text("SELECT email_index FROM administrator WHERE id = 2")).scalar()
    assert stored == ctx.keyring.blind_index("beheerder.p1@school1.example")
    assert "beheerder" not in stored


def test_blind_index_lookup_halfway_through_a_rotation(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    seed(ctx.engine, 6)
    old_id = ctx.keyring.primary.key_id
    # organisation (6 rows) and provider_link (6) take 3 batches each; 2 more do admins 1-4.
    report = rotate_keys(ctx.engine, ctx.settings, ctx.staff, batch_size=2, stop_after_batches=8)
    assert not report.complete
    with ctx.engine.connect() as conn:
        admin_keys = dict(
            (row_id, Keyring.key_id_of(token))
            for row_id, token in conn.execute(text("SELECT id, email FROM administrator"))
        )
    rotated = sorted(i for i, k in admin_keys.items() if k == report.primary_key_id)
    waiting = sorted(i for i, k in admin_keys.items() if k == old_id)
    assert rotated == [1, 2, 3, 4] and waiting == [5, 6]

    fresh = open_context(config_path)  # what a new session sees: both keys from the file
    try:
        assert [k.key_id for k in fresh.keyring.keys] == [report.primary_key_id, old_id]
        for admin_id in (2, 6):
            email = f"BEHEERDER.P{admin_id - 1}@school{admin_id - 1}.example"
            assert find_admins(fresh.engine, fresh.keyring, email) == [admin_id]
        # Only the primary's index would miss the rows that still wait for their turn.
        only_new = Keyring([fresh.keyring.primary])
        assert find_admins(fresh.engine, only_new, "beheerder.p5@school5.example") == []
    finally:
        fresh.close()


# --- rotation ------------------------------------------------------------------------------


def test_full_rotation_reencrypts_every_row(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    seed(ctx.engine, 7)
    before = snapshot(ctx.engine)
    old_id = ctx.keyring.primary.key_id
    values = len(data_tokens(ctx.engine))

    report = rotate_keys(ctx.engine, ctx.settings, ctx.staff, batch_size=3)

    assert report.complete and not report.resumed
    assert report.primary_key_id != old_id and report.retired_key_ids == [old_id]
    assert report.rows_reencrypted == {
        "organisation": 7,
        "provider_link": 7,
        "administrator": 7,
        "consent_event": 7,
        "provider_state": 0,
        "legal_hold": 0,
        "deletion_task": 0,
        "restricted_record": 0,
        **NEW_TABLES,
    }
    assert key_ids_on_file(key_file) == [report.primary_key_id]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(data_tokens(ctx.engine)) == values
    tokens = raw_tokens(ctx.engine)
    assert {Keyring.key_id_of(t) for *_, t in tokens} == {report.primary_key_id}

    fresh = open_context(config_path)
    try:
        assert snapshot(fresh.engine) == before
        assert find_admins(fresh.engine, fresh.keyring, "Beheerder.P4@School4.example") == [5]
        with fresh.engine.connect() as conn:
            indexes = conn.execute(text("SELECT email_index FROM organisation ORDER BY id"))
            assert [row[0] for row in indexes] == [
                fresh.keyring.blind_index(f"info.p{i}@school{i}.example") for i in range(7)
            ]
            link = conn.execute(text("SELECT external_id_index FROM provider_link WHERE id = 3"))
            assert link.scalar() == fresh.keyring.blind_index("cst_p2")
    finally:
        fresh.close()

    with db.session_scope(ctx.engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotate")).one()
    detail = json.loads(event.detail)
    assert event.actor == ctx.staff.username
    assert detail["complete"] is True and detail["rows"] == 28 and detail["keys_retired"] == 1
    assert old_id not in event.detail and report.primary_key_id not in event.detail
    assert "school" not in event.detail.lower()


def test_rotation_keeps_a_group_readable_key_file_group_readable(
    ctx: AppContext, key_file: Path
) -> None:
    key_file.chmod(0o640)
    rotate_keys(ctx.engine, ctx.settings, ctx.staff, stop_after_batches=0)
    assert key_file.stat().st_mode & 0o777 == 0o640
    rotate_keys(ctx.engine, ctx.settings, ctx.staff)
    assert key_file.stat().st_mode & 0o777 == 0o640


def test_rotation_of_a_symlinked_key_file_keeps_the_link(config_path: Path, key_file: Path) -> None:
    link = key_file.with_name("current.key")
    link.symlink_to(key_file)
    config_path.write_text(config_path.read_text().replace(str(key_file), str(link)))
    context = open_context(config_path)
    try:
        report = rotate_keys(context.engine, context.settings, context.staff)
    finally:
        context.close()
    assert link.is_symlink() and link.resolve() == key_file.resolve()
    assert key_ids_on_file(key_file) == [report.primary_key_id]


def test_interrupted_rotation_keeps_both_keys_and_finishes_when_run_again(
    ctx: AppContext, config_path: Path, key_file: Path
) -> None:
    seed(ctx.engine, 5)
    before = snapshot(ctx.engine)
    old_id = ctx.keyring.primary.key_id
    url = ctx.settings.database_url
    seen: list[Counter[str]] = []

    def check(_table: str, _done: int, _to_do: int) -> None:
        seen.append(assert_every_row_readable_from_file(url, key_file))

    first = rotate_keys(
        ctx.engine, ctx.settings, ctx.staff, batch_size=2, stop_after_batches=4, progress=check
    )
    new_id = first.primary_key_id
    assert not first.complete and first.batches == 4 and first.rows_left > 0
    assert key_ids_on_file(key_file) == [new_id, old_id]
    in_use = assert_every_row_readable_from_file(url, key_file)
    assert in_use[new_id] > 0 and in_use[old_id] > 0
    # At every batch boundary the file on disk could read every row, and progress was made.
    assert len(seen) == 4
    assert [c[new_id] for c in seen] == sorted(c[new_id] for c in seen)
    ctx.close()

    again = open_context(config_path)  # a new process: it knows only what is on disk
    try:
        assert snapshot(again.engine) == before
        second = rotate_keys(
            again.engine, again.settings, again.staff, batch_size=2, progress=check
        )
        assert second.complete and second.resumed
        assert second.primary_key_id == new_id and second.retired_key_ids == [old_id]
        assert first.total_rows + second.total_rows == 20
        assert key_ids_on_file(key_file) == [new_id]
        assert key_ids_in_use(again.engine) == Counter({new_id: len(raw_tokens(again.engine))})
        assert snapshot(again.engine) == before
    finally:
        again.close()
    fresh = open_context(config_path)
    try:
        assert snapshot(fresh.engine) == before
    finally:
        fresh.close()


def test_rotation_stopped_before_any_row_leaves_everything_readable(
    ctx: AppContext, key_file: Path
) -> None:
    seed(ctx.engine, 2)
    old_id = ctx.keyring.primary.key_id
    report = rotate_keys(ctx.engine, ctx.settings, ctx.staff, stop_after_batches=0)
    assert not report.complete and report.batches == 0
    assert key_ids_on_file(key_file) == [report.primary_key_id, old_id]
    tokens = raw_tokens(ctx.engine)
    # the rotation's own audit event is sealed with a MAC key kept under the new key: the
    # one value written under it; every row of data is still under the old key
    new = [token for table, *_, token in tokens if Keyring.key_id_of(token) != old_id]
    assert {table for table, *_, token in tokens if token in new} <= {"audit_mac_key"}
    assert (
        assert_every_row_readable_from_file(ctx.settings.database_url, key_file)
        == Counter({old_id: len(tokens) - len(new), report.primary_key_id: len(new)}) - Counter()
    )


def test_rows_written_under_the_old_key_during_rotation_are_caught(
    ctx: AppContext, key_file: Path
) -> None:
    """Another session, still on the old key, saves a row the rotation already did.

    Such a session cannot read rotated rows (it knows only the old key), but it can still write
    one blindly, with its old key and old-key blind index; the next pass must pick that up.
    """
    seed(ctx.engine, 4)
    old_ring = load_key_file(key_file)
    other = db.make_engine(ctx.settings.database_url, old_ring)
    written: list[str] = []

    def edit_behind_its_back(table: str, _done: int, _to_do: int) -> None:
        if table == "administrator" and not written:
            with other.begin() as conn:
                conn.execute(
                    update(Administrator.__table__)  # type: ignore[arg-type]
                    .where(text("id = 1"))
                    .values(
                        name="Nieuwe Naam Tijdens Rotatie",
                        email_index=old_ring.blind_index("beheerder.p0@school0.example"),
                    )
                )
            written.append(table)

    try:
        report = rotate_keys(
            ctx.engine, ctx.settings, ctx.staff, batch_size=2, progress=edit_behind_its_back
        )
    finally:
        other.dispose()
    assert written and report.complete
    assert report.rows_reencrypted["administrator"] == 5  # 4, then the edited one again
    assert set(key_ids_in_use(ctx.engine)) == {report.primary_key_id}
    with db.session_scope(ctx.engine) as session:
        edited = session.get(Administrator, 1)
        assert edited is not None and edited.name == "Nieuwe Naam Tijdens Rotatie"
    only_new = load_key_file(key_file)
    assert [k.key_id for k in only_new.keys] == [report.primary_key_id]
    assert find_admins(ctx.engine, only_new, "beheerder.p0@school0.example") == [1]


def test_rotation_refuses_a_key_file_that_cannot_read_the_data(
    ctx: AppContext, key_file: Path
) -> None:
    seed(ctx.engine, 1)
    stranger = Keyring([FieldKey.generate()])
    write_key_file(key_file, stranger)
    with pytest.raises(KeyProblem, match="not in the loaded key set"):
        rotate_keys(ctx.engine, ctx.settings, ctx.staff)
    assert key_ids_on_file(key_file) == [stranger.primary.key_id]  # no key was added


def test_rotation_needs_the_admin_role(open_as: Any, config_path: Path, key_file: Path) -> None:
    before = key_file.read_bytes()
    for user in ("vera", "eddie"):
        context = open_as(user)
        with pytest.raises(PermissionDenied, match="manage-keys"):
            rotate_keys(context.engine, context.settings, context.staff)
    assert key_file.read_bytes() == before


# --- a rotation killed for real ----------------------------------------------------------------


def _bulk_seed(settings: Settings, keyring: Keyring, schools: int, admins_each: int) -> None:
    """Thousands of rows quickly: Core inserts, blind indexes computed here (no ORM events)."""
    engine = db.make_engine(settings.database_url, keyring)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Organisation.__table__),  # type: ignore[arg-type]
                [
                    {
                        "id": i + 1,
                        "name": f"School {i}",
                        "street": "Dorpsstraat 1",
                        "postcode": "1234 AB",
                        "city": "Utrecht",
                        "brin": f"{i % 100:02d}{chr(65 + i // 100 % 26)}{chr(65 + i // 2600)}",
                        "phone": "+31302345678",
                        "email": f"info{i}@school.example",
                        "email_index": keyring.blind_index(f"info{i}@school.example"),
                        "iban": "NL91ABNA0417164300",
                        "version": 1,
                    }
                    for i in range(schools)
                ],
            )
            conn.execute(
                insert(Administrator.__table__),  # type: ignore[arg-type]
                [
                    {
                        "organisation_id": i // admins_each + 1,
                        "name": f"Beheerder {i}",
                        "email": f"b{i}@school.example",
                        "email_index": keyring.blind_index(f"b{i}@school.example"),
                        "phones": json.dumps([f"+316{i:08d}"]),
                        "version": 1,
                    }
                    for i in range(schools * admins_each)
                ],
            )
    finally:
        engine.dispose()


def _cli(config: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "plusjeklas_tui", "--config", str(config), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
        **kwargs,
    )


@SQLITE_ONLY
def test_rotation_killed_mid_way_is_readable_and_finishes_when_run_again(
    config_path: Path, key_file: Path
) -> None:
    settings = load_file(config_path)
    old = load_key_file(key_file)
    _bulk_seed(settings, old, schools=1000, admins_each=3)
    probe = db.make_engine(settings.database_url, old)
    before = snapshot(probe)
    total_values = len(data_tokens(probe))
    probe.dispose()

    proc = _cli(config_path, "keys", "rotate", "--batch-size", "20", stderr=subprocess.PIPE)
    assert proc.stderr is not None
    progress_lines = 0
    for line in proc.stderr:
        if "rows re-encrypted" in line:
            progress_lines += 1
        if progress_lines == 60:  # all 50 organisation batches, then some administrators
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the rotation ended before it could be killed"

    new_id, old_id = key_ids_on_file(key_file)
    assert old_id == old.primary.key_id
    in_use = assert_every_row_readable_from_file(settings.database_url, key_file)
    assert in_use[new_id] >= 1000 and in_use[old_id] > 0  # genuinely half-way
    probe = db.make_engine(settings.database_url)
    audit_keys = len(raw_tokens(probe)) - len(data_tokens(probe))
    probe.dispose()
    assert sum(in_use.values()) == total_values + audit_keys

    finish = _cli(
        config_path,
        "keys",
        "rotate",
        "--batch-size",
        "500",
        "--json",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    report = json.loads(out)
    assert report["complete"] and report["resumed"] and report["primary_key_id"] == new_id
    assert in_use[old_id] % 3 == 0  # whole rows: a batch commits all three values or none
    assert report["rows_reencrypted"] == {
        "organisation": 0,
        "provider_link": 0,
        "administrator": in_use[old_id] // 3,
        "consent_event": 0,
        "provider_state": 0,
        "legal_hold": 0,
        "deletion_task": 0,
        "restricted_record": 0,
        **NEW_TABLES,
    }
    assert key_ids_on_file(key_file) == [new_id]
    after = db.make_engine(settings.database_url, load_key_file(key_file))
    try:
        data = Counter(Keyring.key_id_of(token) for *_, token in data_tokens(after))
        assert data == Counter({new_id: total_values})
        assert set(key_ids_in_use(after)) == {new_id}
        assert snapshot(after) == before
        assert find_admins(after, load_key_file(key_file), "B2999@school.example") == [3000]
    finally:
        after.dispose()
