"""The promise audit: each promise of the privacy statement checked against the live data.

``plusjeklas audit promises`` (cron) and the dashboard's tile use this module::

    report = audit_promises(context)      # runs every check, saves the run, returns the report
    report.passed                         # False when any promise failed (the CLI exits 1)
    last_promise_audit(session)           # the last saved run, for the dashboard

Each promise is one small function taking an :class:`AuditWorld` and returning a
:class:`PromiseResult`: pass or fail, counts, and the records at fault **by id only**
(``"organisation#12"``, ``"administrator#7@mailchimp"``). :func:`run_audit` runs them one by one,
each isolated: a check that raises (a bug, a database error, a module another part of the app
has not got yet) is a failed promise with a readable reason, and the other checks still run.
Modules that other areas own (the audit chain, the register, the audience check) are imported
inside the check that needs them, for the same reason.

Decisions, so the results mean something:

* **Retention**: what :func:`plusjeklas_tui.services.retention.plan` calls due today (deadline
  before today) fails the promise, unless a legal hold pauses it: held subjects are listed
  apart (``held_ids``) and do not fail it. Expired restricted (fiscal) records are in the plan.
* **Newsletter**: every person a newsletter provider holds as *subscribed* must have a
  newsletter basis here (:func:`plusjeklas_tui.services.newsletter_basis.standings`: a latest
  newsletter event that is a grant with proof, or the existing-customer exception), and no
  subscribed member may be unknown here. An enabled provider that can be reached is asked
  member by member (:mod:`plusjeklas_tui.services.audience_check`); otherwise the provider's
  state as of its last sync (``provider_link.status``) is compared, and the note says so.
* **Register**: every provider in use (enabled, or holding people from here through a link or
  a pending erasure) must be a recipient of the register of processing
  (:mod:`plusjeklas_tui.services.register`), with no processor problem (a missing plugin, a
  transfer outside the EEA without safeguard). Other register problems are only counted.
* **Erasures downstream**: the deletion worker destroys a done task's locator on purpose, so
  nothing here can find an erased subject at a provider any more. A provider is asked again
  (``verify_erased``) only for a done task that still holds a locator: *still there* fails
  the promise. Otherwise, and when the provider cannot tell (None, an error, not available),
  the read-back made at delivery counts (``verified``); without one the erasure counts as
  *unverifiable*, shown in the counts and the note, never passed silently. A task still
  pending after :data:`PENDING_LIMIT_DAYS` days fails the promise too (the one-month deadline
  of a data-subject request).
* **No BSN**: every encrypted column except those of a fixed shape (:func:`is_structured`:
  addresses, phones, IBAN, provider ids, keys) is decrypted and searched for a BSN by the rule
  input validation refuses one with (:func:`plusjeklas_tui.validation.find_bsn`: nine digits,
  plain or grouped, passing the eleven-test). Ids only, never the number.
* **No plain text**: every value of every encrypted column must be a token that decrypts under
  a loaded key with its own column's context.
* **Only staff**: the key file and configuration are not writable by the group nor open to
  others (0600/0640), a SQLite database file (and its WAL files) is not open to others,
  ``allow_user_override`` is off (otherwise anyone may claim to be any staff member), and every
  actor in the audit log of the last :data:`ACTOR_WINDOW_DAYS` days is a configured staff
  account. There are no system actors: cron and the demo act as a staff account.
* **Audit log**: :func:`plusjeklas_tui.services.audit_chain.verify_chain` finds no problem;
  the events (or chain places) of each problem are the ids at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Text, column, select, table, type_coerce
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from plusjeklas_tui.config import Settings
from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import KeyProblem, PlusjeklasError
from plusjeklas_tui.models.promises import PromiseAudit, last_promise_audit
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember

if TYPE_CHECKING:
    from plusjeklas_tui.context import AppContext
    from plusjeklas_tui.plugins import PluginSet
    from plusjeklas_tui.providers import Provider, Subject

__all__ = [
    "PROMISES",
    "AuditReport",
    "AuditWorld",
    "Promise",
    "PromiseResult",
    "audit_promises",
    "last_promise_audit",
    "run_audit",
    "run_one",
    "save_report",
]

MAX_IDS = 1000
"""Ids listed per list and promise; the counts always hold the full numbers."""
PENDING_LIMIT_DAYS = 30
"""A deletion task still pending after this many days breaks the erasure promise."""
ACTOR_WINDOW_DAYS = 30
"""How far back the audit log's actors are compared with the configured staff."""
LIVE_CHECKS_PER_PROVIDER = 500
"""Done deletion tasks asked again at each provider per run (the most recent first)."""
FAILURES_TO_STOP = 3
"""A provider that fails this many read-backs in a row is not asked again in this run."""
STRUCTURED_COLUMNS = frozenset(
    {
        "provider_state.sync_checkpoint",
        "deletion_task.locator",
        "audit_mac_key.secret",
    }
)
STRUCTURED_SUFFIXES = ("email", "phone", "phones", "iban", "external_id", "secret")
"""Encrypted columns with a fixed shape (validated on input, or written by code) are left out
of the BSN scan: a phone number, an IBAN or a key may hold nine digits that happen to pass the
eleven-test. Columns of other areas are scanned unless their name ends in one of these."""


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseResult:
    """One promise checked: pass or fail, counts, and the records at fault by id."""

    key: str
    title: str
    passed: bool
    counts: dict[str, int] = field(default_factory=dict)
    fault_ids: tuple[str, ...] = ()
    held_ids: tuple[str, ...] = ()
    """Records that would be at fault but are excused (on legal hold), listed apart."""
    note: str = ""
    """Readable, non-personal: how it was checked, what could not be."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "passed": self.passed,
            "counts": dict(self.counts),
            "fault_ids": list(self.fault_ids),
            "held_ids": list(self.held_ids),
            "note": self.note,
        }


@dataclass(frozen=True)
class AuditReport:
    ran_at: dt.datetime
    actor: str
    results: tuple[PromiseResult, ...]
    audit_id: int | None = None
    """The saved run's id (``promise_audit.id``), once saved."""

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[PromiseResult]:
        return [result for result in self.results if not result.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ran_at": self.ran_at.isoformat(),
            "actor": self.actor,
            "passed": self.passed,
            "checks": len(self.results),
            "failures": len(self.failures),
            "audit_id": self.audit_id,
            "promises": [result.as_dict() for result in self.results],
        }


