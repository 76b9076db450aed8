"""Tests for the input rules in :mod:`plusjeklas_tui.validation` (no database needed)."""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from plusjeklas_tui.validation import (
    BSN_RULE,
    FIELD_LABELS,
    FieldError,
    ValidationErrors,
    check_free_text,
    email_lookup_key,
    find_bsn,
    format_iban,
    format_phone,
    is_personal_field,
    mask_iban,
    normalize_brin,
    normalize_email,
    normalize_iban,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    normalize_text,
    parse_date,
)

VALID_IBANS = [
    "NL91ABNA0417164300",
    "NL20INGB0001234567",
    "NL02ABNA0123456789",
    "NL18RABO0123459876",
]


def rejection(func: Callable[..., object], *args: object) -> FieldError:
    """Call ``func`` and return the FieldError it must raise."""
    with pytest.raises(FieldError) as info:
        func(*args)
    return info.value


# --- FieldError and ValidationErrors --------------------------------------------------------


def test_field_error_message_shows_label_value_and_rule() -> None:
    error = FieldError("brin", "05K0", "characters 3-4 must be letters")
    assert str(error) == "BRIN '05K0': characters 3-4 must be letters"
    assert error.safe_message() == "BRIN: characters 3-4 must be letters"
    assert (error.field, error.value, error.rule) == (
        "brin",
        "05K0",
        "characters 3-4 must be letters",
    )
    assert isinstance(error, ValueError)


def test_field_error_hides_value_when_asked() -> None:
    error = FieldError("city", "Delft", "is odd", show_value=False)
    assert str(error) == "city: is odd"
    assert error.value == "Delft"


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("iban", "IBAN"),
        ("email", "e-mail"),
        ("admin_email", "administrator e-mail"),
        ("admin_name", "administrator name"),
        ("admin_phones", "administrator phone"),
        ("admin_whatever", "admin_whatever"),
        ("notes", "notes"),
    ],
)
def test_personal_fields_never_show_their_value(field: str, label: str) -> None:
    assert is_personal_field(field)
    error = FieldError(field, "Jan Jansen", "is wrong")  # show_value defaults to True
    assert str(error) == f"{label}: is wrong"
    assert "Jan" not in str(error)
    assert "Jan" not in repr(error)
    assert error.value == "Jan Jansen"


@pytest.mark.parametrize("field", ["brin", "postcode", "phone", "name", "city", "street"])
def test_institutional_fields_are_not_personal(field: str) -> None:
    assert not is_personal_field(field)


def test_labels() -> None:
    assert FIELD_LABELS["brin"] == "BRIN"
    assert FIELD_LABELS["postcode"] == "postcode"
    assert FIELD_LABELS["phone"] == "phone"
    assert FIELD_LABELS["name"] == "name"
    assert str(FieldError("colour", "red", "is ugly")) == "colour 'red': is ugly"


def test_field_error_escapes_and_shortens_value_in_message() -> None:
    error = FieldError("city", "Delft\nINFO forged log line", "is odd")
    assert "\n" not in str(error)
    assert "\\n" in str(error)
    long_error = FieldError("city", "x" * 500, "is too long")
    assert len(str(long_error)) < 120
    assert long_error.value == "x" * 500


def test_field_error_survives_pickle() -> None:
    error = FieldError("admin_email", "jan@school.nl", "is wrong")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.value, copy.rule, str(copy)) == (
        "admin_email",
        "jan@school.nl",
        "is wrong",
        str(error),
    )


def test_validation_errors_collects_field_errors() -> None:
    errors = ValidationErrors(
        [
            FieldError("brin", "05K0", "bad BRIN"),
            FieldError("admin_email", "jan@school", "bad address"),
            FieldError("brin", "05K0", "second problem"),
        ]
    )
    assert isinstance(errors, ValueError)
    assert len(errors.errors) == 3
    assert "BRIN '05K0': bad BRIN" in str(errors)
    assert "administrator e-mail: bad address" in str(errors)
    assert "jan@school" not in str(errors)
    assert "05K0" not in errors.safe_message()
    assert errors.by_field()["brin"].rule == "bad BRIN"
    assert str(pickle.loads(pickle.dumps(errors))) == str(errors)


def test_validation_errors_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ValidationErrors([])


