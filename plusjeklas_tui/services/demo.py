"""Demo data: a believable database of Dutch primary schools, fast and reproducible.

Two layers, so each can be tested on its own:

* :func:`iter_demo_batches` is pure: from ``(schools, seed, today)`` it yields plain records
  (schools, administrators, subscriptions, consent events). The same arguments give the same
  records every time; dates are relative to ``today`` so retention clocks look realistic.
* :func:`generate` writes them into a migrated, empty database in one transaction (all or
  nothing), a batch of a few thousand schools per driver-level ``executemany``, with personal
  fields encrypted by the keyring's key and blind indexes computed here. Ids are assigned
  here too, so rows can refer to each other without a round trip; on PostgreSQL the id
  sequences are moved past them afterwards.

:func:`prepare_demo` is what ``plusjeklas demo`` runs: a demo folder with its own config and
key file, migrated, generated once and reused after.

How 100,000 schools (about 750,000 rows, a million encrypted values) fit in the 30 seconds
the issue allows on two slow cores, measured: ORM objects and even Core ``insert()`` spend
most of their time in per-row parameter processing, so rows are plain tuples in column order
(:data:`INSERT_COLUMNS`); Faker is called only to fill pools of streets, cities and names,
which a seeded :class:`random.Random` combines a column at a time; the garbage collector is
paused; and generation plus encryption run in a forked worker while this process writes.
Every value is built in its normal form (postcode ``1234 AB``, E.164 phones, compact IBAN),
so it passes the validation module unchanged; the tests check that.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import multiprocessing
import os
import queue
import random
import re
import string
import sys
import traceback
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import phonenumbers
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plusjeklas_tui import db
from plusjeklas_tui.config import Settings, load_file, user_data_dir
from plusjeklas_tui.crypto import (
    NONCE_BYTES,
    TOKEN_VERSION,
    FieldKey,
    Keyring,
    load_key_file,
    write_key_file,
)
from plusjeklas_tui.errors import ConfigError, DatabaseNotReady, KeyProblem, PlusjeklasError
from plusjeklas_tui.models import (
    Administrator,
    ConsentAction,
    ConsentEvent,
    Organisation,
    Subscription,
    SubscriptionStatus,
    index_value,
)
from plusjeklas_tui.services import audit
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import StaffMember, identify, os_account

DEFAULT_SCHOOLS = 200
DEFAULT_SEED = 1
MAX_BATCH_SCHOOLS = 5_000
PARALLEL_FROM_SCHOOLS = 5_000
BULK_CACHE_KIB = 256 * 1024
DEFAULT_CACHE_KIB = 2_000  # SQLite's default page cache
DEMO_DB_NAME = "plusjeklas-demo.db"
CONFIG_NAME = "plusjeklas.toml"
KEY_NAME = "plusjeklas.key"
CONFIG_MARKER = "# Written by `plusjeklas demo`"
DEMO_VIEWER = "demo-viewer"
DEMO_EDITOR = "demo-editor"

T = TypeVar("T")
ProgressCallback = Callable[[int, int], None]
"""Called with (schools written so far, schools in total) after each batch."""


# --- plain records -----------------------------------------------------------------------------


class DemoSchool(NamedTuple):
    name: str
    street: str
    postcode: str
    city: str
    brin: str
    phone: str
    email: str
    iban: str
    notes: str | None


class DemoAdministrator(NamedTuple):
    school: int
    """Index of the school (0-based, over the whole run)."""
    name: str
    email: str
    phones: tuple[str, ...]
    started_on: dt.date
    left_on: dt.date | None


class DemoSubscription(NamedTuple):
    school: int
    plan: str
    start_date: dt.date
    end_date: dt.date | None
    status: str


class DemoConsent(NamedTuple):
    administrator: int
    """Index of the administrator (0-based, over the whole run)."""
    purpose: str
    action: str
    occurred_at: dt.datetime
    source: str
    evidence: str


@dataclass
class DemoBatch:
    """The records of a run of consecutive schools; indexes are global over the whole run."""

    first_school: int
    first_administrator: int
    schools: list[DemoSchool]
    administrators: list[DemoAdministrator]
    subscriptions: list[DemoSubscription]
    consents: list[DemoConsent]


@dataclass(frozen=True)
class DemoCounts:
    schools: int
    administrators: int
    subscriptions: int
    consent_events: int


# --- word lists --------------------------------------------------------------------------------


def _split(text: str, separator: str | None = None) -> tuple[str, ...]:
    """Word lists are kept as text blocks: ``"a | b"`` -> ``("a", "b")``."""
    return tuple(part.strip() for part in text.split(separator) if part.strip())


# (prefix, weight): how Dutch primary schools announce their denomination or pedagogy.
_PREFIXES = (
    ("OBS", 14),
    ("CBS", 12),
    ("Basisschool", 14),
    ("RKBS", 6),
    ("PCBS", 4),
    ("IKC", 6),
    ("Kindcentrum", 4),
    ("Openbare Basisschool", 4),
    ("Christelijke Basisschool", 3),
    ("Katholieke Basisschool", 3),
    ("Montessorischool", 3),
    ("Daltonschool", 3),
    ("Jenaplanschool", 2),
    ("Vrije School", 1),
    ("SBO", 1),
)
_CORES = _split(
    """
    De Regenboog | Het Kompas | De Wegwijzer | De Klimop | De Fontein | Het Anker |
    De Zonnewijzer | De Vlinder | De Tweemaster | De Springplank | De Schakel | Het Palet |
    De Horizon | De Kameleon | De Wereldwijzer | De Ark | De Bron | De Sleutel | De Piramide |
    De Toermalijn | De Zonnebloem | De Meander | De Boomgaard | De Eekhoorn | Het Uilennest |
    De Windroos | De Vuurtoren | De Morgenster | De Triangel | De Driemaster |
    De Kleine Prins | De Vlieger | De Hoeksteen | Het Baken | Het Mozaïek | Het Spectrum |
    Het Klaverblad | Het Vogelnest | Het Kinderrijk | Het Startpunt | De Ontdekking |
    De Notenkraker | De Kinderboom | De Zeester | De Lindeboom | De Wilgenhoek | De Petteflet |
    De Octopus | De Parel | De Duinroos | De Bongerd | De Wingerd | De Sterrenwacht |
    Het Talent | De Kiem | De Wereld | De Pionier | De Zevensprong | De Tandem | De Brug |
    Het Kristal | De Vlonder | De Akker
    """,
    "|",
)
_PATRONS = _split(
    """
    Koningin Julianaschool | Koningin Beatrixschool | Prins Clausschool |
    Willem de Zwijgerschool | Johan Frisoschool | Prinses Margrietschool |
    Koning Willem-Alexanderschool | Sint Jozefschool | Sint Franciscusschool |
    Maria Montessorischool | Anne Frankschool | Annie M.G. Schmidtschool
    """,
    "|",
)
_TITLES = ("Dr.", "Mr.", "Meester", "Juf", "Ds.")
_AREAS = ("Noord", "Zuid", "Oost", "West", "Centrum")
_NOTES = (
    "Lessen bij voorkeur op woensdagochtend.",
    "Factuur graag naar het administratiekantoor van het schoolbestuur.",
    "Gymzaal is op dinsdag niet beschikbaar.",
    "Contact loopt via de directie; niet in de schoolvakanties bellen.",
    "Interesse in een extra workshop voor groep 7 en 8.",
    "Nieuw gebouw vanaf volgend schooljaar.",
)
_CONTACT_BOXES = ("info", "info", "info", "administratie", "directie", "secretariaat")
_BANKS = ("ABNA", "INGB", "RABO", "SNSB", "ASNB", "TRIO", "KNAB", "BUNQ", "RBRB")
_PLANS = ("Plusjeklas Basis", "Plusjeklas Plus", "Plusjeklas Compleet")
_TRIAL_PLAN = "Plusjeklas Proef"
# Area codes of Dutch fixed lines (two- and three-digit); 085/088 are common for school boards.
_AREA_CODES = _split(
    """
    10 13 15 20 23 24 26 30 33 35 36 38 40 43 45 46 50 53 55 58 70 71 72 73 74 75 76 77 78 79
    111 113 114 115 117 118 161 162 164 165 166 167 168 172 174 180 181 182 183 184 186 187 222
    223 224 226 227 228 229 251 252 255 294 297 299 313 314 315 316 317 318 320 321 341 342 343
    344 345 346 347 348 411 412 413 416 418 475 478 481 485 486 487 488 492 493 495 497 499 511
    512 513 514 515 516 517 518 519 521 522 523 524 525 527 528 529 541 543 544 545 546 547 548
    561 562 566 570 571 572 573 575 577 578
    """
)
_MOBILE_PREFIXES = ("61", "62", "63", "64", "65", "68")
_PURPOSE_GRANT_RATE = {"newsletter": 0.55, "analytics": 0.3, "feedback": 0.4}
_DEMO_STAFF_TAGS = ("staff:sascha", f"staff:{DEMO_EDITOR}")
# Postcode letters in use; SA, SD and SS are never issued (stdnum rejects them).
_POSTCODE_LETTERS = tuple(
    a + b
    for a in "ABCDEGHJKLMNPRSTVWXZ"
    for b in "ABCDEGHJKLMNPRSTVWXZ"
    if a + b not in {"SA", "SD", "SS"}
)
BRIN_BASE_CODES = 100 * 26 * 26
"""Distinct four-character BRINs (two digits, two letters)."""
BRIN_CAPACITY = BRIN_BASE_CODES * 101
"""Four-character codes, then each again with a branch suffix 00-99."""


# --- single values -----------------------------------------------------------------------------


def _brin4(number: int) -> str:
    digits, letters = divmod(number, 26 * 26)
    first, second = divmod(letters, 26)
    return f"{digits:02d}{string.ascii_uppercase[first]}{string.ascii_uppercase[second]}"


def demo_brins(count: int, rng: random.Random) -> list[str]:
    """*count* distinct valid BRINs in random order.

    Four-character codes first (67,600 of them); beyond that the same codes again with a
    two-digit branch suffix, which keeps every code distinct up to :data:`BRIN_CAPACITY`.
    """
    if not 0 <= count <= BRIN_CAPACITY:
        raise ValueError(f"can generate at most {BRIN_CAPACITY} BRINs, asked for {count}")
    base = [_brin4(n) for n in rng.sample(range(BRIN_BASE_CODES), min(count, BRIN_BASE_CODES))]
    extra = count - len(base)
    branches = [f"{base[j % BRIN_BASE_CODES]}{j // BRIN_BASE_CODES:02d}" for j in range(extra)]
    return base + branches


@cache
def _as_digits(letters: str) -> str:
    return "".join(str(int(ch, 36)) for ch in letters)  # A=10 ... Z=35


def nl_iban(bank: str, account: str) -> str:
    """A Dutch IBAN for a four-letter bank code and ten-digit account, with mod-97 check digits."""
    # ISO 13616: move "NL00" to the end, letters to numbers, check digits = 98 - n % 97.
    numeric = f"{_as_digits(bank)}{account}{_as_digits('NL')}00"
    return f"NL{98 - int(numeric) % 97:02d}{bank}{account}"


@cache
def _phone_prefixes() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Valid starts of Dutch numbers: fixed lines, mobiles, and 085/088 (school boards).

    Each start (area code plus the first subscriber digit) is checked against phonenumbers'
    own patterns for every completion with zeros and with nines, so numbers built by
    appending any digits are valid without parsing each one (the tests still parse them all).
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region("NL")
    assert meta is not None and meta.fixed_line and meta.mobile and meta.uan and meta.voip

    def valid(starts: list[str], *patterns: str | None) -> tuple[str, ...]:
        compiled = [re.compile(p) for p in patterns if p]
        return tuple(
            start
            for start in starts
            if all(any(p.fullmatch(start.ljust(9, fill)) for p in compiled) for fill in "09")
        )

    fixed = valid(
        [area + digit for area in _AREA_CODES for digit in "23456789"],
        meta.fixed_line.national_number_pattern,
    )
    mobile = valid(list(_MOBILE_PREFIXES), meta.mobile.national_number_pattern)
    boards = valid(
        [area + digit for area in ("85", "88") for digit in "23456789"],
        meta.uan.national_number_pattern,
        meta.voip.national_number_pattern,
    )
    return fixed, mobile, boards


@cache
def _slug(value: str) -> str:
    """Lower-case ASCII letters and digits only: 'Het Mozaïek' -> 'hetmozaiek'."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def _school_name(
    roll: float, prefix: str, core: str, area: str | None, city: str, patron: str, title: str,
    last_name: str, street: str,
) -> str:  # fmt: skip
    if roll < 0.62:
        return f"{prefix} {core} {area}" if area else f"{prefix} {core}"
    if roll < 0.77:
        return f"{prefix} {city[:1].upper()}{city[1:]}"
    if roll < 0.85:
        return patron
    if roll < 0.93:
        return f"{title} {last_name[:1].upper()}{last_name[1:]}school"
    return f"{prefix} {street}"


