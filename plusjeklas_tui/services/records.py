"""Changing records: the one place organisations, administrators, subscriptions and consent
are written. The CLI, the CSV import and the Textual forms all call these functions.

Two steps, always in this order:

1. ``validate_*`` turns raw input (form fields, CSV cells) into an ``*Input`` of normalised
   values, or raises :class:`~plusjeklas_tui.validation.ValidationErrors` holding *every*
   :class:`~plusjeklas_tui.validation.FieldError` of the input, not only the first.
2. ``create_*`` / ``add_*`` / ``update_*`` / :func:`record_consent` write an ``*Input`` (build
   inputs only through ``validate_*``: the writers trust them). Each writer checks the staff
   member's permission first, writes nothing on any error, and adds an audit event that names
   the changed *fields*, never their values.

Error field names: organisation fields use their own names (``brin``, ``email``...); the
administrator's fields are reported as ``admin_name``, ``admin_phones`` and ``admin_email``
(the CSV column names), so a message always says "administrator e-mail", never a bare "e-mail"
that could be the school's, and their values never appear in a message.

Writers flush but never commit: the caller's transaction (``db.session_scope``) decides. After
an exception the session must be rolled back (``session_scope`` does that).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plusjeklas_tui.errors import NotFound, PlusjeklasError
from plusjeklas_tui.models import (
    DEFAULT_PURPOSES,
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
    SubscriptionStatus,
    index_value,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.sqltypes import keyring_of, utcnow
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import (
    REQUIRED_RULE,
    FieldError,
    ValidationErrors,
    check_free_text,
    email_lookup_key,
    normalize_brin,
    normalize_email,
    normalize_iban,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    normalize_text,
    parse_date,
)

__all__ = [
    "ADMINISTRATOR_FIELDS",
    "ORGANISATION_FIELDS",
    "SUBSCRIPTION_FIELDS",
    "AdministratorInput",
    "ConflictError",
    "OrganisationInput",
    "SubscriptionInput",
    "add_administrator",
    "add_subscription",
    "administrator_phones",
    "consent_history",
    "create_organisation",
    "current_consent",
    "find_administrator_by_email",
    "find_organisation_by_brin",
    "find_subscription",
    "local_today",
    "record_consent",
    "status_for_dates",
    "update_administrator",
    "update_organisation",
    "update_subscription",
    "validate_administrator",
    "validate_organisation",
    "validate_subscription",
]

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")

ORGANISATION_FIELDS = (
    "name",
    "street",
    "postcode",
    "city",
    "brin",
    "phone",
    "email",
    "iban",
    "notes",
)
#: Input attribute -> the field name used in errors (and the CSV column).
ADMINISTRATOR_FIELDS = {"name": "admin_name", "phones": "admin_phones", "email": "admin_email"}
SUBSCRIPTION_FIELDS = ("plan", "start_date", "end_date", "status")

EVIDENCE_MAX_LENGTH = 1000
#: How far in the future a consent time may lie (clock skew between machines), no more.
CONSENT_CLOCK_SKEW = dt.timedelta(minutes=5)
_SOURCE = re.compile(r"(web-form|import|(staff|provider):[a-z0-9][a-z0-9._-]{0,63})")


class ConflictError(PlusjeklasError):
    """The record was saved by someone else after it was read (optimistic locking).

    Nothing was written; reload the record and apply the change again.
    """


def local_today() -> dt.date:
    """Today's date in the Netherlands (the dates staff type and contracts use)."""
    return dt.datetime.now(LOCAL_TZ).date()


# --- input models --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationInput:
    """A school's data, normalised. Build it with :func:`validate_organisation`."""

    name: str
    street: str
    postcode: str
    city: str
    brin: str
    phone: str
    email: str | None = None
    iban: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class AdministratorInput:
    """An administrator's data, normalised. Build it with :func:`validate_administrator`."""

    name: str
    phones: list[str]
    email: str


@dataclass(frozen=True)
class SubscriptionInput:
    """A subscription, normalised and consistent. Build it with :func:`validate_subscription`."""

    plan: str
    start_date: dt.date
    end_date: dt.date | None
    status: SubscriptionStatus


# --- validation ----------------------------------------------------------------------------

