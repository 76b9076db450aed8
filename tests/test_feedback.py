"""The Feedback list: who is in it (the window after the last subscription ended, not asked yet,
not objected), marking asked and answered with an encrypted note, the dashboard counts, the
erasure that takes the rows along, and the CLI.

Every test runs on SQLite and PostgreSQL (``engine_name``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from retention_world import TARGETS, TODAY, add_school, months_ago
from sqlalchemy import func, select, text

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import load_file
from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.models import (
    AuditEvent,
    ConsentAction,
    ConsentEvent,
    FeedbackRequest,
    Subscription,
    SubscriptionStatus,
)
from plusjeklas_tui.services import erasure, feedback
from plusjeklas_tui.services.deadlines import add_months, as_date, clock_starts
from plusjeklas_tui.services.feedback import FeedbackError, FeedbackState
from plusjeklas_tui.validation import FieldError

NOTE = "Mevrouw De Vries gebeld, vraagt om mail naar j.devries@school.nl"
ANSWER = "Tevreden over de lessen; vond groep 8 te moeilijk"


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    path = write_config()
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def world(config: Path) -> Iterator[AppContext]:
    context = open_context(config)
    yield context
    context.close()


@pytest.fixture
def as_user(config: Path) -> Iterator[Callable[[str], AppContext]]:
    opened: list[AppContext] = []

    def open_(user: str) -> AppContext:
        context = open_context(config, user)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()


def due_ids(ctx: AppContext, today: dt.date = TODAY) -> list[int]:
    with db.session_scope(ctx.engine) as s:
        return [
            e.organisation_id for e in feedback.due_for_feedback(s, today, ctx.settings.retention)
        ]


def object_(ctx: AppContext, administrator_id: int, action: ConsentAction, day: int) -> None:
    with db.session_scope(ctx.engine) as s:
        s.add(
            ConsentEvent(
                administrator_id=administrator_id,
                purpose="feedback",
                action=action,
                occurred_at=dt.datetime(2026, 1, day, tzinfo=dt.UTC),
                source="web-form",
            )
        )


def ask(ctx: AppContext, organisation_id: int, note: str = NOTE, today: dt.date = TODAY):  # type: ignore[no-untyped-def]
    with db.session_scope(ctx.engine) as s:
        return feedback.mark_asked(
            s, ctx.staff, organisation_id, note, today, ctx.settings.retention
        )


def answer(ctx: AppContext, organisation_id: int, note: str = ANSWER, today: dt.date = TODAY):  # type: ignore[no-untyped-def]
    with db.session_scope(ctx.engine) as s:
        return feedback.mark_answered(
            s, ctx.staff, organisation_id, note, today, ctx.settings.retention
        )


# --- who is in the list --------------------------------------------------------------------


def test_the_window_runs_from_the_day_after_the_end_to_the_retention_deadline(
    world: AppContext,
) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    last_day = add_months(TODAY, -24)  # deadline == today: still kept, still askable
    past = last_day - dt.timedelta(days=1)  # deadline yesterday: the sweep's, not ours
    with db.session_scope(world.engine) as s:
        ended_yesterday = add_school(s, 1, ended=yesterday)
        ends_today = add_school(s, 2, ended=TODAY)  # its last day of lessons is today
        on_the_last_day = add_school(s, 3, ended=last_day)
        past_retention = add_school(s, 4, ended=past)
        running = add_school(s, 5, subscriptions=[(dt.date(2020, 1, 1), None)])
        never = add_school(s, 6)  # a prospect: no lessons to look back on
        renewed = add_school(
            s,
            7,
            subscriptions=[(dt.date(2019, 1, 1), months_ago(6)), (months_ago(6), None)],
        )
        renewed_until_later = add_school(
            s, 8, subscriptions=[(dt.date(2019, 1, 1), TODAY + dt.timedelta(days=90))]
        )
    shown = due_ids(world)
    assert shown == [on_the_last_day.id, ended_yesterday.id]  # oldest end first
    for absent in (ends_today, past_retention, running, never, renewed, renewed_until_later):
        assert absent.id not in shown
    with db.session_scope(world.engine) as s:
        entries = feedback.due_for_feedback(s, TODAY, world.settings.retention)
    assert entries[0].keep_until == TODAY and entries[0].ended_on == last_day
    assert entries[1].brin == ended_yesterday.brin and entries[1].state == FeedbackState.DUE
    # the next day the oldest has passed its deadline and the one that ended today is due
    tomorrow = TODAY + dt.timedelta(days=1)
    assert due_ids(world, tomorrow) == [ended_yesterday.id, ends_today.id]


def test_the_window_follows_the_configured_retention(
    write_config: Callable[..., Path],
) -> None:
    path = write_config(extra="[retention]\ngeneral_after_end_months = 12\n")
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    ctx = open_context(path)
    try:
        with db.session_scope(ctx.engine) as s:
            recent = add_school(s, 1, ended=months_ago(11))
            add_school(s, 2, ended=months_ago(13))
        assert due_ids(ctx) == [recent.id]
    finally:
        ctx.close()


def test_a_renewal_takes_a_school_out_and_a_new_end_makes_it_due_again(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(10))
    ask(world, school.id)
    assert due_ids(world) == []
    with db.session_scope(world.engine) as s:
        s.add(
            Subscription(
                organisation_id=school.id,
                plan="plus",
                start_date=months_ago(9),
                end_date=None,
                status=SubscriptionStatus.ACTIVE,
            )
        )
    with db.session_scope(world.engine) as s:
        assert feedback.entry_for(s, school.id, TODAY, world.settings.retention) is None
        summary = feedback.feedback_summary(s, TODAY, world.settings.retention)
    assert summary.asked == 0 and summary.due == 0
    # the renewal ends two months ago: a new period, so a new question
    with db.session_scope(world.engine) as s:
        s.execute(
            Subscription.__table__.update()
            .where(Subscription.__table__.c.end_date.is_(None))
            .values(end_date=months_ago(2), status=SubscriptionStatus.ENDED.value)
        )
    assert due_ids(world) == [school.id]
    entry = ask(world, school.id)
    assert entry.ended_on == months_ago(2) and entry.state == FeedbackState.ASKED
    assert count(world, FeedbackRequest) == 2


def test_a_school_is_left_out_only_when_every_current_administrator_objected(
    world: AppContext,
) -> None:
    with db.session_scope(world.engine) as s:
        all_objected = add_school(s, 1, ended=months_ago(3), people=2)
        one_objected = add_school(s, 2, ended=months_ago(3), people=2)
        changed_mind = add_school(s, 3, ended=months_ago(3), people=1)
        objector_left = add_school(s, 4, ended=months_ago(3), people=2, left_on=months_ago(1))
        nobody_left = add_school(s, 5, ended=months_ago(3), people=1, left_on=months_ago(1))
        other_purpose = add_school(s, 6, ended=months_ago(3), people=1)
    for person in all_objected.admin_ids:
        object_(world, person, ConsentAction.WITHDRAWN, 5)
    object_(world, one_objected.admin_ids[0], ConsentAction.WITHDRAWN, 5)
    object_(world, changed_mind.admin_ids[0], ConsentAction.WITHDRAWN, 5)
    object_(world, changed_mind.admin_ids[0], ConsentAction.GRANTED, 9)  # latest counts
    # the remaining (current) administrator of school 4 objected; the one who left did not
    object_(world, objector_left.admin_ids[1], ConsentAction.WITHDRAWN, 5)
    with db.session_scope(world.engine) as s:
        s.add(
            ConsentEvent(
                administrator_id=other_purpose.admin_ids[0],
                purpose="newsletter",
                action=ConsentAction.WITHDRAWN,
                occurred_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
                source="web-form",
            )
        )

    with db.session_scope(world.engine) as s:
        entries = {
            e.organisation_id: e
            for e in feedback.due_for_feedback(s, TODAY, world.settings.retention)
        }
        askable = feedback.askable_people(s, one_objected.id, TODAY)
        summary = feedback.feedback_summary(s, TODAY, world.settings.retention)
    assert set(entries) == {one_objected.id, changed_mind.id, nobody_left.id, other_purpose.id}
    assert (entries[one_objected.id].administrators, entries[one_objected.id].may_ask) == (2, 1)
    assert [p.id for p in askable] == [one_objected.admin_ids[1]]
    assert askable[0].name == one_objected.people[1]
    assert entries[changed_mind.id].objected == 0
    assert entries[nobody_left.id].administrators == 0  # the school's own address is asked
    assert summary == feedback.FeedbackSummary(due=4, asked=0, answered=0, objected=2)

    with db.session_scope(world.engine) as s, pytest.raises(FeedbackError, match="objected"):
        feedback.mark_asked(s, world.staff, all_objected.id, NOTE, TODAY, world.settings.retention)
    assert count(world, FeedbackRequest) == 0


def test_the_indexed_window_equals_the_shared_clock_query(world: AppContext) -> None:
    """``ended_in_window`` answers what ``clock_starts`` and the retention rule answer."""
    shapes: list[dict] = [
        {"created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"subscriptions": [(dt.date(2020, 1, 1), None)]},
        {"subscriptions": [(dt.date(2020, 1, 1), TODAY)]},
        {"subscriptions": [(dt.date(2020, 1, 1), TODAY - dt.timedelta(days=1))]},
        {"subscriptions": [(dt.date(2018, 1, 1), dt.date(2019, 1, 1)), (months_ago(30), None)]},
        {
            "subscriptions": [
                (dt.date(2018, 1, 1), months_ago(24)),
                (months_ago(30), months_ago(25)),
            ]
        },
        {"subscriptions": [(dt.date(2018, 1, 1), months_ago(5)), (months_ago(30), months_ago(7))]},
        {"subscriptions": [(dt.date(2018, 1, 1), months_ago(24, TODAY) - dt.timedelta(days=1))]},
    ]
    with db.session_scope(world.engine) as s:
        for n, shape in enumerate(shapes, start=1):
            add_school(s, n, **shape)
    rule = feedback.general_rule(world.settings.retention)
    with world.engine.connect() as conn:
        has_subscription = set(conn.execute(select(Subscription.organisation_id)).scalars())
        expected = {}
        for row in conn.execute(clock_starts(TODAY)):
            start = as_date(row.clock_start)
            if row.organisation_id in has_subscription and start is not None:
                deadline = rule.deadline(start)
                assert deadline is not None
                if deadline >= TODAY:
                    expected[row.organisation_id] = start
        indexed = {
            row.organisation_id: as_date(row.ended_on)
            for row in conn.execute(feedback.ended_in_window(TODAY, rule))
        }
    assert indexed == expected
    assert len(expected) == 3  # ended yesterday, ended 24 months ago, ended 5 months ago


# --- marking -------------------------------------------------------------------------------


def test_asked_then_answered_with_encrypted_notes_and_an_audit_by_id(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(4))
    entry = ask(world, school.id, "  " + NOTE + "  ")
    assert entry.state == FeedbackState.ASKED and entry.asked_by == world.staff.username
    assert due_ids(world) == []
    with db.session_scope(world.engine) as s:
        still_open = feedback.feedback_list(s, TODAY, world.settings.retention)
    assert [(e.organisation_id, e.state) for e in still_open] == [(school.id, FeedbackState.ASKED)]

    with db.session_scope(world.engine) as s, pytest.raises(FeedbackError, match="already asked"):
        feedback.mark_asked(s, world.staff, school.id, NOTE, TODAY, world.settings.retention)

    answered = answer(world, school.id)
    assert answered.state == FeedbackState.ANSWERED and answered.answered_at is not None
    with db.session_scope(world.engine) as s:
        assert feedback.feedback_list(s, TODAY, world.settings.retention) == []
        done = feedback.feedback_list(
            s, TODAY, world.settings.retention, states=[FeedbackState.ANSWERED]
        )
        assert [e.organisation_id for e in done] == [school.id]
        assert feedback.notes(s, world.staff, school.id, months_ago(4)) == (NOTE, ANSWER)
    with db.session_scope(world.engine) as s, pytest.raises(FeedbackError, match="already"):
        feedback.mark_answered(s, world.staff, school.id, ANSWER, TODAY, world.settings.retention)

    with world.engine.connect() as conn:  # what is stored is not the note
        stored = conn.execute(text("SELECT asked_note, answered_note FROM feedback_request")).one()
        events = conn.execute(
            select(AuditEvent.action, AuditEvent.entity_id, AuditEvent.detail).where(
                AuditEvent.action.like("feedback_%")  # type: ignore[attr-defined]
            )
        ).all()
    assert "De Vries" not in stored[0] and "Tevreden" not in stored[1]
    assert [(e.action, e.entity_id) for e in events] == [
        ("feedback_asked", school.id),
        ("feedback_answered", school.id),
    ]
    assert json.loads(events[0].detail) == {"ended_on": months_ago(4).isoformat()}
    assert all("Vries" not in e.detail and "Tevreden" not in e.detail for e in events)


def test_marking_refuses_bad_notes_wrong_schools_and_viewers(
    world: AppContext, as_user: Callable[[str], AppContext]
) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(4))
        running = add_school(s, 2, subscriptions=[(dt.date(2020, 1, 1), None)])
    for bad, rule in (("   ", "required"), ("x" * (feedback.NOTE_MAX_LENGTH + 1), "at most")):
        with pytest.raises(FieldError, match=rf"(?i)note.*{rule}"):
            ask(world, school.id, bad)
    with pytest.raises(FeedbackError, match="not in the feedback window"):
        ask(world, running.id)
    with pytest.raises(NotFound, match="no organisation with id 999"):
        ask(world, 999)
    with pytest.raises(FeedbackError, match="not been asked yet"):
        answer(world, school.id)
    vera = as_user("vera")
    with pytest.raises(PermissionDenied, match="edit"):
        ask(vera, school.id)
    assert count(world, FeedbackRequest) == 0
    eddie = as_user("eddie")  # editors may mark
    assert ask(eddie, school.id).asked_by == "eddie"
    with pytest.raises(PermissionDenied, match="edit"):
        answer(vera, school.id)


def test_the_summary_counts_each_state(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        schools = [add_school(s, n, ended=months_ago(n)) for n in range(1, 6)]
        add_school(s, 9, ended=months_ago(30))  # past retention: not counted
    ask(world, schools[0].id)
    ask(world, schools[1].id)
    answer(world, schools[1].id)
    object_(world, schools[2].admin_ids[0], ConsentAction.WITHDRAWN, 3)
    with db.session_scope(world.engine) as s:
        summary = feedback.feedback_summary(s, TODAY, world.settings.retention)
        page = feedback.feedback_list(s, TODAY, world.settings.retention, limit=1, offset=1)
    assert summary == feedback.FeedbackSummary(due=2, asked=1, answered=1, objected=1)
    assert summary.open == 3
    # open, oldest end first: schools 5, 4 (due), 1 (asked); the second of them
    assert [e.organisation_id for e in page] == [schools[3].id]


def test_erasing_a_school_removes_its_feedback_rows(world: AppContext) -> None:
    with db.session_scope(world.engine) as s:
        school = add_school(s, 1, ended=months_ago(4))
        other = add_school(s, 2, ended=months_ago(4))
    ask(world, school.id)
    answer(world, school.id)
    ask(world, other.id)
    with db.session_scope(world.engine) as s:
        erasure.request_erasure(
            s,
            world.staff,
            world.settings.retention,
            TARGETS,
            "organisation",
            school.id,
            "objection",
            TODAY,
        )
    with world.engine.connect() as conn:
        left = conn.execute(select(FeedbackRequest.organisation_id)).scalars().all()
    assert left == [other.id]


def count(ctx: AppContext, model: type) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


# --- the CLI -------------------------------------------------------------------------------


def run(config: Path, *args: str, user: str | None = None):  # type: ignore[no-untyped-def]
    prefix = ["--user", user] if user else []
    return CliRunner().invoke(main, ["--config", str(config), *prefix, "feedback", *args])


def test_cli_lists_marks_and_refuses(
    world: AppContext, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plusjeklas_tui.services import records

    monkeypatch.setattr(records, "local_today", lambda: TODAY)
    with db.session_scope(world.engine) as s:
        first = add_school(s, 1, ended=months_ago(8))
        second = add_school(s, 2, ended=months_ago(2))
        add_school(s, 3, subscriptions=[(dt.date(2020, 1, 1), None)])

    listed = run(config, "list", "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [e["organisation_id"] for e in data["entries"]] == [first.id, second.id]
    assert data["summary"] == {"due": 2, "asked": 0, "answered": 0, "objected": 0}
    assert data["entries"][0]["keep_until"] == add_months(months_ago(8), 24).isoformat()

    refused = run(config, "asked", str(first.id), "--note", NOTE, user="vera")
    assert refused.exit_code == 2 and "may not" in refused.stderr
    empty = run(config, "asked", str(first.id), "--note", " ")
    assert empty.exit_code == 1 and "required" in empty.stderr
    asked = run(config, "asked", str(first.id), "--note", NOTE, user="eddie")
    assert asked.exit_code == 0, asked.output
    assert NOTE not in asked.output  # the note is stored, never echoed
    early = run(config, "answered", str(second.id), "--note", ANSWER)
    assert early.exit_code == 1 and "not been asked yet" in early.stderr
    answered = run(config, "answered", str(first.id), "--note", ANSWER)
    assert answered.exit_code == 0, answered.output

    text_list = run(config, "list")
    assert text_list.exit_code == 0
    assert second.brin in text_list.stdout and first.brin not in text_list.stdout
    every = run(config, "list", "--all")
    lines = {line.split()[0]: line for line in every.stdout.splitlines()[1:]}
    assert "answered" in lines[first.brin] and "due" in lines[second.brin]
    assert "1 due, 0 asked, 1 answered" in every.stderr