# --- pools -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    streets: list[str]
    cities: list[str]
    city_prefix: dict[str, int]
    first_names: list[str]
    last_names: list[str]


def _pools(seed: int) -> _Pools:
    """Faker's Dutch streets, cities and names, drawn once (Faker is slow per call)."""
    from faker import Faker  # imported here: ~0.1 s that only the demo needs

    fake = Faker("nl_NL")
    fake.seed_instance(seed)
    streets = sorted({fake.street_name() for _ in range(3_000)})
    cities = sorted({fake.city() for _ in range(1_500)})
    first_names = sorted({fake.first_name() for _ in range(1_500)})
    last_names = sorted({fake.last_name() for _ in range(3_000)})
    rng = random.Random(f"plusjeklas-demo-postcodes-{seed}")
    # Each town gets its own postcode area, so schools in one town share the first digits.
    city_prefix = {city: rng.randint(10, 99) for city in cities}
    return _Pools(streets, cities, city_prefix, first_names, last_names)


# --- the pure generator ------------------------------------------------------------------------

_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)  # midnight UTC of day ordinal 1
_GRANTED = ConsentAction.GRANTED.value
_WITHDRAWN = ConsentAction.WITHDRAWN.value
_PREFIX_NAMES = tuple(name for name, _ in _PREFIXES)
_PREFIX_CUMULATIVE = tuple(accumulate(weight for _, weight in _PREFIXES))
_WEB_FORM_EVIDENCE = {
    purpose: tuple(
        f"web form v{version}" + (", double opt-in confirmed" if purpose == "newsletter" else "")
        for version in (1, 2, 3)
    )
    for purpose in _PURPOSE_GRANT_RATE
}
_STAFF_EVIDENCE = ("asked by e-mail", "asked by phone", "workshop sign-up")


