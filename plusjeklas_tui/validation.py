"""Input rules: the one place that decides whether a typed or imported value is acceptable.

Used by the CLI, the CSV import and the Textual screens, so a value is judged the same way
wherever it enters. Acceptance is always decided by a library (python-stdnum, phonenumbers,
email-validator); the code here only normalises, and *explains* a rejection as precisely as
it can (which characters are wrong, which length was expected) so staff can fix the value.

Every rejection is a :class:`FieldError`. Its ``str()`` names the field, shows the value only
when the value is institutional (a school's BRIN, postcode, general phone), and states the
rule. Values that belong to a person (e-mail addresses, administrator data, IBAN, free text)
are never put in a message, so messages may go to logs; the UI can still show
``FieldError.value`` next to the field it belongs to.

Each rule is also given as codes with parameters (:attr:`FieldError.parts`, e.g.
``Rule("postcode.first_digit_zero")``), so an interface can say it in its own language: the
English templates are :data:`RULES`, the staff app's catalogue has every code in Dutch and
English. ``str()`` stays English, for the CLI, the import report and logs.

Leading/trailing whitespace and letter case are normalised, never rejected.

The checking libraries are imported by the functions that use them, not with this module:
together they cost more start-up time than the staff app may spend before its first screen.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "BSN_RULE",
    "FIELD_LABELS",
    "PERSONAL_FIELDS",
    "RULES",
    "FieldError",
    "Joined",
    "Rule",
    "RuleSpec",
    "ValidationErrors",
    "check_free_text",
    "email_lookup_key",
    "field_label",
    "find_bsn",
    "format_iban",
    "format_phone",
    "is_personal_field",
    "mask_iban",
    "normalize_brin",
    "normalize_email",
    "normalize_iban",
    "normalize_name",
    "normalize_phone",
    "normalize_postcode",
    "normalize_text",
    "parse_date",
    "render_rule",
]

# --- labels and which fields are personal ---------------------------------------------------

FIELD_LABELS: dict[str, str] = {
    "brin": "BRIN",
    "postcode": "postcode",
    "iban": "IBAN",
    "phone": "phone",
    "email": "e-mail",
    "name": "name",
    "street": "street",
    "house_number": "house number",
    "city": "city",
    "plan": "plan",
    "notes": "notes",
    "start_date": "start date",
    "end_date": "end date",
    "started_on": "start date",
    "left_on": "leaving date",
    "admin_email": "administrator e-mail",
    "admin_phones": "administrator phone",
    "admin_phone": "administrator phone",
    "admin_name": "administrator name",
    "contact_name": "contact name",
    "contact_email": "contact e-mail",
    "contact_phone": "contact phone",
}

#: Fields whose values belong to a person (or are secret): their values never enter a message.
#: Besides these, every ``admin_*`` field and every field whose name mentions e-mail or IBAN is
#: personal (DOMAIN.md: staff cannot tell ``info@`` from ``j.jansen@``, so every address is).
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"iban", "email", "notes", "contact_name", "contact_email", "contact_phone"}
)


def field_label(field: str) -> str:
    """The readable label of ``field``; unknown fields are labelled with their own name."""
    return FIELD_LABELS.get(field, field)


def is_personal_field(field: str) -> bool:
    """Whether values of ``field`` are personal data that must stay out of messages and logs."""
    return (
        field in PERSONAL_FIELDS
        or field.startswith("admin_")
        or "email" in field
        or "iban" in field
    )


# --- rules: codes, parameters and their English text ---------------------------------------

_PHONE_EXAMPLE = "e.g. 020 123 4567 or 06 12345678"
_BRIN_SHAPE = (
    "must be two digits, two letters and optionally a two-digit branch number (e.g. 05KO or 05KO00)"
)
_POSTCODE_SHAPE = "must be four digits (first not 0) and two letters, e.g. 1234 AB"
_POSTCODE_UNUSED_LETTERS = "letters SA, SD and SS are not used in Dutch postcodes"
_IBAN_CHECKSUM_RULE = "check digits do not match (mod-97); is a character mistyped or missing?"
_DATE_FORMAT_RULE = "must be a date written as YYYY-MM-DD, e.g. 2026-03-02"
REQUIRED_RULE = "is required"
BSN_RULE = (
    "contains what looks like a BSN (citizen service number); the privacy statement promises "
    "no sensitive personal data is stored — remove it"
)

RULES: dict[str, str] = {
    "required": REQUIRED_RULE,
    "brin.shape": _BRIN_SHAPE,
    "brin.odd": (
        "may only contain digits and letters (spaces, dashes and dots are ignored), found {found}"
    ),
    "brin.length": "must be 4 or 6 characters, got {length}; e.g. 05KO or 05KO00",
    "brin.head_digits": "characters 1-2 must be digits",
    "brin.head_digits_o": "characters 1-2 must be digits (is an O meant to be a zero?)",
    "brin.letters": "characters 3-4 must be letters",
    "brin.letters_zero": "characters 3-4 must be letters (is a zero meant to be the letter O?)",
    "brin.branch_digits": "characters 5-6 (the branch number) must be digits",
    "brin.branch_digits_o": (
        "characters 5-6 (the branch number) must be digits (is an O meant to be a zero?)"
    ),
    "postcode.shape": _POSTCODE_SHAPE,
    "postcode.unused_letters": _POSTCODE_UNUSED_LETTERS,
    "postcode.odd": "may only contain digits and letters, found {found}",
    "postcode.length": "got {length} characters instead of 6",
    "postcode.first_four_digits": "the first four characters must be digits",
    "postcode.first_digit_zero": "the first digit cannot be 0",
    "postcode.last_two_letters": "the last two characters must be letters",
    "iban.odd": "may only contain letters and digits (spaces are fine), found {found}",
    "iban.country_code": "must start with a two-letter country code, e.g. NL91 ABNA 0417 1643 00",
    "iban.unknown_country": "{country} is not a country code that uses IBAN",
    "iban.check_digits": "characters 3-4 must be the two check digits",
    "iban.length": "an IBAN from {country} has {expected} characters, got {length}",
    "iban.structure": "after the check digits an IBAN from {country} has {described}",
    "iban.part.n": "{count} digits",
    "iban.part.a": "{count} letters",
    "iban.part.c": "{count} letters or digits",
    "iban.part.then": ", then ",
    "iban.checksum": _IBAN_CHECKSUM_RULE,
    "iban.national_check": "the bank code or account number fails the national check of {country}",
    "iban.account_length": "the account number has the wrong length for {country}",
    "iban.account_format": "the account number has the wrong format for {country}",
    "iban.invalid": "is not a valid IBAN",
    "phone.letters": "contains letters; use digits only",
    "phone.characters": "may only contain digits, spaces and + - ( ) . /",
    "phone.country_code": (
        "has an unknown country code; start with 0 for Dutch numbers or +<country code>"
    ),
    "phone.not_a_number": f"is not a phone number; {_PHONE_EXAMPLE}",
    "phone.short_after_country": "is too short after the country code",
    "phone.too_short": f"is too short; {_PHONE_EXAMPLE}",
    "phone.too_long": f"is too long; {_PHONE_EXAMPLE}",
    "phone.dutch_invalid": f"is not a valid Dutch phone number ({_PHONE_EXAMPLE})",
    "phone.dutch_digits": (
        "most Dutch numbers have 10 digits including the leading 0, this one has {digits}"
    ),
    "phone.foreign_invalid": "is not a valid phone number for country code +{country_code}",
    "phones.required": "at least one phone number is required",
    "phones.item": "number {position}: {rule}",
    "email.invalid": "is not a valid e-mail address",
    "email.no_at": "an email address must have an @-sign.",
    "email.nothing_before": "there must be something before the @-sign.",
    "email.nothing_after": "there must be something after the @-sign.",
    "email.no_period": "the part after the @-sign is not valid. It should have a period.",
    "email.two_periods": "an email address cannot have two periods in a row.",
    "email.local_characters": (
        "the email address contains invalid characters before the @-sign: {found}."
    ),
    "email.domain_characters": "the part after the @-sign contains invalid characters: {found}.",
    "text.bsn": BSN_RULE,
    "text.control": "contains control characters; use plain text",
    "text.too_long": "is too long: at most {max_length} characters, got {length}",
    "date.format": _DATE_FORMAT_RULE,
    "date.not_existing": "is not an existing date (YYYY-MM-DD, e.g. 2026-03-02)",
}
"""Every rule code with its English text; ``{name}`` is filled from the rule's parameters."""


