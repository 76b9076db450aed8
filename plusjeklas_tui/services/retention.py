"""Retention rules per data category, the plan of what is due, and the sweep that erases it.

The rules (``[retention]`` in the config, :class:`~plusjeklas_tui.config.RetentionSettings`):

* **general** — an organisation and its people: ``general_after_end_months`` calendar months
  after its last subscription ended, or after the record was created when it never had one.
  The deadline is computed from the subscriptions on every read
  (:func:`plusjeklas_tui.services.deadlines.clock_starts`), so a renewed subscription stops the
  clock the moment it is saved; the dashboard, the lists and this plan all use that one query.
* **administrator_left** — a person who left (``left_on``) while the school stays:
  ``administrator_after_leaving_days`` days after leaving.
* **payment records** — kept ``payment_records_years`` years from the end of the financial year
  (calendar year) by the payment provider, and recorded on the receipt as a retained category.
  Only when ``keep_local_iban_as_payment_record`` is set does a restricted copy stay here; the
  sweep deletes those once their ``keep_until`` has passed (**payment_records_expired**).
* A **legal hold** on an organisation pauses the general and administrator rules for it.

A deadline is the *last day* the data is kept: a subject is due once ``deadline < today``, which
is what the dashboard calls overdue. ``plan(within_days=N)`` also lists what falls due in the
next N days (``deadline < today + N``), marked as not due yet. Only the organisation's BRIN
(public school data) and internal ids appear in a plan: never a person.

The sweep erases every item due now and not on hold, each in its own transaction
(:mod:`plusjeklas_tui.services.erasure`): a sweep killed at any point leaves every subject either
untouched or erased together with its deletion tasks. A dry run walks the same items through
the same code and rolls each back, so its lines are exactly the real run's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, and_, case, exists, func, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect

from plusjeklas_tui.config import RetentionSettings, Settings
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    LegalHold,
    Organisation,
    ProviderLink,
    RestrictedRecord,
    Subscription,
)
from plusjeklas_tui.services.deadlines import RetentionRule, as_date
from plusjeklas_tui.staff import Permission, StaffMember

GENERAL = "general"
ADMINISTRATOR_LEFT = "administrator_left"
REQUEST = "request"
PAYMENT_RECORDS_EXPIRED = "payment_records_expired"

ORGANISATION = "organisation"
ADMINISTRATOR = "administrator"
RESTRICTED_RECORD = "restricted_record"

_CHUNK = 500


# --- the rules -----------------------------------------------------------------------------


def general_rule(settings: RetentionSettings) -> RetentionRule:
    return RetentionRule(months=settings.general_after_end_months)


def administrator_deadline(left_on: dt.date, settings: RetentionSettings) -> dt.date:
    """The last day an administrator who left on *left_on* is kept."""
    return left_on + dt.timedelta(days=settings.administrator_after_leaving_days)


def payment_records_until(last_payment_year: int, settings: RetentionSettings) -> dt.date:
    """End of the financial year of the last record, plus the fiscal retention period."""
    return dt.date(last_payment_year + settings.payment_records_years, 12, 31)


def is_due(deadline: dt.date | None, today: dt.date) -> bool:
    return deadline is not None and deadline < today


def rule_text(basis: str, settings: RetentionSettings) -> str:
    """The rule in words, for receipts (non-personal, the same for every subject)."""
    if basis == GENERAL:
        return (
            f"general data: {settings.general_after_end_months} months after the last "
            "subscription ended (or after the record was created, without one)"
        )
    if basis == ADMINISTRATOR_LEFT:
        return (
            f"administrator who left: {settings.administrator_after_leaving_days} days "
            "after leaving"
        )
    if basis == PAYMENT_RECORDS_EXPIRED:
        return (
            f"payment records: {settings.payment_records_years} years after the end of the "
            "financial year"
        )
    return basis


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """One subject the rules will erase: by internal id and the school's BRIN, never a name."""

    kind: str
    """``organisation``, ``administrator`` or ``restricted_record``."""
    subject_id: int
    organisation_id: int | None
    brin: str | None
    rule: str
    """``general``, ``administrator_left`` or ``payment_records_expired``."""
    deadline: dt.date
    """The last day the data is kept."""
    due: bool
    """True when due now (``deadline < today``); False when it falls due within the window."""
    on_hold: bool = False
    hold_set_by: str | None = None
    hold_set_at: dt.datetime | None = None
    providers: tuple[str, ...] = ()
    """Enabled providers that hold a copy: the deletion tasks an erasure will create."""

    @property
    def sweepable(self) -> bool:
        return self.due and not self.on_hold

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject_id": self.subject_id,
            "organisation_id": self.organisation_id,
            "brin": self.brin,
            "rule": self.rule,
            "deadline": self.deadline.isoformat(),
            "due": self.due,
            "on_hold": self.on_hold,
            "hold_set_by": self.hold_set_by,
            "hold_set_at": None if self.hold_set_at is None else self.hold_set_at.isoformat(),
            "providers": list(self.providers),
        }


