"""When a data-subject request must be answered (GDPR art. 12(3)), counted as EU Regulation
1182/71 art. 3 counts periods.

One month from receipt: the same date next month; if that date does not exist, the last day of
that month; if the result is a Saturday, Sunday or Dutch public holiday, the next working day.
The extension (once) runs to three months from receipt, counted the same way. Everything is on
the Europe/Amsterdam calendar date: a request e-mailed at 00:30 on 1 March Amsterdam time
(23:30 UTC on 28 February) was received on 1 March.

Pure functions, no database: the screens, the CLI and the tests share them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from plusjeklas_tui.services.deadlines import add_months
from plusjeklas_tui.services.dutch_holidays import next_working_day

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FIRST_PERIOD_MONTHS = 1
EXTENDED_PERIOD_MONTHS = 3


def local_date(moment: dt.datetime) -> dt.date:
    """The Amsterdam calendar date of an aware moment (naive moments are refused)."""
    if moment.tzinfo is None:
        raise ValueError("a moment without a time zone has no Amsterdam date")
    return moment.astimezone(AMSTERDAM).date()


def amsterdam_today(now: dt.datetime | None = None) -> dt.date:
    """Today in Amsterdam (or the Amsterdam date of *now*)."""
    return local_date(now or dt.datetime.now(dt.UTC))


def period_end(received: dt.date, months: int) -> dt.date:
    """*months* calendar months after *received*, clamped, moved to a working day."""
    return next_working_day(add_months(received, months))


def due_date(received: dt.date) -> dt.date:
    """The first deadline: one month from receipt."""
    return period_end(received, FIRST_PERIOD_MONTHS)


def extended_due_date(received: dt.date) -> dt.date:
    """The deadline after the one extension art. 12(3) allows: three months from receipt."""
    return period_end(received, EXTENDED_PERIOD_MONTHS)


def days_left(due: dt.date, today: dt.date) -> int:
    """Calendar days until *due*: 0 on the day itself, negative once overdue."""
    return (due - today).days