class Rule(NamedTuple):
    """One statement of a rule: a code from :data:`RULES` and the values for its ``{names}``.

    A parameter may itself be a :class:`Rule`, a sequence of them (said one after the other,
    separated by ``"; "``) or :class:`Joined`. *english* replaces the English text when the
    rule quotes a library's own explanation that has no code of its own.
    """

    code: str
    params: Mapping[str, Any] = {}  # never mutated: shared safely
    english: str | None = None


class Joined(NamedTuple):
    """Rules said as one list, separated by the text of the *separator* code."""

    parts: tuple[Rule, ...]
    separator: str


Template = Callable[[str], str]
"""A rule code's text in some language (the English one is ``RULES.__getitem__``)."""


def _english(code: str) -> str:
    return RULES[code]


def _value(value: Any, template: Template) -> Any:
    if isinstance(value, Rule):
        return render_rule((value,), template)
    if isinstance(value, Joined):
        separator = template(value.separator)
        return separator.join(render_rule((part,), template) for part in value.parts)
    if isinstance(value, tuple | list) and value and isinstance(value[0], Rule):
        return render_rule(value, template)
    return value


def render_rule(parts: Sequence[Rule], template: Template = _english) -> str:
    """*parts* said in the language of *template*, separated by ``"; "``."""
    texts = []
    for part in parts:
        if part.english is not None and template is _english:
            texts.append(part.english)
            continue
        values = {name: _value(value, template) for name, value in part.params.items()}
        text = template(part.code)
        texts.append(text.format(**values) if values else text)
    return "; ".join(texts)