# --- BRIN -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("05KO", "05KO"),
        ("05KO00", "05KO00"),
        ("05 KO", "05KO"),
        ("07nu 00", "07NU00"),
        ("  05ko\t", "05KO"),
        ("05-KO.00", "05KO00"),
    ],
)
def test_brin_valid(value: str, expected: str) -> None:
    assert normalize_brin(value) == expected


@pytest.mark.parametrize(
    ("value", "specific"),
    [
        ("05K0", "characters 3-4 must be letters"),
        ("30AJ0A", "characters 5-6 (the branch number) must be digits"),
        ("AB12", "characters 1-2 must be digits"),
    ],
)
def test_brin_invalid_format_names_the_position(value: str, specific: str) -> None:
    error = rejection(normalize_brin, value)
    message = str(error)
    assert message.startswith(f"BRIN '{value}': ")
    assert "must be two digits, two letters and optionally a two-digit branch number" in message
    assert specific in message
    assert error.field == "brin"
    assert error.value == value


def test_brin_ab12_names_both_wrong_positions() -> None:
    message = str(rejection(normalize_brin, "AB12"))
    assert "characters 1-2 must be digits" in message
    assert "characters 3-4 must be letters" in message


def test_brin_zero_for_letter_o_gets_a_hint() -> None:
    assert "letter O" in str(rejection(normalize_brin, "05K0"))


def test_brin_length() -> None:
    error = rejection(normalize_brin, "12KB1")
    assert str(error).startswith("BRIN '12KB1': must be 4 or 6 characters, got 5")


def test_brin_odd_characters() -> None:
    assert "found '/'" in str(rejection(normalize_brin, "05/KO"))


@pytest.mark.parametrize("value", ["", "   "])
def test_brin_required(value: str) -> None:
    assert str(rejection(normalize_brin, value)) == "BRIN: is required"


# --- postcode -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2611 ET", "2611 ET"),
        ("2611et", "2611 ET"),
        ("NL-2611ET", "2611 ET"),
        ("nl 2611 et", "2611 ET"),
        (" 1000-aa ", "1000 AA"),
        ("9999 ZZ", "9999 ZZ"),
    ],
)
def test_postcode_valid(value: str, expected: str) -> None:
    assert normalize_postcode(value) == expected


@pytest.mark.parametrize("value", ["1234 SA", "1234sd", "1234 ss"])
def test_postcode_unused_letter_pairs(value: str) -> None:
    message = str(rejection(normalize_postcode, value))
    assert message.startswith("postcode '")
    assert "letters SA, SD and SS are not used in Dutch postcodes" in message


@pytest.mark.parametrize(
    ("value", "specific"),
    [
        ("0611 ET", "the first digit cannot be 0"),
        ("12345", "got 5 characters instead of 6"),
        ("2611 E1", "the last two characters must be letters"),
        ("A611 ET", "the first four characters must be digits"),
        ("2611#E", "found '#'"),
    ],
)
def test_postcode_invalid(value: str, specific: str) -> None:
    message = str(rejection(normalize_postcode, value))
    assert message.startswith(f"postcode '{value}': ")
    assert "must be four digits (first not 0) and two letters, e.g. 1234 AB" in message
    assert specific in message


# --- IBAN -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_IBANS)
def test_iban_valid(value: str) -> None:
    assert normalize_iban(value) == value
    assert normalize_iban(" " + format_iban(value).lower() + " ") == value


def test_iban_format_and_mask() -> None:
    assert format_iban("NL91ABNA0417164300") == "NL91 ABNA 0417 1643 00"
    assert mask_iban("NL91ABNA0417164300") == "NL** **** **** **43 00"
    assert mask_iban("nl91 abna 0417 1643 00") == "NL** **** **** **43 00"
    assert mask_iban("NL20INGB0001234567") == "NL** **** **** **45 67"