T = TypeVar("T")


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return "" if value is None else str(value)


def _collect(errors: list[FieldError], check: Callable[..., T], *args: Any) -> T | None:
    """Run one field check; on failure remember its error and go on with the next field."""
    try:
        return check(*args)
    except FieldError as error:
        errors.append(error)
        return None


def _optional(check: Callable[[str], T], value: str) -> T | None:
    return check(value) if value.strip() else None


def validate_organisation(raw: Mapping[str, Any]) -> OrganisationInput:
    """Every field of a school checked; all rejections raised together.

    Required: name, street (with house number), postcode, city, BRIN, phone. Optional:
    e-mail, IBAN, notes (empty gives ``None``). Missing keys count as empty.
    """
    errors: list[FieldError] = []
    values = {
        "name": _collect(errors, normalize_name, _text(raw, "name"), "name", 200),
        "street": _collect(errors, normalize_text, _text(raw, "street"), "street", 200),
        "postcode": _collect(errors, normalize_postcode, _text(raw, "postcode")),
        "city": _collect(errors, normalize_text, _text(raw, "city"), "city", 100),
        "brin": _collect(errors, normalize_brin, _text(raw, "brin")),
        "phone": _collect(errors, normalize_phone, _text(raw, "phone"), "phone"),
        "email": _collect(errors, _optional, normalize_email, _text(raw, "email")),
        "iban": _collect(errors, _optional, normalize_iban, _text(raw, "iban")),
        "notes": _collect(errors, check_free_text, _text(raw, "notes"), "notes") or None,
    }
    if errors:
        raise ValidationErrors(errors)
    return OrganisationInput(**values)  # type: ignore[arg-type]


def _split_phones(value: Any) -> list[str]:
    """Phones as a list: a sequence, or one string with numbers separated by ``;``."""
    if value is None:
        return []
    items = value.split(";") if isinstance(value, str) else [str(item) for item in value]
    return [item for item in items if item.strip()]


def validate_administrator(raw: Mapping[str, Any]) -> AdministratorInput:
    """An administrator from ``raw["name"]``, ``raw["phones"]`` and ``raw["email"]``.

    ``phones`` is a list or one string separated by ``;``; at least one number is required,
    duplicates are dropped. Errors are reported on ``admin_name``, ``admin_phones`` and
    ``admin_email`` (see :data:`ADMINISTRATOR_FIELDS`), which never show the value.
    """
    errors: list[FieldError] = []
    name = _collect(errors, normalize_name, _text(raw, "name"), "admin_name", 200)
    email = _collect(errors, normalize_email, _text(raw, "email"), "admin_email")
    given = _split_phones(raw.get("phones"))
    phones: list[str] = []
    if not given:
        errors.append(FieldError("admin_phones", "", "at least one phone number is required"))
    for position, number in enumerate(given, start=1):
        try:
            phone = normalize_phone(number, "admin_phones")
        except FieldError as error:
            rule = error.rule if len(given) == 1 else f"number {position}: {error.rule}"
            errors.append(FieldError("admin_phones", number, rule, show_value=False))
            continue
        if phone not in phones:
            phones.append(phone)
    if errors:
        raise ValidationErrors(errors)
    assert name is not None and email is not None
    return AdministratorInput(name=name, phones=phones, email=email)


def _date(value: Any, field: str) -> dt.date | None:
    if isinstance(value, dt.datetime):
        raise FieldError(field, str(value), "must be a date without a time")
    if isinstance(value, dt.date):
        return value
    return parse_date("" if value is None else str(value), field)


def _status(value: Any) -> SubscriptionStatus:
    text = "" if value is None else str(value).strip().lower()
    if not text:
        raise FieldError("status", "", REQUIRED_RULE)
    try:
        return SubscriptionStatus(text)
    except ValueError:
        allowed = ", ".join(status.value for status in SubscriptionStatus)
        raise FieldError("status", str(value), f"must be one of {allowed}") from None