class _Generator:
    """Draws the records from one seeded source, a column at a time.

    Drawing a whole column per call (``rng.choices(pool, k=n)``) instead of a value per call
    keeps the Python overhead per school small enough for 100,000 schools in seconds. Dates
    are day ordinals until a record is built.
    """

    def __init__(self, schools: int, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.today = today.toordinal()
        self.pools = _pools(seed)
        self.brins = demo_brins(schools, self.rng)
        self.fixed, self.mobile, self.boards = _phone_prefixes()
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
                _school_name,
                uniform(count),
                self.rng.choices(_PREFIX_NAMES, cum_weights=_PREFIX_CUMULATIVE, k=count),
                self.pick(_CORES, count),
                [self.rng.choice(_AREAS) if r < 0.08 else None for r in uniform(count)],
                cities,
                self.pick(_PATRONS, count),
                self.pick(_TITLES, count),
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
                cities, self.ints(0, 99, count), self.pick(_POSTCODE_LETTERS, count), strict=True
            )
        ]
        landlines, boards = self.numbers(self.fixed, count), self.numbers(self.boards, count)
        phones = [
            b if r < 0.06 else f for f, b, r in zip(landlines, boards, uniform(count), strict=True)
        ]
        accounts = self.ints(0, 10**10 - 1, count)
        ibans = [
            nl_iban(bank, f"{account:010d}")
            for bank, account in zip(self.pick(_BANKS, count), accounts, strict=True)
        ]
        emails = [
            f"{box}@{self.domain(name, city)}"
            for box, name, city in zip(self.pick(_CONTACT_BOXES, count), names, cities, strict=True)
        ]
        notes = [
            n if r < 0.1 else None
            for n, r in zip(self.pick(_NOTES, count), uniform(count), strict=True)
        ]
        return list(
            map(
                DemoSchool, names, streets, postcodes, cities, self.brins[first : first + count],
                phones, emails, ibans, notes,
            )
        )  # fmt: skip

    def domain(self, name: str, city: str) -> str:
        """A web domain per school, numbered when the same name and town occur again."""
        core = _slug(name.split(" ", 1)[-1]) or _slug(name) or "school"
        base = f"{core[:36]}-{_slug(city)[:20] or 'nl'}"  # a label has at most 63 characters
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
            local = f"{_slug(given)[:1] if draw() < 0.4 else _slug(given)}.{_slug(family)}"
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
        plans = self.pick(_PLANS, 2 * count)
        result = []
        for index in range(count):
            roll = draw()
            end: int | None
            plan = plans[2 * index]
            if roll < 0.10:
                start = today - int(draw() * 28)
                end, status, plan = start + 30, SubscriptionStatus.TRIAL, _TRIAL_PLAN
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
                earlier_plan = _TRIAL_PLAN if draw() < 0.3 else plans[2 * index + 1]
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
        staff_tags = _DEMO_STAFF_TAGS
        events = []
        for index, person in enumerate(people, start=first):
            started = person.started_on.toordinal()
            until = person.left_on.toordinal() if person.left_on else today - 1
            for purpose, rate in _PURPOSE_GRANT_RATE.items():
                if draw() >= rate:
                    continue
                day = started + int(draw() * (until - started + 1))
                roll = draw()
                if roll < 0.6:
                    source, evidence = "web-form", _WEB_FORM_EVIDENCE[purpose][int(draw() * 3)]
                elif roll < 0.85:
                    source, evidence = "import", f"import of the customer file {date(day).year}"
                else:
                    source = staff_tags[int(draw() * len(staff_tags))]
                    evidence = _STAFF_EVIDENCE[int(draw() * len(_STAFF_EVIDENCE))]
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