def _capped(ids: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in ids:
        if len(out) >= MAX_IDS:
            break
        out.append(value)
    return tuple(out)


def _listed_note(total: int) -> str:
    return f" Only the first {MAX_IDS} of {total} ids are listed." if total > MAX_IDS else ""


# --- what the checks see -----------------------------------------------------------------------


@dataclass
class AuditWorld:
    """The live data and providers one run checks; providers are opened on first need."""

    engine: Engine
    settings: Settings
    keyring: Keyring
    staff: StaffMember
    today: dt.date
    now: dt.datetime
    available: Mapping[str, Provider] | None = None
    """The providers to ask; None opens the enabled ones from the configuration."""
    problems: dict[str, str] = field(default_factory=dict)
    """Why an enabled provider is not available (non-personal)."""
    _plugin_set: PluginSet | None = field(default=None, init=False, repr=False)
    _opened: Any = field(default=None, init=False, repr=False)

    def plugin_set(self) -> PluginSet:
        if self._plugin_set is None:
            from plusjeklas_tui.plugins import discover

            self._plugin_set = discover()
        return self._plugin_set

    def providers(self) -> Mapping[str, Provider]:
        if self.available is None:
            from plusjeklas_tui.runtime import open_providers

            self._opened = open_providers(self.settings, self.plugin_set())
            self.available = dict(self._opened.available)
            self.problems.update(self._opened.problems)
        return self.available

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None


Check = Callable[[AuditWorld], PromiseResult]


@dataclass(frozen=True)
class Promise:
    key: str
    title: str
    check: Check


def describe_fault(exc: BaseException) -> str:
    """Why a check could not run, without values from the data (exception texts may hold some)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"the check needs the module {exc.name}, which is not installed in this version"
    if isinstance(exc, ImportError):
        return f"the check cannot import what it needs ({type(exc).__name__})"
    if isinstance(exc, PlusjeklasError):
        return str(exc)  # our own messages carry no personal data
    return f"the check stopped with {type(exc).__name__}"


def run_one(world: AuditWorld, promise: Promise) -> PromiseResult:
    """Run one check; any exception becomes a failed result with a readable reason."""
    try:
        result = promise.check(world)
    except Exception as exc:
        return PromiseResult(
            key=promise.key,
            title=promise.title,
            passed=False,
            counts={"errors": 1},
            note=f"Could not be checked: {describe_fault(exc)}.",
        )
    if not isinstance(result, PromiseResult):
        return PromiseResult(
            promise.key, promise.title, False, {"errors": 1}, note="The check gave no result."
        )
    return result


def run_audit(world: AuditWorld, promises: Sequence[Promise] | None = None) -> AuditReport:
    """Every promise, one after the other, each isolated from the others' failures."""
    world.staff.require(Permission.READ, "run the promise audit")
    chosen = PROMISES if promises is None else promises
    try:
        results = tuple(run_one(world, promise) for promise in chosen)
    finally:
        world.close()
    return AuditReport(ran_at=world.now, actor=world.staff.username, results=results)


def save_report(engine: Engine, staff: StaffMember, report: AuditReport) -> AuditReport:
    """Store the run (ids and counts only) and its audit event, in one transaction."""
    from plusjeklas_tui.db import session_scope
    from plusjeklas_tui.services import audit

    with session_scope(engine) as session:
        row = PromiseAudit(
            ran_at=report.ran_at,
            actor=staff.username,
            passed=report.passed,
            checks=len(report.results),
            failures=len(report.failures),
            results=json.dumps([r.as_dict() for r in report.results], sort_keys=True),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            staff,
            "promise_audit",
            "promise_audit",
            row.id,
            passed=report.passed,
            checks=len(report.results),
            failures=len(report.failures),
            failed=[r.key for r in report.failures],
        )
        audit_id = row.id
    return AuditReport(report.ran_at, report.actor, report.results, audit_id)


def audit_promises(
    context: AppContext,
    *,
    today: dt.date | None = None,
    available: Mapping[str, Provider] | None = None,
    promises: Sequence[Promise] | None = None,
    save: bool = True,
) -> AuditReport:
    """Run the audit as the context's staff member and (by default) save the run."""
    from plusjeklas_tui.services.records import local_today

    world = AuditWorld(
        engine=context.engine,
        settings=context.settings,
        keyring=context.keyring,
        staff=context.staff,
        today=today or local_today(),
        now=utcnow(),
        available=available,
    )
    report = run_audit(world, promises)
    return save_report(context.engine, context.staff, report) if save else report


# --- helpers -----------------------------------------------------------------------------------


def _raw_rows(
    engine: Engine, table_name: str, id_column: str, columns: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """``(id, *raw values)`` of a table, streamed in id order: the stored tokens, undecrypted."""
    raw = table(table_name, column(id_column, Integer), *(column(name, Text) for name in columns))
    query = select(raw.c[id_column], *(raw.c[name] for name in columns)).order_by(raw.c[id_column])
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=2000).execute(query)
        for row in result:
            yield tuple(row)


# --- 1. retention ------------------------------------------------------------------------------


def check_retention(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.services import retention

    the_plan = retention.plan(world.engine, world.settings, world.today)
    due = [item for item in the_plan.items if item.due]
    faults = [f"{item.kind}#{item.subject_id}" for item in due if not item.on_hold]
    held = [f"{item.kind}#{item.subject_id}" for item in due if item.on_hold]
    counts = {"overdue": len(faults), "on_legal_hold": len(held)}
    for kind in (retention.ORGANISATION, retention.ADMINISTRATOR, retention.RESTRICTED_RECORD):
        counts[f"overdue_{kind}"] = sum(1 for item in due if item.kind == kind and not item.on_hold)
    note = (
        f"Deadlines as of {world.today.isoformat()}: general data "
        f"{world.settings.retention.general_after_end_months} months after the last "
        "subscription, administrators who left "
        f"{world.settings.retention.administrator_after_leaving_days} days after leaving, "
        "restricted payment records until their keep-until date. Legal holds are listed apart."
    )
    if faults:
        note += " Run `plusjeklas retention sweep` to erase what is due." + _listed_note(
            len(faults)
        )
    return PromiseResult(
        "retention",
        TITLES["retention"],
        not faults,
        counts,
        _capped(faults),
        _capped(held),
        note,
    )


# --- 2. newsletter consent --------------------------------------------------------------------


def _newsletter_providers(world: AuditWorld) -> list[str]:
    from plusjeklas_tui.providers import ProviderKind

    names = {"mailchimp"}
    for name, entry in world.plugin_set().providers.items():
        if entry.info.kind == ProviderKind.NEWSLETTER:
            names.add(name)
    return sorted(names)


def _without_basis(session: Session, administrator_ids: Sequence[int], today: dt.date) -> list[int]:
    """Those of *administrator_ids* with no newsletter basis here (or no record at all)."""
    from plusjeklas_tui.services.newsletter_basis import standings

    if not administrator_ids:
        return []
    found = standings(session, administrator_ids, today=today)
    return [i for i in sorted(set(administrator_ids)) if i not in found or found[i].basis is None]


@dataclass
class _NewsletterTally:
    faults: set[int] = field(default_factory=set)
    subscribed: int = 0
    unknown_subscribed: int = 0
    unknown_at_last_sync: int = 0
    notes: list[str] = field(default_factory=list)


def _ask_audiences(world: AuditWorld, names: list[str], tally: _NewsletterTally) -> set[str]:
    """Member by member at every enabled newsletter provider that can be reached; returns
    the names checked that way (the others are compared with their last sync)."""
    enabled = [
        n for n in names if n in world.settings.plugins and world.settings.plugins[n].enabled
    ]
    if not enabled:
        return set()
    try:
        from plusjeklas_tui.services.audience_check import check_audience
    except ImportError:
        tally.notes.append("The member-by-member audience check is not installed.")
        return set()
    available = world.providers()
    asked: set[str] = set()
    for name in enabled:
        provider = available.get(name)
        if provider is None:
            reason = world.problems.get(name, "not available")
            tally.notes.append(f"{name} could not be asked ({reason}).")
            continue
        try:
            report = check_audience(world.engine, provider, world.staff)
        except Exception as exc:
            tally.notes.append(f"{name} could not be asked: {describe_fault(exc)}.")
            continue
        asked.add(name)
        tally.subscribed += report.subscribed
        for finding in report.findings:
            if finding.kind == "subscribed-without-basis" and finding.administrator_id is not None:
                tally.faults.add(finding.administrator_id)
            elif finding.kind == "unknown-subscribed":
                tally.unknown_subscribed += 1
    if asked:
        tally.notes.append(f"Asked member by member: {', '.join(sorted(asked))}.")
    return asked


def check_newsletter(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.models import ProviderLink, ProviderState, SyncRun

    names = _newsletter_providers(world)
    tally = _NewsletterTally()
    asked = _ask_audiences(world, names, tally)
    from_links = [name for name in names if name not in asked]
    synced: list[str] = []
    never: list[str] = []
    with Session(world.engine) as session:
        subscribed = sorted(
            set(
                session.execute(
                    select(ProviderLink.subject_id).where(
                        ProviderLink.provider.in_(from_links),  # type: ignore[attr-defined]
                        ProviderLink.subject_type == "administrator",
                        ProviderLink.status == "subscribed",
                    )
                ).scalars()
            )
        )
        tally.subscribed += len(subscribed)
        tally.faults.update(_without_basis(session, subscribed, world.today))
        for name in from_links:
            state = session.execute(
                select(ProviderState).where(ProviderState.provider == name)
            ).scalar_one_or_none()
            if state is not None and state.last_finished_at is not None:
                synced.append(f"{name} at {state.last_finished_at.isoformat(timespec='minutes')}")
            elif name in world.settings.plugins and world.settings.plugins[name].enabled:
                never.append(name)
            unknown = session.execute(
                select(SyncRun.unknown)
                .where(SyncRun.provider == name, SyncRun.state == "succeeded")
                .order_by(SyncRun.started_at.desc())  # type: ignore[attr-defined]
                .limit(1)
            ).scalar_one_or_none()
            tally.unknown_at_last_sync += unknown or 0
    faults = [f"administrator#{admin_id}" for admin_id in sorted(tally.faults)]
    notes = list(tally.notes)
    in_use = [n for n in from_links if n in world.settings.plugins]
    if subscribed or synced or in_use:
        notes.append(
            "Compared with what the provider held at its last sync ("
            + (", ".join(synced) if synced else "no sync has finished yet")
            + "); a basis is current consent with proof, or the existing-customer exception."
        )
    if never:
        notes.append(f"Never synced: {', '.join(never)}; its subscribers are not known here.")
    if tally.unknown_subscribed:
        notes.append(
            f"{tally.unknown_subscribed} subscribed member(s) at the provider are not known "
            "here at all, so they have no consent here."
        )
    if tally.unknown_at_last_sync:
        notes.append(
            f"The last sync found {tally.unknown_at_last_sync} member(s) there that are not "
            "known here (any status)."
        )
    counts = {
        "subscribed": tally.subscribed,
        "without_basis": len(faults),
        "unknown_subscribed": tally.unknown_subscribed,
        "unknown_at_last_sync": tally.unknown_at_last_sync,
    }
    passed = not faults and not tally.unknown_subscribed
    if not notes:
        notes.append("No newsletter provider is configured and none holds anyone from here.")
    note = " ".join(notes) + _listed_note(len(faults))
    return PromiseResult(
        "newsletter", TITLES["newsletter"], passed, counts, _capped(faults), (), note
    )


# --- 3. erased subjects gone downstream -----------------------------------------------------


@dataclass
class _ErasureTally:
    still_held: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    verified_now: int = 0
    verified_at_delivery: int = 0
    unverifiable: int = 0
    not_findable: int = 0
    pending: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)


def _subject_of(row: Any, keyring: Keyring) -> Subject | None:
    """What a done task still has to find its subject by (its locator), or None."""
    from plusjeklas_tui.services.deletions import LOCATOR_CONTEXT, subject_from_locator

    if row.locator is None:
        return None
    try:
        locator = keyring.decrypt(row.locator, LOCATOR_CONTEXT)
        subject = subject_from_locator(row.subject_type, row.subject_id, locator)
    except (KeyProblem, ValueError):
        return None
    return subject if subject.external_id or subject.email else None


def _ask_again(world: AuditWorld, row: Any, subject: Subject, tally: _ErasureTally) -> bool | None:
    """The provider's read-back now: True gone, False still there, None when it cannot tell."""
    from plusjeklas_tui.plugins import call_with_deadline, deadline_for

    name = row.provider
    provider = world.providers().get(name)
    if provider is None:
        tally.reasons.setdefault(name, world.problems.get(name, "not enabled or not available"))
        return None
    if tally.failing.get(name, 0) >= FAILURES_TO_STOP:
        return None  # stopped asking it in this run; its reason is already kept
    if tally.asked.get(name, 0) >= LIVE_CHECKS_PER_PROVIDER:
        tally.reasons.setdefault(
            name, f"only the {LIVE_CHECKS_PER_PROVIDER} latest erasures asked again"
        )
        return None
    tally.asked[name] = tally.asked.get(name, 0) + 1
    outcome = call_with_deadline(
        provider.verify_erased,
        subject,
        deadline_seconds=deadline_for(provider),
        what=f"{name} verify_erased",
    )
    if outcome.ok and (outcome.value is None or isinstance(outcome.value, bool)):
        tally.failing[name] = 0
        return outcome.value
    tally.failing[name] = tally.failing.get(name, 0) + 1
    tally.reasons[name] = outcome.reason or "an answer that is not yes or no"
    return None


def check_erasures(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.models import DeletionState, DeletionTask

    tasks = DeletionTask.__table__
    limit = world.now - dt.timedelta(days=PENDING_LIMIT_DAYS)
    tally = _ErasureTally()
    query = select(
        tasks.c.id,
        tasks.c.provider,
        tasks.c.subject_type,
        tasks.c.subject_id,
        tasks.c.state,
        tasks.c.verified,
        tasks.c.created_at,
        type_coerce(tasks.c.locator, Text).label("locator"),
    ).order_by(tasks.c.done_at.desc(), tasks.c.id.desc())
    with world.engine.connect() as conn:
        rows = conn.execute(query).all()
    done = 0
    for row in rows:
        if row.state != DeletionState.DONE.value:
            tally.pending += 1
            if row.created_at is not None and row.created_at < limit:
                tally.overdue.append(f"deletion_task#{row.id}")
            continue
        done += 1
        subject = _subject_of(row, world.keyring)
        if subject is None:
            tally.not_findable += 1
            answer = None
        else:
            answer = _ask_again(world, row, subject, tally)
        if answer is False:
            tally.still_held.append(f"{row.subject_type}#{row.subject_id}@{row.provider}")
        elif answer is True:
            tally.verified_now += 1
        elif row.verified:
            tally.verified_at_delivery += 1
        else:
            tally.unverifiable += 1
    faults = tally.still_held + tally.overdue
    counts = {
        "erasures_done": done,
        "still_held": len(tally.still_held),
        "verified_now": tally.verified_now,
        "verified_at_delivery": tally.verified_at_delivery,
        "unverifiable": tally.unverifiable,
        "pending": tally.pending,
        "pending_too_long": len(tally.overdue),
    }
    note = (
        "A done erasure's locator is destroyed, so a provider is asked again (verify_erased) "
        "only where a task still holds one; otherwise the read-back made at delivery counts. "
        f"A task pending more than {PENDING_LIMIT_DAYS} days fails the promise."
    )
    if tally.not_findable:
        note += f" {tally.not_findable} erasure(s) had nothing left to ask again with."
    if tally.unverifiable:
        note += (
            f" {tally.unverifiable} erasure(s) could not be verified at all "
            "(the provider cannot check, and did not confirm at delivery)."
        )
    if tally.reasons:
        note += " Provider notes: " + "; ".join(
            f"{name}: {reason}" for name, reason in sorted(tally.reasons.items())
        )
    note += _listed_note(len(faults))
    return PromiseResult(
        "erasure", TITLES["erasure"], not faults, counts, _capped(faults), (), note.strip()
    )


# --- 4. no BSN in free text ------------------------------------------------------------------


def contains_bsn(text: str) -> bool:
    """Whether *text* holds a BSN, by the rule input validation refuses it with
    (:func:`plusjeklas_tui.validation.find_bsn`): what the audit finds slipped past it (older
    data, an import, a hand-made SQL change)."""
    from plusjeklas_tui.validation import find_bsn

    return find_bsn(text) is not None


def is_structured(context: str) -> bool:
    """Whether the encrypted column *context* (``table.column``) has a fixed, validated shape."""
    return context in STRUCTURED_COLUMNS or context.endswith(STRUCTURED_SUFFIXES)


def free_text_columns() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """``(table, id column, [(column, context)])`` of every encrypted column not structured."""
    from plusjeklas_tui.services.keys import encrypted_tables

    found = []
    for spec in encrypted_tables():
        columns = [(n, c) for n, c in spec.encrypted if not is_structured(c)]
        if columns:
            found.append((spec.name, spec.id_column, columns))
    return found


def check_no_bsn(world: AuditWorld) -> PromiseResult:
    faults: list[str] = []
    scanned = unreadable = 0
    columns_scanned: list[str] = []
    for table_name, id_column, columns in free_text_columns():
        names = [name for name, _ in columns]
        columns_scanned += [f"{table_name}.{name}" for name in names]
        for row in _raw_rows(world.engine, table_name, id_column, names):
            for (name, context), token in zip(columns, row[1:], strict=True):
                if token is None:
                    continue
                try:
                    value = world.keyring.decrypt(token, context)
                except (KeyProblem, ValueError):
                    unreadable += 1  # the plain-text promise reports these by id
                    continue
                scanned += 1
                if contains_bsn(value):
                    faults.append(f"{table_name}.{name}#{row[0]}")
    note = "Scanned " + (", ".join(columns_scanned) or "no columns") + "."
    if unreadable:
        note += f" {unreadable} value(s) could not be decrypted (see the plain-text promise)."
    note += _listed_note(len(faults))
    counts = {"values_scanned": scanned, "with_bsn": len(faults), "unreadable": unreadable}
    return PromiseResult("no_bsn", TITLES["no_bsn"], not faults, counts, _capped(faults), (), note)


# --- 5. no personal field in plain text --------------------------------------------------------


def check_encrypted(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.services.keys import encrypted_tables

    faults: list[str] = []
    checked = 0
    unknown_keys: set[str] = set()
    loaded = {key.key_id for key in world.keyring.keys}
    for spec in encrypted_tables():
        names = [name for name, _ in spec.encrypted]
        for row in _raw_rows(world.engine, spec.name, spec.id_column, names):
            for (name, context), token in zip(spec.encrypted, row[1:], strict=True):
                if token is None:
                    continue
                checked += 1
                try:
                    world.keyring.decrypt(token, context)
                except (KeyProblem, ValueError):
                    parts = token.split(".", 2)
                    if len(parts) == 3 and parts[0] == "v1" and parts[1] not in loaded:
                        unknown_keys.add(parts[1])
                    faults.append(f"{spec.name}.{name}#{row[0]}")
    note = (
        "Every value of every encrypted column must be a token that decrypts under a loaded "
        "key for its own column."
    )
    if unknown_keys:
        note += f" Key id(s) not loaded: {', '.join(sorted(unknown_keys))}."
    note += _listed_note(len(faults))
    counts = {"values_checked": checked, "not_encrypted": len(faults)}
    return PromiseResult(
        "encrypted", TITLES["encrypted"], not faults, counts, _capped(faults), (), note
    )


# --- 6. every processor in the register -------------------------------------------------------

PROCESSOR_PROBLEMS = frozenset(
    {"missing_plugin", "recipient_not_in_register", "transfer_without_safeguard"}
)
"""Register problems about processors; the others (unclassified columns, categories) are
``plusjeklas register --check``'s business and only counted here."""


def _providers_holding_people(engine: Engine) -> set[str]:
    """Providers that hold someone from here: a link, or an erasure still to deliver."""
    from plusjeklas_tui.models import DeletionState, DeletionTask, ProviderLink

    with Session(engine) as session:
        linked = set(session.execute(select(ProviderLink.provider).distinct()).scalars())
        pending = session.execute(
            select(DeletionTask.provider)
            .where(DeletionTask.state == DeletionState.PENDING.value)
            .distinct()
        ).scalars()
        return linked | set(pending)


def check_register(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.services import register as processing_register

    plugin_set = world.plugin_set()
    register = processing_register.build_register(
        world.settings, processing_register.provider_infos_of(plugin_set), now=world.now
    )
    listed = register.processor_names()
    enabled = sorted(n for n, table in world.settings.plugins.items() if table.enabled)
    in_use = set(enabled) | _providers_holding_people(world.engine)
    faults = [f"provider:{name}" for name in sorted(in_use - listed)]
    problems = processing_register.check_register(world.engine, register)
    about_processors = [p for p in problems if p.code in PROCESSOR_PROBLEMS]
    others = len(problems) - len(about_processors)
    transfer = sorted(
        {f"provider:{r.name}" for r in register.transfers if not r.transfer_safeguard}
    )
    faults += [name for name in transfer if name not in faults]
    note = (
        "Processors in use (enabled, or holding people from here): "
        + (", ".join(sorted(in_use)) or "none")
        + "; each must be a recipient in the register of processing, outside the EEA with "
        "its safeguard."
    )
    if about_processors:
        note += " " + " ".join(p.message for p in about_processors[:5])
    if others:
        note += f" {others} other register problem(s): see `plusjeklas register --check`."
    counts = {
        "processors_in_use": len(in_use),
        "in_register": len(listed),
        "missing_from_register": len(faults),
        "processor_problems": len(about_processors),
        "other_register_problems": others,
    }
    passed = not faults and not about_processors
    return PromiseResult("register", TITLES["register"], passed, counts, tuple(faults), (), note)


# --- 7. only configured staff have access -------------------------------------------------------


def _file_fault(path: Path, forbidden: int) -> bool:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(stat.S_IMODE(mode) & forbidden)


def _sqlite_files(settings: Settings) -> list[Path]:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    base = Path(url.database)
    return [base, Path(f"{base}-wal"), Path(f"{base}-shm")]


def check_access(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.models import AuditEvent

    settings = world.settings
    faults: list[str] = []
    notes: list[str] = []
    # Group members may read the key and the config (0640), nobody else; nobody but the owner
    # may change them: whoever can write the config can add themselves under [staff].
    if settings.keys.env:
        notes.append(f"Keys come from ${settings.keys.env}: no key file to check.")
    elif _file_fault(settings.key_file, stat.S_IWGRP | stat.S_IRWXO):
        faults.append("file:key")
    if settings.source is not None and _file_fault(
        Path(settings.source), stat.S_IWGRP | stat.S_IRWXO
    ):
        faults.append("file:config")
    sqlite = _sqlite_files(settings)
    if not sqlite:
        notes.append("The database is not a local file: its access is the server's roles.")
    for path in sqlite:
        if _file_fault(path, stat.S_IRWXO):
            faults.append(f"file:database{path.name[len(sqlite[0].name) :]}")
    if settings.allow_user_override:
        faults.append("config:allow_user_override")
        notes.append("allow_user_override is on: anyone may act as any staff member (demo only).")
    since = world.now - dt.timedelta(days=ACTOR_WINDOW_DAYS)
    staff = set(settings.staff)
    with Session(world.engine) as session:
        events = session.execute(
            select(AuditEvent.id, AuditEvent.actor)
            .where(AuditEvent.occurred_at >= since)  # type: ignore[operator]
            .order_by(AuditEvent.id)  # type: ignore[arg-type]
        ).all()
    strangers = [(event_id, actor) for event_id, actor in events if actor not in staff]
    faults += [f"audit_event#{event_id}" for event_id, _ in strangers]
    accounts = len({actor for _, actor in strangers})
    if strangers:
        notes.append(
            f"{len(strangers)} audit event(s) of the last {ACTOR_WINDOW_DAYS} days were made by "
            f"{accounts} account(s) not configured under [staff]."
        )
    counts = {
        "file_faults": sum(1 for f in faults if f.startswith("file:")),
        "events_checked": len(events),
        "events_by_unknown_accounts": len(strangers),
        "unknown_accounts": accounts,
    }
    note = (
        "Key file and config 0600/0640, the SQLite database not open to others, no user "
        f"override, and every audit-log actor of the last {ACTOR_WINDOW_DAYS} days a configured "
        "staff account (there are no system actors)."
    )
    if notes:
        note += " " + " ".join(notes)
    note += _listed_note(len(faults))
    return PromiseResult("access", TITLES["access"], not faults, counts, _capped(faults), (), note)


# --- 8. the audit log verifies -----------------------------------------------------------------


def _chain_ids(problem: Any) -> list[str]:
    """A chain problem's records: the events' ids, else their places in the chain."""
    ids = [f"audit_event#{i}" for i in getattr(problem, "event_ids", ()) or ()]
    if not ids:
        ids = [f"audit_seq#{n}" for n in getattr(problem, "seqs", ()) or ()]
    return ids


def check_audit_chain(world: AuditWorld) -> PromiseResult:
    from plusjeklas_tui.services.audit_chain import verify_chain

    report = verify_chain(world.engine, world.keyring)
    problems = list(report.problems)
    ids = list(dict.fromkeys(i for problem in problems for i in _chain_ids(problem)))
    kinds: dict[str, int] = {}
    for problem in problems:
        kind = str(getattr(problem, "kind", "problem"))
        kinds[kind] = kinds.get(kind, 0) + 1
    note = f"{report.checked} sealed audit event(s) checked against the chain."
    waiting = int(getattr(report, "waiting", 0) or 0)
    if waiting:
        note += f" {waiting} event(s) from before the chain are sealed by the next audit event."
    if problems:
        shown = "; ".join(str(getattr(p, "message", p)) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        note += f" Problems: {shown}{more}. Run `plusjeklas audit verify` for the full report."
    counts = {"checked": int(report.checked), "problems": len(problems), "waiting": waiting}
    counts.update({f"problems_{kind}": n for kind, n in sorted(kinds.items())})
    passed = bool(report.ok) and not problems
    note += _listed_note(len(ids))
    return PromiseResult("audit_log", TITLES["audit_log"], passed, counts, _capped(ids), (), note)


# --- the promises, in the order of the privacy statement's table --------------------------------

TITLES = {
    "retention": "No personal data kept past its retention deadline",
    "newsletter": "Every newsletter subscriber has current consent here (or the customer basis)",
    "erasure": "No provider still holds an erased subject",
    "no_bsn": "No special-category data (BSN) in free text",
    "encrypted": "No personal field stored in plain text",
    "register": "Every processor in use is in the register",
    "access": "Only configured staff have access",
    "audit_log": "The audit log verifies",
}

PROMISES: tuple[Promise, ...] = (
    Promise("retention", TITLES["retention"], check_retention),
    Promise("newsletter", TITLES["newsletter"], check_newsletter),
    Promise("erasure", TITLES["erasure"], check_erasures),
    Promise("no_bsn", TITLES["no_bsn"], check_no_bsn),
    Promise("encrypted", TITLES["encrypted"], check_encrypted),
    Promise("register", TITLES["register"], check_register),
    Promise("access", TITLES["access"], check_access),
    Promise("audit_log", TITLES["audit_log"], check_audit_chain),
)


def promise(key: str) -> Promise:
    """The promise named *key*; a clear error naming the known keys otherwise."""
    for candidate in PROMISES:
        if candidate.key == key:
            return candidate
    known = ", ".join(p.key for p in PROMISES)
    raise PlusjeklasError(f"--only: no promise {key!r}; the promises are {known}")