def validate_subscription(
    raw: Mapping[str, Any], *, today: dt.date | None = None
) -> SubscriptionInput:
    """A subscription whose status agrees with its dates.

    The rule (checked when the subscription is written; time moving on later is not an input
    error):

    - the end date, when given, is on or after the start date;
    - ``ended`` and ``cancelled`` need an end date (the day the subscription stops);
    - ``ended`` means the end date is today or in the past;
    - ``trial`` and ``active`` may have an end date (a fixed term), but not one in the past:
      such a subscription has ended.

    ``today`` defaults to the Dutch local date.
    """
    today = today or local_today()
    errors: list[FieldError] = []
    plan = _collect(errors, normalize_text, _text(raw, "plan"), "plan", 100)
    start = _collect(errors, _date, raw.get("start_date"), "start_date")
    if start is None and not any(e.field == "start_date" for e in errors):
        errors.append(FieldError("start_date", "", REQUIRED_RULE))
    end = _collect(errors, _date, raw.get("end_date"), "end_date")
    status = _collect(errors, _status, raw.get("status"))
    if start is not None and end is not None and end < start:
        errors.append(
            FieldError("end_date", end.isoformat(), f"must be on or after the start date ({start})")
        )
    if status is not None and not any(e.field == "end_date" for e in errors):
        shown = "" if end is None else end.isoformat()
        if status in (SubscriptionStatus.ENDED, SubscriptionStatus.CANCELLED) and end is None:
            errors.append(FieldError("end_date", "", f"is required when the status is {status}"))
        elif status == SubscriptionStatus.ENDED and end is not None and end > today:
            errors.append(
                FieldError(
                    "status",
                    status.value,
                    f"cannot be ended while the end date ({shown}) is in the future; "
                    "use active or cancelled",
                )
            )
        elif status in (SubscriptionStatus.TRIAL, SubscriptionStatus.ACTIVE) and (
            end is not None and end < today
        ):
            errors.append(
                FieldError(
                    "status",
                    status.value,
                    f"cannot be {status} when the end date ({shown}) has passed; use ended",
                )
            )
    if errors:
        raise ValidationErrors(errors)
    assert plan is not None and start is not None and status is not None
    return SubscriptionInput(plan=plan, start_date=start, end_date=end, status=status)


def status_for_dates(
    end_date: dt.date | None,
    today: dt.date,
    current: SubscriptionStatus | None = None,
) -> SubscriptionStatus:
    """The status implied by an end date, for input that has no status (the CSV import).

    An end date in the past means ``ended``. Otherwise a ``trial``, ``active`` or (with an end
    date) ``cancelled`` status already stored is kept; anything else becomes ``active``.
    """
    if end_date is not None and end_date < today:
        return SubscriptionStatus.ENDED
    keep = {SubscriptionStatus.TRIAL, SubscriptionStatus.ACTIVE}
    if end_date is not None:
        keep.add(SubscriptionStatus.CANCELLED)
    return current if current in keep else SubscriptionStatus.ACTIVE


# --- lookups -------------------------------------------------------------------------------


def _email_index_candidates(session: Session, email: str) -> list[str]:
    keyring = keyring_of(session.get_bind().dialect)
    return keyring.blind_index_candidates(index_value("email", email_lookup_key(email)))


def find_organisation_by_brin(session: Session, brin: str) -> Organisation | None:
    """The organisation with this (normalised) BRIN."""
    return session.scalars(select(Organisation).where(Organisation.brin == brin)).one_or_none()


def find_administrator_by_email(
    session: Session, organisation_id: int, email: str
) -> Administrator | None:
    """The administrator of this organisation with this e-mail (blind index, any loaded key)."""
    candidates = _email_index_candidates(session, email)
    return session.scalars(
        select(Administrator)
        .where(Administrator.organisation_id == organisation_id)
        .where(Administrator.email_index.in_(candidates))  # type: ignore[union-attr]
        .order_by(Administrator.id)
        .limit(1)
    ).one_or_none()


def find_subscription(
    session: Session, organisation_id: int, plan: str, start_date: dt.date
) -> Subscription | None:
    """The organisation's subscription to *plan* starting on *start_date* (the import's key)."""
    return session.scalars(
        select(Subscription)
        .where(Subscription.organisation_id == organisation_id)
        .where(Subscription.plan == plan)
        .where(Subscription.start_date == start_date)
        .order_by(Subscription.id)
        .limit(1)
    ).one_or_none()


