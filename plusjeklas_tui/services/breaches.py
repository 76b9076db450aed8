"""The breach register: record every incident, report it (or say why not), count down 72 hours.

GDPR art. 33: a breach is reported to the Autoriteit Persoonsgegevens within 72 hours of
becoming aware of it, and every breach is registered, reported or not (art. 33(5)). The 72 hours
are wall-clock hours that run through nights, weekends and clock changes, so the deadline is
computed in UTC as ``discovered_at + 72 h``: across the end of summer time it falls one hour
"earlier" on the Amsterdam clock than a naive local computation would put it.

Input comes as text (CLI options, form fields) or as typed values; :func:`validate` checks every
field and raises :class:`~plusjeklas_tui.validation.ValidationErrors` with *every* problem, each
naming its field and rule (codes ``breach.*``, English in :data:`BREACH_RULES`, Dutch in the
staff app's catalogue). Times typed without an offset are Amsterdam time; a time that does not
exist there (clocks forward) or exists twice (clocks back) is refused rather than guessed.

Writers check permissions (editors and admins record, everyone reads), flush but never commit
(the caller's :func:`~plusjeklas_tui.db.session_scope` does), and audit by id and field names
only: descriptions may name people and are stored encrypted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import Breach, BreachStatus
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.breach_rules import BREACH_RULES
from plusjeklas_tui.services.records import ConflictError  # the forms know it: kept edits
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import (
    REQUIRED_RULE,
    FieldError,
    Rule,
    ValidationErrors,
    check_free_text,
    normalize_email,
    normalize_phone,
    normalize_text,
)

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
REPORT_WINDOW = dt.timedelta(hours=72)
"""GDPR art. 33(1): report within 72 hours of becoming aware, in real elapsed time."""
CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far in the future a typed time may lie (clocks of different machines), no more."""
TEXT_MAX_LENGTH = 4000

NATURES: tuple[str, ...] = ("read", "copied", "altered", "deleted", "stolen", "lost", "unknown")
"""What happened to the data (the regulator's form: read, copied, altered, deleted or
destroyed, stolen; lost and unknown besides)."""
DATA_TYPES: tuple[str, ...] = (
    "name_address",
    "phone",
    "email",
    "login",
    "financial",
    "bsn",
    "id_copies",
    "birth_date",
    "special_categories",
    "other",
)
"""The kinds of personal data the form lists; ``financial`` covers IBANs."""
ENCRYPTED_CHOICES: tuple[str, ...] = ("yes", "partly", "no", "unknown")
"""Whether the data was encrypted, hashed or otherwise unintelligible to whoever got it."""
INFORMED_CHOICES: tuple[str, ...] = ("yes", "planned", "no", "not_required", "not_yet_decided")
"""Whether the people were (or will be) told: needed only when the risk to them is high."""


FIELDS: tuple[str, ...] = (
    "follow_up",
    "earlier_reference",
    "contact_name",
    "contact_function",
    "contact_phone",
    "contact_email",
    "processor_involved",
    "processor_name",
    "started_at",
    "ended_at",
    "ongoing",
    "discovered_at",
    "late_reason",
    "summary",
    "nature",
    "cause",
    "data_types",
    "data_types_other",
    "records_approx",
    "groups",
    "people_min",
    "people_max",
    "vulnerable_groups",
    "encrypted",
    "consequences",
    "informed",
    "informed_how",
    "measures",
)
"""Every field staff type, in the order of the regulator's form."""

LIST_FIELDS = ("nature", "data_types")


class BreachStateError(PlusjeklasError):
    """The breach cannot move as asked (it was already reported)."""


def breach_rule(code: str, **params: Any) -> Rule:
    """A ``breach.*`` rule with its parameters and its English text."""
    return Rule(f"breach.{code}", params, english=BREACH_RULES[code].format(**params))


# --- the countdown -----------------------------------------------------------------------------


def deadline(discovered_at: dt.datetime) -> dt.datetime:
    """The last moment to report: 72 real hours after discovery (UTC, so DST cannot move it)."""
    return discovered_at.astimezone(dt.UTC) + REPORT_WINDOW


