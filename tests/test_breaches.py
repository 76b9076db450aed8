"""The breach register: the 72-hour countdown, validation, reporting, the export of the form."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import PermissionDenied
from plusjeklas_tui.models import AuditEvent, Breach, BreachStatus
from plusjeklas_tui.services import breach_form, breaches
from plusjeklas_tui.validation import FieldError, ValidationErrors

AMS = breaches.LOCAL_TZ
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # a Friday
SECRET = "Jantje de Vries uit groep 7"


def local(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=AMS)


def raw(**changes: Any) -> dict[str, Any]:
    """A complete breach as typed in a form, with *changes*."""
    base: dict[str, Any] = {
        "discovered_at": "2026-11-26 09:15",
        "started_at": "2026-11-25 22:00",
        "ended_at": "2026-11-26 08:00",
        "summary": f"Export with {SECRET} mailed to the wrong school",
        "nature": "read, copied",
        "cause": "wrong address picked from autocomplete",
        "data_types": "name_address,email",
        "records_approx": "40",
        "groups": "administrators of one school",
        "people_min": "3",
        "people_max": "12",
        "vulnerable_groups": "no",
        "encrypted": "no",
        "consequences": "phishing risk",
        "informed": "yes",
        "informed_how": "e-mail on 2026-11-26",
        "measures": "asked the recipient to delete it",
        "contact_name": "Sascha Jansen",
        "contact_function": "owner",
        "contact_phone": "020 123 4567",
        "contact_email": "sascha@jongleren.biz",
        "processor_involved": "no",
    }
    base.update(changes)
    return base


def new_breach(context: AppContext, now: dt.datetime = NOW, **changes: Any) -> int:
    with session_scope(context.engine) as session:
        breach = breaches.register(session, context.staff, raw(**changes), now=now)
        assert breach.id is not None
        return breach.id


def field_errors(excinfo: pytest.ExceptionInfo[ValidationErrors]) -> dict[str, FieldError]:
    return excinfo.value.by_field()


# --- the countdown ---------------------------------------------------------------------------


def test_deadline_runs_through_the_weekend() -> None:
    discovered = local("2026-11-27T16:00")  # Friday afternoon
    deadline = breaches.deadline(discovered)
    assert deadline.astimezone(AMS) == local("2026-11-30T16:00")  # Monday, not Wednesday
    saturday = local("2026-11-28T16:00")
    assert breaches.time_left(discovered, saturday) == dt.timedelta(hours=48)
    assert breaches.time_left(discovered, local("2026-11-30T17:30")) == -dt.timedelta(hours=1.5)


def test_deadline_across_the_end_of_summer_time_is_72_real_hours() -> None:
    # clocks go back on Sunday 2026-10-25 03:00 -> 02:00: the Amsterdam clock shows 71 hours
    discovered = breaches.parse_moment("2026-10-23 17:00", "discovered_at")
    assert discovered == dt.datetime(2026, 10, 23, 15, 0, tzinfo=dt.UTC)
    assert breaches.deadline(discovered).astimezone(AMS).strftime("%a %H:%M") == "Mon 16:00"
    assert breaches.deadline(discovered) - discovered == dt.timedelta(hours=72)
    one_hour_before = dt.datetime(2026, 10, 26, 14, 0, tzinfo=dt.UTC)
    assert breaches.time_left(discovered, one_hour_before) == dt.timedelta(hours=1)


def test_deadline_across_the_start_of_summer_time_is_72_real_hours() -> None:
    discovered = breaches.parse_moment("2026-03-27 17:00", "discovered_at")  # CET
    assert breaches.deadline(discovered).astimezone(AMS) == local("2026-03-30T18:00")


def test_times_that_do_not_exist_or_exist_twice_in_amsterdam_are_refused() -> None:
    with pytest.raises(FieldError) as gap:
        breaches.parse_moment("2026-03-29 02:30", "discovered_at")
    assert gap.value.field == "discovered_at" and gap.value.code == "breach.moment.gap"
    with pytest.raises(FieldError) as twice:
        breaches.parse_moment("2026-10-25 02:30", "started_at")
    assert twice.value.code == "breach.moment.ambiguous" and "+02:00" in str(twice.value)
    first = breaches.parse_moment("2026-10-25 02:30+02:00", "started_at")
    second = breaches.parse_moment("2026-10-25 02:30+01:00", "started_at")
    assert second is not None and first is not None and second - first == dt.timedelta(hours=1)
    with pytest.raises(FieldError, match="YYYY-MM-DD HH:MM"):
        breaches.parse_moment("26-11-2026 10:00", "discovered_at")


def test_time_left_display() -> None:
    assert breaches.describe_time_left(dt.timedelta(hours=41, minutes=12, seconds=30)) == (
        "41 h 12 min left"
    )
    assert breaches.describe_time_left(-dt.timedelta(hours=3, minutes=5)) == "overdue by 3 h 05 min"
    assert breaches.describe_time_left(None) == "-"


# --- recording and validation ----------------------------------------------------------------


def test_register_stores_the_form_and_encrypts_descriptions(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with session_scope(ctx.engine) as session:
        breach = breaches.get_breach(session, ctx.staff, breach_id)
        assert breach.status == BreachStatus.OPEN
        assert breach.discovered_at == local("2026-11-26T09:15")
        assert json.loads(breach.nature) == ["read", "copied"]
        assert json.loads(breach.data_types) == ["name_address", "email"]
        assert (breach.people_min, breach.people_max) == (3, 12)
        assert breach.contact_phone == "+31201234567"
        assert SECRET in breach.summary
        stored = session.execute(
            text("SELECT summary, contact_name, contact_email FROM breach WHERE id = :id"),
            {"id": breach_id},
        ).one()
        assert all(value and "Jansen" not in value and SECRET not in value for value in stored)
        assert all("jongleren" not in value for value in stored)
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "breach", AuditEvent.action == "create")
        ).all()
    assert [e.entity_id for e in events] == [breach_id]
    detail = json.loads(events[0].detail)
    assert "summary" in detail["fields"] and "people_max" in detail["fields"]
    assert SECRET not in events[0].detail and "Jansen" not in events[0].detail


def test_every_problem_is_reported_with_its_field(ctx: AppContext) -> None:
    bad = raw(
        discovered_at="2026-11-29 10:00",  # after NOW
        started_at="2026-11-20 10:00",
        ended_at="2026-11-19 10:00",  # before it started
        people_min="10",
        people_max="4",
        data_types="email, ssn",
        nature="",
        records_approx="-3",
        encrypted="maybe",
        summary="  ",
    )
    with pytest.raises(ValidationErrors) as excinfo, session_scope(ctx.engine) as session:
        breaches.register(session, ctx.staff, bad, now=NOW)
    errors = field_errors(excinfo)
    assert errors["discovered_at"].code == "breach.moment.future"
    assert errors["ended_at"].code == "breach.ended_before_start"
    assert errors["people_max"].code == "breach.max_below_min"
    assert "(10)" in str(errors["people_max"])
    assert errors["data_types"].code == "breach.choices" and "ssn" in str(errors["data_types"])
    assert "bsn" in str(errors["data_types"])  # the allowed codes are listed
    assert errors["nature"].code == "breach.choices_required"
    assert errors["records_approx"].code == "breach.count"
    assert errors["encrypted"].code == "breach.choice"
    assert errors["summary"].code == "required"
    with session_scope(ctx.engine) as session:
        assert session.scalar(select(Breach.id)) is None  # nothing half-written


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"ongoing": "yes"}, "ended_at", "breach.ended_while_ongoing"),
        (
            {"started_at": "2026-11-26 10:00", "ended_at": ""},
            "started_at",
            "breach.started_after_discovery",
        ),
        ({"data_types": "other"}, "data_types_other", "breach.other_needs_description"),
        ({"follow_up": "yes"}, "earlier_reference", "breach.follow_up_needs_reference"),
        ({"processor_involved": "ja"}, "processor_name", "breach.processor_needs_name"),
        ({"informed_how": ""}, "informed_how", "breach.informed_needs_how"),
        ({"vulnerable_groups": "perhaps"}, "vulnerable_groups", "breach.flag"),
        ({"discovered_at": ""}, "discovered_at", "required"),
        ({"people_min": ""}, "people_min", "required"),
        ({"summary": "BSN 111222333 leaked"}, "summary", "text.bsn"),
        ({"contact_email": "a@b"}, "contact_email", "email.no_period"),
    ],
)
def test_rules_between_fields(
    ctx: AppContext, changes: dict[str, str], field: str, code: str
) -> None:
    with pytest.raises(ValidationErrors) as excinfo, session_scope(ctx.engine) as session:
        breaches.register(session, ctx.staff, raw(**changes), now=NOW)
    errors = field_errors(excinfo)
    assert list(errors) == [field]
    assert errors[field].code == code


def test_personal_values_never_appear_in_messages() -> None:
    with pytest.raises(ValidationErrors) as excinfo:
        breaches.validate(raw(contact_email="jan.jansen@@school.nl", summary="x" * 4001), now=NOW)
    message = str(excinfo.value)
    assert "jan.jansen" not in message
    assert "contact_email" in message or "contact e-mail" in message
    assert "summary" in message


def test_viewers_read_but_do_not_record(
    ctx: AppContext, open_as: Callable[[str], AppContext]
) -> None:
    breach_id = new_breach(ctx)
    viewer = open_as("vera")
    with session_scope(viewer.engine) as session:
        with pytest.raises(PermissionDenied, match="record a breach"):
            breaches.register(session, viewer.staff, raw(), now=NOW)
        with pytest.raises(PermissionDenied):
            breaches.mark_not_reportable(session, viewer.staff, breach_id, "no risk")
        rows = breaches.list_breaches(session, viewer.staff, NOW)
    assert [row.id for row in rows] == [breach_id]
    editor = open_as("eddie")
    with session_scope(editor.engine) as session:
        breaches.update_breach(session, editor.staff, breach_id, {"people_max": 15}, now=NOW)
    with session_scope(ctx.engine) as session:
        assert session.get(Breach, breach_id).people_max == 15  # type: ignore[union-attr]


# --- updating --------------------------------------------------------------------------------


def test_update_checks_the_whole_record_and_the_version(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with session_scope(ctx.engine) as session:
        changed = breaches.update_breach(
            session, ctx.staff, breach_id, {"people_max": "20", "measures": "new password"}
        )
        assert changed == ["people_max", "measures"]
        assert breaches.update_breach(session, ctx.staff, breach_id, {"people_max": 20}) == []
    with pytest.raises(ValidationErrors) as excinfo, session_scope(ctx.engine) as session:
        breaches.update_breach(session, ctx.staff, breach_id, {"people_min": "21"}, now=NOW)
    assert field_errors(excinfo)["people_max"].code == "breach.max_below_min"
    with pytest.raises(breaches.ConflictError), session_scope(ctx.engine) as session:
        breaches.update_breach(
            session, ctx.staff, breach_id, {"people_max": "30"}, expected_version=1
        )
    with session_scope(ctx.engine) as session:
        breach = session.get(Breach, breach_id)
        assert breach is not None and (breach.people_max, breach.version) == (20, 2)
        updates = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "breach", AuditEvent.action == "update")
        ).all()
    assert [json.loads(e.detail)["fields"] for e in updates] == [["people_max", "measures"]]


# --- reporting -------------------------------------------------------------------------------


def test_reporting_in_time_needs_no_reason(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with session_scope(ctx.engine) as session:
        breach = breaches.mark_reported(
            session, ctx.staff, breach_id, ap_reference="M-123", reported_at=None, now=NOW
        )
        assert breach.status == BreachStatus.REPORTED and breach.reported_at == NOW
        assert breaches.breach_time_left(breach, NOW) is None
    with pytest.raises(breaches.BreachStateError), session_scope(ctx.engine) as session:
        breaches.mark_reported(session, ctx.staff, breach_id, ap_reference="M-124", now=NOW)


def test_reporting_late_requires_a_reason(ctx: AppContext) -> None:
    discovered = NOW - dt.timedelta(hours=80)
    breach_id = new_breach(
        ctx, discovered_at=discovered, started_at=None, ended_at=None, ongoing="yes"
    )
    with pytest.raises(FieldError) as excinfo, session_scope(ctx.engine) as session:
        breaches.mark_reported(session, ctx.staff, breach_id, ap_reference="M-9", now=NOW)
    assert excinfo.value.field == "late_reason"
    assert excinfo.value.code == "breach.late_needs_reason"
    with session_scope(ctx.engine) as session:
        assert session.get(Breach, breach_id).status == BreachStatus.OPEN  # type: ignore[union-attr]
        breach = breaches.mark_reported(
            session,
            ctx.staff,
            breach_id,
            ap_reference="M-9",
            late_reason="found out only on Monday what was in the file",
            now=NOW,
        )
        assert breach.status == BreachStatus.REPORTED
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "report")).one()
    assert json.loads(event.detail) == {"late": True}
    # the reason cannot be taken away afterwards
    with pytest.raises(FieldError) as again, session_scope(ctx.engine) as session:
        breaches.update_breach(session, ctx.staff, breach_id, {"late_reason": ""}, now=NOW)
    assert again.value.field == "late_reason"


def test_a_report_time_exactly_at_the_deadline_is_in_time(ctx: AppContext) -> None:
    discovered = NOW - dt.timedelta(hours=72)
    breach_id = new_breach(ctx, discovered_at=discovered, started_at=None, ended_at=None)
    with session_scope(ctx.engine) as session:
        breaches.mark_reported(session, ctx.staff, breach_id, ap_reference="M-1", now=NOW)
    with pytest.raises(FieldError) as excinfo, session_scope(ctx.engine) as session:
        other = breaches.register(
            session,
            ctx.staff,
            raw(discovered_at=discovered, started_at=None, ended_at=None),
            now=NOW,
        )
        breaches.mark_reported(
            session,
            ctx.staff,
            other.id or 0,
            ap_reference="M-2",
            reported_at=NOW + dt.timedelta(seconds=1),
            now=NOW + dt.timedelta(seconds=1),
        )
    assert excinfo.value.field == "late_reason"


def test_a_report_before_discovery_or_in_the_future_is_refused(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with pytest.raises(FieldError) as before, session_scope(ctx.engine) as session:
        breaches.mark_reported(
            session, ctx.staff, breach_id, ap_reference="M", reported_at="2026-11-25 10:00", now=NOW
        )
    assert (before.value.field, before.value.code) == (
        "reported_at",
        "breach.reported_before_discovery",
    )
    with pytest.raises(FieldError) as future, session_scope(ctx.engine) as session:
        breaches.mark_reported(
            session, ctx.staff, breach_id, ap_reference="M", reported_at="2026-12-25 10:00", now=NOW
        )
    assert future.value.code == "breach.moment.future"
    with pytest.raises(ValidationErrors) as no_ref, session_scope(ctx.engine) as session:
        breaches.mark_reported(session, ctx.staff, breach_id, ap_reference=" ", now=NOW)
    assert list(no_ref.value.by_field()) == ["ap_reference"]


def test_not_reportable_requires_a_reason_and_stops_the_countdown(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with pytest.raises(FieldError) as excinfo, session_scope(ctx.engine) as session:
        breaches.mark_not_reportable(session, ctx.staff, breach_id, "   ")
    assert excinfo.value.field == "not_reportable_reason"
    assert excinfo.value.code == "breach.not_reportable_needs_reason"
    with session_scope(ctx.engine) as session:
        assert breaches.open_breaches_summary(session, NOW).open_count == 1
        breach = breaches.mark_not_reportable(
            session, ctx.staff, breach_id, "addresses were of the school's general desk"
        )
        assert breach.status == BreachStatus.NOT_REPORTABLE
        assert breaches.open_breaches_summary(session, NOW).open_count == 0
        stored = session.execute(text("SELECT not_reportable_reason FROM breach")).scalar_one()
        assert "general desk" not in stored
        # judged again: it can still be reported afterwards, and stays in the register
        breaches.mark_reported(session, ctx.staff, breach_id, ap_reference="M-5", now=NOW)
        rows = breaches.list_breaches(session, ctx.staff, NOW)
    assert [(row.id, row.status) for row in rows] == [(breach_id, "reported")]


def test_open_breaches_summary_for_the_dashboard(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        empty = breaches.open_breaches_summary(session, NOW)
    assert empty == breaches.OpenBreachesSummary(0, 0, None, None, None)
    overdue = new_breach(
        ctx, discovered_at=NOW - dt.timedelta(hours=73), started_at="", ended_at=""
    )
    recent = new_breach(ctx, discovered_at=NOW - dt.timedelta(hours=2), started_at="", ended_at="")
    done = new_breach(ctx, discovered_at=NOW - dt.timedelta(hours=100), started_at="", ended_at="")
    with session_scope(ctx.engine) as session:
        breaches.mark_not_reportable(session, ctx.staff, done, "no risk: encrypted laptop")
        summary = breaches.open_breaches_summary(session, NOW)
        rows = breaches.list_breaches(session, ctx.staff, NOW)
    assert (summary.open_count, summary.overdue_count) == (2, 1)
    assert summary.next_id == overdue
    assert summary.next_time_left == -dt.timedelta(hours=1)
    assert [row.id for row in rows] == [overdue, recent, done]  # open by deadline first
    assert rows[1].time_left == dt.timedelta(hours=70) and rows[2].time_left is None


# --- the export ------------------------------------------------------------------------------


def test_export_fills_every_question_of_the_form(ctx: AppContext) -> None:
    breach_id = new_breach(ctx)
    with session_scope(ctx.engine) as session:
        breach = breaches.get_breach(session, ctx.staff, breach_id)
        form = breach_form.build_form(breach, ctx.settings, NOW)
    data = breach_form.as_json(form)
    assert list(data["form"]) == list(breach_form.FORM_FIELDS)
    # everything is answered except what the configuration does not say yet
    controller = getattr(ctx.settings, "controller", None)
    expected_gaps = [
        key
        for key, attribute in (
            ("organisation_address", "address"),
            ("organisation_chamber_of_commerce", "chamber_of_commerce"),
            ("organisation_phone", "phone"),
        )
        if getattr(controller, attribute, None) in (None, "")
    ]
    if getattr(controller, "name", None) in (None, ""):
        expected_gaps.insert(0, "organisation_name")
    assert data["unfilled"] == expected_gaps
    for key in breach_form.FORM_FIELDS:
        if key not in expected_gaps and key not in breach_form._NOT_APPLICABLE:
            assert data["form"][key] not in (None, "", []), key
    assert data["form"]["people_min"] == 3 and data["form"]["people_max"] == 12
    assert data["form"]["discovered_at"] == "2026-11-26T08:15:00+00:00"
    assert data["form"]["deadline"] == "2026-11-29T08:15:00+00:00"
    assert data["contact_for_reports"] == ctx.settings.breach.contact
    assert (
        data["time_left_seconds"]
        == (dt.datetime(2026, 11, 29, 8, 15, tzinfo=dt.UTC) - NOW).total_seconds()
    )
    json.dumps(data)  # serialisable as it is

    dutch = breach_form.as_markdown(form, "nl")
    english = breach_form.as_markdown(form, "en")
    for _key, nl, en, questions in breach_form.SECTIONS:
        assert f"## {nl}" in dutch and f"## {en}" in english
        for _field, q_nl, q_en in questions:
            assert f"**{q_nl}" in dutch and f"**{q_en}" in english
    assert "Ontdekt op:** 2026-11-26 09:15" in dutch  # Amsterdam time
    assert "gelezen; gekopieerd" in dutch and "read; copied" in english
    assert "Aantal betrokkenen (maximaal):** 12" in dutch
    assert SECRET in dutch  # the form is for the regulator: the description is whole
    assert "nog 44 u 15 min" in dutch and "44 h 15 min left" in english


def test_export_names_what_the_configuration_lacks(
    ctx: AppContext, write_config: Callable[..., Any]
) -> None:
    from plusjeklas_tui.config import Settings

    bare = Settings.model_validate({"breach": {"contact": "privacy@plusjeklas.nl"}})
    breach_id = new_breach(ctx, contact_email="", follow_up="yes", earlier_reference="M-1")
    with session_scope(ctx.engine) as session:
        breach = breaches.get_breach(session, ctx.staff, breach_id)
        form = breach_form.build_form(breach, bare, NOW)
    data = breach_form.as_json(form)
    assert data["form"]["contact_email"] == "privacy@plusjeklas.nl"
    assert data["form"]["organisation_email"] in ("privacy@plusjeklas.nl", "sascha@jongleren.biz")
    assert "organisation_address" in data["unfilled"]
    text_ = breach_form.as_markdown(form, "en")
    assert "## Not filled in yet" in text_ and "- Address" in text_
    assert "follow-up" in text_ and "M-1" in text_


def test_export_of_free_text_cannot_forge_form_lines(ctx: AppContext) -> None:
    breach_id = new_breach(ctx, measures="line one\n## Measures\n**Fake:** yes")
    with session_scope(ctx.engine) as session:
        breach = breaches.get_breach(session, ctx.staff, breach_id)
        text_ = breach_form.as_markdown(breach_form.build_form(breach, ctx.settings, NOW), "en")
    assert text_.splitlines().count("## Measures") == 1
    assert "> ## Measures" in text_ and "> **Fake:** yes" in text_
