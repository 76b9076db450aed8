"""`plusjeklas deletions run|list|retry`: output and exit codes, through real plugin discovery.

The providers come from a small plugin installed for the test as an entry-point distribution
(as a third-party plugin would be) and configured in ``[plugins.<name>]`` tables: ``memorybox``
keeps its subjects in a JSON file and ``brokenbox`` always answers 500.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.models import DeletionTask, ErasureReceipt
from plusjeklas_tui.plugins import ONLY_ENV
from plusjeklas_tui.services import deletions
from plusjeklas_tui.sqltypes import utcnow

ConfigWriter = Callable[..., Path]
PERSONAL = "jan.jansen@school.example"

PLUGIN = textwrap.dedent(
    """
    import json
    import threading
    from pathlib import Path
    from plusjeklas_tui.hookspecs import hookimpl
    from plusjeklas_tui.providers import (
        ErasureOutcome, ErasureStatus, Health, ProcessorDetails, Provider, ProviderError,
        ProviderInfo, ProviderKind,
    )

    def info(name):
        return ProviderInfo(
            name=name, kind=ProviderKind.NEWSLETTER, title=name.title(),
            processor=ProcessorDetails(
                company=name, country="NL", data_categories=("e-mail",), agreement="test"),
        )

    LOCK = threading.RLock()  # the worker calls one provider from several threads

    class MemoryBox(Provider):
        info = info("memorybox")

        def _state(self):
            with LOCK:
                return json.loads(Path(self.config.options["state"]).read_text())

        def _save(self, state):
            Path(self.config.options["state"]).write_text(json.dumps(state))

        def health(self): return Health(True)
        def sync(self, checkpoint): return iter(())
        def push(self, changes): return []
        def export(self, subject): return {}

        def erase(self, subject):
            with LOCK:
                state = self._state()
                state["calls"].append(subject.external_id)
                gone = subject.external_id not in state["held"]
                if not gone:
                    state["held"].remove(subject.external_id)
                self._save(state)
            return ErasureOutcome(ErasureStatus.ALREADY_GONE if gone else ErasureStatus.ERASED)

        def verify_erased(self, subject):
            return subject.external_id not in self._state()["held"]

    class BrokenBox(MemoryBox):
        info = info("brokenbox")

        def erase(self, subject):
            raise ProviderError("Brokenbox answered 500: internal error", status=500,
                                transient=True)

    @hookimpl
    def register_providers(register):
        register(MemoryBox)
        register(BrokenBox)
    """
)


@pytest.fixture
def boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the test plugin; return the memorybox state file."""
    site = tmp_path / "site"
    info = site / "plusjeklas_test_boxes-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: plusjeklas_test_boxes\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text("[plusjeklas]\nboxes = plusjeklas_test_boxes\n")
    (site / "plusjeklas_test_boxes.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(ONLY_ENV, "boxes")
    state = tmp_path / "memorybox.json"
    state.write_text(json.dumps({"held": ["m-1", "m-2"], "calls": []}))
    return state


@pytest.fixture
def config(write_config: ConfigWriter, boxes: Path) -> Path:
    extra = textwrap.dedent(
        f"""
        [plugins.memorybox]
        enabled = true
        state = "{boxes}"

        [plugins.brokenbox]
        enabled = true
        timeout_seconds = 1.0

        [plugins.ghostbox]
        enabled = true
        """
    )
    path = write_config(extra=extra)
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


def invoke(config: Path, *args: str, user: str | None = None) -> Result:
    prefix = ["--user", user] if user else []
    return CliRunner().invoke(
        main, ["--config", str(config), *prefix, "deletions", *args], catch_exceptions=False
    )


def add_tasks(config: Path, *pairs: tuple[str, str]) -> list[int]:
    from plusjeklas_tui.context import open_context

    context = open_context(config)
    ids = []
    try:
        with db.session_scope(context.engine) as session:
            receipt = ErasureReceipt(
                subject_type="administrator",
                subject_id=1,
                erased_at=utcnow(),
                basis="request",
                rule="request by the data subject",
                actor="tester",
            )
            session.add(receipt)
            session.flush()
            assert receipt.id is not None
            for provider, external_id in pairs:
                task = DeletionTask(
                    receipt_id=receipt.id,
                    provider=provider,
                    subject_type="administrator",
                    subject_id=1,
                    locator=deletions.make_locator(external_id=external_id, email=PERSONAL),
                    next_attempt_at=utcnow(),
                )
                session.add(task)
                session.flush()
                assert task.id is not None
                ids.append(task.id)
    finally:
        context.close()
    return ids


def raw_locators(config: Path) -> dict[int, str | None]:
    engine = db.make_engine(load_file(config).database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, locator FROM deletion_task")).all()
    finally:
        engine.dispose()
    return {row.id: row.locator for row in rows}


def test_run_once_delivers_reports_and_exits_1_when_something_failed(
    config: Path, boxes: Path
) -> None:
    good, gone, broken, ghost = add_tasks(
        config,
        ("memorybox", "m-1"),
        ("memorybox", "m-9"),
        ("brokenbox", "b-1"),
        ("ghostbox", "g-1"),
    )
    result = invoke(config, "run", "--once")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert "memorybox: 2 done, 0 failed" in lines
    assert "brokenbox: 0 done, 1 failed" in lines
    assert "  brokenbox: Brokenbox answered 500: internal error" in lines
    assert (
        "ghostbox: 0 done, 0 failed, 1 not attempted — provider not available: "
        "enabled in the configuration, but no plugin for it"
    ) in lines
    assert PERSONAL not in result.stderr
    state = json.loads(boxes.read_text())
    assert sorted(state["calls"]) == ["m-1", "m-9"] and state["held"] == ["m-2"]
    locators = raw_locators(config)
    assert locators[good] is None and locators[gone] is None
    assert locators[broken] is not None and locators[ghost] is not None


def test_run_once_exits_0_when_everything_was_delivered(config: Path, boxes: Path) -> None:
    add_tasks(config, ("memorybox", "m-1"), ("memorybox", "m-2"))
    result = invoke(config, "run", "--once", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["done"] == 2 and report["failed"] == 0
    assert [p["provider"] for p in report["providers"]] == ["memorybox"]
    again = invoke(config, "run", "--once")
    assert again.exit_code == 0 and again.stderr.strip() == "nothing due"
    assert sorted(json.loads(boxes.read_text())["calls"]) == ["m-1", "m-2"]


def test_list_shows_provider_state_attempts_next_attempt_and_reason(config: Path) -> None:
    good, broken, ghost = add_tasks(
        config, ("memorybox", "m-1"), ("brokenbox", "b-1"), ("ghostbox", "g-1")
    )
    assert invoke(config, "run", "--once").exit_code == 1

    result = invoke(config, "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "PROVIDER", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "REASON"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert set(by_id) == {str(broken), str(ghost)}
    ghost_cells = by_id[str(ghost)].split(None, 5)
    assert ghost_cells[1:5] == ["ghostbox", "pending", "0", "now"]
    assert ghost_cells[5] == (
        "provider not available: enabled in the configuration, but no plugin for it"
    )
    broken_cells = by_id[str(broken)].split(None, 6)
    assert broken_cells[1:4] == ["brokenbox", "pending", "1"]
    assert broken_cells[4] != "now"  # a date and a time: backed off
    assert broken_cells[6] == "Brokenbox answered 500: internal error"

    every = invoke(config, "list", "--all", "--json")
    rows = {row["id"]: row for row in json.loads(every.stdout)}
    assert set(rows) == {good, broken, ghost}
    assert rows[good]["state"] == "done" and rows[good]["outcome"] == "erased"
    assert rows[good]["verified"] is True and rows[good]["next_attempt_at"] is None
    assert rows[broken]["attempts"] == 1 and rows[broken]["blocked"] is None
    assert rows[broken]["last_error"] == "Brokenbox answered 500: internal error"
    assert rows[ghost]["blocked"].startswith("provider not available:")
    assert "locator" not in rows[good] and PERSONAL not in every.stdout


def test_list_says_when_nothing_is_pending(config: Path) -> None:
    result = invoke(config, "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip() == "no pending deletion tasks"


def test_retry_makes_a_task_due_now(config: Path) -> None:
    [broken] = add_tasks(config, ("brokenbox", "b-1"))
    invoke(config, "run", "--once")
    before = json.loads(invoke(config, "list", "--json").stdout)[0]
    assert before["next_attempt_at"] > utcnow().isoformat()

    denied = invoke(config, "retry", str(broken), user="eddie")
    assert denied.exit_code == 2 and "'erase' permission" in denied.stderr
    result = invoke(config, "retry", str(broken))
    assert result.exit_code == 0
    assert f"deletion task {broken} is due now" in result.stderr
    after = json.loads(invoke(config, "list", "--json").stdout)[0]
    assert after["next_attempt_at"] <= utcnow().isoformat()
    assert after["attempts"] == 1 and after["last_error"] == before["last_error"]
    rerun = invoke(config, "run", "--once")
    assert "brokenbox: 0 done, 1 failed" in rerun.stderr.splitlines()

    missing = invoke(config, "retry", "424242")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "Error: deletion task 424242 does not exist"


def test_retry_of_a_done_task_is_refused(config: Path) -> None:
    [good] = add_tasks(config, ("memorybox", "m-1"))
    assert invoke(config, "run", "--once").exit_code == 0
    result = invoke(config, "retry", str(good))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: deletion task {good} is already done; nothing to retry"
    )