def test_mask_iban_of_short_garbage_hides_everything_but_the_country() -> None:
    assert mask_iban("NL123") == "NL** *"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (
            "NL91ABNA0417164301",
            "check digits do not match (mod-97); is a character mistyped or missing?",
        ),
        ("NL91ABNA041716430", "an IBAN from NL has 18 characters, got 17"),
        (
            "NL91 0417 1643 00AB CD",
            "after the check digits an IBAN from NL has 4 letters, then 10 digits",
        ),
        ("XX91ABNA0417164300", "XX is not a country code that uses IBAN"),
        ("NLAB ABNA 0417 1643 00", "characters 3-4 must be the two check digits"),
        ("1291ABNA0417164300", "must start with a two-letter country code"),
        ("NL91ABNA041716430!", "may only contain letters and digits"),
        ("BE68539007547034", "fails the national check of BE"),
    ],
)
def test_iban_invalid_is_specific_and_hides_the_value(value: str, rule: str) -> None:
    error = rejection(normalize_iban, value)
    message = str(error)
    assert message.startswith("IBAN: ")
    assert rule in message
    assert message == error.safe_message()
    compact = value.replace(" ", "")
    assert compact not in message
    assert compact[4:] not in message
    assert error.value == value


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "shown"),
    [
        ("06 12345678", "+31612345678", "06 12345678"),
        ("+31 6 1234 5678", "+31612345678", "06 12345678"),
        ("0031612345678", "+31612345678", "06 12345678"),
        ("020 123 4567", "+31201234567", "020 123 4567"),
        ("+31 (0)20-123 45 67", "+31201234567", "020 123 4567"),
        ("088 123 4567", "+31881234567", "088 123 4567"),
        ("085 123 4567", "+31851234567", "085 123 4567"),
        ("091 123 4567", "+31911234567", "091 123 4567"),
        ("0800 1234", "+318001234", "0800 1234"),
        ("0800-0222", "+318000222", "0800 0222"),
    ],
)
def test_phone_valid(value: str, expected: str, shown: str) -> None:
    assert normalize_phone(value) == expected
    assert format_phone(expected) == shown


def test_foreign_phone_keeps_its_country_in_display() -> None:
    e164 = normalize_phone("+44 20 7946 0958")
    assert e164 == "+442079460958"
    assert format_phone(e164) == "+44 20 7946 0958"


def test_format_phone_returns_unparsable_input_unchanged() -> None:
    assert format_phone("not a number") == "not a number"


def test_phone_possible_but_invalid() -> None:
    message = str(rejection(normalize_phone, "06123456"))
    assert message.startswith("phone '06123456': is not a valid Dutch phone number")
    assert "this one has 8" in message


@pytest.mark.parametrize("value", ["06-1234abcd", "020 123 4567 ext 12", "tel 0612345678"])
def test_phone_letters_rejected_before_parsing(value: str) -> None:
    assert "contains letters; use digits only" in str(rejection(normalize_phone, value))


def test_phone_other_symbols_rejected() -> None:
    assert "may only contain digits" in str(rejection(normalize_phone, "0612345678#"))


def test_phone_unparsable() -> None:
    assert "has an unknown country code" in str(rejection(normalize_phone, "+999 1234"))


def test_admin_phone_hides_the_value() -> None:
    error = rejection(normalize_phone, "06123456", "admin_phones")
    assert str(error).startswith("administrator phone: is not a valid Dutch phone number")
    assert "06123456" not in str(error)
    assert error.value == "06123456"


# --- e-mail ---------------------------------------------------------------------------------


def test_email_padded_valid() -> None:
    assert normalize_email("  jan.jansen@school.nl \n") == "jan.jansen@school.nl"


def test_email_domain_lower_cased_local_part_kept() -> None:
    assert normalize_email("Jan.Jansen@School.NL") == "Jan.Jansen@school.nl"
    assert email_lookup_key(" Jan.Jansen@School.NL ") == "jan.jansen@school.nl"


def test_email_without_top_level_domain_rejected() -> None:
    error = rejection(normalize_email, "a@b")
    assert str(error) == "e-mail: the part after the @-sign is not valid. It should have a period."
    assert error.value == "a@b"


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("jan.jansen@@school.nl", "jan.jansen"),
        ("jan.jansen@school..nl", "jan.jansen"),
        ("jan.jansen@xn--abc.nl", "xn--abc"),
        ("pietje@a\u0660\u06f0.nl", "a\u0660\u06f0"),
        ("Jan Jansen <jan.jansen@school.nl>", "jansen"),
        ("pietje puk@school.nl", "pietje"),
    ],
)
def test_email_message_never_contains_the_address(value: str, secret: str) -> None:
    error = rejection(normalize_email, value, "admin_email")
    assert str(error).startswith("administrator e-mail: ")
    assert secret.lower() not in str(error).lower()
    assert secret.lower() not in error.safe_message().lower()
    assert error.value == value


def test_email_required() -> None:
    assert str(rejection(normalize_email, "  ")) == "e-mail: is required"


