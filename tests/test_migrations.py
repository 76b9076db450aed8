"""Migrations: fresh upgrade, refusal of unmigrated and newer databases, the SQLite cascade trap."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import inspect, text

from plusjeklas_tui import db
from plusjeklas_tui.errors import DatabaseNotReady
from plusjeklas_tui.models import metadata
from plusjeklas_tui.services.organisation_list import not_search_index

TABLES = {
    "organisation",
    "administrator",
    "subscription",
    "consent_event",
    "provider_link",
    "audit_event",
}


def test_fresh_upgrade_creates_every_table(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    db.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert db.current_revision(engine) == db.head_revision()
    db.ensure_ready(engine)  # does not raise
    db.upgrade(engine)  # a second run is a no-op
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_models_and_migrations_agree(blank_db_url: str) -> None:
    """Autogenerate against a migrated database finds nothing: no model change lacks a migration.

    The organisations' search index (migration 0002: SQLite's FTS5 tables, PostgreSQL's
    trigram indexes) is not a model, so it is left out of the comparison.
    """
    engine = db.make_engine(blank_db_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": not_search_index}
        )
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    db.upgrade(engine)
    with db.migration_connection(engine) as conn:
        from alembic import command

        command.downgrade(db.alembic_config(conn), "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_unmigrated_database_is_refused_with_what_to_run(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    with pytest.raises(DatabaseNotReady, match=r"not set up .*run `plusjeklas db upgrade`"):
        db.ensure_ready(engine)
    engine.dispose()


def test_database_migrated_by_newer_version_is_refused(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    with pytest.raises(DatabaseNotReady, match=r"newer version of plusjeklas.*f00dfeed9999"):
        db.ensure_ready(engine)
    engine.dispose()


def test_open_context_refuses_unmigrated_database(write_config, blank_db_url: str) -> None:
    from plusjeklas_tui.context import open_context

    path = write_config()
    with pytest.raises(DatabaseNotReady) as caught:
        open_context(path)
    assert caught.value.exit_code == 2


# --- the SQLite batch-migration cascade trap -------------------------------------------------


def _seed_parent_with_children(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisation (id, name, street, postcode, city, brin, phone,"
                " created_at, updated_at, version) VALUES (1, 'OBS Test', 'Kerkstraat 1',"
                " '1234 AB', 'Utrecht', '05KO', '+31201234567', '2026-01-01', '2026-01-01', 1)"
            )
        )
        for n in range(5):
            conn.execute(
                text(
                    "INSERT INTO administrator (organisation_id, name, email, phones, created_at,"
                    " updated_at, version) VALUES (1, 'x', 'y', 'z', '2026-01-01', '2026-01-01', 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO subscription (organisation_id, plan, start_date, status,"
                    " created_at, updated_at) VALUES (1, :plan, '2025-01-01', 'active',"
                    " '2026-01-01', '2026-01-01')"
                ),
                {"plan": f"plan {n}"},
            )


def _children(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        admins = conn.execute(text("SELECT count(*) FROM administrator")).scalar_one()
        subs = conn.execute(text("SELECT count(*) FROM subscription")).scalar_one()
    return admins, subs


def _alter_parent(conn: sa.Connection) -> None:
    """A batch migration that rebuilds the parent table, as any SQLite ALTER beyond ADD does."""
    ops = Operations(MigrationContext.configure(conn, opts={"render_as_batch": True}))
    with ops.batch_alter_table("organisation", recreate="always") as batch:
        batch.add_column(sa.Column("website", sa.String(200), nullable=True))


def test_batch_migration_of_parent_keeps_child_rows(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'trap.db'}")
    db.upgrade(engine)
    _seed_parent_with_children(engine)
    assert _children(engine) == (5, 5)
    with db.migration_connection(engine) as conn:
        _alter_parent(conn)
    assert _children(engine) == (5, 5)
    assert "website" in {c["name"] for c in inspect(engine).get_columns("organisation")}
    with engine.connect() as conn:  # foreign keys are enforced again afterwards
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    engine.dispose()


def test_the_trap_is_real_with_foreign_keys_on(tmp_path) -> None:
    """Control: the same migration on an ordinary connection (foreign_keys=ON) loses children."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'trap.db'}")
    db.upgrade(engine)
    _seed_parent_with_children(engine)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        _alter_parent(conn)
    assert _children(engine) == (0, 0)
    engine.dispose()


def test_migration_with_orphans_is_rolled_back(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'orphan.db'}")
    db.upgrade(engine)
    _seed_parent_with_children(engine)
    with (
        pytest.raises(DatabaseNotReady, match="parent is missing in: administrator"),
        db.migration_connection(engine) as conn,
    ):
        conn.execute(text("DELETE FROM organisation"))  # FKs are off: children orphaned
    assert _children(engine) == (5, 5)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organisation")).scalar_one() == 1
    engine.dispose()