# --- writing -----------------------------------------------------------------------------------

# Column order of the rows the writer builds. A test checks these against the models, so a
# migration that adds a column cannot silently leave the demo behind.
INSERT_COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": (
        "id", "name", "street", "postcode", "city", "brin", "phone", "email", "email_index",
        "iban", "notes", "created_at", "updated_at", "version",
    ),
    "administrator": (
        "id", "organisation_id", "name", "email", "email_index", "phones", "started_on",
        "left_on", "created_at", "updated_at", "version",
    ),
    "subscription": (
        "id", "organisation_id", "plan", "start_date", "end_date", "status", "created_at",
        "updated_at",
    ),
    "consent_event": (
        "id", "administrator_id", "purpose", "action", "occurred_at", "source", "evidence",
        "recorded_at",
    ),
}  # fmt: skip


class _Codec:
    """Turns dates and UTC times into what the driver stores, as SQLAlchemy's types would.

    psycopg takes ``date`` and aware ``datetime`` as they are. On SQLite, SQLAlchemy stores
    ``Date`` as ``YYYY-MM-DD`` and :class:`~plusjeklas_tui.sqltypes.UTCDateTime` as naive UTC
    text ``YYYY-MM-DD HH:MM:SS.ffffff``; the tests compare this codec with those processors.
    """

    def __init__(self, dialect_name: str) -> None:
        self.sqlite = dialect_name == "sqlite"
        self._dates: dict[dt.date, str] = {}

    def date(self, value: dt.date | None) -> Any:
        if value is None or not self.sqlite:
            return value
        text_value = self._dates.get(value)
        if text_value is None:
            text_value = self._dates[value] = value.isoformat()
        return text_value

    def moment(self, value: dt.datetime) -> Any:
        if not self.sqlite:
            return value
        if value.tzinfo is dt.UTC and not value.microsecond:
            return f"{str(value)[:19]}.000000"  # the generator's case, 3x faster than below
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass
class _Ids:
    """The next free id of each table; demo rows get consecutive ids from here."""

    organisation: int
    administrator: int
    subscription: int
    consent_event: int