# --- BSN and free text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "111222333",
        "BSN van de leerling: 123.456.782, graag verwijderen",
        "999999990",
        "zie 1112.22.333.",
        "nummer 123 456 782",
        "bsn123456782",
        # an invalid run must not hide a valid one that overlaps or follows it
        "123456789 en 111222333",
    ],
)
def test_bsn_in_notes_refused_without_echo(text: str) -> None:
    assert find_bsn(text) is not None
    error = rejection(check_free_text, text)
    assert error.rule == BSN_RULE
    assert str(error).startswith("notes: contains what looks like a BSN")
    digits = "".join(ch for ch in (find_bsn(text) or "") if ch.isdigit())
    for part in (digits, digits[:3], find_bsn(text) or ""):
        assert part not in str(error)
        assert part not in error.safe_message()


@pytest.mark.parametrize(
    "text",
    [
        "123456789",  # nine digits that fail the 11-proof
        "bel 06 12345678 of 020 123 4567",
        "IBAN NL91ABNA0417164300",
        "0111222333",  # ten digits: not a BSN run
        "1112223334",
        "factuur 2026-0042, bedrag 1.234,56",
    ],
)
def test_text_without_bsn_accepted(text: str) -> None:
    assert find_bsn(text) is None
    assert check_free_text(text) == text


def test_find_bsn_returns_the_match() -> None:
    assert find_bsn("nr 123.456.782!") == "123.456.782"
    assert find_bsn("nothing here") is None


def test_free_text_trims_and_keeps_lines() -> None:
    assert check_free_text("  eerste regel\r\ntweede regel \n") == "eerste regel\ntweede regel"
    assert check_free_text("   ") == ""


def test_free_text_too_long_hides_text() -> None:
    error = rejection(check_free_text, "geheim " * 10, "notes", 20)
    assert str(error) == "notes: is too long: at most 20 characters, got 69"


def test_free_text_control_characters_refused() -> None:
    assert "control characters" in str(rejection(check_free_text, "a\x1b[31mred"))


def test_name_normalised() -> None:
    assert normalize_name("  Basisschool   De\tRegenboog \n") == "Basisschool De Regenboog"


def test_name_required_and_length() -> None:
    assert str(rejection(normalize_name, " \t ")) == "name: is required"
    message = str(rejection(normalize_name, "x" * 201))
    assert "is too long: at most 200 characters, got 201" in message


def test_name_refuses_bsn_without_echo() -> None:
    error = rejection(normalize_name, "Jan 111222333", "admin_name")
    assert str(error) == f"administrator name: {BSN_RULE}"
    error = rejection(normalize_name, "School 111222333")
    assert "111222333" not in str(error)


def test_text_optional_and_required() -> None:
    assert normalize_text("  ", "city", required=False) == ""
    assert normalize_text(" Den   Haag ", "city") == "Den Haag"
    assert str(rejection(normalize_text, "", "street")) == "street: is required"
    message = str(rejection(normalize_text, "Amsterdam", "city", 5))
    assert message == "city 'Amsterdam': is too long: at most 5 characters, got 9"


# --- dates ----------------------------------------------------------------------------------


def test_parse_date() -> None:
    assert parse_date(" 2026-03-02 ", "start_date") == datetime.date(2026, 3, 2)
    assert parse_date("", "start_date") is None
    assert parse_date("  ", "end_date") is None


@pytest.mark.parametrize("value", ["02-03-2026", "20260302", "2026-W10-1", "2026-3-2", "morgen"])
def test_parse_date_bad_format(value: str) -> None:
    error = rejection(parse_date, value, "start_date")
    assert (
        str(error) == f"start date '{value}': must be a date written as YYYY-MM-DD, e.g. 2026-03-02"
    )


def test_parse_date_not_a_real_date() -> None:
    assert "is not an existing date" in str(rejection(parse_date, "2026-02-30", "start_date"))


# --- property-based tests -------------------------------------------------------------------

PADDING = st.sampled_from(["", " ", "  ", "\t", "\n", " \t\n ", "\u00a0"])


@st.composite
def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips, strict=True))


@st.composite
def brins(draw: st.DrawFn) -> tuple[str, str]:
    """(how someone might type it, its normal form)."""
    canonical = draw(st.from_regex(r"[0-9]{2}[A-Z]{2}([0-9]{2})?", fullmatch=True))
    typed = draw(random_case(canonical))
    spaced = "".join(
        ch + draw(st.sampled_from(["", "", " "])) if i < len(typed) - 1 else ch
        for i, ch in enumerate(typed)
    )
    return draw(PADDING) + spaced + draw(PADDING), canonical


