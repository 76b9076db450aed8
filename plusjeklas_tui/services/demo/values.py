"""Single generated values that must be valid: BRINs, IBANs, phone number starts, names."""

from __future__ import annotations

import random
import re
import string
import unicodedata
from functools import cache

import phonenumbers

from plusjeklas_tui.services.demo.words import AREA_CODES, MOBILE_PREFIXES

BRIN_BASE_CODES = 100 * 26 * 26
"""Distinct four-character BRINs (two digits, two letters)."""
BRIN_CAPACITY = BRIN_BASE_CODES * 101
"""Four-character codes, then each again with a branch suffix 00-99."""


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
def phone_prefixes() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
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
        [area + digit for area in AREA_CODES for digit in "23456789"],
        meta.fixed_line.national_number_pattern,
    )
    mobile = valid(list(MOBILE_PREFIXES), meta.mobile.national_number_pattern)
    boards = valid(
        [area + digit for area in ("85", "88") for digit in "23456789"],
        meta.uan.national_number_pattern,
        meta.voip.national_number_pattern,
    )
    return fixed, mobile, boards


@cache
def slug(value: str) -> str:
    """Lower-case ASCII letters and digits only: 'Het Mozaïek' -> 'hetmozaiek'."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def school_name(
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