def _next_ids(conn: Connection) -> _Ids:
    found = [
        conn.execute(text(f"SELECT MAX(id) FROM {name}")).scalar() or 0 for name in INSERT_COLUMNS
    ]
    return _Ids(*(value + 1 for value in found))


class _BulkEncryptor:
    """``keyring.encrypt`` for a whole column at once.

    The tokens are the ones :class:`~plusjeklas_tui.sqltypes.EncryptedText` writes (same key,
    nonce size, associated data and layout), but one ``urandom`` call serves a whole batch and
    the per-call overhead goes, a third of the cost of encrypting a million values. Each
    call decrypts its first token with the keyring, so a change of token format in
    :mod:`plusjeklas_tui.crypto` fails here loudly instead of writing unreadable data.
    """

    def __init__(self, keyring: Keyring) -> None:
        key = keyring.primary
        self.keyring = keyring
        self.prefix = f"{TOKEN_VERSION}.{key.key_id}."
        self.seal = key.aead.encrypt

    def __call__(self, values: Sequence[str], context: str) -> list[str]:
        nonces = os.urandom(NONCE_BYTES * len(values))
        aad, seal, prefix, b64 = context.encode(), self.seal, self.prefix, base64.urlsafe_b64encode
        tokens = []
        for position, value in enumerate(values):
            nonce = nonces[position * NONCE_BYTES : (position + 1) * NONCE_BYTES]
            tokens.append(prefix + b64(nonce + seal(nonce, value.encode(), aad)).decode())
        if tokens and self.keyring.decrypt(tokens[0], context) != values[0]:
            raise RuntimeError(f"bulk encryption of {context} does not round-trip")
        return tokens

    def optional(self, values: Sequence[str | None], context: str) -> list[str | None]:
        present = iter(self([v for v in values if v is not None], context))
        return [None if v is None else next(present) for v in values]


def _phones_json(phones: tuple[str, ...]) -> str:
    """``json.dumps(list(phones))`` for E.164 strings (digits and '+', nothing to escape)."""
    return '["' + '", "'.join(phones) + '"]'


