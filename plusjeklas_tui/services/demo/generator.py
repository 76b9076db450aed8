"""The pure generator: from ``(schools, seed, today)`` the same plain records every time."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

from plusjeklas_tui.models import ConsentAction, SubscriptionStatus
from plusjeklas_tui.services.demo.records import (
    DemoAdministrator,
    DemoBatch,
    DemoConsent,
    DemoSchool,
    DemoSubscription,
)
from plusjeklas_tui.services.demo.values import (
    demo_brins,
    nl_iban,
    phone_prefixes,
    school_name,
    slug,
)
from plusjeklas_tui.services.demo.words import (
    AREAS,
    BANKS,
    CONTACT_BOXES,
    CORES,
    DEMO_STAFF_TAGS,
    NOTES,
    PATRONS,
    PLANS,
    POSTCODE_LETTERS,
    PREFIX_CUMULATIVE,
    PREFIX_NAMES,
    PURPOSE_GRANT_RATE,
    STAFF_EVIDENCE,
    TITLES,
    TRIAL_PLAN,
    WEB_FORM_EVIDENCE,
    load_pools,
)

DEFAULT_SEED = 1
MAX_BATCH_SCHOOLS = 5_000

T = TypeVar("T")

_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)  # midnight UTC of day ordinal 1
_GRANTED = ConsentAction.GRANTED.value
_WITHDRAWN = ConsentAction.WITHDRAWN.value


class _Generator:
    """Draws the records from one seeded source, a column at a time.

    Drawing a whole column per call (``rng.choices(pool, k=n)``) instead of a value per call
    keeps the Python overhead per school small enough for 100,000 schools in seconds. Dates
    are day ordinals until a record is built.
    """

    def __init__(self, schools: int, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.today = today.toordinal()
        self.pools = load_pools(seed)
        self.brins = demo_brins(schools, self.rng)
        self.fixed, self.mobile, self.boards = phone_prefixes()
        self.domains: dict[str, int] = {}
        self.next_administrator = 0
        self._dates: dict[int, dt.date] = {}

    # column draws

    def pick(self, items: Sequence[T], count: int) -> list[T]:
        return self.rng.choices(items, k=count)

    def uniform(self, count: int) -> list[float]:
        draw = self.rng.random
        return [draw() for _ in range(count)]

    def ints(self, low: int, high: int, count: int) -> list[int]:
        draw, span = self.rng.random, high - low + 1
        return [low + int(draw() * span) for _ in range(count)]

    def numbers(self, starts: Sequence[str], count: int) -> list[str]:
        """E.164 numbers: a valid start completed to nine national digits."""
        draw = self.rng.random
        result = []
        for start in self.pick(starts, count):
            width = 9 - len(start)
            result.append(f"+31{start}{int(draw() * 10**width):0{width}d}")
        return result

    def date(self, ordinal: int) -> dt.date:
        found = self._dates.get(ordinal)
        if found is None:
            found = self._dates[ordinal] = dt.date.fromordinal(ordinal)
        return found

    # tables

    def schools(self, first: int, count: int) -> list[DemoSchool]:
        pools, uniform = self.pools, self.uniform
        cities = self.pick(pools.cities, count)
        names = list(
            map(
                school_name,
                uniform(count),
                self.rng.choices(PREFIX_NAMES, cum_weights=PREFIX_CUMULATIVE, k=count),
                self.pick(CORES, count),
                [self.rng.choice(AREAS) if r < 0.08 else None for r in uniform(count)],
                cities,
                self.pick(PATRONS, count),
                self.pick(TITLES, count),
                self.pick(pools.last_names, count),
                self.pick(pools.streets, count),
            )
        )
        streets = [
            f"{street} {number}{'abc'[int(r * 60)] if r < 0.05 else ''}"
            for street, number, r in zip(
                self.pick(pools.streets, count), self.ints(1, 250, count), uniform(count),
                strict=True,
            )
        ]  # fmt: skip
        postcodes = [
            f"{pools.city_prefix[city] * 100 + number} {letters}"
            for city, number, letters in zip(
                cities, self.ints(0, 99, count), self.pick(POSTCODE_LETTERS, count), strict=True
            )
        ]
        landlines, boards = self.numbers(self.fixed, count), self.numbers(self.boards, count)
        phones = [
            b if r < 0.06 else f for f, b, r in zip(landlines, boards, uniform(count), strict=True)
        ]
        accounts = self.ints(0, 10**10 - 1, count)
        ibans = [
            nl_iban(bank, f"{account:010d}")
            for bank, account in zip(self.pick(BANKS, count), accounts, strict=True)
        ]
        emails = [
            f"{box}@{self.domain(name, city)}"
            for box, name, city in zip(self.pick(CONTACT_BOXES, count), names, cities, strict=True)
        ]
        notes = [
            n if r < 0.1 else None
            for n, r in zip(self.pick(NOTES, count), uniform(count), strict=True)
        ]
        return list(
            map(
                DemoSchool, names, streets, postcodes, cities, self.brins[first : first + count],
                phones, emails, ibans, notes,
            )
        )  # fmt: skip

    def domain(self, name: str, city: str) -> str:
        """A web domain per school, numbered when the same name and town occur again."""
        core = slug(name.split(" ", 1)[-1]) or slug(name) or "school"
        base = f"{core[:36]}-{slug(city)[:20] or 'nl'}"  # a label has at most 63 characters
        seen = self.domains.get(base, 0)
        self.domains[base] = seen + 1
        return f"{base}{seen + 1 if seen else ''}.nl"

    def administrators(self, first: int, schools: list[DemoSchool]) -> list[DemoAdministrator]:
        """One to three people per school; the earlier ones may have left, the last is current."""
        today, draw = self.today, self.rng.random
        counts = self.ints(1, 3, len(schools))
        school_of = [first + i for i, n in enumerate(counts) for _ in range(n)]
        is_last = [position == n - 1 for n in counts for position in range(n)]
        total = len(school_of)
        firsts = self.pick(self.pools.first_names, total)
        lasts = self.pick(self.pools.last_names, total)
        started = self.ints(today - 6 * 365, today - 30, total)
        mobiles, landlines = self.numbers(self.mobile, total), self.numbers(self.fixed, total)
        extras = self.numbers(self.mobile, total)
        used: set[str] = set()
        people = []
        for index in range(total):
            school = schools[school_of[index] - first]
            given, family = firsts[index], lasts[index]
            local = f"{slug(given)[:1] if draw() < 0.4 else slug(given)}.{slug(family)}"
            local = local.strip(".") or "beheer"
            address = f"{local}@{school.email.partition('@')[2]}"
            n = 1
            while address in used:
                n += 1
                address = f"{local}{n}@{school.email.partition('@')[2]}"
            used.add(address)
            phones: tuple[str, ...] = (mobiles[index] if draw() < 0.85 else landlines[index],)
            if draw() < 0.3:
                extra = school.phone if draw() < 0.5 else extras[index]
                if extra != phones[0]:
                    phones = (phones[0], extra)
            start = started[index]
            left_on = None
            if not is_last[index] and draw() < 0.3:
                left_on = self.date(start + int(draw() * (today - start)))
            people.append(
                DemoAdministrator(
                    school_of[index], f"{given} {family}", address, phones, self.date(start),
                    left_on,
                )
            )  # fmt: skip
        return people

    def subscriptions(self, first: int, count: int) -> list[DemoSubscription]:
        """Per school the current (or last) subscription in one of the four states, sometimes
        after an older one that ended; end dates run from three years ago into next year."""
        today, draw, date = self.today, self.rng.random, self.date
        plans = self.pick(PLANS, 2 * count)
        result = []
        for index in range(count):
            roll = draw()
            end: int | None
            plan = plans[2 * index]
            if roll < 0.10:
                start = today - int(draw() * 28)
                end, status, plan = start + 30, SubscriptionStatus.TRIAL, TRIAL_PLAN
            elif roll < 0.55:
                start = today - 30 - int(draw() * 1_470)
                end = today + 30 + int(draw() * 335) if draw() < 0.2 else None
                status = SubscriptionStatus.ACTIVE
            elif roll < 0.70:
                start = today - 200 - int(draw() * 1_300)
                end, status = today + 1 + int(draw() * 330), SubscriptionStatus.CANCELLED
            else:
                end = today - 1 - int(draw() * 3 * 365)
                start, status = end - 180 - int(draw() * 1_280), SubscriptionStatus.ENDED
            school = first + index
            if draw() < 0.3:
                earlier_end = start - 1 - int(draw() * 90)
                earlier_start = earlier_end - 180 - int(draw() * 550)
                earlier_plan = TRIAL_PLAN if draw() < 0.3 else plans[2 * index + 1]
                result.append(
                    DemoSubscription(
                        school, earlier_plan, date(earlier_start), date(earlier_end),
                        SubscriptionStatus.ENDED.value,
                    )
                )  # fmt: skip
            result.append(
                DemoSubscription(
                    school, plan, date(start), None if end is None else date(end), status.value
                )
            )
        return result

    def consents(self, first: int, people: list[DemoAdministrator]) -> list[DemoConsent]:
        """Grants per purpose, some withdrawn later; every event lies before today."""
        today, draw, date = self.today, self.rng.random, self.date
        staff_tags = DEMO_STAFF_TAGS
        events = []
        for index, person in enumerate(people, start=first):
            started = person.started_on.toordinal()
            until = person.left_on.toordinal() if person.left_on else today - 1
            for purpose, rate in PURPOSE_GRANT_RATE.items():
                if draw() >= rate:
                    continue
                day = started + int(draw() * (until - started + 1))
                roll = draw()
                if roll < 0.6:
                    source, evidence = "web-form", WEB_FORM_EVIDENCE[purpose][int(draw() * 3)]
                elif roll < 0.85:
                    source, evidence = "import", f"import of the customer file {date(day).year}"
                else:
                    source = staff_tags[int(draw() * len(staff_tags))]
                    evidence = STAFF_EVIDENCE[int(draw() * len(STAFF_EVIDENCE))]
                granted = _EPOCH + dt.timedelta(days=day - 1, seconds=25_200 + int(draw() * 54_000))
                events.append(DemoConsent(index, purpose, _GRANTED, granted, source, evidence))
                if draw() >= 0.2:
                    continue
                # Some time after the grant, and still before today (grants end at 22:00).
                later = dt.timedelta(seconds=3_600 + int(draw() * max(today - 1 - day, 0) * 86_400))
                roll = draw()
                if purpose == "newsletter" and roll < 0.4:
                    source, evidence = "provider:mailchimp", "unsubscribed at Mailchimp"
                elif roll < 0.75:
                    source, evidence = "web-form", "preferences page"
                else:
                    source = staff_tags[int(draw() * len(staff_tags))]
                    evidence = "asked by e-mail to stop"
                events.append(
                    DemoConsent(index, purpose, _WITHDRAWN, granted + later, source, evidence)
                )
        return events

    def batch(self, first: int, count: int) -> DemoBatch:
        schools = self.schools(first, count)
        subscriptions = self.subscriptions(first, count)
        first_administrator = self.next_administrator
        people = self.administrators(first, schools)
        consents = self.consents(first_administrator, people)
        self.next_administrator += len(people)
        return DemoBatch(first, first_administrator, schools, people, subscriptions, consents)


def batch_size(schools: int) -> int:
    """Schools per batch: about ten batches, so the writer and the generator overlap, but
    at most :data:`MAX_BATCH_SCHOOLS` (memory) and at least 500 (per-batch overhead)."""
    return max(500, min(MAX_BATCH_SCHOOLS, -(-schools // 10)))


def iter_demo_batches(
    schools: int,
    seed: int = DEFAULT_SEED,
    *,
    today: dt.date | None = None,
    batch_schools: int | None = None,
) -> Iterator[DemoBatch]:
    """The plain demo records, *batch_schools* schools at a time.

    Deterministic: the same ``schools``, ``seed``, ``today`` (default: the local date) and
    ``batch_schools`` (default: :func:`batch_size` of ``schools``) give the same records.
    """
    if schools < 0:
        raise ValueError("the number of schools cannot be negative")
    size = batch_schools or batch_size(schools)
    generator = _Generator(schools, seed, today or dt.date.today())
    for first in range(0, schools, size):
        yield generator.batch(first, min(size, schools - first))