@dataclass(frozen=True)
class RetentionPlan:
    today: dt.date
    within_days: int
    items: tuple[PlanItem, ...]

    @property
    def to_sweep(self) -> list[PlanItem]:
        """What a sweep today erases: due now and not on hold, in plan order."""
        return [item for item in self.items if item.sweepable]

    @property
    def organisations_to_sweep(self) -> int:
        return sum(1 for item in self.to_sweep if item.kind == ORGANISATION)

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "within_days": self.within_days,
            "due_now": len(self.to_sweep),
            "organisations_due_now": self.organisations_to_sweep,
            "on_hold": sum(1 for item in self.items if item.on_hold),
            "items": [item.as_dict() for item in self.items],
        }


def enabled_provider_names(settings: Settings) -> list[str]:
    return sorted(name for name, table in settings.plugins.items() if table.enabled)


def plan(
    engine: Engine,
    settings: Settings,
    today: dt.date,
    *,
    within_days: int = 0,
    providers: Iterable[str] | None = None,
) -> RetentionPlan:
    """What the rules erase today, and what falls due within *within_days* days.

    *providers*: the enabled provider names (default: from the configuration); only their
    copies become deletion tasks, so only they are listed per item.
    """
    if within_days < 0:
        raise PlusjeklasError(f"--within must be 0 or more days, got {within_days}")
    enabled = sorted(providers) if providers is not None else enabled_provider_names(settings)
    horizon = today + dt.timedelta(days=within_days)
    retention = settings.retention
    with engine.connect() as conn:
        organisations = _general_items(conn, retention, today, horizon)
        by_org = {item.organisation_id: item for item in organisations}
        people = [
            item
            for item in _administrator_items(conn, retention, today, horizon)
            if not _covered(item, by_org.get(item.organisation_id))
        ]
        records = _restricted_items(conn, today, horizon)
        org_providers = _providers_of_organisations(conn, list(by_org), enabled)
        person_providers = _providers_of_people(conn, [p.subject_id for p in people], enabled)
    items = [_with_providers(item, org_providers.get(item.subject_id)) for item in organisations]
    items += [_with_providers(item, person_providers.get(item.subject_id)) for item in people]
    items += records
    items.sort(key=lambda i: (i.deadline, i.kind != ORGANISATION, i.brin or "", i.subject_id))
    return RetentionPlan(today=today, within_days=within_days, items=tuple(items))


def _with_providers(item: PlanItem, names: set[str] | None) -> PlanItem:
    if not names:
        return item
    return dataclasses.replace(item, providers=tuple(sorted(names)))


def _covered(person: PlanItem, organisation: PlanItem | None) -> bool:
    """A person goes with their organisation when it is erased first (or at the same sweep)."""
    if organisation is None:
        return False
    return organisation.due or organisation.deadline <= person.deadline


