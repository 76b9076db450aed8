"""The one table of Dutch public holidays that deadlines skip (DOMAIN.md, 'Deadlines').

The list is the rule, not a library's: New Year's Day, Easter Monday, King's Day (27 April, or
26 April when the 27th is a Sunday), Liberation Day (5 May, every year), Ascension Day, Whit
Monday, Christmas Day and Boxing Day. Good Friday is not on it. Easter comes from
``dateutil.easter`` (Western, Gregorian), which python-dateutil has computed for decades.
"""

from __future__ import annotations

import datetime as dt
import functools

from dateutil.easter import EASTER_WESTERN, easter

NEW_YEAR = "new_year"
EASTER_MONDAY = "easter_monday"
KINGS_DAY = "kings_day"
LIBERATION_DAY = "liberation_day"
ASCENSION_DAY = "ascension_day"
WHIT_MONDAY = "whit_monday"
CHRISTMAS = "christmas"
BOXING_DAY = "boxing_day"

NAMES: dict[str, tuple[str, str]] = {
    NEW_YEAR: ("Nieuwjaarsdag", "New Year's Day"),
    EASTER_MONDAY: ("Tweede paasdag", "Easter Monday"),
    KINGS_DAY: ("Koningsdag", "King's Day"),
    LIBERATION_DAY: ("Bevrijdingsdag", "Liberation Day"),
    ASCENSION_DAY: ("Hemelvaartsdag", "Ascension Day"),
    WHIT_MONDAY: ("Tweede pinksterdag", "Whit Monday"),
    CHRISTMAS: ("Eerste kerstdag", "Christmas Day"),
    BOXING_DAY: ("Tweede kerstdag", "Boxing Day"),
}
"""Each holiday's name in Dutch and English."""


def kings_day(year: int) -> dt.date:
    """27 April, or the Saturday before (26 April) when the 27th falls on a Sunday."""
    day = dt.date(year, 4, 27)
    return day - dt.timedelta(days=1) if day.weekday() == 6 else day


@functools.lru_cache(maxsize=256)
def holidays(year: int) -> dict[dt.date, str]:
    """The Dutch public holidays of *year*: date -> holiday code (see :data:`NAMES`)."""
    sunday = easter(year, EASTER_WESTERN)
    return {
        dt.date(year, 1, 1): NEW_YEAR,
        sunday + dt.timedelta(days=1): EASTER_MONDAY,
        kings_day(year): KINGS_DAY,
        dt.date(year, 5, 5): LIBERATION_DAY,
        sunday + dt.timedelta(days=39): ASCENSION_DAY,
        sunday + dt.timedelta(days=50): WHIT_MONDAY,
        dt.date(year, 12, 25): CHRISTMAS,
        dt.date(year, 12, 26): BOXING_DAY,
    }


def holiday(day: dt.date) -> str | None:
    """The code of the holiday on *day*, or None."""
    return holidays(day.year).get(day)


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday and not a Dutch public holiday."""
    return day.weekday() < 5 and holiday(day) is None


def next_working_day(day: dt.date) -> dt.date:
    """*day* itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day
