"""Sync with the providers: pull their state page by page, then push local changes to them.

One provider's sync is a :class:`SyncRun`. The pull applies each page the provider yields and
stores the page's checkpoint in the same transaction, so a sync that is cancelled, times out or
crashes between pages resumes at the next page, and a finished sync's last checkpoint makes the
next one incremental. The push sends consent events after the provider's watermark (and contact
changes since the last push) in batches; a batch that fails as a whole leaves the watermark
where it was, so the next sync sends it again (pushes are idempotent by their key).

Every provider call runs under a deadline (:func:`plusjeklas_tui.plugins.call_with_deadline`):
a provider that raises, hangs or returns garbage fails its own run, with a readable reason in
the run and a :class:`ProviderFailure` row, and never stops the other providers.

What the provider says is applied conservatively: an unsubscribe or a cleaned address at the
newsletter provider is a withdrawal here (source ``provider:<name>``) — of a grant, or, for a
person with no newsletter history here (a contact on the existing-customer basis), an objection
that ends that basis for good. It is recorded once: only when the link did not already hold the
person as unsubscribed before the pull. That is also how our own unsubscribe of a lapsed customer
basis is told apart — the push marks the link unsubscribed, so the next pull seeing it is no news
and invents no objection. Nothing a provider says ever grants consent or re-subscribes anyone;
members we do not know are counted, not imported.

Newsletter pushes are gated on the person's basis (see ``services/newsletter_basis.py``): a
grant without proof, or a contact change of someone with no basis, is not pushed — it is
counted (``no_basis``) and a ``no-basis`` failure row says why, by id. Contacts with a customer
basis are subscribed by a pass of their own, and unsubscribed when that basis lapses (the school
stops paying, the person leaves); a member the provider holds as anything but subscribed is never
subscribed by that pass. Newsletter changes carry tags (``newsletter``, ``service``) telling the
provider which mail the contact may get.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plusjeklas_tui import db
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    CustomerBasis,
    Organisation,
    ProviderFailure,
    ProviderLink,
    ProviderState,
    SyncRun,
    index_value,
)
from plusjeklas_tui.plugins import CallOutcome, call_with_deadline, deadline_for
from plusjeklas_tui.providers import (
    AnalyticsSubject,
    Change,
    ChangeKind,
    ChangeOutcome,
    MemberStatus,
    PaymentStatus,
    Provider,
    ProviderKind,
    Subject,
    SyncPage,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.services import newsletter_basis as basis
from plusjeklas_tui.services.records import record_consent
from plusjeklas_tui.sqltypes import keyring_of, utcnow
from plusjeklas_tui.staff import Permission, StaffMember

PUSH_BATCH = 500
"""Changes per push call (Mailchimp's batch members endpoint takes 500)."""

PROVIDER_CLOCK_RESOLUTION = dt.timedelta(seconds=1)
"""Providers give whole seconds: a change in the same second as our grant is not older."""

WITHDRAWN_AT_PROVIDER = frozenset({"unsubscribed", "cleaned"})
FAILED_PAYMENT = frozenset({"failed", "expired", "canceled", "charged_back"})


class RunState:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SyncProgress:
    """What a sync has done so far; sent after every page and batch (to a progress bar)."""

    provider: str
    phase: str
    """``pull``, ``push`` or ``done``."""
    done: int
    total: int | None
    applied: int = 0
    unknown: int = 0
    errors: int = 0
    state: str = RunState.RUNNING


@dataclass(frozen=True)
class SyncReport:
    provider: str
    run_id: int
    state: str
    fetched: int
    applied: int
    unknown: int
    pushed: int
    push_failed: int
    errors: int
    error: str | None
    no_basis: int = 0
    """Newsletter changes not pushed because the person has no basis (see
    :mod:`plusjeklas_tui.services.newsletter_basis`); each has a ``no-basis`` failure row."""

    @property
    def ok(self) -> bool:
        return self.state == RunState.SUCCEEDED


ProgressCallback = Callable[[SyncProgress], None]


def _no_progress(_progress: SyncProgress) -> None:
    return None


# --- state rows -----------------------------------------------------------------------------


def provider_state(session: Session, name: str) -> ProviderState:
    state = session.scalars(
        select(ProviderState).where(ProviderState.provider == name)
    ).one_or_none()
    if state is None:
        state = ProviderState(provider=name)
        session.add(state)
        session.flush()
    return state


def record_failure(
    session: Session, provider: str, operation: str, reason: str, run_id: int | None = None
) -> None:
    session.add(
        ProviderFailure(
            provider=provider,
            operation=operation,
            occurred_at=utcnow(),
            reason=reason,
            run_id=run_id,
        )
    )


# --- the run ----------------------------------------------------------------------------------


@dataclass
class _Counts:
    fetched: int = 0
    applied: int = 0
    unknown: int = 0
    pushed: int = 0
    push_failed: int = 0
    errors: int = 0
    total: int | None = None
    no_basis: int = 0


class _Sync:
    """One provider's sync: a pull then a push, with a run row kept up to date."""

    def __init__(
        self,
        engine: Engine,
        provider: Provider,
        staff: StaffMember,
        purposes: Sequence[str],
        cancel: threading.Event,
        progress: ProgressCallback,
    ) -> None:
        self.engine = engine
        self.provider = provider
        self.name = provider.info.name
        self.staff = staff
        self.purposes = list(purposes)
        self.cancel = cancel
        self.progress = progress
        self.counts = _Counts()
        self.deadline = deadline_for(provider)
        self.run_id = 0
        self.started = utcnow()

    # --- bookkeeping

    def _start(self) -> None:
        with db.session_scope(self.engine) as session:
            run = SyncRun(
                provider=self.name,
                actor=self.staff.username,
                started_at=self.started,
                state=RunState.RUNNING,
            )
            session.add(run)
            state = provider_state(session, self.name)
            state.last_started_at = self.started
            session.flush()
            assert run.id is not None
            self.run_id = run.id

    def _report(self, phase: str, state: str = RunState.RUNNING) -> None:
        c = self.counts
        done = c.fetched if phase == "pull" else c.pushed + c.push_failed
        self.progress(
            SyncProgress(
                self.name,
                phase,
                done,
                c.total if phase == "pull" else None,
                c.applied,
                c.unknown,
                c.errors,
                state,
            )
        )

    def _finish(self, state: str, error: str | None) -> SyncReport:
        c = self.counts
        with db.session_scope(self.engine) as session:
            run = session.get(SyncRun, self.run_id)
            assert run is not None
            run.finished_at = utcnow()
            run.state = state
            run.fetched, run.applied, run.unknown = c.fetched, c.applied, c.unknown
            run.pushed, run.push_failed, run.errors = c.pushed, c.push_failed, c.errors
            run.error = error
            provider = provider_state(session, self.name)
            provider.last_finished_at = run.finished_at
            provider.last_result = state
            provider.last_error = error
            provider.failures_in_a_row = (
                provider.failures_in_a_row + 1 if state == RunState.FAILED else 0
            )
            if error is not None:
                record_failure(session, self.name, "sync", error, self.run_id)
            audit.record(
                session,
                self.staff,
                "sync",
                "provider",
                None,
                provider=self.name,
                state=state,
                fetched=c.fetched,
                applied=c.applied,
                unknown=c.unknown,
                pushed=c.pushed,
                push_failed=c.push_failed,
                no_basis=c.no_basis,
            )
        self._report("done", state)
        return SyncReport(
            self.name,
            self.run_id,
            state,
            c.fetched,
            c.applied,
            c.unknown,
            c.pushed,
            c.push_failed,
            c.errors,
            error,
            no_basis=c.no_basis,
        )

    def _call(self, func: Callable[..., Any], *args: Any, expect: Any, what: str) -> CallOutcome:
        return call_with_deadline(
            func, *args, deadline_seconds=self.deadline, expect=expect, what=f"{self.name} {what}"
        )

    # --- entry

    def run(self) -> SyncReport:
        self._start()
        self._report("pull")
        error = self._pull()
        if error is None and not self.cancel.is_set():
            error = self._push()
        if self.cancel.is_set() and error is None:
            return self._finish(RunState.CANCELLED, None)
        if error is not None:
            self.counts.errors += 1
            return self._finish(RunState.FAILED, error)
        return self._finish(RunState.SUCCEEDED, None)

    # --- pull

    def _pages(self, checkpoint: str | None) -> Iterator[CallOutcome]:
        outcome = self._call(self.provider.sync, checkpoint, expect=Iterator, what="sync")
        if not outcome.ok:
            yield outcome
            return
        pages = outcome.value
        while True:
            step = self._call(next, pages, None, expect=(SyncPage, type(None)), what="sync page")
            if step.ok and step.value is None:
                return
            yield step
            if not step.ok:
                return

    def _pull(self) -> str | None:
        with db.session_scope(self.engine) as session:
            checkpoint = provider_state(session, self.name).sync_checkpoint
        for step in self._pages(checkpoint):
            if not step.ok:
                return step.reason
            page: SyncPage = step.value
            problem = _check_page(page)
            if problem:
                return f"{self.name} sync returned a malformed page: {problem}"
            with db.session_scope(self.engine) as session:
                for item in page.items:
                    self._apply(session, item)
                provider_state(session, self.name).sync_checkpoint = page.checkpoint
            self.counts.fetched += len(page.items)
            if page.total is not None:
                self.counts.total = page.total
            self._report("pull")
            if self.cancel.is_set():
                return None
        return None

    def _apply(self, session: Session, item: Any) -> None:
        if isinstance(item, MemberStatus):
            self._apply_member(session, item)
        elif isinstance(item, PaymentStatus):
            self._apply_payment(session, item)
        elif isinstance(item, AnalyticsSubject):
            self._apply_analytics(session, item)

    def _link(self, session: Session, subject_type: str, subject_id: int) -> ProviderLink | None:
        return session.scalars(
            select(ProviderLink).where(
                ProviderLink.provider == self.name,
                ProviderLink.subject_type == subject_type,
                ProviderLink.subject_id == subject_id,
            )
        ).one_or_none()

    def _link_by_external_id(self, session: Session, external_id: str) -> ProviderLink | None:
        keyring = keyring_of(session.get_bind().dialect)
        return session.scalars(
            select(ProviderLink)
            .where(ProviderLink.provider == self.name)
            .where(
                ProviderLink.external_id_index.in_(  # type: ignore[union-attr]
                    keyring.blind_index_candidates(external_id)
                )
            )
            .limit(1)
        ).one_or_none()

    def _upsert_link(
        self,
        session: Session,
        subject_type: str,
        subject_id: int,
        external_id: str,
        status: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        link = self._link(session, subject_type, subject_id)
        if link is None:
            link = ProviderLink(
                provider=self.name,
                subject_type=subject_type,
                subject_id=subject_id,
                external_id=external_id,
            )
            session.add(link)
        elif link.external_id != external_id:
            link.external_id = external_id
        link.status = status
        link.detail = json.dumps(detail, default=str, sort_keys=True) if detail else None
        link.last_synced_at = utcnow()

    def _apply_member(self, session: Session, member: MemberStatus) -> None:
        administrator = _administrator_by_email(session, member.email)
        if administrator is None or administrator.id is None:
            self.counts.unknown += 1
            return
        link = self._link(session, "administrator", administrator.id)
        known_before = link.status if link is not None else None
        self._upsert_link(
            session,
            "administrator",
            administrator.id,
            member.external_id,
            member.status,
            {"status": member.status, "changed_at": member.changed_at},
        )
        if member.status not in WITHDRAWN_AT_PROVIDER:
            return
        if known_before in WITHDRAWN_AT_PROVIDER:
            # Not news: the link already said so before this pull, because our own push made
            # it (a lapsed customer basis, a withdrawal here) or an earlier pull saw it. Taking
            # it as the person's act would invent an objection they never made.
            return
        for purpose in self.provider.info.purposes:
            latest = _latest_consent(session, administrator.id, purpose)
            if latest is None:
                if purpose == basis.NEWSLETTER:
                    # Left the newsletter there with no consent history here: a contact on the
                    # existing-customer basis (or one added there by hand) objected. Recorded
                    # once (the history is no longer empty); it ends a customer basis for good.
                    when = min(member.changed_at or utcnow(), utcnow())
                    self._withdrawn_there(session, administrator.id, purpose, member, when)
                continue
            if latest.action != ConsentAction.GRANTED:
                continue
            if (
                member.changed_at is not None
                and member.changed_at + PROVIDER_CLOCK_RESOLUTION < latest.occurred_at
            ):
                continue  # granted here after it left there: the push decides, not this pull
            # never before the grant it withdraws (the provider's clock has whole seconds)
            when = min(max(member.changed_at or utcnow(), latest.occurred_at), utcnow())
            self._withdrawn_there(session, administrator.id, purpose, member, when)

    def _withdrawn_there(
        self,
        session: Session,
        administrator_id: int,
        purpose: str,
        member: MemberStatus,
        when: dt.datetime,
    ) -> None:
        """Record a withdrawal the provider told us of (source ``provider:<name>``)."""
        record_consent(
            session,
            self.staff,
            administrator_id,
            purpose,
            ConsentAction.WITHDRAWN,
            f"{self.provider.info.title}: member status {member.status}",
            source=f"provider:{self.name}",
            occurred_at=when,
            purposes=self.purposes,
        )
        self.counts.applied += 1

    def _apply_payment(self, session: Session, payment: PaymentStatus) -> None:
        link = self._link_by_external_id(session, payment.external_id)
        organisation_id = link.subject_id if link is not None else None
        if organisation_id is None and payment.organisation_ref:
            organisation_id = session.scalars(
                select(Organisation.id).where(Organisation.brin == payment.organisation_ref)
            ).one_or_none()
        if organisation_id is None:
            self.counts.unknown += 1
            return
        failed = payment.last_payment_status in FAILED_PAYMENT
        status = "payment_failed" if failed else (payment.subscription_status or "ok")
        before = link.status if link is not None else None
        self._upsert_link(
            session,
            "organisation",
            organisation_id,
            payment.external_id,
            status,
            {
                "mandate": payment.mandate_status,
                "subscription": payment.subscription_status,
                "last_payment": payment.last_payment_status,
                "last_payment_at": payment.last_payment_at,
            },
        )
        if before != status:
            self.counts.applied += 1

    def _apply_analytics(self, session: Session, subject: AnalyticsSubject) -> None:
        link = self._link_by_external_id(session, subject.external_id)
        if link is None:
            self.counts.unknown += 1
            return
        link.status = "tracked"
        link.detail = json.dumps(
            {"visits": subject.visits, "last_visit_at": subject.last_visit_at}, default=str
        )
        link.last_synced_at = utcnow()

    # --- push

    def _push(self) -> str | None:
        for batch in self._change_batches():
            if self.cancel.is_set():
                return None
            changes, watermark, contact_mark = batch
            if changes:
                outcome = self._call(self.provider.push, changes, expect=list, what="push")
                if outcome.ok:
                    problem = _check_outcomes(changes, outcome.value)
                    if problem:
                        outcome = replace(outcome, ok=False, reason=problem)
                if not outcome.ok:
                    return outcome.reason
                self._record_outcomes(outcome.value, watermark, contact_mark)
            else:
                self._record_outcomes([], watermark, contact_mark)
            self._report("push")
        return None

    def _change_batches(
        self,
    ) -> Iterator[tuple[list[Change], int | None, dt.datetime | None]]:
        """Consent changes after the watermark, then contact changes, in push-sized batches."""
        purposes = list(self.provider.info.purposes)
        with db.session_scope(self.engine) as session:
            state = provider_state(session, self.name)
            watermark = state.push_watermark
            contact_since = state.contact_watermark
        if purposes:
            while True:
                with db.session_scope(self.engine) as session:
                    events = list(
                        session.scalars(
                            select(ConsentEvent)
                            .where(ConsentEvent.id > watermark)  # type: ignore[operator]
                            .where(ConsentEvent.purpose.in_(purposes))  # type: ignore[attr-defined]
                            .order_by(ConsentEvent.id)  # type: ignore[arg-type]
                            .limit(PUSH_BATCH)
                        )
                    )
                    if not events:
                        break
                    watermark = events[-1].id or watermark
                    changes = self._consent_changes(session, events)
                yield changes, watermark, None
        if basis.NEWSLETTER in purposes:
            with db.session_scope(self.engine) as session:
                changes = self._customer_basis_changes(session)
            for start in range(0, len(changes), PUSH_BATCH):
                yield changes[start : start + PUSH_BATCH], None, None
        started = self.started
        if contact_since is None:
            yield [], None, started  # first sync: everything so far went with the consents
            return
        with db.session_scope(self.engine) as session:
            changes = self._contact_changes(session, contact_since)
        for start in range(0, max(len(changes), 1), PUSH_BATCH):
            yield changes[start : start + PUSH_BATCH], None, started

    def _consent_changes(self, session: Session, events: Sequence[ConsentEvent]) -> list[Change]:
        """Only each person's current consent per purpose is pushed.

        An event that a later one superseded is history, not an instruction: pushing an old
        grant after the provider told us the person unsubscribed would subscribe them again.
        When the latest event came from this provider itself, there is nothing to tell it.
        """
        own_source = f"provider:{self.name}"
        latest = _latest_event_ids(session, {e.administrator_id for e in events}, self.purposes)
        standings = basis.standings(
            session, {e.administrator_id for e in events if e.purpose == basis.NEWSLETTER}
        )
        changes: list[Change] = []
        for event in events:
            if latest.get((event.administrator_id, event.purpose)) != event.id:
                continue  # superseded by a later event
            if event.source == own_source:
                continue  # what the provider told us: nothing to tell it back
            administrator = session.get(Administrator, event.administrator_id)
            if administrator is None:
                continue
            link = self._link(session, "administrator", event.administrator_id)
            granted = event.action == ConsentAction.GRANTED
            tags: tuple[tuple[str, bool], ...] = ()
            if event.purpose == basis.NEWSLETTER:
                standing = standings[event.administrator_id]
                if granted and standing.basis is None:
                    self._no_basis(session, standing, f"consent event #{event.id}")
                    continue
                if (
                    granted
                    and standing.basis is basis.Basis.CUSTOMER
                    and link is not None
                    and link.status != "subscribed"
                ):
                    continue  # an unproven grant; the customer basis never brings a leaver back
                tags = tuple(standing.tags().items())
            changes.append(
                basis.TaggedChange(
                    tags=tags,
                    kind=ChangeKind.CONSENT_GRANTED if granted else ChangeKind.CONSENT_WITHDRAWN,
                    subject=Subject(
                        "administrator",
                        event.administrator_id,
                        link.external_id if link else None,
                        administrator.email,
                    ),
                    key=f"consent-{event.id}",
                    purpose=event.purpose,
                    email=administrator.email,
                    name=administrator.name,
                )
            )
        return changes

    def _no_basis(self, session: Session, standing: basis.Standing, what: str) -> None:
        """A newsletter change held back: counted, and a failure row says why (ids only)."""
        self.counts.no_basis += 1
        record_failure(
            session,
            self.name,
            "no-basis",
            f"administrator #{standing.administrator_id}: {what} not pushed: "
            f"{basis.REASONS[standing.reason][1]}",
            self.run_id,
        )

    def _customer_basis_changes(self, session: Session) -> list[Change]:
        """Subscribe contacts whose customer basis holds; unsubscribe those whose basis lapsed.

        Only people with a customer basis row are looked at (consent goes through events).
        A member the provider holds as anything but subscribed (unsubscribed, cleaned,
        pending, archived) is left alone: nothing here re-subscribes someone who left.
        """
        ids = set(session.scalars(select(CustomerBasis.administrator_id).distinct()))
        if not ids:
            return []
        standings = basis.standings(session, ids)
        changes: list[Change] = []
        for person_id in sorted(standings):
            standing = standings[person_id]
            link = self._link(session, "administrator", person_id)
            status = link.status if link is not None else None
            if standing.basis is basis.Basis.CUSTOMER and link is None:
                kind = ChangeKind.CONSENT_GRANTED
                key = f"customer-basis-{standing.customer_basis_id}"
            elif (
                standing.basis is None
                and status == "subscribed"
                and standing.reason in ("customer-not-paying", "customer-left")
            ):
                kind = ChangeKind.CONSENT_WITHDRAWN
                key = f"customer-basis-{standing.customer_basis_id}-lapsed"
            else:
                continue
            administrator = session.get(Administrator, person_id)
            if administrator is None:
                continue
            changes.append(
                basis.TaggedChange(
                    tags=tuple(standing.tags().items()),
                    kind=kind,
                    subject=Subject(
                        "administrator",
                        person_id,
                        link.external_id if link else None,
                        administrator.email,
                    ),
                    key=key,
                    purpose=basis.NEWSLETTER,
                    email=administrator.email,
                    name=administrator.name,
                )
            )
        return changes

    def _contact_changes(self, session: Session, since: dt.datetime) -> list[Change]:
        changed: list[tuple[ProviderLink, Administrator | Organisation]] = []
        for link in session.scalars(select(ProviderLink).where(ProviderLink.provider == self.name)):
            record: Administrator | Organisation | None
            if link.subject_type == "administrator":
                record = session.get(Administrator, link.subject_id)
            else:
                record = session.get(Organisation, link.subject_id)
            if record is None or record.updated_at is None or record.updated_at <= since:
                continue
            changed.append((link, record))
        standings: dict[int, basis.Standing] = {}
        if basis.NEWSLETTER in self.provider.info.purposes:
            standings = basis.standings(
                session, {x.subject_id for x, _ in changed if x.subject_type == "administrator"}
            )
        changes: list[Change] = []
        for link, record in changed:
            standing = None
            if link.subject_type == "administrator":
                standing = standings.get(link.subject_id)
            if standing is not None and standing.basis is None:
                self._no_basis(session, standing, "contact change")
                continue
            changes.append(
                Change(
                    kind=ChangeKind.CONTACT_CHANGED,
                    subject=Subject(
                        link.subject_type,  # type: ignore[arg-type]
                        link.subject_id,
                        link.external_id,
                        record.email,
                    ),
                    key=f"contact-{link.subject_type}-{link.subject_id}-v{record.version}",
                    email=record.email,
                    name=record.name,
                )
            )
        return changes

    def _record_outcomes(
        self,
        outcomes: Sequence[ChangeOutcome],
        watermark: int | None,
        contact_mark: dt.datetime | None,
    ) -> None:
        with db.session_scope(self.engine) as session:
            for outcome in outcomes:
                subject = outcome.change.subject
                if outcome.ok:
                    self.counts.pushed += 1
                    if outcome.external_id:
                        link = self._link(session, subject.subject_type, subject.local_id)
                        status = _status_after(outcome.change)
                        if link is None:
                            self._upsert_link(
                                session,
                                subject.subject_type,
                                subject.local_id,
                                outcome.external_id,
                                status,
                            )
                        else:
                            link.external_id = outcome.external_id
                            link.status = status or link.status
                            link.last_synced_at = utcnow()
                else:
                    self.counts.push_failed += 1
                    record_failure(
                        session,
                        self.name,
                        "push",
                        f"{subject.subject_type} #{subject.local_id}: "
                        f"{outcome.reason or 'refused without a reason'}",
                        self.run_id,
                    )
            state = provider_state(session, self.name)
            if watermark is not None:
                state.push_watermark = max(state.push_watermark, watermark)
            if contact_mark is not None:
                state.contact_watermark = contact_mark


def _status_after(change: Change) -> str | None:
    if change.kind == ChangeKind.CONSENT_GRANTED:
        return "subscribed" if change.purpose == "newsletter" else "linked"
    if change.kind == ChangeKind.CONSENT_WITHDRAWN:
        return "unsubscribed" if change.purpose == "newsletter" else "withdrawn"
    return None


def _check_page(page: SyncPage) -> str | None:
    if not isinstance(page.items, Sequence | list | tuple):
        return f"items is {type(page.items).__name__}, not a list"
    for item in page.items:
        if not isinstance(item, MemberStatus | PaymentStatus | AnalyticsSubject):
            return f"an item is {type(item).__name__}, not a sync item"
    if page.checkpoint is not None and not isinstance(page.checkpoint, str):
        return f"checkpoint is {type(page.checkpoint).__name__}, not text"
    return None


def _check_outcomes(changes: Sequence[Change], outcomes: Sequence[Any]) -> str | None:
    if len(outcomes) != len(changes):
        return f"push answered {len(outcomes)} outcomes for {len(changes)} changes"
    for change, outcome in zip(changes, outcomes, strict=True):
        if not isinstance(outcome, ChangeOutcome):
            return f"push returned {type(outcome).__name__}, not a ChangeOutcome"
        if outcome.change.key != change.key:
            return "push returned its outcomes out of order"
    return None


def _administrator_by_email(session: Session, email: str) -> Administrator | None:
    keyring = keyring_of(session.get_bind().dialect)
    candidates = keyring.blind_index_candidates(index_value("email", email))
    return session.scalars(
        select(Administrator)
        .where(Administrator.email_index.in_(candidates))  # type: ignore[union-attr]
        .order_by(Administrator.id)
        .limit(1)
    ).one_or_none()


def _latest_event_ids(
    session: Session, administrator_ids: set[int], purposes: Sequence[str]
) -> dict[tuple[int, str], int]:
    """The id of each (administrator, purpose)'s latest consent event, in the order the
    history is read everywhere else (occurred_at, then id)."""
    latest: dict[tuple[int, str], int] = {}
    ids = sorted(administrator_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(ConsentEvent.administrator_id, ConsentEvent.purpose, ConsentEvent.id)
            .where(ConsentEvent.administrator_id.in_(ids[start : start + 500]))  # type: ignore[attr-defined]
            .where(ConsentEvent.purpose.in_(list(purposes)))  # type: ignore[attr-defined]
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
        )
        for administrator_id, purpose, event_id in rows:
            latest[(administrator_id, purpose)] = event_id
    return latest


def _latest_consent(session: Session, administrator_id: int, purpose: str) -> ConsentEvent | None:
    return session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.administrator_id == administrator_id)
        .where(ConsentEvent.purpose == purpose)
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).one_or_none()


