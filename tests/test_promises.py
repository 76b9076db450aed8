"""The promise audit: each promise failing on purpose-built data and passing on clean data.

Every test that touches the database runs on SQLite and PostgreSQL (``ctx``); the erasure
promise asks providers for real: a small in-memory provider (so a test can say exactly what
it still holds) and the real Mailchimp plugin over HTTP against its imitation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from plusjeklas_plugins.mailchimp import MailchimpProvider
from retention_world import TODAY, add_school, months_ago
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.cli.common import CliState
from plusjeklas_tui.cli.promises import PROMISE_KEYS, promises_command
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.crypto import FieldKey, Keyring
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import (
    AuditEvent,
    ConsentAction,
    ConsentEvent,
    DeletionTask,
    ErasureReceipt,
    LegalHold,
    Organisation,
    PromiseAudit,
    ProviderLink,
    RestrictedRecord,
    last_promise_audit,
)
from plusjeklas_tui.providers import (
    ErasureOutcome,
    ErasureStatus,
    Health,
    ProcessorDetails,
    Provider,
    ProviderConfig,
    ProviderInfo,
    ProviderKind,
    Subject,
)
from plusjeklas_tui.services import audit, promises
from plusjeklas_tui.services.deletions import make_locator
from plusjeklas_tui.services.promises import AuditWorld, Promise, PromiseResult
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
PERSONAL = ("testwereld", "Persoon", "Achternaam", "school.example")


def world_of(
    context: AppContext,
    *,
    available: dict[str, Provider] | None = None,
    now: dt.datetime = NOW,
) -> AuditWorld:
    return AuditWorld(
        engine=context.engine,
        settings=context.settings,
        keyring=context.keyring,
        staff=context.staff,
        today=TODAY,
        now=now,
        available={} if available is None else available,
    )


def check(context: AppContext, key: str, **kwargs: Any) -> PromiseResult:
    world = world_of(context, **kwargs)
    try:
        return promises.run_one(world, promises.promise(key))
    finally:
        world.close()


def assert_no_personal(result: PromiseResult) -> None:
    dumped = json.dumps(result.as_dict())
    for word in PERSONAL:
        assert word not in dumped, word


# --- the registry ------------------------------------------------------------------------------


def test_every_promise_of_the_issue_is_registered_once() -> None:
    keys = [p.key for p in promises.PROMISES]
    assert keys == [
        "retention",
        "newsletter",
        "erasure",
        "no_bsn",
        "encrypted",
        "register",
        "access",
        "audit_log",
    ]
    assert len(set(keys)) == len(keys)
    assert all(p.title for p in promises.PROMISES)


def test_a_check_that_raises_fails_readably_and_the_others_still_run(ctx: AppContext) -> None:
    def broken(world: AuditWorld) -> PromiseResult:
        raise RuntimeError("jan.jansen@school.example broke it")

    def missing(world: AuditWorld) -> PromiseResult:
        import plusjeklas_tui.services.no_such_module  # type: ignore[import-not-found]  # noqa: F401

        raise AssertionError("unreachable")

    chosen = [
        Promise("broken", "Broken", broken),
        Promise("missing", "Missing", missing),
        promises.promise("retention"),
    ]
    report = promises.run_audit(world_of(ctx), chosen)
    by_key = {r.key: r for r in report.results}
    assert not by_key["broken"].passed
    assert "RuntimeError" in by_key["broken"].note
    assert "jan.jansen" not in by_key["broken"].note  # the exception's text is not repeated
    assert not by_key["missing"].passed
    assert "plusjeklas_tui.services.no_such_module" in by_key["missing"].note
    assert by_key["retention"].passed  # ran after the two failures, on an empty database
    assert not report.passed
    assert [r.key for r in report.failures] == ["broken", "missing"]


def test_an_unknown_promise_key_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="no promise 'retnetion'; the promises are retention"):
        promises.promise("retnetion")


def test_a_viewer_may_run_it_but_someone_without_read_may_not(ctx: AppContext) -> None:
    from plusjeklas_tui.staff import StaffMember

    world = world_of(ctx)
    world.staff = StaffMember("vera", "viewer")
    assert promises.run_audit(world, [promises.promise("retention")]).passed

    class NoRead(StaffMember):
        def can(self, permission: object) -> bool:
            return False

    world = world_of(ctx)
    world.staff = NoRead("nobody", "viewer")
    with pytest.raises(PermissionDenied, match="run the promise audit"):
        promises.run_audit(world, [promises.promise("retention")])


# --- 1. retention ------------------------------------------------------------------------------


def test_retention_fails_on_overdue_data_and_lists_legal_holds_apart(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        kept = add_school(s, 1, subscriptions=[(dt.date(2020, 1, 1), None)])
        overdue = add_school(s, 2, ended=months_ago(30))
        held = add_school(s, 3, ended=months_ago(30))
        s.add(LegalHold(organisation_id=held.id, reason="geschil", set_by="x", set_at=NOW))
        leaver = add_school(
            s, 4, subscriptions=[(dt.date(2020, 1, 1), None)], people=2, left_on=dt.date(2024, 1, 1)
        )
        s.add(
            RestrictedRecord(
                receipt_id=_receipt(s, "organisation", 99).id,
                category="payment record",
                legal_basis="AWR",
                keep_until=TODAY - dt.timedelta(days=1),
                payload="{}",
            )
        )
        s.flush()
        record_id = s.execute(select(RestrictedRecord.id)).scalar_one()
    result = check(ctx, "retention")
    assert not result.passed
    assert set(result.fault_ids) == {
        f"organisation#{overdue.id}",
        f"administrator#{leaver.admin_ids[0]}",
        f"restricted_record#{record_id}",
    }
    assert result.held_ids == (f"organisation#{held.id}",)
    assert f"organisation#{kept.id}" not in result.fault_ids
    assert result.counts["overdue"] == 3
    assert result.counts["on_legal_hold"] == 1
    assert result.counts["overdue_administrator"] == 1
    assert_no_personal(result)


def test_retention_passes_when_only_held_or_current_data_is_kept(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        add_school(s, 1, subscriptions=[(dt.date(2020, 1, 1), None)])
        add_school(s, 2, ended=months_ago(23))  # not due yet: two years after the end
        held = add_school(s, 3, ended=months_ago(30))
        s.add(LegalHold(organisation_id=held.id, reason="geschil", set_by="x", set_at=NOW))
    result = check(ctx, "retention")
    assert result.passed, result
    assert result.fault_ids == ()
    assert result.held_ids == (f"organisation#{held.id}",)


# --- 2. newsletter consent --------------------------------------------------------------------


def _subscribe_links(session: Session, admin_ids: list[int], status: str = "subscribed") -> None:
    session.execute(
        update(ProviderLink)
        .where(
            ProviderLink.provider == "mailchimp",
            ProviderLink.subject_id.in_(admin_ids),  # type: ignore[attr-defined]
        )
        .values(status=status)
    )


def test_newsletter_fails_for_a_subscriber_whose_consent_was_withdrawn(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1, people=3)  # each person granted newsletter consent in 2020
        _subscribe_links(s, school.admin_ids)
        withdrawn, regranted, fine = school.admin_ids
        for admin_id, moments in (
            (withdrawn, [(ConsentAction.WITHDRAWN, 2024)]),
            (regranted, [(ConsentAction.WITHDRAWN, 2022), (ConsentAction.GRANTED, 2023)]),
        ):
            for action, year in moments:
                s.add(
                    ConsentEvent(
                        administrator_id=admin_id,
                        purpose="newsletter",
                        action=action,
                        occurred_at=dt.datetime(year, 3, 1, tzinfo=dt.UTC),
                        source="web-form",
                        text_version="nieuwsbrief-v2",
                    )
                )
        other = add_school(s, 2)  # consent for another purpose only: not newsletter consent
        s.execute(
            update(ConsentEvent)
            .where(ConsentEvent.administrator_id == other.admin_ids[0])
            .values(purpose="feedback")
        )
        _subscribe_links(s, other.admin_ids)
    result = check(ctx, "newsletter")
    assert not result.passed
    assert set(result.fault_ids) == {
        f"administrator#{withdrawn}",
        f"administrator#{other.admin_ids[0]}",
    }
    assert f"administrator#{regranted}" not in result.fault_ids
    assert f"administrator#{fine}" not in result.fault_ids
    assert result.counts["subscribed"] == 4
    assert result.counts["without_basis"] == 2
    assert "last sync" in result.note
    assert_no_personal(result)


def test_newsletter_passes_when_every_subscriber_has_consent(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1, people=2)
        _subscribe_links(s, school.admin_ids)
        gone = add_school(s, 2)  # withdrew and is unsubscribed there too: not a subscriber
        _subscribe_links(s, gone.admin_ids, status="unsubscribed")
        s.add(
            ConsentEvent(
                administrator_id=gone.admin_ids[0],
                purpose="newsletter",
                action=ConsentAction.WITHDRAWN,
                occurred_at=NOW,
                source="provider:mailchimp",
            )
        )
    result = check(ctx, "newsletter")
    assert result.passed, result
    assert result.counts["subscribed"] == 2
    assert result.counts["without_basis"] == 0


def _with_plugins(context: AppContext, **enabled: bool) -> Any:
    from plusjeklas_tui.config import PluginSettings

    tables = {name: PluginSettings(enabled=on) for name, on in enabled.items()}
    return context.settings.model_copy(update={"plugins": tables})


def _mailchimp(imitation: MailchimpImitation) -> MailchimpProvider:
    return MailchimpProvider(
        ProviderConfig(
            name="mailchimp",
            base_url=imitation.url,
            api_key=imitation.api_key,
            timeout_seconds=2.0,
            options={"list_id": DEFAULT_LIST_ID},
        )
    )


def test_newsletter_asks_mailchimp_member_by_member_when_it_is_enabled(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1, people=2, links=())  # no links: only the audience tells
        consenting, withdrawn = school.admin_ids
        s.add(
            ConsentEvent(
                administrator_id=withdrawn,
                purpose="newsletter",
                action=ConsentAction.WITHDRAWN,
                occurred_at=NOW,
                source="staff:tester",
            )
        )
    with MailchimpImitation() as imitation:
        imitation.add_member(school.emails[0])
        imitation.add_member(school.emails[1])  # still subscribed there after withdrawing here
        imitation.add_member("stranger@elders.example")  # subscribed there, unknown here
        imitation.add_member("left@elders.example", status="unsubscribed")
        provider = _mailchimp(imitation)
        try:
            world = world_of(ctx, available={"mailchimp": provider})
            world.settings = _with_plugins(ctx, mailchimp=True)
            result = promises.run_one(world, promises.promise("newsletter"))
            assert not result.passed
            assert result.fault_ids == (f"administrator#{withdrawn}",)
            assert f"administrator#{consenting}" not in result.fault_ids
            assert result.counts["subscribed"] == 3
            assert result.counts["unknown_subscribed"] == 1
            assert "Asked member by member: mailchimp" in result.note
            assert_no_personal(result)
            assert "elders" not in json.dumps(result.as_dict())

            imitation.set_status(school.emails[1], "unsubscribed")
            imitation.set_status("stranger@elders.example", "unsubscribed")
            result = promises.run_one(world, promises.promise("newsletter"))
            assert result.passed, result
            assert result.counts["subscribed"] == 1
        finally:
            provider.close()


def test_newsletter_falls_back_to_the_last_sync_when_mailchimp_cannot_be_reached(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1)
        _subscribe_links(s, school.admin_ids)
    world = world_of(ctx, available={})
    world.settings = _with_plugins(ctx, mailchimp=True)
    world.problems["mailchimp"] = "plugins.mailchimp needs an API key"
    result = promises.run_one(world, promises.promise("newsletter"))
    assert result.passed, result
    assert result.counts["subscribed"] == 1
    assert "mailchimp could not be asked (plugins.mailchimp needs an API key)" in result.note
    assert "Never synced: mailchimp" in result.note


# --- 6. every processor in the register -------------------------------------------------------


def test_register_fails_for_a_provider_in_use_that_the_register_does_not_name(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        add_school(s, 1, links=("mailchimp", "mollie"))  # mollie holds a customer, disabled
    world = world_of(ctx)
    world.settings = _with_plugins(ctx, mailchimp=True, mollie=False, acme=True)
    result = promises.run_one(world, promises.promise("register"))
    assert not result.passed
    assert set(result.fault_ids) == {"provider:mollie", "provider:acme"}
    assert "provider:mailchimp" not in result.fault_ids
    assert "plugins.acme is enabled, but no installed plugin provides it" in result.note


def test_register_passes_when_every_processor_in_use_is_named(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        add_school(s, 1, links=("mailchimp", "mollie"))
    world = world_of(ctx)
    world.settings = _with_plugins(ctx, mailchimp=True, mollie=True, matomo=False)
    result = promises.run_one(world, promises.promise("register"))
    assert result.passed, result
    assert result.counts["processors_in_use"] == 2
    assert result.fault_ids == ()


# --- 3. erased subjects gone downstream -----------------------------------------------------


class HoldingProvider(Provider):
    """Holds subjects by their id there, as a provider that never got (or ignored) an erasure."""

    info = ProviderInfo(
        name="memory",
        kind=ProviderKind.NEWSLETTER,
        title="Memory",
        processor=ProcessorDetails(
            company="Memory", country="NL", data_categories=("e-mail",), agreement="test"
        ),
    )

    def __init__(self, held: set[str], *, can_tell: bool = True) -> None:
        super().__init__(ProviderConfig("memory", None, None, 1.0))
        self.held = held
        self.can_tell = can_tell
        self.asked: list[Subject] = []

    def health(self) -> Health:
        return Health(True)

    def sync(self, checkpoint: str | None) -> Iterator[Any]:
        return iter(())

    def push(self, changes: Any) -> list[Any]:
        return []

    def erase(self, subject: Subject) -> ErasureOutcome:
        return ErasureOutcome(ErasureStatus.ERASED)

    def verify_erased(self, subject: Subject) -> bool | None:
        self.asked.append(subject)
        if not self.can_tell:
            return None
        return subject.external_id not in self.held

    def export(self, subject: Subject) -> dict[str, Any]:
        return {}


def _receipt(session: Session, subject_type: str, subject_id: int) -> ErasureReceipt:
    receipt = ErasureReceipt(
        subject_type=subject_type,
        subject_id=subject_id,
        erased_at=NOW,
        basis="request",
        rule="test",
        actor="tester",
    )
    session.add(receipt)
    session.flush()
    return receipt


def _task(
    session: Session,
    subject_id: int,
    *,
    provider: str = "memory",
    done: bool = True,
    verified: bool | None = True,
    created: dt.datetime = NOW,
    locator: str | None = None,
) -> int:
    receipt = _receipt(session, "administrator", subject_id)
    task = DeletionTask(
        receipt_id=receipt.id,  # type: ignore[arg-type]
        provider=provider,
        subject_type="administrator",
        subject_id=subject_id,
        locator=locator,
        state="done" if done else "pending",
        next_attempt_at=created,
        outcome="erased" if done else None,
        verified=verified if done else None,
        created_at=created,
        done_at=created if done else None,
    )
    session.add(task)
    session.flush()
    assert task.id is not None
    return task.id


def _at(external_id: str) -> str:
    return make_locator(external_id=external_id)


def test_erasure_fails_when_a_provider_still_holds_an_erased_subject(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        _task(s, 501, locator=_at("m-501"))
        _task(s, 502, locator=_at("m-502"))
    provider = HoldingProvider(held={"m-502"})
    result = check(ctx, "erasure", available={"memory": provider})
    assert not result.passed
    assert result.fault_ids == ("administrator#502@memory",)
    assert result.counts["still_held"] == 1
    assert result.counts["verified_now"] == 1
    assert sorted(subject.local_id for subject in provider.asked) == [501, 502]


def test_erasure_without_a_locator_relies_on_the_read_back_at_delivery(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        _task(s, 511, verified=True)  # as the worker leaves it: locator destroyed, verified
        _task(s, 512, verified=None)  # the provider could not tell at delivery
    provider = HoldingProvider(held=set())
    result = check(ctx, "erasure", available={"memory": provider})
    assert provider.asked == []  # nothing left to find the subject by: not asked
    assert result.passed, result
    assert result.counts["verified_at_delivery"] == 1
    assert result.counts["unverifiable"] == 1
    assert "2 erasure(s) had nothing left to ask again with" in result.note


def test_erasure_fails_for_a_task_pending_too_long_but_not_for_a_fresh_one(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        old = _task(s, 601, done=False, created=NOW - dt.timedelta(days=45))
        _task(s, 602, done=False, created=NOW - dt.timedelta(days=2))
    result = check(ctx, "erasure")
    assert not result.passed
    assert result.fault_ids == (f"deletion_task#{old}",)
    assert result.counts["pending"] == 2
    assert result.counts["pending_too_long"] == 1


def test_erasure_counts_what_cannot_be_verified_instead_of_passing_silently(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        _task(s, 701, verified=None, locator=_at("m-701"))  # could not tell at delivery either
        _task(s, 702, verified=True, locator=_at("m-702"))
        _task(s, 703, provider="gone", verified=None, locator=_at("g-703"))  # not enabled now
    provider = HoldingProvider(held={"m-701", "m-702"}, can_tell=False)
    result = check(ctx, "erasure", available={"memory": provider})
    assert result.passed, result  # nothing is known to be held, but it says what it could not see
    assert result.counts["unverifiable"] == 2
    assert result.counts["verified_at_delivery"] == 1
    assert result.counts["verified_now"] == 0
    assert "2 erasure(s) could not be verified" in result.note
    assert "gone: not enabled or not available" in result.note


def test_erasure_asks_the_real_mailchimp_plugin_over_http(ctx: AppContext) -> None:
    address = "erased.person@school.example"
    with MailchimpImitation() as imitation:
        imitation.add_member(address)
        provider = _mailchimp(imitation)
        try:
            with db.session_scope(ctx.engine) as s:
                # a done task that kept its locator, and one whose locator was destroyed
                _task(s, 801, provider="mailchimp", locator=make_locator(email=address))
                _task(s, 802, provider="mailchimp", verified=True)
            result = check(ctx, "erasure", available={"mailchimp": provider})
            assert not result.passed
            assert result.fault_ids == ("administrator#801@mailchimp",)
            assert result.counts["verified_at_delivery"] == 1  # nothing left to ask it with
            assert_no_personal(result)

            provider.erase(Subject("administrator", 801, email=address))
            result = check(ctx, "erasure", available={"mailchimp": provider})
            assert result.passed, result
            assert result.counts["verified_now"] == 1
        finally:
            provider.close()


# --- 4. no BSN in free text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text_value", "found"),
    [
        ("BSN 111222333 genoemd door de beheerder", True),
        ("bsn: 1234.56.782", True),
        ("nummer 123 456 782.", True),
        ("999999990", True),
        ("123456789 is geen BSN (elfproef faalt)", False),
        ("bel 0612345678 of +31612345678", False),
        ("IBAN NL91ABNA0417164300", False),
        ("factuur 2024-111222333-A", True),  # better a false alarm than a missed BSN
        ("ordernummer 2024111222333", False),
        ("１１１２２２３３３ in volle breedte", True),
        ("1112.22.333", True),
        ("1112223334 tien cijfers", False),
        ("", False),
    ],
)
def test_contains_bsn(text_value: str, found: bool) -> None:
    assert promises.contains_bsn(text_value) is found


def test_no_bsn_fails_on_a_note_or_evidence_holding_a_bsn(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        clean = add_school(s, 1)
        dirty = add_school(s, 2)
        s.execute(
            update(Organisation)
            .where(Organisation.id == dirty.id)
            .values(notes="Beheerder gaf BSN 111222333 op, graag verwijderen")
        )
        s.execute(
            update(Organisation)
            .where(Organisation.id == clean.id)
            .values(notes="Bellen na 14:00, tel 0301234567")
        )
        s.add(
            ConsentEvent(
                administrator_id=clean.admin_ids[0],
                purpose="feedback",
                action=ConsentAction.GRANTED,
                occurred_at=NOW,
                source="import",
                evidence="formulier met burgerservicenummer 1234.56.782",
            )
        )
        s.flush()
        evidence_id = s.execute(
            select(ConsentEvent.id).where(ConsentEvent.purpose == "feedback")
        ).scalar_one()
    result = check(ctx, "no_bsn")
    assert not result.passed
    assert set(result.fault_ids) == {
        f"organisation.notes#{dirty.id}",
        f"consent_event.evidence#{evidence_id}",
    }
    dumped = json.dumps(result.as_dict())
    assert "111222333" not in dumped
    assert "1234.56.782" not in dumped
    assert "organisation.notes" in result.note


def test_no_bsn_passes_on_clean_text_and_ignores_structured_fields(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        school = add_school(s, 1, iban="NL91ABNA0417164300")
        s.execute(
            update(Organisation)
            .where(Organisation.id == school.id)
            .values(notes="Geen bijzonderheden")
        )
    result = check(ctx, "no_bsn")
    assert result.passed, result
    assert result.counts["values_scanned"] >= 2  # the note and the 2020 consent evidence


# --- 5. no personal field in plain text --------------------------------------------------------


def test_encrypted_fails_on_a_plain_value_and_on_a_token_of_another_column(
    ctx: AppContext,
) -> None:
    with db.session_scope(ctx.engine) as s:
        plain = add_school(s, 1)
        moved = add_school(s, 2)
        foreign = add_school(s, 3)
        add_school(s, 4)
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE organisation SET notes = :v WHERE id = :id"),
            {"v": "bel de directeur", "id": plain.id},
        )
        token = conn.execute(
            text("SELECT email FROM organisation WHERE id = :id"), {"id": moved.id}
        ).scalar_one()
        conn.execute(  # a real token, but of the email column: it must not decrypt as notes
            text("UPDATE organisation SET notes = :v WHERE id = :id"), {"v": token, "id": moved.id}
        )
        other_key = Keyring([FieldKey.generate()])
        conn.execute(
            text("UPDATE administrator SET name = :v WHERE id = :id"),
            {"v": other_key.encrypt("Iemand", "administrator.name"), "id": foreign.admin_ids[0]},
        )
    result = check(ctx, "encrypted")
    assert not result.passed
    assert set(result.fault_ids) == {
        f"organisation.notes#{plain.id}",
        f"organisation.notes#{moved.id}",
        f"administrator.name#{foreign.admin_ids[0]}",
    }
    assert other_key.primary.key_id in result.note
    assert result.counts["not_encrypted"] == 3


def test_encrypted_passes_when_every_value_is_a_token(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        add_school(s, 1, iban="NL91ABNA0417164300", people=2)
        _task(s, 901, locator=make_locator(email="someone@school.example"))
    result = check(ctx, "encrypted")
    assert result.passed, result
    assert result.counts["values_checked"] > 10


# --- 7. only configured staff have access -------------------------------------------------------


@pytest.fixture
def strict(ctx: AppContext, write_config: Callable[..., Path]) -> Iterator[AppContext]:
    """The same database under a configuration without --user, all files 0600."""
    path = write_config(allow_user_override=False, name="strict.toml")
    context = open_context(path)
    files = [path, context.settings.key_file]
    url = context.settings.database_url
    if url.startswith("sqlite"):
        base = url.split("///", 1)[1]
        files += [Path(base), Path(f"{base}-wal"), Path(f"{base}-shm")]
    for file in files:
        if file.exists():
            os.chmod(file, 0o600)
    yield context
    context.close()


def test_access_passes_with_private_files_and_only_staff_in_the_log(strict: AppContext) -> None:
    with db.session_scope(strict.engine) as s:
        audit.record(s, strict.staff, "view", "organisation", 1)
        audit.record(s, "vera", "view", "organisation", 2)
    result = check(strict, "access", now=utcnow())
    assert result.passed, result
    assert result.counts["events_checked"] == 2


def test_access_fails_on_open_files_user_override_and_unknown_actors(
    strict: AppContext, ctx: AppContext
) -> None:
    with db.session_scope(strict.engine) as s:
        audit.record(s, strict.staff, "view", "organisation", 1)
        stranger = audit.record(s, "mallory", "export", "organisation", 2)
        s.flush()
        stranger_id = stranger.id
    with db.session_scope(strict.engine) as s:  # before the window: not held against anyone
        s.add(
            AuditEvent(
                occurred_at=utcnow() - dt.timedelta(days=promises.ACTOR_WINDOW_DAYS + 5),
                actor="oldtimer",
                action="view",
                entity="organisation",
                entity_id=3,
            )
        )
    os.chmod(strict.settings.key_file, 0o644)
    assert strict.settings.source is not None
    os.chmod(strict.settings.source, 0o664)
    result = check(strict, "access", now=utcnow())
    assert not result.passed
    assert "file:key" in result.fault_ids
    assert "file:config" in result.fault_ids
    assert f"audit_event#{stranger_id}" in result.fault_ids
    assert result.counts["unknown_accounts"] == 1  # the old one is outside the window
    assert "mallory" not in json.dumps(result.as_dict())
    # the tests' own configuration lets anyone be anyone (--user): that fails the promise too
    assert "config:allow_user_override" in check(ctx, "access", now=utcnow()).fault_ids


def test_access_flags_a_world_readable_sqlite_file(strict: AppContext) -> None:
    url = strict.settings.database_url
    if not url.startswith("sqlite"):
        result = check(strict, "access", now=utcnow())
        assert result.passed and "server's roles" in result.note
        return
    os.chmod(url.split("///", 1)[1], 0o644)
    result = check(strict, "access", now=utcnow())
    assert not result.passed
    assert result.fault_ids == ("file:database",)


# --- 8. the audit log verifies -----------------------------------------------------------------


def test_audit_log_passes_when_the_chain_is_intact(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        for n in range(3):
            audit.record(s, ctx.staff, "view", "organisation", n)
    result = check(ctx, "audit_log")
    assert result.passed, result
    assert result.counts["checked"] == 3
    assert result.counts["problems"] == 0


def test_audit_log_fails_on_an_event_added_behind_the_apps_back(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        audit.record(s, ctx.staff, "view", "organisation", 1)
    with ctx.engine.begin() as conn:  # Core, not the session: nothing seals it
        inserted = conn.execute(
            AuditEvent.__table__.insert()
            .values(occurred_at=utcnow(), actor="x", action="erase", entity="organisation")
            .returning(AuditEvent.__table__.c.id)
        ).scalar_one()
    result = check(ctx, "audit_log")
    assert not result.passed
    assert f"audit_event#{inserted}" in result.fault_ids
    assert result.counts["problems_inserted"] == 1
    assert "audit verify" in result.note


def test_audit_log_fails_on_a_changed_event(ctx: AppContext, engine_name: str) -> None:
    with db.session_scope(ctx.engine) as s:
        first = audit.record(s, ctx.staff, "export", "organisation", 1, count=1)
        audit.record(s, ctx.staff, "view", "organisation", 2)
        s.flush()
        first_id = first.id
    with ctx.engine.begin() as conn:  # someone who owns the database drops the guard
        if engine_name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        else:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        conn.execute(
            text("UPDATE audit_event SET detail = :d WHERE id = :id"),
            {"d": '{"count": 0}', "id": first_id},
        )
    result = check(ctx, "audit_log")
    assert not result.passed
    assert f"audit_event#{first_id}" in result.fault_ids


# --- saving, the dashboard's last result, the command ------------------------------------------


def _two_promises() -> list[Promise]:
    return [promises.promise("retention"), promises.promise("no_bsn")]


def test_a_run_is_saved_with_ids_only_and_is_the_last_result(ctx: AppContext) -> None:
    with db.session_scope(ctx.engine) as s:
        overdue = add_school(s, 1, ended=months_ago(30))
    with Session(ctx.engine) as s:
        assert last_promise_audit(s) is None
    first = promises.audit_promises(ctx, promises=_two_promises(), today=TODAY)
    with db.session_scope(ctx.engine) as s:
        s.execute(update(Organisation).values(notes="BSN 111222333"))
    second = promises.audit_promises(ctx, promises=_two_promises(), today=TODAY)
    assert first.audit_id is not None and second.audit_id is not None
    with Session(ctx.engine) as s:
        last = last_promise_audit(s)
        assert last is not None
        assert last.id == second.audit_id
        assert last.actor == ctx.staff.username
        assert not last.passed
        assert (last.checks, last.failures) == (2, 2)
        assert last.failed_keys() == ["retention", "no_bsn"]
        results = {r["key"]: r for r in last.result_list()}
        assert results["retention"]["fault_ids"] == [f"organisation#{overdue.id}"]
        assert results["no_bsn"]["fault_ids"] == [f"organisation.notes#{overdue.id}"]
        raw = s.execute(select(PromiseAudit.results)).scalars().all()
        event = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "promise_audit"))
            .scalars()
            .all()
        )
    for stored in raw:
        for word in (*PERSONAL, "111222333", overdue.name):
            assert word not in stored
    assert len(event) == 2
    assert json.loads(event[-1].detail)["failed"] == ["retention", "no_bsn"]


def run_cli(config: Path, *args: str) -> Result:
    """`plusjeklas --config CONFIG audit promises ARGS`, as cron runs it."""
    from plusjeklas_tui.cli import main

    return CliRunner().invoke(main, ["--config", str(config), "audit", "promises", *args])


def test_the_command_is_a_click_command_of_its_own(config_path: Path) -> None:
    state = CliState(config_path=config_path)
    try:
        result = CliRunner().invoke(promises_command, ["--only", "retention"], obj=state)
    finally:
        state.close()
    assert result.exit_code == 0, result.output
    assert "PASS  retention" in result.output


def test_the_command_exits_1_on_a_failure_and_0_when_kept(
    ctx: AppContext, config_path: Path
) -> None:
    ok = run_cli(config_path, "--only", "retention", "--only", "no_bsn")
    assert ok.exit_code == 0, ok.output
    assert "PASS  retention" in ok.output
    assert "2 of 2 promises kept" in ok.output
    with db.session_scope(ctx.engine) as s:
        overdue = add_school(s, 1, ended=months_ago(40))
    failed = run_cli(config_path, "--only", "retention", "--json")
    assert failed.exit_code == 1, failed.output
    data = json.loads(failed.stdout)
    assert data["passed"] is False
    assert data["promises"][0]["fault_ids"] == [f"organisation#{overdue.id}"]
    text_run = run_cli(config_path, "--only", "retention")
    assert text_run.exit_code == 1
    assert "FAIL  retention" in text_run.output
    assert f"at fault: organisation#{overdue.id}" in text_run.output


def test_the_command_refuses_an_unknown_promise(config_path: Path) -> None:
    result = run_cli(config_path, "--only", "everything")
    assert result.exit_code == 2
    assert "everything" in result.output


def test_the_command_knows_every_promise() -> None:
    assert tuple(p.key for p in promises.PROMISES) == PROMISE_KEYS


def test_a_clean_installation_keeps_every_promise(strict: AppContext) -> None:
    with db.session_scope(strict.engine) as s:
        school = add_school(s, 1, subscriptions=[(dt.date(2020, 1, 1), None)], links=())
        audit.record(s, strict.staff, "edit", "organisation", school.id)
    assert strict.settings.source is not None
    result = run_cli(Path(strict.settings.source), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert [p["key"] for p in data["promises"]] == list(PROMISE_KEYS)
    assert all(p["passed"] for p in data["promises"]), data
    again = run_cli(Path(strict.settings.source), "--only", "audit_log")
    assert again.exit_code == 0, again.output  # the saved run's own audit event is sealed too