@st.composite
def postcodes(draw: st.DrawFn) -> tuple[str, str]:
    digits = draw(st.from_regex(r"[1-9][0-9]{3}", fullmatch=True))
    letters = draw(
        st.from_regex(r"[A-Z]{2}", fullmatch=True).filter(lambda s: s not in {"SA", "SD", "SS"})
    )
    prefix = draw(st.sampled_from(["", "NL", "NL-", "NL ", "nl-"]))
    separator = draw(st.sampled_from(["", " ", "-"]))
    typed = prefix + digits + separator + draw(random_case(letters))
    return draw(PADDING) + typed + draw(PADDING), f"{digits} {letters}"


def iban_check_digits(country: str, bban: str) -> str:
    """Check digits computed here, independently of stdnum (ISO 13616 mod-97)."""
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


@st.composite
def dutch_ibans(draw: st.DrawFn) -> tuple[str, str]:
    bank = draw(st.from_regex(r"[A-Z]{4}", fullmatch=True))
    account = draw(st.from_regex(r"[0-9]{10}", fullmatch=True))
    canonical = "NL" + iban_check_digits("NL", bank + account) + bank + account
    typed = draw(st.sampled_from([canonical, format_iban(canonical)]))
    return draw(PADDING) + draw(random_case(typed)) + draw(PADDING), canonical


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(st.from_regex(r"[A-Za-z0-9]{1,10}([._-][A-Za-z0-9]{1,10}){0,2}", fullmatch=True))
    labels = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True), min_size=1, max_size=3)
    )
    tld = draw(st.sampled_from(["nl", "com", "org", "eu", "be"]))
    domain = ".".join([*labels, tld])
    typed = local + "@" + draw(random_case(domain))
    return draw(PADDING) + typed + draw(PADDING), f"{local}@{domain}"


@st.composite
def dutch_phones(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(
        st.sampled_from(
            ["61", "62", "63", "64", "65", "68", "20", "10", "70", "30", "88", "85", "91"]
        )
    )
    subscriber = draw(st.from_regex(r"[0-9]{7}", fullmatch=True))
    national = prefix + subscriber
    lead = draw(st.sampled_from(["0", "+31", "+31 ", "0031", "+31 (0)"]))
    digits = national
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=1, max_value=len(national) - 1))
        digits = national[:cut] + draw(st.sampled_from([" ", "-", "."])) + national[cut:]
    return draw(PADDING) + lead + digits + draw(PADDING), "+31" + national


@st.composite
def valid_bsns(draw: st.DrawFn) -> str:
    first = draw(st.from_regex(r"[0-9]{8}", fullmatch=True))
    check = sum((9 - i) * int(d) for i, d in enumerate(first)) % 11
    assume(check < 10 and int(first) > 0)
    return first + str(check)


@given(brins())
def test_brin_normalisation_property(case: tuple[str, str]) -> None:
    typed, canonical = case
    assert normalize_brin(typed) == canonical
    assert normalize_brin(normalize_brin(typed)) == canonical


@given(postcodes())
def test_postcode_normalisation_property(case: tuple[str, str]) -> None:
    typed, canonical = case
    assert normalize_postcode(typed) == canonical
    assert normalize_postcode(normalize_postcode(typed)) == canonical


@given(dutch_ibans())
def test_iban_normalisation_property(case: tuple[str, str]) -> None:
    typed, canonical = case
    assert normalize_iban(typed) == canonical
    assert normalize_iban(normalize_iban(typed)) == canonical
    assert normalize_iban(format_iban(canonical)) == canonical
    masked = mask_iban(canonical)
    assert masked.startswith("NL** ")
    assert masked.replace(" ", "").endswith(canonical[-4:])
    assert canonical[4:14] not in masked.replace(" ", "")


@given(dutch_ibans(), st.integers(min_value=4, max_value=17), st.sampled_from("0123456789"))
def test_iban_single_digit_change_is_rejected_without_echo(
    case: tuple[str, str], position: int, digit: str
) -> None:
    _, canonical = case
    assume(canonical[position].isdigit() and canonical[position] != digit)
    broken = canonical[:position] + digit + canonical[position + 1 :]
    error = rejection(normalize_iban, broken)
    assert "mod-97" in str(error)
    assert broken[4:] not in str(error)