# --- several providers ----------------------------------------------------------------------


def sync(
    engine: Engine,
    providers: Iterable[Provider],
    staff: StaffMember,
    purposes: Sequence[str],
    *,
    cancel: threading.Event | None = None,
    progress: ProgressCallback = _no_progress,
) -> list[SyncReport]:
    """Sync each provider in its own thread; one failing never stops the others.

    Staff need the edit permission: a sync records consent withdrawals.
    """
    staff.require(Permission.EDIT, "run a provider sync")
    cancel = cancel or threading.Event()
    chosen = list(providers)
    if not chosen:
        return []
    lock = threading.Lock()

    def report(update: SyncProgress) -> None:
        with lock:
            progress(update)

    def one(provider: Provider) -> SyncReport:
        return _Sync(engine, provider, staff, purposes, cancel, report).run()

    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="sync") as pool:
        return list(pool.map(one, chosen))


# --- reading state, for the dashboard, the Providers screen and `plusjeklas plugins` -------


@dataclass(frozen=True)
class ProviderSummary:
    provider: str
    last_result: str | None
    last_finished_at: dt.datetime | None
    last_error: str | None
    failures_in_a_row: int
    failures_total: int
    linked: int
    kind: ProviderKind | None = None


def summaries(session: Session, names: Iterable[str]) -> list[ProviderSummary]:
    states = {s.provider: s for s in session.scalars(select(ProviderState))}
    failures = dict(
        session.execute(
            select(ProviderFailure.provider, func.count()).group_by(ProviderFailure.provider)
        ).all()
    )
    linked = dict(
        session.execute(
            select(ProviderLink.provider, func.count()).group_by(ProviderLink.provider)
        ).all()
    )
    result = []
    for name in names:
        state = states.get(name)
        result.append(
            ProviderSummary(
                provider=name,
                last_result=state.last_result if state else None,
                last_finished_at=state.last_finished_at if state else None,
                last_error=state.last_error if state else None,
                failures_in_a_row=state.failures_in_a_row if state else 0,
                failures_total=int(failures.get(name, 0)),
                linked=int(linked.get(name, 0)),
            )
        )
    return result


def failed_payments(session: Session) -> int:
    """Organisations whose latest payment at a payment provider failed (a failed direct debit)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ProviderLink)
            .where(ProviderLink.status == "payment_failed")
        )
        or 0
    )


def recent_runs(session: Session, limit: int = 50) -> list[SyncRun]:
    return list(
        session.scalars(
            select(SyncRun).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)  # type: ignore[attr-defined]
        )
    )