RuleSpec = str | Rule | Sequence[Rule]


def _as_parts(rule: RuleSpec) -> tuple[Rule, ...]:
    if isinstance(rule, Rule):
        return (rule,)
    if isinstance(rule, str):
        return (Rule("required"),) if rule == REQUIRED_RULE else ()
    return tuple(rule)


# --- errors ---------------------------------------------------------------------------------

_MAX_SHOWN = 60


def _shown(value: str) -> str:
    """A value as it may appear inside a message: trimmed, one line, escaped, not too long.

    Control characters are escaped so a value can never forge extra log lines.
    """
    text = value.strip()
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _rebuild_field_error(field: str, value: str, rule: RuleSpec, show_value: bool) -> FieldError:
    return FieldError(field, value, rule, show_value=show_value)


class FieldError(ValueError):
    """One rejected field. ``str()`` is a message for people: the field, its problem, the rule.

    ``show_value=True`` only *permits* the value in the message: a personal field (see
    :func:`is_personal_field`) never shows it, whatever the caller passes. ``value`` keeps the
    raw input so the UI can show it next to the field.

    *rule* is English text, or (better) :class:`Rule` parts: ``parts`` then holds the codes
    and parameters an interface translates (:meth:`explain`), and ``rule`` their English.
    Plain text has no parts, except :data:`REQUIRED_RULE`, which is ``Rule("required")``.
    """

    field: str
    value: str
    rule: str
    parts: tuple[Rule, ...]
    label: str
    show_value: bool

    def __init__(self, field: str, value: str, rule: RuleSpec, *, show_value: bool = True) -> None:
        self.field = field
        self.value = value if isinstance(value, str) else ("" if value is None else str(value))
        self.parts = _as_parts(rule)
        self.rule = rule if isinstance(rule, str) else render_rule(self.parts)
        self.label = field_label(field)
        self.show_value = show_value and not is_personal_field(field)
        shown = _shown(self.value)
        if self.show_value and shown:
            message = f"{self.label} '{shown}': {self.rule}"
        else:
            message = self.safe_message()
        super().__init__(message)

    @property
    def code(self) -> str | None:
        """The first rule's code (``"postcode.first_digit_zero"``); None for plain text."""
        return self.parts[0].code if self.parts else None

    def explain(self, template: Template) -> str:
        """The rule in the language of *template* (code -> text); plain text stays as is."""
        return render_rule(self.parts, template) if self.parts else self.rule

    def safe_message(self) -> str:
        """The message without the value, whatever the field: safe for logs and audit trails."""
        return f"{self.label}: {self.rule}"

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        rule: RuleSpec = self.parts if self.parts and self.rule != REQUIRED_RULE else self.rule
        return (_rebuild_field_error, (self.field, self.value, rule, self.show_value))


