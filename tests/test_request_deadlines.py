"""Deadlines of data-subject requests: one month from receipt as EU Regulation 1182/71 counts
(same date next month, clamped to the month's end, moved past weekends and Dutch public
holidays), the one extension to three months, and the holiday table itself."""

from __future__ import annotations

import datetime as dt

import pytest

from plusjeklas_tui.services import dutch_holidays as nl
from plusjeklas_tui.services.request_deadlines import (
    amsterdam_today,
    days_left,
    due_date,
    extended_due_date,
    local_date,
)

D = dt.date.fromisoformat


# --- the worked examples in DOMAIN.md, and month ends -----------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-01-31", "2026-03-02"),  # 28 Feb is a Saturday -> Monday 2 March
        ("2026-10-31", "2026-11-30"),  # 31 Nov does not exist -> 30 Nov (a Monday)
        ("2026-03-10", "2026-04-10"),  # an ordinary Friday
        ("2028-01-31", "2028-02-29"),  # leap year: clamped to the 29th (a Tuesday)
        ("2027-01-29", "2027-03-01"),  # 29 Feb 2027 does not exist -> 28 Feb is a Sunday
        ("2026-05-31", "2026-06-30"),  # 31 June does not exist
        ("2026-08-31", "2026-09-30"),
        ("2026-12-30", "2027-02-01"),  # 30 Jan 2027 is a Saturday -> Monday 1 Feb
    ],
)
def test_one_month_from_receipt(received: str, due: str) -> None:
    assert due_date(D(received)) == D(due)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-11-07", "2026-12-07"),  # Monday
        ("2026-11-12", "2026-12-14"),  # 12 Dec is a Saturday
        ("2026-11-13", "2026-12-14"),  # 13 Dec is a Sunday
        ("2026-11-25", "2026-12-28"),  # 25 and 26 Dec holidays, 27 a Sunday
        ("2026-11-26", "2026-12-28"),  # Boxing Day is a Saturday, then Sunday
    ],
)
def test_weekends_and_christmas_move_to_the_next_working_day(received: str, due: str) -> None:
    assert due_date(D(received)) == D(due)


def test_the_move_chains_through_several_days_off() -> None:
    # 2027: Christmas on Saturday, Boxing Day on Sunday -> Monday 27 (no substitute holiday)
    assert due_date(D("2027-11-25")) == D("2027-12-27")
    # 24 Dec is an ordinary working day
    assert due_date(D("2021-11-24")) == D("2021-12-24")


# --- every Dutch holiday ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "holiday", "due"),
    [
        ("2026-12-01", "2027-01-01", "2027-01-04"),  # New Year (Friday) -> Monday
        ("2026-03-06", "2026-04-06", "2026-04-07"),  # Easter Monday 2026
        ("2025-03-21", "2025-04-21", "2025-04-22"),  # Easter Monday 2025
        ("2026-03-27", "2026-04-27", "2026-04-28"),  # King's Day on a Monday
        ("2025-04-05", "2025-05-05", "2025-05-06"),  # Liberation Day on a Monday
        ("2026-04-05", "2026-05-05", "2026-05-06"),  # Liberation Day 2026 (Tuesday)
        ("2026-04-14", "2026-05-14", "2026-05-15"),  # Ascension Day 2026
        ("2026-04-25", "2026-05-25", "2026-05-26"),  # Whit Monday 2026
        ("2026-11-25", "2026-12-25", "2026-12-28"),  # Christmas (Friday) and Boxing Day
        ("2029-11-26", "2029-12-26", "2029-12-27"),  # Boxing Day on a Wednesday
    ],
)
def test_each_dutch_holiday_moves_the_deadline(received: str, holiday: str, due: str) -> None:
    assert nl.holiday(D(holiday)) is not None
    assert due_date(D(received)) == D(due)


def test_kings_day_on_a_sunday_is_the_saturday_before() -> None:
    # 27 April 2025 was a Sunday: King's Day moved to Saturday 26 April
    assert D("2025-04-27").weekday() == 6
    assert nl.kings_day(2025) == D("2025-04-26")
    assert nl.holiday(D("2025-04-26")) == nl.KINGS_DAY
    assert nl.holiday(D("2025-04-27")) is None  # a Sunday, not the holiday
    # 2031: 27 April is a Sunday too
    assert nl.kings_day(2031) == D("2031-04-26")
    # a request received 26 March 2025 is due 26 April (Saturday, King's Day), Sunday, -> 28th
    assert due_date(D("2025-03-26")) == D("2025-04-28")
    # on a weekday King's Day is the 27th
    assert nl.kings_day(2026) == D("2026-04-27")


