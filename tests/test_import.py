"""CSV import: good files, rejected rows with line numbers, all-or-nothing, idempotence,
dry runs that predict the real run, header and encoding problems, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import Administrator, AuditEvent, Organisation, Subscription
from plusjeklas_tui.services import records
from plusjeklas_tui.services.importer import HEADER, ImportFileError, ImportReport, import_csv
from plusjeklas_tui.validation import BSN_RULE

DATA = Path(__file__).parent / "data"
GOOD = DATA / "schools_good.csv"
TODAY = dt.date(2026, 3, 2)
PYTHON = "/tmp/venv/bin/python"
HEADER_LINE = ",".join(HEADER)

ROW: dict[str, str] = {
    "name": "OBS De Klimop",
    "street": "Kerkstraat 1",
    "postcode": "1234 AB",
    "city": "Utrecht",
    "brin": "05KO",
    "phone": "030 123 4567",
    "email": "info@klimop.example",
    "iban": "NL91ABNA0417164300",
    "admin_name": "Jan Jansen",
    "admin_phones": "06 12345678",
    "admin_email": "j.jansen@klimop.example",
    "plan": "basis",
    "start_date": "2025-08-01",
    "end_date": "",
}


def csv_line(**changes: str) -> str:
    row = {**ROW, **changes}
    return ",".join(_quote(row[c]) for c in HEADER)


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(*lines: str) -> str:
    return "\n".join([HEADER_LINE, *lines]) + "\n"


def run(ctx: AppContext, source: Path | str, *, dry_run: bool = False) -> ImportReport:
    with Session(ctx.engine, expire_on_commit=False) as session:
        return import_csv(session, ctx.staff, source, dry_run=dry_run, today=TODAY)


def table_counts(ctx: AppContext) -> dict[str, int]:
    with Session(ctx.engine) as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Organisation, Administrator, Subscription, AuditEvent)
        }


def counts_of(report: ImportReport) -> dict[str, Any]:
    data = report.to_dict()
    return {k: data[k] for k in ("organisations", "administrators", "subscriptions", "rows")}


# --- good files ----------------------------------------------------------------------------


def test_good_file_creates_every_school(ctx: AppContext) -> None:
    report = run(ctx, GOOD)
    assert report.ok and report.committed and not report.dry_run
    assert report.rows == 4
    assert counts_of(report) == {
        "organisations": {"created": 3, "updated": 0, "unchanged": 0},
        "administrators": {"created": 3, "updated": 0, "unchanged": 0},
        "subscriptions": {"created": 3, "updated": 0, "unchanged": 0},
        "rows": 4,
    }
    with Session(ctx.engine) as session:
        klimop = records.find_organisation_by_brin(session, "05KO")
        assert klimop is not None
        assert (klimop.postcode, klimop.phone, klimop.iban) == (
            "1234 AB",
            "+31301234567",
            "NL91ABNA0417164300",
        )
        people = session.scalars(
            select(Administrator).where(Administrator.organisation_id == klimop.id)
        ).all()
        assert sorted(p.name for p in people) == ["Fatima el Amrani", "Jan Jansen"]
        jan = next(p for p in people if p.name == "Jan Jansen")
        assert records.administrator_phones(jan) == ["+31612345678", "+31307654321"]
        subs = session.scalars(
            select(Subscription).where(Subscription.organisation_id == klimop.id)
        ).all()
        assert {(s.plan, str(s.status)) for s in subs} == {("basis", "active"), ("plus", "ended")}
        anker = records.find_organisation_by_brin(session, "07NU00")
        assert anker is not None and anker.email is None
        # nobody imported has consent: the file has no consent columns
        assert all(
            state is None
            for person in session.scalars(select(Administrator))
            for state in records.current_consent(session, person.id).values()  # type: ignore[arg-type]
        )
        audit = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    imports = [e for e in audit if e.action == "import"]
    assert len(imports) == 1
    assert json.loads(imports[0].detail)["created"] == 9
    creates = [e for e in audit if e.action == "create"]
    assert len(creates) == 9
    assert all(json.loads(e.detail)["source"] == "import" for e in creates)


def test_reimport_changes_nothing(ctx: AppContext) -> None:
    run(ctx, GOOD)
    with Session(ctx.engine) as session:
        before = [(o.id, o.version, o.updated_at) for o in session.scalars(select(Organisation))]
    tables = table_counts(ctx)
    again = run(ctx, GOOD)
    assert again.committed and (again.created, again.updated) == (0, 0)
    assert again.unchanged == 9
    with Session(ctx.engine) as session:
        after = [(o.id, o.version, o.updated_at) for o in session.scalars(select(Organisation))]
    assert after == before
    # the records are untouched; only the import itself is audited
    assert table_counts(ctx) == {**tables, "AuditEvent": tables["AuditEvent"] + 1}


def test_changed_values_update_the_records(ctx: AppContext) -> None:
    run(ctx, csv_text(csv_line()))
    with session_scope(ctx.engine) as session:
        org = records.find_organisation_by_brin(session, "05KO")
        assert org is not None
        data = records.validate_organisation(
            {**{c: getattr(org, c) for c in records.ORGANISATION_FIELDS}, "notes": "call first"}
        )
        records.update_organisation(session, ctx.staff, org.id, data, org.version)
    changed = csv_line(city="Amersfoort", admin_phones="0687654321", end_date="2026-07-31")
    report = run(ctx, csv_text(changed))
    assert report.committed
    assert counts_of(report) == {
        "organisations": {"created": 0, "updated": 1, "unchanged": 0},
        "administrators": {"created": 0, "updated": 1, "unchanged": 0},
        "subscriptions": {"created": 0, "updated": 1, "unchanged": 0},
        "rows": 1,
    }
    with Session(ctx.engine) as session:
        org = records.find_organisation_by_brin(session, "05KO")
        assert org is not None
        assert (org.city, org.notes, org.version) == ("Amersfoort", "call first", 3)
        admin = session.scalars(select(Administrator)).one()
        assert records.administrator_phones(admin) == ["+31687654321"]
        sub = session.scalars(select(Subscription)).one()
        assert (sub.end_date, str(sub.status)) == (dt.date(2026, 7, 31), "active")
        updates = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "update").order_by(AuditEvent.id)
        ).all()
    assert [(e.entity, json.loads(e.detail)["fields"]) for e in updates[1:]] == [
        ("organisation", ["city"]),
        ("administrator", ["phones"]),
        ("subscription", ["end_date"]),
    ]
    assert all(json.loads(e.detail)["source"] == "import" for e in updates[1:])


def test_an_end_date_in_the_past_ends_the_subscription(ctx: AppContext) -> None:
    run(ctx, csv_text(csv_line()))
    report = run(ctx, csv_text(csv_line(end_date="2026-01-31")))
    assert report.subscriptions.updated == 1
    with Session(ctx.engine) as session:
        assert str(session.scalars(select(Subscription)).one().status) == "ended"


def test_rows_without_administrator_or_subscription(ctx: AppContext) -> None:
    blank = dict.fromkeys(
        ("admin_name", "admin_phones", "admin_email", "plan", "start_date", "end_date"), ""
    )
    report = run(ctx, csv_text(csv_line(**blank)))
    assert report.committed
    assert (report.organisations.created, report.administrators.created) == (1, 0)
    assert report.subscriptions.created == 0


# --- rejected rows -------------------------------------------------------------------------


def bad_file() -> str:
    """Line 1 header, 2 good, 3-4 one good row with a quoted two-line street, 5 blank,
    6 bad BRIN and e-mail, 7 BSN in the name, 8 too few cells, 9 good."""
    return (
        HEADER_LINE
        + "\n"
        + csv_line()
        + "\n"
        + csv_line(brin="07NU", street="Dorpsweg 12\nachteringang", admin_email="p@anker.example")
        + "\n\n"
        + csv_line(brin="05K0", admin_email="jan@@klimop")
        + "\n"
        + csv_line(brin="12KB", name="School 111222333", admin_email="k@ster.example")
        + "\n"
        + "OBS Kort,Straat 1,1234 AB\n"
        + csv_line(brin="30AJ", admin_email="x@one.example")
        + "\n"
    )


def test_bad_rows_are_reported_with_line_numbers_and_reasons(ctx: AppContext) -> None:
    report = run(ctx, bad_file(), dry_run=True)
    assert not report.ok and not report.committed
    assert [row.line for row in report.rejected] == [6, 7, 8]
    line6, line7, line8 = report.rejected
    assert line6.fields == ["admin_email", "brin"]
    assert any(r.startswith("BRIN '05K0': ") for r in line6.reasons)
    assert any(r.startswith("administrator e-mail: ") for r in line6.reasons)
    assert line7.reasons == [f"name: {BSN_RULE}"]
    assert line8.reasons == ["has 3 values, the header has 14 columns"]
    text = "\n".join(report.lines())
    assert "line 6: BRIN '05K0': " in text
    for secret in ("jan@@klimop", "111222333"):
        assert secret not in text
        assert secret not in json.dumps(report.to_dict())
    # the good rows (2, 3-4, 9) are counted as what they would do
    assert report.organisations.created == 3


def test_a_mixed_file_commits_nothing(ctx: AppContext) -> None:
    run(ctx, csv_text(csv_line(brin="40AB", admin_email="x@x.example")))
    before = table_counts(ctx)
    report = run(ctx, bad_file())
    assert not report.committed and len(report.rejected) == 3
    assert table_counts(ctx) == before
    assert "nothing was imported" in "\n".join(report.lines())


def test_same_school_on_several_rows(ctx: AppContext) -> None:
    text = csv_text(
        csv_line(),
        csv_line(brin="05 ko", admin_name="Els", admin_email="els@klimop.example", plan="plus"),
        csv_line(admin_name="Other Name"),  # same administrator, different name
        csv_line(city="Zeist", admin_email="z@klimop.example"),  # school details differ
        csv_line(),  # an exact repeat is harmless
    )
    report = run(ctx, text)
    assert [row.line for row in report.rejected] == [4, 5]
    assert "on line 2 with a different name or phones" in report.rejected[0].reasons[0]
    assert report.rejected[1].reasons == [
        "BRIN '05KO': the school details differ from line 2 (city); rows of one school must "
        "repeat the same school details"
    ]
    fixed = csv_text(csv_line(), csv_line(admin_email="els@klimop.example", plan="plus"))
    report = run(ctx, fixed)
    assert report.committed
    assert counts_of(report)["administrators"]["created"] == 2
    assert counts_of(report)["organisations"]["created"] == 1


def test_bad_subscription_dates(ctx: AppContext) -> None:
    text = csv_text(
        csv_line(start_date="2025-08-01", end_date="2025-07-01"),
        csv_line(brin="07NU", start_date="01-08-2025", admin_email="b@b.example"),
        csv_line(brin="12KB", start_date="", plan="", end_date="2026-01-01", admin_email="c@c.nl"),
    )
    report = run(ctx, text, dry_run=True)
    assert [(row.line, row.fields) for row in report.rejected] == [
        (2, ["end_date"]),
        (3, ["start_date"]),
        (4, ["plan", "start_date"]),
    ]


def test_viewer_may_not_import(open_as: Callable[[str], AppContext]) -> None:
    viewer = open_as("vera")
    with Session(viewer.engine) as session, pytest.raises(PermissionDenied):
        import_csv(session, viewer.staff, GOOD, dry_run=True)


# --- dry run -------------------------------------------------------------------------------


def test_dry_run_predicts_the_real_run(ctx: AppContext) -> None:
    empty = table_counts(ctx)
    dry = run(ctx, GOOD, dry_run=True)
    assert dry.ok and dry.dry_run and not dry.committed
    assert table_counts(ctx) == empty
    real = run(ctx, GOOD)
    assert counts_of(dry) == counts_of(real)
    # and for a file that updates and adds to existing records
    changed = GOOD.read_text().replace("Utrecht", "Zeist") + csv_line(
        brin="30AJ", admin_email="n@n.example"
    )
    before = table_counts(ctx)
    dry = run(ctx, changed, dry_run=True)
    assert table_counts(ctx) == before
    real = run(ctx, changed)
    assert counts_of(dry) == counts_of(real)
    assert real.organisations.updated == 1 and real.organisations.created == 1


# --- the file as a whole -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER_LINE.replace(",iban", ""), "column 'iban' is missing"),
        (HEADER_LINE + ",remarks", "column 15 'remarks' is not an expected column"),
        (
            HEADER_LINE.replace("admin_email", "admin_emial"),
            "column 11 'admin_emial' is not an expected column; did you mean 'admin_email'?",
        ),
        (
            HEADER_LINE.replace("postcode", "Postcode"),
            "column 3 'Postcode' is not an expected column; did you mean 'postcode'?",
        ),
        (HEADER_LINE + ",city", "column 'city' appears twice (columns 4 and 15)"),
        (HEADER_LINE.replace(",", ";"), "columns are separated by ';'"),
        ("", "line 1 (the header): the line is empty"),
    ],
)
def test_header_problems_name_the_column(ctx: AppContext, header: str, expected: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        run(ctx, header + "\n" + csv_line() + "\n")
    assert expected in str(caught.value)
    assert table_counts(ctx)["Organisation"] == 0


def test_missing_header_does_not_echo_the_data(ctx: AppContext) -> None:
    with pytest.raises(ImportFileError, match="the first line is not the header") as caught:
        run(ctx, csv_line() + "\n")
    assert "jansen" not in str(caught.value).lower()


def test_empty_file(ctx: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ImportFileError, match=r"empty\.csv: the file is empty; the first line"):
        run(ctx, path)
    path.write_bytes(b"\xef\xbb\xbf")  # a BOM and nothing else is still empty
    with pytest.raises(ImportFileError, match="the file is empty"):
        run(ctx, path)
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER_LINE + "\n")
    report = run(ctx, header_only)
    assert report.ok and report.rows == 0


def test_bom_and_windows_line_endings(ctx: AppContext, tmp_path: Path) -> None:
    body = "\r\n".join(
        [HEADER_LINE, csv_line(), csv_line(brin="07NU", postcode="0000 AA", admin_email="q@q.nl")]
    )
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (body + "\r\n").encode("utf-8"))
    report = run(ctx, path, dry_run=True)
    assert [(row.line, row.fields) for row in report.rejected] == [(3, ["postcode"])]
    path.write_bytes(b"\xef\xbb\xbf" + (body.rsplit("\r\n", 1)[0] + "\r\n").encode("utf-8"))
    report = run(ctx, path)
    assert report.committed and report.organisations.created == 1
    with Session(ctx.engine) as session:
        org = records.find_organisation_by_brin(session, "05KO")
        assert org is not None and org.name == "OBS De Klimop"  # no BOM glued to anything


def test_not_utf8(ctx: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (csv_text(csv_line(city="Hengelo (Ov)"), csv_line(name="Sint-Jozéf"))).encode("latin-1")
    )
    with pytest.raises(ImportFileError, match="not UTF-8 text"):
        run(ctx, path)
    assert table_counts(ctx)["Organisation"] == 0


# --- the command ---------------------------------------------------------------------------


def cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": "/work/main"}
    env.pop("PLUSJEKLAS_CONFIG", None)
    return subprocess.run(
        [PYTHON, "-m", "plusjeklas_tui", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_import(config_path: Path, ctx: AppContext, tmp_path: Path) -> None:
    dry = cli(config_path, "import", str(GOOD), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "a real import would give: organisations: 3 created" in dry.stderr
    assert dry.stdout == ""
    assert table_counts(ctx)["Organisation"] == 0

    real = cli(config_path, "import", str(GOOD), "--json")
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    assert report["committed"] and report["created"] == 9
    assert table_counts(ctx)["Organisation"] == 3

    bad = tmp_path / "bad.csv"
    bad.write_text(bad_file())
    failed = cli(config_path, "import", str(bad), "--json")
    assert failed.returncode == 1
    assert "line 6: BRIN '05K0': " in failed.stderr
    assert "jan@@klimop" not in failed.stderr + failed.stdout
    data = json.loads(failed.stdout)
    assert [row["line"] for row in data["rejected"]] == [6, 7, 8]
    assert data["committed"] is False
    assert table_counts(ctx)["Organisation"] == 3

    wrong = tmp_path / "wrong.csv"
    wrong.write_text(HEADER_LINE.replace("iban", "ibn") + "\n")
    header = cli(config_path, "import", str(wrong))
    assert header.returncode == 1
    assert "column 8 'ibn' is not an expected column; did you mean 'iban'?" in header.stderr

    missing = cli(config_path, "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2

    viewer = cli(config_path, "--user", "vera", "import", str(GOOD))
    assert viewer.returncode == 2 and "may not import records" in viewer.stderr