class ValidationErrors(ValueError):
    """Several :class:`FieldError` at once: a whole form or CSV row. Never empty."""

    errors: list[FieldError]

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        if not self.errors:
            raise ValueError("ValidationErrors needs at least one FieldError")
        super().__init__("; ".join(str(error) for error in self.errors))

    def safe_message(self) -> str:
        """All messages without values."""
        return "; ".join(error.safe_message() for error in self.errors)

    def by_field(self) -> dict[str, FieldError]:
        """The first error of each field, for showing next to the widgets."""
        result: dict[str, FieldError] = {}
        for error in self.errors:
            result.setdefault(error.field, error)
        return result

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (ValidationErrors, (self.errors,))


def _text(value: str | None) -> str:
    """Treat a missing value (e.g. a short CSV row gives ``None``) as empty text."""
    return "" if value is None else value


def _is_ascii_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_ascii_upper(ch: str) -> bool:
    return "A" <= ch <= "Z"


def _odd_characters(compacted: str) -> str:
    """The distinct characters that are neither ASCII letters nor digits, quoted for a rule."""
    odd = sorted({ch for ch in compacted if not (_is_ascii_digit(ch) or _is_ascii_upper(ch))})
    return ", ".join(ascii(ch) if not ch.isprintable() else f"'{ch}'" for ch in odd)


# --- BRIN -----------------------------------------------------------------------------------


def _brin_position_problems(code: str) -> list[Rule]:
    """Explain which positions of a 4- or 6-character BRIN have the wrong kind of character."""
    problems: list[Rule] = []
    head, letters, branch = code[:2], code[2:4], code[4:]
    if not all(_is_ascii_digit(ch) for ch in head):
        problems.append(Rule("brin.head_digits_o" if "O" in head else "brin.head_digits"))
    if not all(_is_ascii_upper(ch) for ch in letters):
        problems.append(Rule("brin.letters_zero" if "0" in letters else "brin.letters"))
    if branch and not all(_is_ascii_digit(ch) for ch in branch):
        problems.append(Rule("brin.branch_digits_o" if "O" in branch else "brin.branch_digits"))
    return problems


def normalize_brin(value: str) -> str:
    """``"05 ko"`` -> ``"05KO"``, ``"07nu 00"`` -> ``"07NU00"``.

    Only the format is checked (DOMAIN.md: ``00AA`` passes); whether DUO knows the school is
    not. Spaces, dashes and dots are ignored, as stdnum does.
    """
    from stdnum.exceptions import InvalidLength, ValidationError
    from stdnum.nl import brin as _brin

    raw = _text(value)
    if not raw.strip():
        raise FieldError("brin", raw, REQUIRED_RULE)
    try:
        return _brin.validate(raw)
    except ValidationError as exc:
        code = _brin.compact(raw)
        odd = _odd_characters(code)
        rule: list[Rule]
        if odd:
            rule = [Rule("brin.shape"), Rule("brin.odd", {"found": odd})]
        elif isinstance(exc, InvalidLength) or len(code) not in (4, 6):
            rule = [Rule("brin.length", {"length": len(code)})]
        else:
            rule = [Rule("brin.shape"), *_brin_position_problems(code)]
        raise FieldError("brin", raw, rule) from None


