"""Start-up stays lean: what `plusjeklas` imports before the app opens, and the shortcuts it takes.

The staff app is started for every SSH login, so its cold start is budgeted (issue 3: the
floor ``import textual.app, sqlmodel`` + 0.4 s). Alembic, the demo generator, the importer and
the exporter are imported only by the commands that use them; the revision check on every start
reads the migration files' text instead of asking Alembic. These tests keep it that way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plusjeklas_tui import db
from plusjeklas_tui.cli import demo as demo_command
from plusjeklas_tui.errors import DatabaseNotReady
from plusjeklas_tui.services import demo as demo_service

ROOT = Path(__file__).resolve().parents[1]
NOT_AT_START = ("alembic", "mako", "faker")
NOT_AT_START_OURS = (
    "plusjeklas_tui.services.demo",
    "plusjeklas_tui.services.importer",
    "plusjeklas_tui.services.exporter",
)


def test_revisions_read_from_the_files_equal_alembics_view() -> None:
    assert db.migration_revisions() == db.alembic_revisions()
    from alembic.script import ScriptDirectory

    assert db.head_revision() == ScriptDirectory.from_config(db.alembic_config()).get_heads()[0]


def test_opening_the_app_imports_no_migration_or_demo_code(config_path: Path) -> None:
    """What `plusjeklas` imports up to the moment it builds the app, on a ready database."""
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from plusjeklas_tui import cli\n"
        "from plusjeklas_tui.cli.common import CliState\n"
        "import plusjeklas_tui.tui.app\n"
        f"CliState(config_path=Path({str(config_path)!r})).context()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PLUSJEKLAS_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    loaded = json.loads(result.stdout)
    unwanted = [
        name
        for name in loaded
        if name.split(".")[0] in NOT_AT_START or name.startswith(NOT_AT_START_OURS)
    ]
    assert unwanted == []
    assert "textual.app" in loaded and "plusjeklas_tui.models" in loaded  # the probe ran
    # the commands load lazily: opening the app imports none of their modules
    assert [name for name in loaded if name.startswith("plusjeklas_tui.cli.")] == [
        "plusjeklas_tui.cli.common"
    ]


def test_demo_command_defaults_are_the_services() -> None:
    """The CLI repeats them (to avoid importing the generator); they must not drift apart."""
    options = {param.name: param.default for param in demo_command.demo.params}
    assert options["schools"] == demo_service.DEFAULT_SCHOOLS
    assert options["seed"] == demo_service.DEFAULT_SEED


def test_current_revision_without_alembic(blank_db_url: str) -> None:
    engine = db.make_engine(blank_db_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('ffff')")
        with pytest.raises(DatabaseNotReady, match="several revisions"):
            db.current_revision(engine)
    finally:
        engine.dispose()