def _encode_batch(
    batch: DemoBatch,
    keyring: Keyring,
    encrypt: _BulkEncryptor,
    ids: _Ids,
    codec: _Codec,
    now: dt.datetime,
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of *batch*, per table, with personal values encrypted and blind-indexed.

    Built a column at a time (records transposed with ``zip(*records)``), so each column is
    encrypted in one call; the rows are zipped back together at the end.
    """
    index = keyring.blind_index
    org_base, admin_base = ids.organisation, ids.administrator
    stamp = codec.moment(now)
    date, moment = codec.date, codec.moment
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in INSERT_COLUMNS}

    if batch.schools:
        n = len(batch.schools)
        name, street, postcode, city, brin, phone, email, iban, notes = zip(
            *batch.schools, strict=True
        )
        first = org_base + batch.first_school
        rows["organisation"] = list(
            zip(
                range(first, first + n), name, street, postcode, city, brin, phone,
                encrypt(email, "organisation.email"),
                [index(index_value("email", e)) for e in email],
                encrypt(iban, "organisation.iban"),
                encrypt.optional(notes, "organisation.notes"),
                [stamp] * n, [stamp] * n, [1] * n,
                strict=True,
            )
        )  # fmt: skip
    if batch.administrators:
        n = len(batch.administrators)
        school, name, email, phones, started_on, left_on = zip(*batch.administrators, strict=True)
        first = admin_base + batch.first_administrator
        rows["administrator"] = list(
            zip(
                range(first, first + n), [org_base + s for s in school],
                encrypt(name, "administrator.name"), encrypt(email, "administrator.email"),
                [index(index_value("email", e)) for e in email],
                encrypt([_phones_json(p) for p in phones], "administrator.phones"),
                [date(d) for d in started_on], [date(d) for d in left_on],
                [stamp] * n, [stamp] * n, [1] * n,
                strict=True,
            )
        )  # fmt: skip
    if batch.subscriptions:
        n = len(batch.subscriptions)
        school, plan, start_date, end_date, status = zip(*batch.subscriptions, strict=True)
        rows["subscription"] = list(
            zip(
                range(ids.subscription, ids.subscription + n), [org_base + s for s in school],
                plan, [date(d) for d in start_date], [date(d) for d in end_date], status,
                [stamp] * n, [stamp] * n,
                strict=True,
            )
        )  # fmt: skip
        ids.subscription += n
    if batch.consents:
        n = len(batch.consents)
        person, purpose, action, occurred_at, source, evidence = zip(*batch.consents, strict=True)
        rows["consent_event"] = list(
            zip(
                range(ids.consent_event, ids.consent_event + n),
                [admin_base + p for p in person], purpose, action,
                [moment(m) for m in occurred_at], source,
                encrypt(evidence, "consent_event.evidence"),
                [stamp] * n,
                strict=True,
            )
        )  # fmt: skip
        ids.consent_event += n
    return rows


def _insert_sql(table_name: str, paramstyle: str) -> str:
    columns = INSERT_COLUMNS[table_name]
    mark = "?" if paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {table_name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )


def _write_rows(conn: Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """One driver-level ``executemany`` per table (parents first).

    Core ``insert()`` would run every value through SQLAlchemy's per-row parameter processing,
    which measured as the largest single cost of a 100,000-school demo; the codec above
    does the little conversion these columns need.
    """
    for table_name, table_rows in rows.items():
        if table_rows:
            conn.exec_driver_sql(_insert_sql(table_name, conn.dialect.paramstyle), table_rows)


def _advance_sequences(conn: Connection) -> None:
    """PostgreSQL: explicit ids do not move the serial sequences; move them past the new rows."""
    if conn.dialect.name != "postgresql":
        return
    for name in INSERT_COLUMNS:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"
            )
        )


def _count(conn: Connection, model: Any) -> int:
    return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


def count_schools(engine: Engine) -> int:
    with engine.connect() as conn:
        return _count(conn, Organisation)


def count_rows(engine: Engine) -> DemoCounts:
    """How many schools, administrators, subscriptions and consent events the database holds."""
    with engine.connect() as conn:
        return DemoCounts(
            *(_count(conn, m) for m in (Organisation, Administrator, Subscription, ConsentEvent))
        )


@dataclass(frozen=True)
class _Plan:
    """Everything that decides the encoded rows (handed to the worker process as it is)."""

    schools: int
    seed: int
    today: dt.date
    batch_schools: int | None
    keyring: Keyring
    ids: _Ids
    dialect_name: str
    now: dt.datetime


EncodedBatch = tuple[int, dict[str, list[tuple[Any, ...]]]]
"""(schools done after this batch, rows per table)."""


def _encoded_batches(plan: _Plan) -> Iterator[EncodedBatch]:
    codec, encrypt = _Codec(plan.dialect_name), _BulkEncryptor(plan.keyring)
    batches = iter_demo_batches(
        plan.schools, plan.seed, today=plan.today, batch_schools=plan.batch_schools
    )
    for batch in batches:
        rows = _encode_batch(batch, plan.keyring, encrypt, plan.ids, codec, plan.now)
        yield batch.first_school + len(batch.schools), rows


class _WorkerFailed(NamedTuple):
    traceback: str


def _worker(plan: _Plan, channel: Any) -> None:
    """The generator process: every encoded batch onto *channel*, then ``None``."""
    gc.disable()
    try:
        for item in _encoded_batches(plan):
            channel.put(item)
        channel.put(None)
    except BaseException:
        channel.put(_WorkerFailed(traceback.format_exc()))


def _encoded_batches_in_worker(plan: _Plan) -> Iterator[EncodedBatch]:
    """:func:`_encoded_batches`, computed in a forked process while this one writes.

    Generating and encrypting take about as long as SQLite's inserts, so on two cores the
    pipeline nearly halves the wall time. Fork, not spawn: the child inherits the loaded
    modules and the keyring without pickling a key; it never touches the parent's database
    connections, and multiprocessing ends it with ``os._exit``, so it closes none of them.
    """
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=3)
    process = context.Process(target=_worker, args=(plan, channel), daemon=True)
    process.start()
    try:
        while True:
            try:
                item = channel.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise PlusjeklasError(
                        f"the demo generator process stopped unexpectedly "
                        f"(exit code {process.exitcode}); nothing was written"
                    ) from None
                continue
            if item is None:
                return
            if isinstance(item, _WorkerFailed):
                raise PlusjeklasError(
                    "the demo generator process failed; nothing was written\n" + item.traceback
                )
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
        channel.close()


def _use_worker(parallel: bool | None, schools: int) -> bool:
    if parallel is not None:
        return parallel
    can_fork = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
    return can_fork and (os.cpu_count() or 1) > 1 and schools >= PARALLEL_FROM_SCHOOLS


def generate(
    engine: Engine,
    keyring: Keyring,
    *,
    schools: int = DEFAULT_SCHOOLS,
    seed: int = DEFAULT_SEED,
    actor: StaffMember | str,
    today: dt.date | None = None,
    progress: ProgressCallback | None = None,
    batch_schools: int | None = None,
    parallel: bool | None = None,
) -> DemoCounts:
    """Write *schools* generated schools (with everything around them) into *engine*'s database.

    The database must be migrated and hold no organisations yet: demo ids are assigned here,
    and demo BRINs would collide with real ones. Everything is one transaction: an error
    leaves the database as it was. The generation is audited (``demo.generate``, counts only).

    ``parallel`` runs generation and encryption in a second process while this one writes;
    by default from :data:`PARALLEL_FROM_SCHOOLS` schools on, where fork is available. The
    data is the same either way. The garbage collector is paused meanwhile: the rows hold no
    reference cycles, and its scans of millions of fresh tuples cost a quarter of the time.
    """
    if not 0 <= schools <= BRIN_CAPACITY:
        raise PlusjeklasError(f"--schools: must be between 0 and {BRIN_CAPACITY}")
    db.ensure_ready(engine)
    totals = dict.fromkeys(INSERT_COLUMNS, 0)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            _set_sqlite_cache(conn, BULK_CACHE_KIB)
            try:
                with conn.begin():
                    if conn.execute(
                        select(func.count()).select_from(Organisation.__table__)
                    ).scalar():
                        raise PlusjeklasError(
                            "the database already holds organisations; demo data is only "
                            "generated into an empty database"
                        )
                    plan = _Plan(
                        schools, seed, today or dt.date.today(), batch_schools, keyring,
                        _next_ids(conn), conn.dialect.name, utcnow(),
                    )  # fmt: skip
                    batches = (
                        _encoded_batches_in_worker(plan)
                        if _use_worker(parallel, schools)
                        else _encoded_batches(plan)
                    )
                    for done, rows in batches:
                        _write_rows(conn, rows)
                        for table_name, table_rows in rows.items():
                            totals[table_name] += len(table_rows)
                        if progress is not None:
                            progress(done, schools)
                    _advance_sequences(conn)
                    counts = DemoCounts(
                        schools=totals["organisation"],
                        administrators=totals["administrator"],
                        subscriptions=totals["subscription"],
                        consent_events=totals["consent_event"],
                    )
                    with Session(bind=conn) as session:
                        audit.record(
                            session, actor, "demo.generate", "organisation", None,
                            seed=seed, **vars(counts),
                        )  # fmt: skip
                        session.flush()
            finally:
                _set_sqlite_cache(conn, DEFAULT_CACHE_KIB)
    finally:
        if gc_was_enabled:
            gc.enable()
    return counts


def _set_sqlite_cache(conn: Connection, kib: int) -> None:
    """A big page cache keeps the random-order index inserts (blind index, name) in memory."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{kib}")
        conn.commit()