# --- postcode -------------------------------------------------------------------------------


def normalize_postcode(value: str) -> str:
    """``"2611et"``, ``"NL-2611ET"`` -> ``"2611 ET"``. Does not check that the address exists."""
    from stdnum.exceptions import InvalidComponent, ValidationError
    from stdnum.nl import postcode as _postcode

    raw = _text(value)
    if not raw.strip():
        raise FieldError("postcode", raw, REQUIRED_RULE)
    try:
        return _postcode.validate(raw)
    except InvalidComponent:
        raise FieldError("postcode", raw, Rule("postcode.unused_letters")) from None
    except ValidationError:
        code = _postcode.compact(raw)
        problems: list[Rule] = [Rule("postcode.shape")]
        odd = _odd_characters(code)
        if odd:
            problems.append(Rule("postcode.odd", {"found": odd}))
        elif len(code) != 6:
            problems.append(Rule("postcode.length", {"length": len(code)}))
        else:
            if not all(_is_ascii_digit(ch) for ch in code[:4]):
                problems.append(Rule("postcode.first_four_digits"))
            elif code[0] == "0":
                problems.append(Rule("postcode.first_digit_zero"))
            if not all(_is_ascii_upper(ch) for ch in code[4:]):
                problems.append(Rule("postcode.last_two_letters"))
        raise FieldError("postcode", raw, problems) from None


# --- IBAN -----------------------------------------------------------------------------------

_BBAN_PART = re.compile(r"(\d+)!?([nac])")


def _bban_structure(code: str) -> str | None:
    """The account-part structure stdnum's IBAN registry gives for the country, e.g. ``4!a10!n``."""
    from stdnum import numdb

    info = numdb.get("iban").info(code)
    return info[0][1].get("bban") if info and info[0][1] else None


def _bban_parts(structure: str) -> list[tuple[int, str]]:
    return [(int(count), kind) for count, kind in _BBAN_PART.findall(structure)]


def _bban_matches(bban: str, parts: list[tuple[int, str]]) -> bool:
    checks = {"n": _is_ascii_digit, "a": _is_ascii_upper, "c": lambda ch: ch.isalnum()}
    position = 0
    for count, kind in parts:
        chunk = bban[position : position + count]
        if len(chunk) != count or not all(checks[kind](ch) for ch in chunk):
            return False
        position += count
    return position == len(bban)


def _iban_rule(code: str, exc: Exception) -> Rule:
    """Explain why stdnum rejected ``code`` (already compacted), most specific reason first.

    The rule names the country code and counts only, never characters of the account number.
    """
    from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

    odd = _odd_characters(code)
    if odd:
        return Rule("iban.odd", {"found": odd})
    country = code[:2]
    if len(country) < 2 or not all(_is_ascii_upper(ch) for ch in country):
        return Rule("iban.country_code")
    structure = _bban_structure(code)
    if not structure:
        return Rule("iban.unknown_country", {"country": country})
    if len(code) < 4 or not all(_is_ascii_digit(ch) for ch in code[2:4]):
        return Rule("iban.check_digits")
    parts = _bban_parts(structure)
    expected = 4 + sum(count for count, _ in parts)
    if len(code) != expected:
        return Rule("iban.length", {"country": country, "expected": expected, "length": len(code)})
    if not _bban_matches(code[4:], parts):
        described = Joined(
            tuple(Rule(f"iban.part.{kind}", {"count": count}) for count, kind in parts),
            "iban.part.then",
        )
        return Rule("iban.structure", {"country": country, "described": described})
    if isinstance(exc, InvalidChecksum):
        return Rule("iban.checksum")
    if isinstance(exc, InvalidComponent):
        return Rule("iban.national_check", {"country": country})
    if isinstance(exc, InvalidLength):
        return Rule("iban.account_length", {"country": country})
    if isinstance(exc, InvalidFormat):
        return Rule("iban.account_format", {"country": country})
    return Rule("iban.invalid")