@given(emails())
def test_email_normalisation_property(case: tuple[str, str]) -> None:
    typed, canonical = case
    assert normalize_email(typed) == canonical
    assert normalize_email(normalize_email(typed)) == canonical
    assert email_lookup_key(typed) == canonical.lower()


@given(emails(), st.sampled_from(["@@", "..", " ", "!", "_"]))
def test_broken_email_message_has_no_local_part(case: tuple[str, str], damage: str) -> None:
    _, canonical = case
    local, _, domain = canonical.partition("@")
    assume(len(local) >= 4)
    broken = f"zq{local}@{domain.replace('.', damage, 1)}"
    try:
        normalize_email(broken)
    except FieldError as error:
        assert f"zq{local}".lower() not in str(error).lower()
        assert str(error) == error.safe_message()


@given(dutch_phones())
def test_phone_normalisation_property(case: tuple[str, str]) -> None:
    typed, e164 = case
    assert normalize_phone(typed) == e164
    assert normalize_phone(normalize_phone(typed)) == e164
    assert normalize_phone(format_phone(e164)) == e164


@given(valid_bsns(), st.sampled_from(["plain", "4-2-3", "3-3-3"]), st.sampled_from([".", " ", "-"]))
def test_any_valid_bsn_in_text_is_found(bsn: str, layout: str, sep: str) -> None:
    written = {
        "plain": bsn,
        "4-2-3": f"{bsn[:4]}{sep}{bsn[4:6]}{sep}{bsn[6:]}",
        "3-3-3": f"{bsn[:3]}{sep}{bsn[3:6]}{sep}{bsn[6:]}",
    }[layout]
    text = f"Leerling heeft nummer {written}, bel terug."
    assert find_bsn(text) == written
    error = rejection(check_free_text, text)
    assert bsn not in str(error)
    error = rejection(normalize_text, f"Plan {written}", "plan")
    assert bsn not in str(error)


@given(st.text(max_size=60), PADDING, PADDING)
def test_padding_never_changes_text_results(text: str, left: str, right: str) -> None:
    def outcome(func: Callable[[str], object], value: str) -> object:
        try:
            return func(value)
        except FieldError as error:
            return ("error", error.rule)

    for func in (
        normalize_brin,
        normalize_postcode,
        normalize_iban,
        normalize_phone,
        normalize_email,
        normalize_name,
        check_free_text,
        lambda value: parse_date(value, "start_date"),
    ):
        assert outcome(func, left + text + right) == outcome(func, text)


NORMALISERS: list[Callable[[str], object]] = [
    normalize_brin,
    normalize_postcode,
    normalize_iban,
    normalize_phone,
    lambda value: normalize_phone(value, "admin_phones"),
    normalize_email,
    email_lookup_key,
    check_free_text,
    normalize_name,
    lambda value: normalize_text(value, "city", required=False),
    lambda value: parse_date(value, "start_date"),
]


ARBITRARY_TEXT = st.one_of(
    st.text(),
    # near misses: the characters the identifiers are made of
    st.text(alphabet="0123456789+-() ./@NLKOSAETnlko\u00a0\u0660", max_size=30),
)


@given(ARBITRARY_TEXT)
def test_normalisers_raise_only_field_errors(text: str) -> None:
    for func in NORMALISERS:
        try:
            result = func(text)
        except FieldError as error:
            assert error.rule
            assert str(error)
        else:
            if isinstance(result, str):
                # whatever was accepted is a fixed point of the same normaliser
                assert func(result) == result


@given(st.text())
def test_display_helpers_never_raise(text: str) -> None:
    assert isinstance(mask_iban(text), str)
    assert isinstance(format_iban(text), str)
    assert isinstance(format_phone(text), str)
    found = find_bsn(text)
    assert found is None or isinstance(found, str)


@given(st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd", "Zs", "Po"]), max_size=40))
def test_personal_field_errors_never_show_the_value(text: str) -> None:
    for func in (
        normalize_iban,
        normalize_email,
        lambda value: normalize_phone(value, "admin_phones"),
        lambda value: normalize_name(value, "admin_name", 10),
    ):
        try:
            func(text)
        except FieldError as error:
            assert str(error) == error.safe_message()