def administrator_phones(administrator: Administrator) -> list[str]:
    """The stored phone list (E.164) of an administrator."""
    return list(json.loads(administrator.phones or "[]"))


def _require_organisation(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"organisation #{organisation_id} does not exist")
    return organisation


# --- organisations -------------------------------------------------------------------------


def _check_brin_free(session: Session, brin: str, own_id: int | None) -> None:
    query = select(Organisation.id).where(Organisation.brin == brin)
    if own_id is not None:
        query = query.where(Organisation.id != own_id)
    other = session.scalars(query.limit(1)).first()
    if other is not None:
        raise ValidationErrors([FieldError("brin", brin, f"already used by organisation #{other}")])


def _flush_organisation(session: Session, brin: str) -> None:
    """Flush; a BRIN taken by a concurrent save (after our check) is a conflict, not a crash.

    The normal case, a BRIN already stored, is caught earlier as a field error.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        # The session cannot be queried until rolled back, so recognise the constraint by name
        # (PostgreSQL names it, SQLite names the column).
        text = str(exc.orig)
        if "uq_organisation_brin" in text or "organisation.brin" in text:
            raise ConflictError(
                f"another organisation with BRIN {brin} was saved at the same moment; "
                "nothing was saved"
            ) from None
        raise


def create_organisation(
    session: Session, staff: StaffMember, data: OrganisationInput, *, source: str = "staff"
) -> Organisation:
    """Add a school. A BRIN already in use is a :class:`FieldError` on ``brin``."""
    staff.require(Permission.EDIT, "create organisations")
    _check_brin_free(session, data.brin, None)
    organisation = Organisation(**dataclasses.asdict(data))
    session.add(organisation)
    _flush_organisation(session, data.brin)
    filled = [f for f in ORGANISATION_FIELDS if getattr(data, f) not in (None, "")]
    audit.record(
        session, staff, "create", "organisation", organisation.id, fields=filled, source=source
    )
    return organisation


def _bump_version(session: Session, model: Any, record_id: int, expected: int, label: str) -> None:
    """Claim the next version in the database, so a concurrent save cannot slip in between."""
    result = session.execute(
        update(model)
        .where(model.id == record_id, model.version == expected)
        .values(version=expected + 1)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            f"{label} #{record_id} was changed by someone else while you were editing it; "
            "reload it and apply your change again"
        )


def _check_version(record: Any, expected: int, label: str) -> None:
    if record.version != expected:
        raise ConflictError(
            f"{label} #{record.id} was changed by someone else since you opened it (you have "
            f"version {expected}, the saved one is {record.version}); reload it and apply your "
            "change again"
        )


def update_organisation(
    session: Session,
    staff: StaffMember,
    org_id: int,
    data: OrganisationInput,
    expected_version: int,
    *,
    source: str = "staff",
) -> Organisation:
    """Save *data* over organisation *org_id* if nobody saved it since *expected_version*.

    Only a real change bumps the version and is audited (with the changed field names);
    saving identical data is a no-op. Raises :class:`ConflictError` on a stale version.
    """
    staff.require(Permission.EDIT, "change organisations")
    organisation = _require_organisation(session, org_id)
    _check_version(organisation, expected_version, "organisation")
    changed = [f for f in ORGANISATION_FIELDS if getattr(organisation, f) != getattr(data, f)]
    if not changed:
        return organisation
    if "brin" in changed:
        _check_brin_free(session, data.brin, org_id)
    _bump_version(session, Organisation, org_id, expected_version, "organisation")
    for field in changed:
        setattr(organisation, field, getattr(data, field))
    organisation.version = expected_version + 1
    _flush_organisation(session, data.brin)
    audit.record(
        session,
        staff,
        "update",
        "organisation",
        org_id,
        fields=changed,
        version=organisation.version,
        source=source,
    )
    return organisation


# --- administrators ------------------------------------------------------------------------


def _check_email_free(
    session: Session, organisation_id: int, email: str, own_id: int | None
) -> None:
    other = find_administrator_by_email(session, organisation_id, email)
    if other is not None and other.id != own_id:
        raise ValidationErrors(
            [
                FieldError(
                    "admin_email",
                    email,
                    f"already used by administrator #{other.id} of organisation #{organisation_id}",
                )
            ]
        )


def add_administrator(
    session: Session,
    staff: StaffMember,
    organisation_id: int,
    data: AdministratorInput,
    *,
    source: str = "staff",
) -> Administrator:
    """Add an administrator to a school; their e-mail must be new within that school."""
    staff.require(Permission.EDIT, "add administrators")
    _require_organisation(session, organisation_id)
    _check_email_free(session, organisation_id, data.email, None)
    administrator = Administrator(
        organisation_id=organisation_id,
        name=data.name,
        email=data.email,
        phones=json.dumps(data.phones),
    )
    session.add(administrator)
    session.flush()
    audit.record(
        session,
        staff,
        "create",
        "administrator",
        administrator.id,
        fields=list(ADMINISTRATOR_FIELDS),
        organisation_id=organisation_id,
        source=source,
    )
    return administrator


def update_administrator(
    session: Session,
    staff: StaffMember,
    administrator_id: int,
    data: AdministratorInput,
    expected_version: int,
    *,
    source: str = "staff",
) -> Administrator:
    """Save *data* over an administrator if nobody saved them since *expected_version*."""
    staff.require(Permission.EDIT, "change administrators")
    administrator = session.get(Administrator, administrator_id)
    if administrator is None:
        raise NotFound(f"administrator #{administrator_id} does not exist")
    _check_version(administrator, expected_version, "administrator")
    current = {
        "name": administrator.name,
        "phones": administrator_phones(administrator),
        "email": administrator.email,
    }
    changed = [f for f in ADMINISTRATOR_FIELDS if current[f] != getattr(data, f)]
    if not changed:
        return administrator
    if "email" in changed:
        _check_email_free(session, administrator.organisation_id, data.email, administrator_id)
    _bump_version(session, Administrator, administrator_id, expected_version, "administrator")
    administrator.name = data.name
    administrator.email = data.email
    administrator.phones = json.dumps(data.phones)
    administrator.version = expected_version + 1
    session.flush()
    audit.record(
        session,
        staff,
        "update",
        "administrator",
        administrator_id,
        fields=changed,
        version=administrator.version,
        source=source,
    )
    return administrator


# --- subscriptions -------------------------------------------------------------------------


def _check_subscription_free(
    session: Session, organisation_id: int, data: SubscriptionInput, own_id: int | None
) -> None:
    other = find_subscription(session, organisation_id, data.plan, data.start_date)
    if other is not None and other.id != own_id:
        raise ValidationErrors(
            [
                FieldError(
                    "start_date",
                    data.start_date.isoformat(),
                    f"organisation #{organisation_id} already has a '{data.plan}' subscription "
                    f"starting on this date (subscription #{other.id})",
                )
            ]
        )


def add_subscription(
    session: Session,
    staff: StaffMember,
    organisation_id: int,
    data: SubscriptionInput,
    *,
    source: str = "staff",
) -> Subscription:
    """Add a subscription; (plan, start date) must be new for the school (the import's key)."""
    staff.require(Permission.EDIT, "add subscriptions")
    _require_organisation(session, organisation_id)
    _check_subscription_free(session, organisation_id, data, None)
    subscription = Subscription(organisation_id=organisation_id, **dataclasses.asdict(data))
    session.add(subscription)
    session.flush()
    audit.record(
        session,
        staff,
        "create",
        "subscription",
        subscription.id,
        fields=[f for f in SUBSCRIPTION_FIELDS if getattr(data, f) is not None],
        organisation_id=organisation_id,
        source=source,
    )
    return subscription


def update_subscription(
    session: Session,
    staff: StaffMember,
    subscription_id: int,
    data: SubscriptionInput,
    *,
    source: str = "staff",
) -> Subscription:
    """Save *data* over a subscription (subscriptions carry no version: last save wins)."""
    staff.require(Permission.EDIT, "change subscriptions")
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription #{subscription_id} does not exist")
    changed = [f for f in SUBSCRIPTION_FIELDS if getattr(subscription, f) != getattr(data, f)]
    if not changed:
        return subscription
    if "plan" in changed or "start_date" in changed:
        _check_subscription_free(session, subscription.organisation_id, data, subscription_id)
    for field in changed:
        setattr(subscription, field, getattr(data, field))
    session.flush()
    audit.record(
        session,
        staff,
        "update",
        "subscription",
        subscription_id,
        fields=changed,
        organisation_id=subscription.organisation_id,
        source=source,
    )
    return subscription


# --- consent -------------------------------------------------------------------------------


def _action(value: ConsentAction | str) -> ConsentAction:
    try:
        return ConsentAction(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(action.value for action in ConsentAction)
        raise FieldError("action", str(value), f"must be one of {allowed}") from None


def record_consent(
    session: Session,
    staff: StaffMember,
    administrator_id: int,
    purpose: str,
    action: ConsentAction | str,
    evidence: str | None,
    source: str | None = None,
    occurred_at: dt.datetime | None = None,
    *,
    purposes: Collection[str],
) -> ConsentEvent:
    """Append a grant or withdrawal to an administrator's consent history.

    ``purposes`` is the configured list (``settings.consent_purposes``). ``source`` defaults to
    the staff member (``staff:<user>``); other sources are ``web-form``, ``import`` and
    ``provider:<name>``. Evidence (the form version, the e-mail that asked...) is required
    when staff record consent themselves; it is free text, so a BSN in it is refused. All
    problems are raised together as :class:`ValidationErrors`.
    """
    staff.require(Permission.EDIT, "record consent")
    errors: list[FieldError] = []
    if purpose not in purposes:
        errors.append(FieldError("purpose", str(purpose), f"must be one of {', '.join(purposes)}"))
    consent_action = _collect(errors, _action, action)
    source = source if source is not None else staff.source_tag
    if not _SOURCE.fullmatch(source):
        errors.append(
            FieldError(
                "source",
                source,
                "must be web-form, import, staff:<user> or provider:<name>",
                show_value=False,
            )
        )
    text = _collect(errors, check_free_text, evidence or "", "evidence", EVIDENCE_MAX_LENGTH)
    if not text and source.startswith("staff:") and not any(e.field == "evidence" for e in errors):
        errors.append(
            FieldError(
                "evidence",
                "",
                "is required when staff record consent: say how it was given or withdrawn "
                "(e.g. the e-mail that asked, with its date)",
            )
        )
    when = occurred_at or utcnow()
    if when.tzinfo is None:
        errors.append(FieldError("occurred_at", when.isoformat(), "must include a time zone"))
    elif when > utcnow() + CONSENT_CLOCK_SKEW:
        errors.append(FieldError("occurred_at", when.isoformat(), "cannot be in the future"))
    if errors:
        raise ValidationErrors(errors)
    if session.get(Administrator, administrator_id) is None:
        raise NotFound(f"administrator #{administrator_id} does not exist")
    assert consent_action is not None
    event = ConsentEvent(
        administrator_id=administrator_id,
        purpose=purpose,
        action=consent_action,
        occurred_at=when,
        source=source,
        evidence=text or None,
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        staff,
        "consent",
        "administrator",
        administrator_id,
        purpose=purpose,
        consent=consent_action.value,
        consent_event_id=event.id,
        source=source.split(":", 1)[0],
    )
    return event


def consent_history(session: Session, administrator_id: int) -> list[ConsentEvent]:
    """Every consent event of an administrator, oldest first (ties by the order recorded)."""
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.administrator_id == administrator_id)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
        )
    )


def current_consent(
    session: Session, administrator_id: int, purposes: Iterable[str] = DEFAULT_PURPOSES
) -> dict[str, ConsentAction | None]:
    """Each purpose's current state: the action of its latest event, ``None`` without events.

    Derived from the history every time, never stored. Purposes that appear in the history
    but not in *purposes* (removed from the config) are included too.
    """
    state: dict[str, ConsentAction | None] = dict.fromkeys(purposes)
    rows = session.execute(
        select(ConsentEvent.purpose, ConsentEvent.action)
        .where(ConsentEvent.administrator_id == administrator_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)  # type: ignore[arg-type]
    )
    for purpose, action in rows:
        state[purpose] = ConsentAction(action)
    return state