def normalize_iban(value: str) -> str:
    """Compact upper case, e.g. ``"NL91ABNA0417164300"``. The bank code itself is not checked."""
    from stdnum import iban as _iban
    from stdnum.exceptions import ValidationError

    raw = _text(value)
    if not raw.strip():
        raise FieldError("iban", raw, REQUIRED_RULE, show_value=False)
    try:
        return _iban.validate(raw)
    except ValidationError as exc:
        rule = _iban_rule(_iban.compact(raw), exc)
        raise FieldError("iban", raw, rule, show_value=False) from None


def format_iban(value: str) -> str:
    """``"NL91 ABNA 0417 1643 00"``: groups of four for display. Does not validate."""
    from stdnum import iban as _iban

    return _iban.format(_text(value))


def mask_iban(value: str) -> str:
    """``"NL** **** **** **43 00"``: the country code and last four characters stay, grouped
    like :func:`format_iban`. Values too short to hide anything keep only the country code."""
    from stdnum import iban as _iban

    code = _iban.compact(_text(value))
    tail = 4 if len(code) >= 12 else 0
    masked = "".join(
        ch if index < 2 or index >= len(code) - tail or not ch.isalnum() else "*"
        for index, ch in enumerate(code)
    )
    return " ".join(masked[i : i + 4] for i in range(0, len(masked), 4))


# --- phone ----------------------------------------------------------------------------------

_PHONE_PUNCTUATION = frozenset("+-()./")
_PARSE_RULES = {  # phonenumbers.NumberParseException's error types
    "INVALID_COUNTRY_CODE": "phone.country_code",
    "NOT_A_NUMBER": "phone.not_a_number",
    "TOO_SHORT_AFTER_IDD": "phone.short_after_country",
    "TOO_SHORT_NSN": "phone.too_short",
    "TOO_LONG": "phone.too_long",
}


def normalize_phone(value: str, field: str = "phone") -> str:
    """E.164, e.g. ``"+31201234567"``. Numbers without ``+`` or ``00`` are read as Dutch.

    Letters are refused before parsing because phonenumbers silently maps them to keypad
    digits (``06-1234abcd``). Validity uses ``is_valid_number``: ``is_possible_number`` alone
    would accept ``06123456``. Foreign numbers given with their country code are accepted.
    """
    import phonenumbers

    raw = _text(value)
    text = raw.strip()
    if not text:
        raise FieldError(field, raw, REQUIRED_RULE)
    if any(ch.isalpha() for ch in text):
        raise FieldError(field, raw, Rule("phone.letters"))
    if any(not (ch.isdigit() or ch.isspace() or ch in _PHONE_PUNCTUATION) for ch in text):
        raise FieldError(field, raw, Rule("phone.characters"))
    try:
        number = phonenumbers.parse(text, "NL")
    except phonenumbers.NumberParseException as exc:
        names = {
            getattr(phonenumbers.NumberParseException, name, None): code
            for name, code in _PARSE_RULES.items()
        }
        raise FieldError(
            field, raw, Rule(names.get(exc.error_type, "phone.not_a_number"))
        ) from None
    if not phonenumbers.is_valid_number(number):
        rule: list[Rule]
        if number.country_code == 31:
            rule = [Rule("phone.dutch_invalid")]
            digits = 1 + len(phonenumbers.national_significant_number(number))
            if digits != 10:
                rule.append(Rule("phone.dutch_digits", {"digits": digits}))
        else:
            rule = [Rule("phone.foreign_invalid", {"country_code": number.country_code})]
        raise FieldError(field, raw, rule)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """For display: Dutch numbers in NATIONAL format (``"020 123 4567"``), foreign ones in
    INTERNATIONAL format (``"+32 2 123 45 67"``), since a national format would hide the
    country. Input that cannot be parsed is returned unchanged: display must not fail on
    legacy data."""
    import phonenumbers

    try:
        number = phonenumbers.parse(_text(e164), "NL")
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 31
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


