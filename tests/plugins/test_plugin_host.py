"""The plugin host: discovery, isolation of broken plugins, sync bookkeeping, events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import broken_plugins
import pytest
from sqlalchemy import select

from plusjeklas_tui import plugins
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.models import ProviderFailure, ProviderState, SyncRun
from plusjeklas_tui.providers import (
    Health,
    InsecureBaseUrl,
    ProviderConfig,
    ProviderError,
    check_base_url,
    redact,
)
from plusjeklas_tui.services import sync

SQLITE_ONLY = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def _release_hanging_threads() -> Iterator[None]:
    broken_plugins.RELEASE.clear()
    yield
    broken_plugins.RELEASE.set()


def config(name: str, timeout: float = 0.2) -> ProviderConfig:
    return ProviderConfig(name=name, base_url=None, api_key=None, timeout_seconds=timeout)


# --- discovery ---------------------------------------------------------------------------------


def test_bundled_plugins_are_found_through_the_entry_point_group() -> None:
    found = plugins.discover()
    names = {name for name, _ in found.manager.list_name_plugin()}
    assert {"mailchimp", "mollie", "matomo"} <= names
    assert not found.failures


def _fake_distribution(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(tmp_path, "ghost_plugin", "[plusjeklas]\nghost = plusjeklas_ghost_missing\n")
    (tmp_path / "plusjeklas_syntax_error.py").write_text("def broken(:\n")
    _fake_distribution(
        tmp_path, "syntax_plugin", "[plusjeklas]\nsyntax = plusjeklas_syntax_error\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = plugins.discover()
    reasons = {failure.name: failure.reason for failure in found.failures}
    assert reasons["ghost"] == "ModuleNotFoundError: cannot import plusjeklas_ghost_missing"
    assert reasons["syntax"].startswith("SyntaxError in plusjeklas_syntax_error.py line 1")
    assert "mailchimp" in {name for name, _ in found.manager.list_name_plugin()}


def test_only_env_narrows_which_plugins_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.ONLY_ENV, "mollie")
    names = {name for name, _ in plugins.discover().manager.list_name_plugin()}
    assert names == {"mollie"}


def test_registration_failures_are_recorded_per_plugin() -> None:
    found = plugins.discover(
        extra=[
            *broken_plugins.BROKEN,
            ("fails", broken_plugins.failing_registration()),
            ("wrong", broken_plugins.wrong_registration()),
            ("dupe", broken_plugins.module("dupe", broken_plugins.Raises)),
        ]
    )
    reasons = {failure.name: failure.reason for failure in found.failures}
    assert reasons["fails"] == "RuntimeError raised inside the plugin"
    assert reasons["wrong"] == "registered type, not a Provider subclass"
    assert reasons["dupe"] == "provider 'raises' is already registered"
    assert {"raises", "hangs", "garbage"} <= set(found.providers)


# --- isolated calls ----------------------------------------------------------------------------


def test_a_hanging_call_is_abandoned_at_its_deadline() -> None:
    provider = broken_plugins.Hangs(config("hangs"))
    started = time.monotonic()
    outcome = plugins.call_with_deadline(provider.health, deadline_seconds=0.3, what="hangs")
    assert time.monotonic() - started < 1.0
    assert not outcome.ok and outcome.timed_out
    assert outcome.reason == "hangs did not answer within 0.3 s"


def test_an_exception_becomes_a_reason_without_its_personal_message() -> None:
    outcome = plugins.call_with_deadline(
        broken_plugins.Raises(config("raises")).health, deadline_seconds=1, what="health"
    )
    assert not outcome.ok
    assert outcome.reason == "RuntimeError raised inside the plugin"
    assert "@" not in outcome.reason


def test_a_wrong_return_type_is_a_failure() -> None:
    outcome = plugins.call_with_deadline(
        broken_plugins.Garbage(config("garbage")).health,
        deadline_seconds=1,
        expect=Health,
        what="garbage health",
    )
    assert outcome == plugins.CallOutcome(
        ok=False, reason="garbage health returned str, which is not expected"
    )


def test_provider_errors_keep_their_reason_and_transience() -> None:
    def fails() -> None:
        raise ProviderError("Mailchimp 429 Too Many Requests: slow down", transient=True)

    outcome = plugins.call_with_deadline(fails, deadline_seconds=1)
    assert outcome.reason == "Mailchimp 429 Too Many Requests: slow down"
    assert outcome.transient


# --- sync bookkeeping with broken providers ----------------------------------------------------


@SQLITE_ONLY
def test_broken_providers_fail_their_own_runs_and_stop_nothing(ctx: AppContext) -> None:
    broken = [
        broken_plugins.Raises(config("raises")),
        broken_plugins.Hangs(config("hangs")),
        broken_plugins.Garbage(config("garbage")),
    ]
    started = time.monotonic()
    reports = sync.sync(ctx.engine, broken, ctx.staff, ctx.settings.consent_purposes)
    assert time.monotonic() - started < 3.0  # the hang costs its deadline (0.6 s), not more
    by_name = {report.provider: report for report in reports}
    assert by_name["raises"].state == "failed"
    assert by_name["raises"].error == "RuntimeError raised inside the plugin"
    assert by_name["hangs"].error == "hangs sync page did not answer within 0.6 s"
    assert by_name["garbage"].error == ("garbage sync page returned dict, which is not expected")
    with session_scope(ctx.engine) as session:
        failures = {f.provider: f.reason for f in session.scalars(select(ProviderFailure))}
        runs = {r.provider: r.state for r in session.scalars(select(SyncRun))}
        states = {s.provider: s for s in session.scalars(select(ProviderState))}
        assert failures == {name: by_name[name].error for name in by_name}
        assert runs == dict.fromkeys(by_name, "failed")
        assert all(state.failures_in_a_row == 1 for state in states.values())


@SQLITE_ONLY
def test_a_viewer_cannot_sync(open_as) -> None:  # type: ignore[no-untyped-def]
    viewer = open_as("vera")
    with pytest.raises(Exception, match="run a provider sync"):
        sync.sync(viewer.engine, [], viewer.staff, viewer.settings.consent_purposes)


# --- events ------------------------------------------------------------------------------------


def test_events_reach_every_listener_even_when_one_raises() -> None:
    heard: list[tuple[str, int]] = []

    class Listener:
        @hookimpl
        def consent_changed(self, administrator_id: int, purpose: str) -> None:
            heard.append((purpose, administrator_id))

    class Exploder:
        @hookimpl
        def consent_changed(self, administrator_id: int) -> None:
            raise RuntimeError("listener broke")

    found = plugins.discover(extra=[("exploder", Exploder()), ("listener", Listener())])
    failures = plugins.notify(
        found,
        "consent_changed",
        administrator_id=7,
        purpose="newsletter",
        action="withdrawn",
        source="staff:x",
    )
    assert heard == [("newsletter", 7)]
    assert failures == [("exploder", "RuntimeError raised inside the plugin")]


# --- in transit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://us21.api.mailchimp.com/3.0", "http://127.0.0.1:8080/v2", "http://localhost:1/x"],
)
def test_https_or_loopback_addresses_are_accepted(url: str) -> None:
    assert check_base_url(url, "mailchimp") == url


@pytest.mark.parametrize(
    "url", ["http://api.mollie.com/v2", "http://10.0.0.8/v2", "ftp://x.example", "api.example"]
)
def test_other_addresses_are_refused_with_the_rule(url: str) -> None:
    with pytest.raises(InsecureBaseUrl, match=r"plugins\.mollie\.base_url must start with https"):
        check_base_url(url, "mollie")


def test_redact_takes_out_addresses_ibans_and_numbers() -> None:
    text = "piet.de.vries@school.example is in list; IBAN NL91 ABNA 0417 1643 00; call 0612345678"
    assert redact(text) == "<e-mail> is in list; IBAN <iban>; call <number>"


@SQLITE_ONLY
def test_committed_changes_become_events_and_rolled_back_ones_do_not(ctx: AppContext) -> None:
    from plusjeklas_tui import events
    from plusjeklas_tui.services import audit, records

    heard: list[tuple[str, dict]] = []

    class Listener:
        @hookimpl
        def record_changed(self, entity: str, entity_id: int, fields: list[str]) -> None:
            heard.append(("record", {"entity": entity, "id": entity_id, "fields": fields}))

        @hookimpl
        def consent_changed(self, administrator_id: int, purpose: str, action: str) -> None:
            heard.append(
                ("consent", {"id": administrator_id, "purpose": purpose, "action": action})
            )

        @hookimpl
        def subject_erased(self, subject_type: str, subject_id: int, reason: str) -> None:
            heard.append(("erased", {"type": subject_type, "id": subject_id, "reason": reason}))

    events.use_plugins(plugins.discover(extra=[("listener", Listener())]))
    try:
        school = records.validate_organisation(
            {
                "name": "OBS De Klimop",
                "street": "Kerkstraat 1",
                "postcode": "1234ab",
                "city": "Utrecht",
                "brin": "05KO",
                "phone": "030 123 4567",
            }
        )
        with session_scope(ctx.engine) as session:
            org = records.create_organisation(session, ctx.staff, school)
            person = records.add_administrator(
                session,
                ctx.staff,
                org.id,
                records.validate_administrator(
                    {"name": "Annelies Zwart", "email": "a@klimop.example", "phones": "0612345678"}
                ),
            )
            org_id, person_id = org.id, person.id
        with pytest.raises(RuntimeError), session_scope(ctx.engine) as session:
            records.record_consent(
                session,
                ctx.staff,
                person_id,
                "newsletter",
                "granted",
                "web form v2",
                purposes=ctx.settings.consent_purposes,
            )
            session.flush()
            raise RuntimeError("rolled back")
        with session_scope(ctx.engine) as session:
            records.record_consent(
                session,
                ctx.staff,
                person_id,
                "newsletter",
                "withdrawn",
                "e-mail of 3 March",
                purposes=ctx.settings.consent_purposes,
            )
        with session_scope(ctx.engine) as session:
            audit.record(session, ctx.staff, "erase", "organisation", org_id, rule="general")
        events.drain()
    finally:
        events.use_plugins(None)
    assert heard[0] == (
        "record",
        {"entity": "organisation", "id": org_id, "fields": heard[0][1]["fields"]},
    )
    assert "brin" in heard[0][1]["fields"]
    assert heard[1][0] == "record" and heard[1][1]["entity"] == "administrator"
    assert heard[2:] == [
        ("consent", {"id": person_id, "purpose": "newsletter", "action": "withdrawn"}),
        ("erased", {"type": "organisation", "id": org_id, "reason": "general"}),
    ]