@pytest.mark.parametrize(
    ("year", "easter_monday", "ascension", "whit_monday"),
    [
        (2024, "2024-04-01", "2024-05-09", "2024-05-20"),
        (2025, "2025-04-21", "2025-05-29", "2025-06-09"),
        (2026, "2026-04-06", "2026-05-14", "2026-05-25"),
        (2027, "2027-03-29", "2027-05-06", "2027-05-17"),
        (2038, "2038-04-26", "2038-06-03", "2038-06-14"),  # a late Easter
        (2008, "2008-03-24", "2008-05-01", "2008-05-12"),  # an early Easter
    ],
)
def test_easter_based_holidays(
    year: int, easter_monday: str, ascension: str, whit_monday: str
) -> None:
    table = nl.holidays(year)
    assert table[D(easter_monday)] == nl.EASTER_MONDAY
    assert table[D(ascension)] == nl.ASCENSION_DAY
    assert table[D(whit_monday)] == nl.WHIT_MONDAY


def test_liberation_day_is_every_year_and_good_friday_is_not_a_holiday() -> None:
    for year in range(2024, 2036):
        assert nl.holiday(dt.date(year, 5, 5)) == nl.LIBERATION_DAY
        assert len(nl.holidays(year)) == 8
    assert nl.is_working_day(D("2026-04-03"))  # Good Friday 2026
    assert sorted(nl.holidays(2026).values()) == sorted(nl.NAMES)


def test_liberation_day_then_ascension_day_move_the_deadline_twice() -> None:
    # 5 May 2027 is a Wednesday, a holiday every year (not only every fifth); Thursday 6 May
    # is Ascension Day, so the deadline is Friday 7 May
    assert nl.holiday(D("2027-05-06")) == nl.ASCENSION_DAY
    assert due_date(D("2027-04-05")) == D("2027-05-07")


# --- extension -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "extended"),
    [
        ("2026-01-15", "2026-04-15"),  # Wednesday
        ("2026-11-30", "2027-03-01"),  # 30 Feb does not exist -> 28 Feb 2027 is a Sunday
        ("2026-02-06", "2026-05-06"),  # an ordinary Wednesday
        ("2026-02-05", "2026-05-06"),  # Liberation Day -> next working day
        ("2026-01-27", "2026-04-28"),  # King's Day (Monday)
        ("2025-10-25", "2026-01-26"),  # 25 Jan 2026 is a Sunday
        ("2027-09-25", "2027-12-27"),  # Christmas on Saturday, Sunday -> Monday 27th
    ],
)
def test_extension_is_three_months_from_receipt_counted_the_same_way(
    received: str, extended: str
) -> None:
    assert extended_due_date(D(received)) == D(extended)
    assert extended_due_date(D(received)) > due_date(D(received))


# --- Amsterdam dates and days left -----------------------------------------------------------


def test_receipt_is_the_amsterdam_date() -> None:
    late_utc = dt.datetime(2026, 2, 28, 23, 30, tzinfo=dt.UTC)  # 00:30 on 1 March in Amsterdam
    assert local_date(late_utc) == D("2026-03-01")
    summer = dt.datetime(2026, 6, 30, 22, 15, tzinfo=dt.UTC)  # CEST: 00:15 on 1 July
    assert local_date(summer) == D("2026-07-01")
    assert amsterdam_today(late_utc) == D("2026-03-01")
    assert due_date(local_date(late_utc)) == D("2026-04-01")
    with pytest.raises(ValueError, match="time zone"):
        local_date(dt.datetime(2026, 3, 1, 12, 0))


def test_days_left_is_zero_on_the_day_and_negative_after() -> None:
    due = D("2026-03-02")
    assert days_left(due, D("2026-02-27")) == 3
    assert days_left(due, due) == 0
    assert days_left(due, D("2026-03-05")) == -3


def test_every_deadline_of_seven_years_is_the_first_working_day_from_the_month_date() -> None:
    """For each receipt date 2024-2030: the deadline is a working day, not before the clamped
    date a month on, and every day between the two is a weekend day or a holiday."""
    from plusjeklas_tui.services.deadlines import add_months

    day = D("2024-01-01")
    while day.year <= 2030:
        due = due_date(day)
        target = add_months(day, 1)
        assert nl.is_working_day(due) and due >= target > day
        skipped = [target + dt.timedelta(days=n) for n in range((due - target).days)]
        assert all(d.weekday() >= 5 or nl.holiday(d) for d in skipped)
        assert len(skipped) <= 4  # at most a long weekend plus a holiday or two
        day += dt.timedelta(days=1)