# --- e-mail ---------------------------------------------------------------------------------

_QUOTED_FRAGMENT = re.compile(r"'[^']{2,}'")


def _email_rule(explanation: str, address: str) -> str:
    """email-validator's own explanation, made safe to log.

    Most of its messages quote single offending characters only, but IDNA errors quote a whole
    domain label: quoted fragments longer than one character are removed, and if any sizeable
    piece of the address still shows, a generic rule is used instead.
    """
    rule = _QUOTED_FRAGMENT.sub("'...'", explanation)
    local, _, domain = address.rpartition("@")
    pieces = [address, local, domain, *domain.split(".")]
    lowered = rule.lower()
    if any(len(piece) >= 3 and piece.lower() in lowered for piece in pieces):
        return "is not a valid e-mail address"
    if len(rule) > 1 and rule[0].isupper() and rule[1].islower():
        rule = rule[0].lower() + rule[1:]
    return rule


_EMAIL_RULES = (  # email-validator's explanations (as _email_rule leaves them) with a code
    (re.compile(r"an email address must have an @-sign\.\Z"), "email.no_at"),
    (re.compile(r"there must be something before the @-sign\.\Z"), "email.nothing_before"),
    (re.compile(r"there must be something after the @-sign\.\Z"), "email.nothing_after"),
    (
        re.compile(r"the part after the @-sign is not valid\. It should have a period\.\Z"),
        "email.no_period",
    ),
    (re.compile(r"an email address cannot have two periods in a row\.\Z"), "email.two_periods"),
    (
        re.compile(
            r"the email address contains invalid characters before the @-sign: (?P<found>.+)\.\Z"
        ),
        "email.local_characters",
    ),
    (
        re.compile(r"the part after the @-sign contains invalid characters: (?P<found>.+)\.\Z"),
        "email.domain_characters",
    ),
)


def _email_rule_parts(rule: str) -> Rule:
    """A code for email-validator's explanation; others keep their English text."""
    for pattern, code in _EMAIL_RULES:
        match = pattern.match(rule)
        if match:
            return Rule(code, match.groupdict())
    if rule == RULES["email.invalid"]:
        return Rule("email.invalid")
    return Rule("email.invalid", english=rule)


def normalize_email(value: str, field: str = "email") -> str:
    """email-validator's ``normalized`` form: the domain is lower-cased, the local part kept.

    Surrounding whitespace is stripped first (email-validator rejects it). Deliverability is
    not checked: no DNS from a back office. ``a@b`` is rejected (no top-level domain).
    """
    from email_validator import EmailNotValidError, validate_email

    raw = _text(value)
    text = raw.strip()
    if not text:
        raise FieldError(field, raw, REQUIRED_RULE, show_value=False)
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        rule = _email_rule(str(exc), text)
    except (UnicodeError, ValueError):
        rule = RULES["email.invalid"]
    raise FieldError(field, raw, _email_rule_parts(rule), show_value=False)


def email_lookup_key(value: str) -> str:
    """The form used for exact lookup and the blind index: fully lower-cased normalised address.

    Mail servers may treat the local part case-sensitively, but no person expects
    ``Jan@school.nl`` and ``jan@school.nl`` to be two people.
    """
    return normalize_email(value).lower()


# --- BSN and free text ----------------------------------------------------------------------