def organisation_clocks(today: dt.date, cut: dt.date) -> CompoundSelect:
    """``(organisation_id, clock_start)`` of every organisation whose clock started on or before
    *cut*: the rows of :func:`~plusjeklas_tui.services.deadlines.clock_starts` with
    ``clock_start <= cut``, computed the way an index can answer them.

    ``clock_starts`` joins every organisation to its subscriptions and reads each subscription
    row; here the ended organisations come from the ``(organisation_id, end_date)`` index alone
    (grouped, last end on or before the cut, none running), and those without a subscription
    from the creation-time index. A test keeps the two equal.
    """
    running = func.sum(
        case(
            (Subscription.end_date.is_(None), 1),  # type: ignore[union-attr]
            (Subscription.end_date >= today, 1),  # type: ignore[operator]
            else_=0,
        )
    )
    last_end = func.max(Subscription.end_date)
    ended = (
        select(Subscription.organisation_id.label("organisation_id"), last_end.label("clock_start"))
        .group_by(Subscription.organisation_id)
        .having(and_(running == 0, last_end <= cut))
    )
    created = func.date(Organisation.created_at, type_=Date)
    # date() follows the session's time zone on PostgreSQL: the index range is two days wider
    # than the cut, the exact test is date() itself, as in clock_starts.
    widest = dt.datetime.combine(cut + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    never = select(Organisation.id.label("organisation_id"), created.label("clock_start")).where(
        Organisation.created_at < widest,  # type: ignore[operator]
        created <= cut,
        ~exists().where(Subscription.organisation_id == Organisation.id),
    )
    return union_all(ended, never)


def _general_items(
    conn: Connection, settings: RetentionSettings, today: dt.date, horizon: dt.date
) -> list[PlanItem]:
    rule = general_rule(settings)
    cut = rule.latest_clock_due_before(horizon)  # deadline < horizon  <=>  clock <= cut
    clocks = organisation_clocks(today, cut).subquery("clocks")
    query = (
        select(
            Organisation.id,
            Organisation.brin,
            clocks.c.clock_start,
            LegalHold.set_by,
            LegalHold.set_at,
        )
        .join(clocks, clocks.c.organisation_id == Organisation.id)
        .outerjoin(LegalHold, LegalHold.organisation_id == Organisation.id)
    )
    deadlines: dict[object, dt.date] = {}
    items = []
    for row in conn.execute(query):
        deadline = deadlines.get(row.clock_start)
        if deadline is None:
            deadline = rule.deadline(as_date(row.clock_start))
            assert deadline is not None
            deadlines[row.clock_start] = deadline
        items.append(
            PlanItem(
                kind=ORGANISATION,
                subject_id=row.id,
                organisation_id=row.id,
                brin=row.brin,
                rule=GENERAL,
                deadline=deadline,
                due=deadline < today,
                on_hold=row.set_by is not None,
                hold_set_by=row.set_by,
                hold_set_at=row.set_at,
            )
        )
    return items


def _administrator_items(
    conn: Connection, settings: RetentionSettings, today: dt.date, horizon: dt.date
) -> list[PlanItem]:
    # left_on + days < horizon  <=>  left_on < horizon - days
    cut = horizon - dt.timedelta(days=settings.administrator_after_leaving_days)
    query = (
        select(
            Administrator.id,
            Administrator.organisation_id,
            Administrator.left_on,
            Organisation.brin,
            LegalHold.set_by,
            LegalHold.set_at,
        )
        .join(Organisation, Organisation.id == Administrator.organisation_id)
        .outerjoin(LegalHold, LegalHold.organisation_id == Administrator.organisation_id)
        .where(Administrator.left_on.is_not(None), Administrator.left_on < cut)  # type: ignore[union-attr]
    )
    items = []
    for row in conn.execute(query):
        deadline = administrator_deadline(as_date(row.left_on), settings)  # type: ignore[arg-type]
        items.append(
            PlanItem(
                kind=ADMINISTRATOR,
                subject_id=row.id,
                organisation_id=row.organisation_id,
                brin=row.brin,
                rule=ADMINISTRATOR_LEFT,
                deadline=deadline,
                due=is_due(deadline, today),
                on_hold=row.set_by is not None,
                hold_set_by=row.set_by,
                hold_set_at=row.set_at,
            )
        )
    return items


def _restricted_items(conn: Connection, today: dt.date, horizon: dt.date) -> list[PlanItem]:
    query = select(RestrictedRecord.id, RestrictedRecord.keep_until).where(
        RestrictedRecord.keep_until < horizon
    )
    return [
        PlanItem(
            kind=RESTRICTED_RECORD,
            subject_id=row.id,
            organisation_id=None,
            brin=None,
            rule=PAYMENT_RECORDS_EXPIRED,
            deadline=as_date(row.keep_until),  # type: ignore[arg-type]
            due=is_due(as_date(row.keep_until), today),
        )
        for row in conn.execute(query)
    ]


def school_names(engine: Engine, organisation_ids: Sequence[int]) -> dict[int, str]:
    """The names of these schools, for showing a plan (public school data, not personal)."""
    names: dict[int, str] = {}
    with engine.connect() as conn:
        for chunk in _chunks(list(dict.fromkeys(organisation_ids))):
            query = select(Organisation.id, Organisation.name).where(
                Organisation.id.in_(chunk)  # type: ignore[union-attr]
            )
            names.update({row.id: row.name for row in conn.execute(query)})
    return names


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _providers_of_organisations(
    conn: Connection, organisation_ids: list[int], enabled: list[str]
) -> dict[int, set[str]]:
    """Organisation id -> enabled providers holding it or one of its people."""
    found: dict[int, set[str]] = {}
    if not enabled:
        return found
    for chunk in _chunks(organisation_ids):
        own = select(ProviderLink.subject_id, ProviderLink.provider).where(
            ProviderLink.subject_type == ORGANISATION,
            ProviderLink.subject_id.in_(chunk),  # type: ignore[attr-defined]
            ProviderLink.provider.in_(enabled),  # type: ignore[attr-defined]
        )
        people = (
            select(Administrator.organisation_id, ProviderLink.provider)
            .join(
                ProviderLink,
                and_(
                    ProviderLink.subject_type == ADMINISTRATOR,
                    ProviderLink.subject_id == Administrator.id,
                ),
            )
            .where(
                Administrator.organisation_id.in_(chunk),  # type: ignore[attr-defined]
                ProviderLink.provider.in_(enabled),  # type: ignore[attr-defined]
            )
        )
        for query in (own, people):
            for owner, provider in conn.execute(query):
                found.setdefault(owner, set()).add(provider)
    return found


def _providers_of_people(
    conn: Connection, administrator_ids: list[int], enabled: list[str]
) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    if not enabled:
        return found
    for chunk in _chunks(administrator_ids):
        query = select(ProviderLink.subject_id, ProviderLink.provider).where(
            ProviderLink.subject_type == ADMINISTRATOR,
            ProviderLink.subject_id.in_(chunk),  # type: ignore[attr-defined]
            ProviderLink.provider.in_(enabled),  # type: ignore[attr-defined]
        )
        for owner, provider in conn.execute(query):
            found.setdefault(owner, set()).add(provider)
    return found


# --- the sweep -----------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What a sweep did (or, dry, would do): one line per action, in order; failures apart."""

    dry_run: bool
    actions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Items no longer due when their turn came (renewed, put on hold, already erased)."""
    failures: list[str] = field(default_factory=list)
    """Readable and non-personal: the item and the kind of fault."""
    receipts: list[int] = field(default_factory=list)
    tasks: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def sweep(
    engine: Engine,
    settings: Settings,
    staff: StaffMember,
    today: dt.date,
    *,
    dry_run: bool = False,
    the_plan: RetentionPlan | None = None,
    targets: Any = None,
    progress: Callable[[str], None] | None = None,
) -> SweepReport:
    """Erase every item due today and not on hold, each in its own transaction.

    A dry run needs only the ``read`` permission (it shows what the plan shows, in more
    words); a real run needs ``sweep``. *targets*: the enabled providers as
    :func:`plusjeklas_tui.services.erasure.provider_targets` gives them (default: from the
    configuration, without asking the plugins what they need).
    """
    from plusjeklas_tui.db import session_scope
    from plusjeklas_tui.services import erasure

    if dry_run:
        staff.require(Permission.READ, "preview a retention sweep")
    else:
        staff.require(Permission.SWEEP, "run a retention sweep")
    if targets is None:
        targets = erasure.provider_targets(settings)
    if the_plan is None:
        the_plan = plan(engine, settings, today, providers=list(targets))
    report = SweepReport(dry_run=dry_run)
    for item in the_plan.to_sweep:
        try:
            if dry_run:
                with Session(engine) as session:
                    result = erasure.erase_planned(
                        session, staff, settings.retention, targets, item, today, dry_run=True
                    )
                    session.rollback()
            else:
                with session_scope(engine) as session:
                    result = erasure.erase_planned(
                        session, staff, settings.retention, targets, item, today
                    )
        except erasure.NotErasable as exc:
            report.skipped.append(f"{describe_item(item)}: skipped, {exc}")
            continue
        except Exception as exc:  # one subject failing must not stop the others
            report.failures.append(f"{describe_item(item)}: failed, {erasure.describe_fault(exc)}")
            continue
        line = f"{describe_item(item)}: {result.summary()}"
        report.actions.append(line)
        if result.receipt_id is not None:
            report.receipts.append(result.receipt_id)
        report.tasks += len(result.tasks)
        if progress is not None:
            progress(line)
    return report


def describe_item(item: PlanItem) -> str:
    """An item in words: kind, BRIN or internal id, rule and deadline. Never personal."""
    if item.kind == ORGANISATION:
        who = f"organisation {item.brin} (#{item.subject_id})"
    elif item.kind == ADMINISTRATOR:
        who = f"administrator #{item.subject_id} of {item.brin}"
    else:
        who = f"restricted record #{item.subject_id}"
    return f"{who} [{item.rule}, kept until {item.deadline.isoformat()}]"
