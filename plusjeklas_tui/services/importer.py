"""CSV import of schools, administrators and subscriptions.

The file (UTF-8, with or without a byte-order mark, any line endings) has the header::

    name,street,postcode,city,brin,phone,email,iban,admin_name,admin_phones,admin_email,plan,start_date,end_date

Every column must be there exactly once (in any order). ``admin_phones`` holds one or more
numbers separated by ``;``; dates are ``YYYY-MM-DD``.

One row is one school, plus optionally one administrator (``admin_*`` all empty: none) and
optionally one subscription (``plan``, ``start_date``, ``end_date`` all empty: none). Several
rows may share a BRIN to add more administrators or subscriptions to the same school; each of
them must repeat the same school details, otherwise the later row is rejected (which copy is
right is not a guess to make).

Matching, so re-importing a file changes nothing:

- a school by its BRIN; the file is the truth for the columns it has, so a changed value (an
  emptied e-mail or IBAN too) updates the school; notes are not in the file and are kept;
- an administrator by e-mail (blind index) within the school; a changed name or phone list
  updates them; administrators missing from the file are left alone (an import never deletes);
- a subscription by (plan, start date) within the school; a changed end date updates it.
  The file has no status column: an end date in the past means ``ended``, otherwise a stored
  trial/active/cancelled status is kept and a new subscription is ``active``
  (:func:`~plusjeklas_tui.services.records.status_for_dates`).

The file has no consent columns, so an import records no consent at all: imported people have
none until they give it.

A real import is all-or-nothing: every row is validated and applied inside one transaction,
which is committed only when no row was rejected. A dry run goes through exactly the same
steps and then rolls back, so its counts are the counts a real run would report. Either way
the file is read as a stream, row by row; nothing but small per-school bookkeeping is kept.

``import_csv`` owns the transaction of the session it is given: pass a fresh session.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import difflib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.models import Organisation, SubscriptionStatus
from plusjeklas_tui.services import audit
from plusjeklas_tui.services.records import (
    AdministratorInput,
    OrganisationInput,
    SubscriptionInput,
    add_administrator,
    add_subscription,
    administrator_phones,
    create_organisation,
    find_administrator_by_email,
    find_organisation_by_brin,
    find_subscription,
    local_today,
    status_for_dates,
    update_administrator,
    update_organisation,
    update_subscription,
    validate_administrator,
    validate_organisation,
    validate_subscription,
)
from plusjeklas_tui.staff import Permission, StaffMember
from plusjeklas_tui.validation import FieldError, ValidationErrors, field_label, parse_date

__all__ = ["HEADER", "Counts", "ImportFileError", "ImportReport", "RejectedRow", "import_csv"]

HEADER = (
    "name",
    "street",
    "postcode",
    "city",
    "brin",
    "phone",
    "email",
    "iban",
    "admin_name",
    "admin_phones",
    "admin_email",
    "plan",
    "start_date",
    "end_date",
)
ORGANISATION_COLUMNS = HEADER[:8]
ADMINISTRATOR_COLUMNS = ("admin_name", "admin_phones", "admin_email")
SUBSCRIPTION_COLUMNS = ("plan", "start_date", "end_date")
SOURCE = "import"
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ -]{0,39}")


class ImportFileError(PlusjeklasError):
    """The file as a whole cannot be imported (unreadable, not UTF-8, empty, wrong header).

    Nothing was imported.
    """


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class RejectedRow:
    """A row that was not imported: its first physical line (the header is line 1) and why."""

    line: int
    reasons: list[str]
    fields: list[str]


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    rows: int = 0
    organisations: Counts = field(default_factory=Counts)
    administrators: Counts = field(default_factory=Counts)
    subscriptions: Counts = field(default_factory=Counts)
    rejected: list[RejectedRow] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        """No row was rejected (a real run then committed)."""
        return not self.rejected

    @property
    def created(self) -> int:
        return sum(c.created for c in self._counts())

    @property
    def updated(self) -> int:
        return sum(c.updated for c in self._counts())

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self._counts())

    def _counts(self) -> tuple[Counts, Counts, Counts]:
        return (self.organisations, self.administrators, self.subscriptions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "ok": self.ok,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "organisations": dataclasses.asdict(self.organisations),
            "administrators": dataclasses.asdict(self.administrators),
            "subscriptions": dataclasses.asdict(self.subscriptions),
            "rejected": [dataclasses.asdict(row) for row in self.rejected],
        }

    def lines(self) -> list[str]:
        """The report for people: one line per reason, then a summary."""
        out = [f"line {row.line}: {reason}" for row in self.rejected for reason in row.reasons]

        def counts(label: str, c: Counts) -> str:
            return f"{label}: {c.created} created, {c.updated} updated, {c.unchanged} unchanged"

        summary = "; ".join(
            [
                counts("organisations", self.organisations),
                counts("administrators", self.administrators),
                counts("subscriptions", self.subscriptions),
            ]
        )
        if self.committed:
            what = "imported"
        elif self.rejected:
            what = "the accepted rows alone would give"
        else:
            what = "a real import would give"
        out.append(f"{self.source}: {self.rows} data row(s); {what}: {summary}")
        if self.rejected:
            out.append(
                f"{len(self.rejected)} row(s) rejected: nothing "
                + ("would be" if self.dry_run else "was")
                + " imported; fix the rows and import the whole file again"
            )
        elif self.dry_run:
            out.append("dry run: nothing was changed")
        else:
            out.append("import committed")
        return out


# --- reading -------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(path_or_text: Path | str | TextIO) -> Iterator[tuple[TextIO, str]]:
    """A text stream and a label for messages. A ``Path`` is a file, a ``str`` is CSV text."""
    if isinstance(path_or_text, Path):
        try:
            handle = path_or_text.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise ImportFileError(f"{path_or_text}: file does not exist") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise ImportFileError(
                f"{path_or_text}: cannot read the file ({exc.strerror})"
            ) from None
        with handle:
            yield handle, str(path_or_text)
    elif isinstance(path_or_text, str):
        yield io.StringIO(path_or_text.removeprefix("\ufeff"), newline=""), "<csv text>"
    else:
        yield path_or_text, getattr(path_or_text, "name", "<csv stream>")


def _rows(reader: Any, label: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, cells) for each record; decoding and CSV errors name the line."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise ImportFileError(
                f"{label}, line {start}: the file is not UTF-8 text; save it as "
                "'CSV UTF-8 (comma delimited)'"
            ) from None
        except csv.Error as exc:
            raise ImportFileError(f"{label}, line {start}: not valid CSV ({exc})") from None
        yield start, cells


def _shown_column(name: str) -> str:
    """A header cell as it may appear in a message: only if it looks like a column name.

    A file without a header has data in its first line, and data may be personal.
    """
    return f"'{name}'" if _COLUMN_NAME.fullmatch(name) else "(not a column name)"


def _check_header(cells: list[str], label: str) -> dict[str, int]:
    names = [cell.strip() for cell in cells]
    where = f"{label}, line 1 (the header)"
    expected = ",".join(HEADER)
    if len(names) == 1 and names[0].count(";") >= 3:
        raise ImportFileError(
            f"{where}: columns are separated by ';'; save the file with commas "
            f"('CSV UTF-8 (comma delimited)'). Expected: {expected}"
        )
    if not any(name in HEADER for name in names):
        raise ImportFileError(
            f"{where}: the first line is not the header (it names none of the columns). "
            f"The first line must be: {expected}"
        )
    positions: dict[str, int] = {}
    problems: list[str] = []
    for index, name in enumerate(names):
        if name in positions:
            problems.append(
                f"column '{name}' appears twice (columns {positions[name] + 1} and {index + 1})"
            )
        elif name in HEADER:
            positions[name] = index
        else:
            missing = [c for c in HEADER if c not in names]
            close = difflib.get_close_matches(name.lower(), missing, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            shown = _shown_column(name) if name else "(empty)"
            problems.append(f"column {index + 1} {shown} is not an expected column{hint}")
    problems.extend(f"column '{c}' is missing" for c in HEADER if c not in positions)
    if problems:
        raise ImportFileError(f"{where}: " + "; ".join(problems) + f". Expected: {expected}")
    return positions


# --- the import ----------------------------------------------------------------------------


@dataclass
class _Seen:
    """What this run already did for a school, administrator or subscription of the file."""

    line: int
    values: tuple[Any, ...]
    record_id: int | None = None
    created: bool = False  # the school is new in this run: nothing of it can be stored yet


class _RowRejected(Exception):
    def __init__(self, errors: list[FieldError | str]) -> None:
        super().__init__("row rejected")
        self.errors = errors


@dataclass
class _Row:
    organisation: OrganisationInput
    administrator: AdministratorInput | None
    subscription: SubscriptionInput | None


class _Importer:
    def __init__(
        self, session: Session, staff: StaffMember, report: ImportReport, today: dt.date
    ) -> None:
        self.session = session
        self.staff = staff
        self.report = report
        self.today = today
        self.schools: dict[str, _Seen] = {}
        self.people: dict[tuple[str, str], _Seen] = {}
        self.plans: dict[tuple[str, str, dt.date], _Seen] = {}
        self.current: Organisation | None = None

    # validation --------------------------------------------------------------------------

    def parse(self, raw: dict[str, str]) -> _Row:
        errors: list[FieldError | str] = []
        organisation = administrator = subscription = None
        try:
            organisation = validate_organisation({c: raw[c] for c in ORGANISATION_COLUMNS})
        except ValidationErrors as exc:
            errors.extend(exc.errors)
        if any(raw[c].strip() for c in ADMINISTRATOR_COLUMNS):
            try:
                administrator = validate_administrator(
                    {
                        "name": raw["admin_name"],
                        "phones": raw["admin_phones"],
                        "email": raw["admin_email"],
                    }
                )
            except ValidationErrors as exc:
                errors.extend(exc.errors)
        if any(raw[c].strip() for c in SUBSCRIPTION_COLUMNS):
            try:
                end = parse_date(raw["end_date"], "end_date")
            except FieldError:
                end = None  # validate_subscription reports it
            try:
                subscription = validate_subscription(
                    {
                        **{c: raw[c] for c in SUBSCRIPTION_COLUMNS},
                        "status": status_for_dates(end, self.today),
                    },
                    today=self.today,
                )
            except ValidationErrors as exc:
                errors.extend(exc.errors)
        if errors:
            raise _RowRejected(errors)
        assert organisation is not None
        return _Row(organisation, administrator, subscription)

    def check_against_file(self, line: int, row: _Row) -> None:
        """Rows about the same school, person or subscription must agree with each other."""
        brin = row.organisation.brin
        errors: list[FieldError | str] = []
        school = self.schools.get(brin)
        if school is not None:
            values = _organisation_values(row.organisation)
            pairs = zip(ORGANISATION_COLUMNS, school.values, values, strict=True)
            differ = [column for column, old, new in pairs if old != new]
            if differ:
                names = ", ".join(field_label(c) for c in differ)
                errors.append(
                    f"BRIN '{brin}': the school details differ from line {school.line} "
                    f"({names}); rows of one school must repeat the same school details"
                )
        if row.administrator is not None:
            person = self.people.get((brin, row.administrator.email.lower()))
            if person is not None and person.values != _administrator_values(row.administrator):
                errors.append(
                    f"administrator e-mail: the same administrator is on line {person.line} "
                    "with a different name or phones"
                )
        if row.subscription is not None:
            sub = row.subscription
            plan = self.plans.get((brin, sub.plan, sub.start_date))
            if plan is not None and plan.values != (sub.end_date,):
                errors.append(
                    f"end date: the subscription '{sub.plan}' starting {sub.start_date} is on "
                    f"line {plan.line} with a different end date"
                )
        if errors:
            raise _RowRejected(errors)

    # writing -----------------------------------------------------------------------------

    def apply(self, line: int, row: _Row) -> None:
        school = self._organisation(line, row.organisation)
        if row.administrator is not None:
            self._administrator(line, school, row.organisation.brin, row.administrator)
        if row.subscription is not None:
            self._subscription(line, school, row.organisation.brin, row.subscription)

    def _organisation(self, line: int, data: OrganisationInput) -> _Seen:
        seen = self.schools.get(data.brin)
        if seen is not None:
            return seen
        counts = self.report.organisations
        existing = find_organisation_by_brin(self.session, data.brin)
        if existing is None:
            record = create_organisation(self.session, self.staff, data, source=SOURCE)
            counts.created += 1
        else:
            wanted = dataclasses.replace(data, notes=existing.notes)  # not in the file: kept
            before = existing.version
            record = update_organisation(
                self.session, self.staff, existing.id, wanted, existing.version, source=SOURCE
            )
            if record.version != before:
                counts.updated += 1
            else:
                counts.unchanged += 1
        assert record.id is not None
        self.current = record  # kept alive for the row, so later look-ups hit the session
        seen = _Seen(line, _organisation_values(data), record.id, created=existing is None)
        self.schools[data.brin] = seen
        return seen

    def _administrator(self, line: int, school: _Seen, brin: str, data: AdministratorInput) -> None:
        key = (brin, data.email.lower())
        if key in self.people:
            return
        counts = self.report.administrators
        assert school.record_id is not None
        organisation_id = school.record_id
        existing = (
            None
            if school.created
            else find_administrator_by_email(self.session, organisation_id, data.email)
        )
        if existing is None:
            add_administrator(self.session, self.staff, organisation_id, data, source=SOURCE)
            counts.created += 1
        elif (existing.name, administrator_phones(existing), existing.email) == (
            data.name,
            data.phones,
            data.email,
        ):
            counts.unchanged += 1
        else:
            assert existing.id is not None
            update_administrator(
                self.session, self.staff, existing.id, data, existing.version, source=SOURCE
            )
            counts.updated += 1
        self.people[key] = _Seen(line, _administrator_values(data))

    def _subscription(self, line: int, school: _Seen, brin: str, data: SubscriptionInput) -> None:
        key = (brin, data.plan, data.start_date)
        if key in self.plans:
            return
        counts = self.report.subscriptions
        assert school.record_id is not None
        organisation_id = school.record_id
        existing = (
            None
            if school.created
            else find_subscription(self.session, organisation_id, data.plan, data.start_date)
        )
        if existing is None:
            add_subscription(self.session, self.staff, organisation_id, data, source=SOURCE)
            counts.created += 1
        elif existing.end_date == data.end_date:
            counts.unchanged += 1  # the stored status is staff's business when dates agree
        else:
            assert existing.id is not None
            status = status_for_dates(data.end_date, self.today, _status_or_none(existing.status))
            wanted = dataclasses.replace(data, status=status)
            update_subscription(self.session, self.staff, existing.id, wanted, source=SOURCE)
            counts.updated += 1
        self.plans[key] = _Seen(line, (data.end_date,))


def _status_or_none(value: Any) -> SubscriptionStatus | None:
    try:
        return SubscriptionStatus(value)
    except ValueError:
        return None


def _organisation_values(data: OrganisationInput) -> tuple[Any, ...]:
    return tuple(getattr(data, c) for c in ORGANISATION_COLUMNS)


def _administrator_values(data: AdministratorInput) -> tuple[Any, ...]:
    return (data.name, tuple(data.phones))


def _reject(report: ImportReport, line: int, errors: list[FieldError | str]) -> None:
    reasons = [str(error) for error in errors]
    fields = sorted({error.field for error in errors if isinstance(error, FieldError)})
    report.rejected.append(RejectedRow(line=line, reasons=reasons, fields=fields))


def import_csv(
    session: Session,
    staff: StaffMember,
    path_or_text: Path | str | TextIO,
    *,
    dry_run: bool,
    today: dt.date | None = None,
) -> ImportReport:
    """Import (or, with ``dry_run``, rehearse importing) a CSV file; see the module docstring.

    *path_or_text* is a file path (``Path``), the CSV text itself (``str``) or an open text
    stream. Returns the report; the session is committed only when a real run rejected no
    row, and rolled back otherwise. Raises :class:`ImportFileError` when the file as a whole
    is unusable (nothing imported then either).
    """
    staff.require(Permission.EDIT, "import records")
    today = today or local_today()
    try:
        with _open(path_or_text) as (handle, label):
            report = ImportReport(source=label, dry_run=dry_run)
            reader = csv.reader(handle)
            rows = _rows(reader, label)
            header = next(rows, None)
            if header is None:
                raise ImportFileError(
                    f"{label}: the file is empty; the first line must be the header: "
                    + ",".join(HEADER)
                )
            if not any(cell.strip() for cell in header[1]):
                raise ImportFileError(
                    f"{label}, line 1 (the header): the line is empty; the first line must be "
                    "the header: " + ",".join(HEADER)
                )
            positions = _check_header(header[1], label)
            importer = _Importer(session, staff, report, today)
            for line, cells in rows:
                if not any(cell.strip() for cell in cells):
                    continue  # blank line
                report.rows += 1
                if len(cells) != len(HEADER):
                    _reject(
                        report,
                        line,
                        [f"has {len(cells)} values, the header has {len(HEADER)} columns"],
                    )
                    continue
                raw = {name: cells[index] for name, index in positions.items()}
                try:
                    row = importer.parse(raw)
                    importer.check_against_file(line, row)
                    importer.apply(line, row)
                except _RowRejected as exc:
                    _reject(report, line, exc.errors)
                except ValidationErrors as exc:  # a rule only the database can check
                    _reject(report, line, list(exc.errors))
        if dry_run or report.rejected:
            session.rollback()
            return report
        audit.record(
            session,
            staff,
            "import",
            "import",
            None,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            organisations=dataclasses.asdict(report.organisations),
            administrators=dataclasses.asdict(report.administrators),
            subscriptions=dataclasses.asdict(report.subscriptions),
        )
        session.commit()
        report.committed = True
        return report
    except BaseException:
        session.rollback()
        raise