# Nine digits written plainly (111222333) or grouped as 1112.22.333 (the official presentation)
# or 123.456.789, with dots, spaces, non-breaking spaces or dashes. A run must not continue
# into more digits, so longer numbers (phone numbers, IBAN account numbers) do not match.
# The lookahead wrapper yields overlapping candidates, so an invalid run cannot hide a valid one.
_SEP = r"[ .\-\u00a0]"
_BSN_CANDIDATE = re.compile(
    rf"""(?=(
        (?<![0-9])
        (?: [0-9]{{9}}
          | [0-9]{{3}}{_SEP}[0-9]{{3}}{_SEP}[0-9]{{3}}
          | [0-9]{{4}}{_SEP}[0-9]{{2}}{_SEP}[0-9]{{3}}
        )
        (?![0-9])
    ))""",
    re.VERBOSE,
)


def find_bsn(text: str) -> str | None:
    """The first run of nine digits in ``text`` that passes the BSN 11-proof, or ``None``.

    Full-width and other compatibility digits are folded to ASCII first (NFKC), so the match
    returned is from the folded text. Eight-digit BSNs (leading zero dropped) are not looked
    for: too many phone and account numbers contain such runs.
    """
    from stdnum.nl import bsn as _bsn

    folded = unicodedata.normalize("NFKC", _text(text))
    for match in _BSN_CANDIDATE.finditer(folded):
        candidate = match.group(1)
        if _bsn.is_valid(candidate):
            return candidate
    return None


def _has_control_characters(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


def _too_long_rule(max_length: int, length: int) -> Rule:
    return Rule("text.too_long", {"max_length": max_length, "length": length})


def check_free_text(value: str, field: str = "notes", max_length: int = 2000) -> str:
    """Trimmed multi-line text (line breaks normalised to ``\\n``); empty text is fine.

    Refuses a BSN (never stored) and control characters other than tab and newline. Free text
    may hold anything, so its value never appears in a message.
    """
    raw = _text(value)
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if find_bsn(text) is not None:
        raise FieldError(field, raw, Rule("text.bsn"), show_value=False)
    if _has_control_characters(text, allowed="\n\t"):
        raise FieldError(field, raw, Rule("text.control"), show_value=False)
    if len(text) > max_length:
        raise FieldError(field, raw, _too_long_rule(max_length, len(text)), show_value=False)
    return text


def normalize_text(value: str, field: str, max_length: int = 200, required: bool = True) -> str:
    """Trimmed single-line text (street, city, plan): inner whitespace, line breaks included,
    collapses to one space. Empty gives ``""`` unless ``required``. A BSN is refused here too:
    any typed field can receive a pasted one."""
    raw = _text(value)
    text = " ".join(raw.split())
    if not text:
        if required:
            raise FieldError(field, raw, REQUIRED_RULE)
        return ""
    if find_bsn(text) is not None:
        raise FieldError(field, raw, Rule("text.bsn"), show_value=False)
    if _has_control_characters(text):
        raise FieldError(field, raw, Rule("text.control"))
    if len(text) > max_length:
        raise FieldError(field, raw, _too_long_rule(max_length, len(text)))
    return text


def normalize_name(value: str, field: str = "name", max_length: int = 200) -> str:
    """A required name (a school's or a person's): see :func:`normalize_text`."""
    return normalize_text(value, field, max_length=max_length, required=True)


# --- dates ----------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: str, field: str) -> datetime.date | None:
    """An ISO ``YYYY-MM-DD`` date; empty gives ``None``.

    Only that form is accepted: ``date.fromisoformat`` alone would also take ``20260302`` and
    week dates like ``2026-W10-1``, which nobody types on purpose.
    """
    raw = _text(value)
    text = raw.strip()
    if not text:
        return None
    if not _ISO_DATE.fullmatch(text):
        raise FieldError(field, raw, Rule("date.format"))
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise FieldError(field, raw, Rule("date.not_existing")) from None