def time_left(discovered_at: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """Time until the deadline; negative once it has passed."""
    return deadline(discovered_at) - now.astimezone(dt.UTC)


def breach_deadline(breach: Breach) -> dt.datetime:
    return deadline(breach.discovered_at)


def breach_time_left(breach: Breach, now: dt.datetime) -> dt.timedelta | None:
    """Time left to report *breach*; ``None`` when the countdown has stopped (it was reported
    or judged not reportable)."""
    if breach.status != BreachStatus.OPEN:
        return None
    return time_left(breach.discovered_at, now)


def split_duration(delta: dt.timedelta) -> tuple[bool, int, int]:
    """``(overdue, hours, minutes)`` of a time left, minutes rounded down, for display."""
    seconds = int(delta.total_seconds())
    overdue = seconds < 0
    minutes = abs(seconds) // 60
    return overdue, minutes // 60, minutes % 60


def describe_time_left(delta: dt.timedelta | None) -> str:
    """English, for the CLI: ``"41 h 12 min left"``, ``"overdue by 3 h 05 min"``, ``"-"``."""
    if delta is None:
        return "-"
    overdue, hours, minutes = split_duration(delta)
    return (
        f"overdue by {hours} h {minutes:02d} min"
        if overdue
        else f"{hours} h {minutes:02d} min left"
    )


@dataclass(frozen=True)
class OpenBreachesSummary:
    """What the dashboard tile shows: how many breaches still await a decision, and the most
    urgent one's countdown."""

    open_count: int
    overdue_count: int
    next_id: int | None
    next_deadline: dt.datetime | None
    next_time_left: dt.timedelta | None


def open_breaches_summary(session: Session, now: dt.datetime) -> OpenBreachesSummary:
    """The open breaches' countdown for the dashboard tile (any staff member may see it).

    *Open* means neither reported nor marked not reportable. ``overdue_count`` counts those
    whose 72 hours have passed; ``next_*`` describe the earliest deadline (the oldest
    discovery), which may already be overdue. Reads plain columns only (no decryption), one
    indexed query, so it is cheap enough for every dashboard refresh.
    """
    limit = now.astimezone(dt.UTC) - REPORT_WINDOW
    is_open = Breach.status == BreachStatus.OPEN  # type: ignore[arg-type]
    total, overdue = session.execute(
        select(
            func.count(),
            func.count().filter(Breach.discovered_at < limit),  # type: ignore[arg-type]
        ).where(is_open)
    ).one()
    first = session.execute(
        select(Breach.id, Breach.discovered_at)
        .where(is_open)
        .order_by(Breach.discovered_at, Breach.id)  # type: ignore[arg-type]
        .limit(1)
    ).first()
    if first is None:
        return OpenBreachesSummary(0, 0, None, None, None)
    return OpenBreachesSummary(
        open_count=total,
        overdue_count=overdue,
        next_id=first.id,
        next_deadline=deadline(first.discovered_at),
        next_time_left=time_left(first.discovered_at, now),
    )


# --- parsing and validation --------------------------------------------------------------------

T = TypeVar("T")
_MOMENT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[ T](?P<time>[0-9]{2}:[0-9]{2}(:[0-9]{2})?)"
    r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_TRUE = {"yes", "y", "true", "1", "ja", "j"}
_FALSE = {"no", "n", "false", "0", "nee"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_moment(value: Any, field: str) -> dt.datetime | None:
    """An aware UTC time from a datetime or from text; empty gives ``None``.

    Text is ``YYYY-MM-DD HH:MM[:SS]``, read as Amsterdam time, or with an offset (``Z``,
    ``+02:00``) as that. A naive ``datetime`` is Amsterdam time too.
    """
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return (
            _local_to_utc(value, field, str(value))
            if value.tzinfo is None
            else (value.astimezone(dt.UTC))
        )
    raw = str(value)
    match = _MOMENT.fullmatch(raw.strip())
    if match is None:
        raise FieldError(field, raw, breach_rule("moment.format"))
    try:
        parsed = dt.datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise FieldError(field, raw, breach_rule("moment.format")) from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC)
    return _local_to_utc(parsed, field, raw)


def _local_to_utc(naive: dt.datetime, field: str, raw: str) -> dt.datetime:
    first = naive.replace(tzinfo=LOCAL_TZ, fold=0).astimezone(dt.UTC)
    second = naive.replace(tzinfo=LOCAL_TZ, fold=1).astimezone(dt.UTC)
    if first == second:
        return first
    if first.astimezone(LOCAL_TZ).replace(tzinfo=None) != naive:
        raise FieldError(field, raw, breach_rule("moment.gap"))
    raise FieldError(field, raw, breach_rule("moment.ambiguous"))


def parse_flag(value: Any, field: str) -> bool:
    """``True``/``False`` from a bool or yes/no (ja/nee, true/false, 1/0); empty is no."""
    if isinstance(value, bool):
        return value
    if _blank(value):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(field, str(value), breach_rule("flag"))


def parse_count(value: Any, field: str, *, required: bool) -> int | None:
    """A whole number of 0 or more."""
    if _blank(value):
        if required:
            raise FieldError(field, "", REQUIRED_RULE)
        return None
    if isinstance(value, bool):
        raise FieldError(field, str(value), breach_rule("count"))
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace("_", "")
        if not text.isascii() or not text.isdigit():
            raise FieldError(field, str(value), breach_rule("count"))
        number = int(text)
    if number < 0:
        raise FieldError(field, str(value), breach_rule("count"))
    return number


def parse_choice(value: Any, field: str, allowed: Sequence[str], default: str) -> str:
    if _blank(value):
        return default
    text = str(value).strip().lower().replace("-", "_")
    if text not in allowed:
        raise FieldError(field, str(value), breach_rule("choice", allowed=", ".join(allowed)))
    return text


def parse_choices(value: Any, field: str, allowed: Sequence[str]) -> list[str]:
    """One or more codes from *allowed*, as a list or comma-separated text, in *allowed*'s order."""
    items: Iterable[Any]
    if _blank(value):
        items = []
    elif isinstance(value, str):
        items = value.split(",")
    else:
        items = value
    codes = [str(item).strip().lower().replace("-", "_") for item in items]
    codes = [code for code in codes if code]
    unknown = [code for code in codes if code not in allowed]
    if unknown:
        raise FieldError(
            field,
            ", ".join(unknown),
            breach_rule("choices", found=", ".join(unknown), allowed=", ".join(allowed)),
        )
    if not codes:
        raise FieldError(field, "", breach_rule("choices_required", allowed=", ".join(allowed)))
    return [code for code in allowed if code in codes]


def _free_text(value: Any, field: str, *, required: bool = False) -> str | None:
    text = check_free_text("" if value is None else str(value), field, TEXT_MAX_LENGTH)
    if not text:
        if required:
            raise FieldError(field, "", REQUIRED_RULE, show_value=False)
        return None
    return text


def _line(value: Any, field: str, max_length: int) -> str | None:
    return normalize_text("" if value is None else str(value), field, max_length, False) or None


def _optional(check: Callable[[str, str], str], value: Any, field: str) -> str | None:
    return None if _blank(value) else check(str(value), field)


def _collect(errors: list[FieldError], check: Callable[..., T], *args: Any) -> T | None:
    try:
        return check(*args)
    except FieldError as error:
        errors.append(error)
        return None


def _line_of(max_length: int) -> Callable[[Any, str], str | None]:
    return lambda value, field: _line(value, field, max_length)


def _choice_of(allowed: Sequence[str], default: str) -> Callable[[Any, str], str]:
    return lambda value, field: parse_choice(value, field, allowed, default)


def _choices_of(allowed: Sequence[str]) -> Callable[[Any, str], list[str]]:
    return lambda value, field: parse_choices(value, field, allowed)


def _count(*, required: bool) -> Callable[[Any, str], int | None]:
    return lambda value, field: parse_count(value, field, required=required)


def _required_text(value: Any, field: str) -> str | None:
    return _free_text(value, field, required=True)


def _phone(value: Any, field: str) -> str | None:
    return _optional(normalize_phone, value, field)


def _email(value: Any, field: str) -> str | None:
    return _optional(normalize_email, value, field)


FIELD_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "follow_up": parse_flag,
    "earlier_reference": _line_of(50),
    "contact_name": _line_of(200),
    "contact_function": _line_of(100),
    "contact_phone": _phone,
    "contact_email": _email,
    "processor_involved": parse_flag,
    "processor_name": _line_of(200),
    "started_at": parse_moment,
    "ended_at": parse_moment,
    "ongoing": parse_flag,
    "discovered_at": parse_moment,
    "late_reason": _free_text,
    "summary": _required_text,
    "nature": _choices_of(NATURES),
    "cause": _free_text,
    "data_types": _choices_of(DATA_TYPES),
    "data_types_other": _free_text,
    "records_approx": _count(required=False),
    "groups": _free_text,
    "people_min": _count(required=True),
    "people_max": _count(required=True),
    "vulnerable_groups": parse_flag,
    "encrypted": _choice_of(ENCRYPTED_CHOICES, "unknown"),
    "consequences": _free_text,
    "informed": _choice_of(INFORMED_CHOICES, "not_yet_decided"),
    "informed_how": _free_text,
    "measures": _free_text,
}
"""How each of :data:`FIELDS` is read, alone (the rules between fields come after)."""
assert tuple(FIELD_CHECKS) == FIELDS