# --- the demo installation ---------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`prepare_demo` made or found."""

    config_path: Path
    database_path: Path
    key_path: Path
    reused: bool
    counts: DemoCounts


def default_database_path() -> Path:
    return user_data_dir() / "demo" / DEMO_DB_NAME


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def demo_config_text(database_path: Path) -> str:
    """The demo's own configuration: relative paths, so the folder can be moved as a whole."""
    me = os_account()
    staff = {DEMO_VIEWER: "viewer", DEMO_EDITOR: "editor", me: "admin"}
    staff_lines = "".join(
        f"{_toml_string(user)} = {_toml_string(role)}\n" for user, role in staff.items()
    )
    return (
        f"{CONFIG_MARKER}: a throw-away demo installation with generated data.\n"
        "# Use it for every command with: PLUSJEKLAS_CONFIG=<this file> plusjeklas ...\n"
        "# allow_user_override lets you try the roles: plusjeklas --user demo-viewer ...\n"
        'language = "nl"\n'
        "allow_user_override = true\n"
        "\n[database]\n"
        f"url = {_toml_string('sqlite:///' + database_path.name)}\n"
        "\n[keys]\n"
        f"file = {_toml_string(KEY_NAME)}\n"
        "\n[staff]\n" + staff_lines
    )


def _check_config_is_ours(path: Path) -> None:
    """Never replace a real configuration (one that, say, sets allow_user_override = false)."""
    if path.exists() and not path.read_text(errors="replace").startswith(CONFIG_MARKER):
        raise ConfigError(
            f"{path} exists and was not written by `plusjeklas demo`; refusing to replace it. "
            "Give the demo a folder of its own with --db"
        )


def _write_config(path: Path, content: str) -> None:
    _check_config_is_ours(path)
    if path.exists() and path.read_text(errors="replace") == content:
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _has_schools(database_path: Path) -> bool:
    """Whether a migrated database with organisations is already there (no key needed)."""
    if not database_path.exists():
        return False
    engine = db.make_engine(f"sqlite:///{database_path}")
    try:
        if db.current_revision(engine) is None:
            return False
        return count_schools(engine) > 0
    except SQLAlchemyError as exc:
        raise PlusjeklasError(
            f"{database_path} exists but is not a usable SQLite database "
            f"({type(getattr(exc, 'orig', None) or exc).__name__}); choose another path with --db"
        ) from None
    finally:
        engine.dispose()


def _migrate(engine: Engine) -> None:
    try:
        db.ensure_ready(engine)
    except DatabaseNotReady as not_ready:
        from alembic.util import CommandError

        try:
            db.upgrade(engine)
        except CommandError:
            raise not_ready from None  # migrated by a newer version: say so, not alembic
        db.ensure_ready(engine)


def _check_key_fits(engine: Engine) -> None:
    """Decrypt one stored value, so a wrong key is reported now rather than on the first screen."""
    with Session(engine) as session:
        session.scalars(select(Administrator).limit(1)).first()


def prepare_demo(
    database_path: Path | None = None,
    *,
    schools: int = DEFAULT_SCHOOLS,
    seed: int = DEFAULT_SEED,
    progress: ProgressCallback | None = None,
) -> DemoSetup:
    """Create (or reuse) a demo installation around *database_path*.

    Next to the database: ``plusjeklas.toml`` (this account as admin, a demo viewer and editor,
    ``allow_user_override = true``) and ``plusjeklas.key`` (0600). A migrated database that
    already holds schools is reused as it is, never regenerated. A ``plusjeklas.toml`` that
    the demo did not write is never replaced.
    """
    path = (database_path or default_database_path()).expanduser().resolve()
    if set(path.name) & set("?#%"):
        raise ConfigError(f"--db: the file name '{path.name}' may not contain ?, # or %")
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    config_path, key_path = folder / CONFIG_NAME, folder / KEY_NAME
    config_text = demo_config_text(path)
    _check_config_is_ours(config_path)
    has_schools = _has_schools(path)
    if not key_path.exists():
        if has_schools:
            raise KeyProblem(
                f"the demo database {path} holds data but its key file {key_path} is missing; "
                "remove the database to start a new demo"
            )
        write_key_file(key_path, Keyring([FieldKey.generate()]), exclusive=True)
    _write_config(config_path, config_text)
    settings: Settings = load_file(config_path)
    staff = identify(settings)
    keyring = load_key_file(settings.key_file)
    engine = db.make_engine(settings.database_url, keyring)
    try:
        _migrate(engine)
        if has_schools:
            _check_key_fits(engine)
            counts, reused = count_rows(engine), True
        else:
            counts = generate(
                engine, keyring, schools=schools, seed=seed, actor=staff, progress=progress
            )
            reused = False
    finally:
        engine.dispose()
    return DemoSetup(config_path, path, key_path, reused, counts)