def validate(raw: Mapping[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Every field of a breach checked, each alone and against the others.

    Returns the normalised values of :data:`FIELDS` (missing keys count as empty); raises
    :class:`ValidationErrors` holding every problem. Required: ``discovered_at``,
    ``summary``, ``nature``, ``data_types``, ``people_min``, ``people_max``.
    """
    now = (now or utcnow()).astimezone(dt.UTC)
    errors: list[FieldError] = []
    v: dict[str, Any] = {
        field: _collect(errors, check, raw.get(field), field)
        for field, check in FIELD_CHECKS.items()
    }
    failed = {error.field for error in errors}
    errors.extend(_cross_field_errors(v, failed, raw, now))
    if errors:
        raise ValidationErrors(errors)
    return v


def _cross_field_errors(
    v: Mapping[str, Any], failed: set[str], raw: Mapping[str, Any], now: dt.datetime
) -> list[FieldError]:
    """The rules between fields, checked only on fields that passed on their own."""
    errors: list[FieldError] = []

    def shown(field: str) -> str:
        value = raw.get(field)
        return "" if value is None else str(value)

    def ok(*fields: str) -> bool:
        return not failed & set(fields)

    def add(field: str, code: str, value: str = "", **params: Any) -> None:
        errors.append(FieldError(field, value, breach_rule(code, **params)))

    discovered, started, ended = v["discovered_at"], v["started_at"], v["ended_at"]
    if ok("discovered_at") and discovered is None:
        errors.append(FieldError("discovered_at", "", REQUIRED_RULE))
    for field in ("discovered_at", "started_at", "ended_at"):
        if ok(field) and v[field] is not None and v[field] > now + CLOCK_SKEW:
            add(field, "moment.future", shown(field))
    if ok("started_at", "discovered_at") and started and discovered and started > discovered:
        add("started_at", "started_after_discovery", shown("started_at"))
    if ok("started_at", "ended_at") and started and ended and ended < started:
        add("ended_at", "ended_before_start", shown("ended_at"))
    if ok("ended_at", "ongoing") and ended and v["ongoing"]:
        add("ended_at", "ended_while_ongoing", shown("ended_at"))
    low, high = v["people_min"], v["people_max"]
    if ok("people_min", "people_max") and low is not None and high is not None and high < low:
        add("people_max", "max_below_min", str(high), minimum=low)
    other = "other" in (v["data_types"] or [])
    if ok("data_types", "data_types_other") and other and not v["data_types_other"]:
        add("data_types_other", "other_needs_description")
    if ok("follow_up", "earlier_reference") and v["follow_up"] and not v["earlier_reference"]:
        add("earlier_reference", "follow_up_needs_reference")
    involved = v["processor_involved"]
    if ok("processor_involved", "processor_name") and involved and not v["processor_name"]:
        add("processor_name", "processor_needs_name")
    telling = v["informed"] in ("yes", "planned")
    if ok("informed", "informed_how") and telling and not v["informed_how"]:
        add("informed_how", "informed_needs_how")
    return errors


# --- reading -----------------------------------------------------------------------------------


def values_of(breach: Breach) -> dict[str, Any]:
    """The typed values of :data:`FIELDS` (lists decoded), as :func:`validate` returns them."""
    values = {field: getattr(breach, field) for field in FIELDS}
    for field in LIST_FIELDS:
        values[field] = json.loads(values[field] or "[]")
    return values


def get_breach(session: Session, staff: StaffMember, breach_id: int) -> Breach:
    staff.require(Permission.READ, "read the breach register")
    breach = session.get(Breach, breach_id)
    if breach is None:
        raise NotFound(f"no breach with id {breach_id}")
    return breach


@dataclass(frozen=True)
class BreachRow:
    """One line of the register: no decrypted text besides the summary's first line."""

    id: int
    status: str
    discovered_at: dt.datetime
    deadline: dt.datetime
    time_left: dt.timedelta | None
    people_min: int
    people_max: int
    data_types: list[str]
    reported_at: dt.datetime | None
    ap_reference: str | None
    summary: str


def list_breaches(
    session: Session, staff: StaffMember, now: dt.datetime, *, status: str | None = None
) -> list[BreachRow]:
    """The whole register (or one status), open breaches first by deadline, then newest."""
    staff.require(Permission.READ, "read the breach register")
    query = select(Breach)
    if status is not None:
        query = query.where(Breach.status == status)  # type: ignore[arg-type]
    rows = [
        BreachRow(
            id=breach.id or 0,
            status=breach.status,
            discovered_at=breach.discovered_at,
            deadline=breach_deadline(breach),
            time_left=breach_time_left(breach, now),
            people_min=breach.people_min,
            people_max=breach.people_max,
            data_types=json.loads(breach.data_types or "[]"),
            reported_at=breach.reported_at,
            ap_reference=breach.ap_reference,
            summary=(breach.summary or "").splitlines()[0] if breach.summary else "",
        )
        for breach in session.scalars(query)
    ]
    open_rows = [r for r in rows if r.status == BreachStatus.OPEN]
    closed = [r for r in rows if r.status != BreachStatus.OPEN]
    open_rows.sort(key=lambda r: (r.deadline, r.id))
    closed.sort(key=lambda r: (r.discovered_at, r.id), reverse=True)
    return [*open_rows, *closed]


# --- writing -----------------------------------------------------------------------------------


def _stored(field: str, value: Any) -> Any:
    return json.dumps(value) if field in LIST_FIELDS else value


def register(
    session: Session,
    staff: StaffMember,
    raw: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> Breach:
    """Add a breach to the register; its 72-hour countdown starts at ``discovered_at``."""
    staff.require(Permission.EDIT, "record a breach")
    values = validate(raw, now=now)
    breach = Breach(
        **{field: _stored(field, value) for field, value in values.items()},
        status=BreachStatus.OPEN,
        created_by=staff.username,
    )
    session.add(breach)
    session.flush()
    filled = [f for f in FIELDS if values[f] not in (None, "", [], False)]
    audit.record(session, staff, "create", "breach", breach.id, fields=filled)
    return breach


def _claim_version(session: Session, breach: Breach, expected: int | None) -> None:
    """Bump the version in the database, so a concurrent save cannot slip in between."""
    current = breach.version if expected is None else expected
    result = session.execute(
        update(Breach)
        .where(Breach.id == breach.id, Breach.version == current)  # type: ignore[arg-type]
        .values(version=current + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            f"breach #{breach.id} was changed by someone else while you were editing it; "
            "reload it and apply your change again"
        )
    breach.version = current + 1


def update_breach(
    session: Session,
    staff: StaffMember,
    breach_id: int,
    changes: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Apply *changes* (some of :data:`FIELDS`) and check the whole record again.

    Returns the names of the fields that really changed (audited; nothing is written when
    none did). With *expected_version*, a breach saved by someone else since is refused.
    """
    staff.require(Permission.EDIT, "change a breach")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValueError(f"not breach fields: {', '.join(unknown)}")
    breach = get_breach(session, staff, breach_id)
    current = values_of(breach)
    values = validate({**current, **changes}, now=now)
    if breach.status == BreachStatus.REPORTED and breach.reported_at is not None:
        _check_reported_in_time(breach.reported_at, values, values["late_reason"])
    changed = [f for f in FIELDS if values[f] != current[f]]
    if not changed:
        return []
    _claim_version(session, breach, expected_version)
    for field in changed:
        setattr(breach, field, _stored(field, values[field]))
    session.flush()
    audit.record(
        session, staff, "update", "breach", breach.id, fields=changed, version=breach.version
    )
    return changed


def _check_reported_in_time(
    reported_at: dt.datetime, values: Mapping[str, Any], late_reason: str | None
) -> None:
    if reported_at < values["discovered_at"]:
        raise FieldError("reported_at", "", breach_rule("reported_before_discovery"))
    if reported_at > deadline(values["discovered_at"]) and not late_reason:
        raise FieldError("late_reason", "", breach_rule("late_needs_reason"), show_value=False)


def mark_reported(
    session: Session,
    staff: StaffMember,
    breach_id: int,
    *,
    ap_reference: str,
    reported_at: Any = None,
    late_reason: str | None = None,
    now: dt.datetime | None = None,
) -> Breach:
    """Record the report to the Autoriteit Persoonsgegevens: its number and when it was made.

    A report after the 72 hours needs a reason (given here or already on the breach). A breach
    first judged not reportable may still be reported (its reason is kept); a reported breach
    cannot be reported again (record a follow-up instead).
    """
    staff.require(Permission.EDIT, "record that a breach was reported")
    now = (now or utcnow()).astimezone(dt.UTC)
    breach = get_breach(session, staff, breach_id)
    if breach.status == BreachStatus.REPORTED:
        raise BreachStateError(
            f"breach #{breach_id} was already reported (reference {breach.ap_reference}); "
            "record a follow-up as a new breach with --follow-up"
        )
    errors: list[FieldError] = []
    reference = _collect(errors, normalize_text, ap_reference or "", "ap_reference", 50)
    when = _collect(errors, parse_moment, reported_at, "reported_at")
    reason = _collect(errors, _free_text, late_reason, "late_reason")
    if errors:
        raise ValidationErrors(errors)
    when = when or now
    if when > now + CLOCK_SKEW:
        raise FieldError("reported_at", str(reported_at), breach_rule("moment.future"))
    reason = reason or breach.late_reason
    _check_reported_in_time(when, values_of(breach), reason)
    _claim_version(session, breach, None)
    late = when > breach_deadline(breach)
    breach.status = BreachStatus.REPORTED
    breach.reported_at = when
    breach.ap_reference = reference
    breach.late_reason = reason
    breach.decided_by = staff.username
    session.flush()
    audit.record(session, staff, "report", "breach", breach.id, late=late)
    return breach


def mark_not_reportable(
    session: Session, staff: StaffMember, breach_id: int, reason: str
) -> Breach:
    """Judge the breach not reportable (no likely risk to people, art. 33(1)); the reason is
    required, kept encrypted, and the countdown stops. It stays in the register."""
    staff.require(Permission.EDIT, "judge a breach not reportable")
    breach = get_breach(session, staff, breach_id)
    if breach.status == BreachStatus.REPORTED:
        raise BreachStateError(f"breach #{breach_id} was already reported to the regulator")
    text = _free_text(reason, "not_reportable_reason")
    if not text:
        rule = breach_rule("not_reportable_needs_reason")
        raise FieldError("not_reportable_reason", "", rule, show_value=False)
    _claim_version(session, breach, None)
    breach.status = BreachStatus.NOT_REPORTABLE
    breach.not_reportable_reason = text
    breach.decided_by = staff.username
    session.flush()
    audit.record(session, staff, "not_reportable", "breach", breach.id)
    return breach


def as_dict(breach: Breach, now: dt.datetime | None = None) -> dict[str, Any]:
    """Every stored field (decrypted) plus the deadline and, while open, the time left."""
    now = (now or utcnow()).astimezone(dt.UTC)
    left = breach_time_left(breach, now)
    data: dict[str, Any] = {"id": breach.id, "status": breach.status}
    for field, value in values_of(breach).items():
        data[field] = value.isoformat() if isinstance(value, dt.datetime) else value
    data.update(
        deadline=breach_deadline(breach).isoformat(),
        time_left_seconds=None if left is None else int(left.total_seconds()),
        reported_at=breach.reported_at.isoformat() if breach.reported_at else None,
        reported_late=(
            None if breach.reported_at is None else breach.reported_at > breach_deadline(breach)
        ),
        ap_reference=breach.ap_reference,
        not_reportable_reason=breach.not_reportable_reason,
        decided_by=breach.decided_by,
        created_by=breach.created_by,
        created_at=breach.created_at.isoformat() if breach.created_at else None,
        version=breach.version,
    )
    return data
