"""Validation messages in the interface language: rule codes looked up in the catalogue.

The English catalogue text of every rule is the validation module's own (what the CLI
prints); the Dutch one comes from the catalogue. A form in Dutch shows Dutch rules inline,
never the typed value.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services import records
from plusjeklas_tui.tui.app import PlusjeklasApp
from plusjeklas_tui.tui.i18n import CATALOGUE, language, placeholders, set_language
from plusjeklas_tui.tui.screens.administrator_form import AdministratorForm, check_phones
from plusjeklas_tui.tui.screens.organisation_form import OrganisationForm
from plusjeklas_tui.tui.screens.record import RecordScreen
from plusjeklas_tui.tui.validation_text import error_text, rule_text
from plusjeklas_tui.validation import (
    FIELD_LABELS,
    RULES,
    FieldError,
    check_free_text,
    normalize_brin,
    normalize_email,
    normalize_iban,
    normalize_phone,
    normalize_postcode,
    parse_date,
)

SQLITE = pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)


@pytest.fixture
def dutch() -> object:
    before = language()
    set_language("nl")
    yield
    set_language(before)


@pytest.fixture
def english() -> object:
    before = language()
    set_language("en")
    yield
    set_language(before)


def rejection(check: object, *args: object) -> FieldError:
    with pytest.raises(FieldError) as info:
        check(*args)  # type: ignore[operator]
    return info.value


REJECTIONS = [
    (normalize_brin, ("",)),
    (normalize_brin, ("05K0",)),
    (normalize_brin, ("O5KOO0",)),
    (normalize_brin, ("05-K!",)),
    (normalize_brin, ("05KOX",)),
    (normalize_postcode, ("0123 AB",)),
    (normalize_postcode, ("1234 SA",)),
    (normalize_postcode, ("12$4 AB",)),
    (normalize_postcode, ("12345",)),
    (normalize_postcode, ("ABCD 12",)),
    (normalize_iban, ("NL91ABNA0417164301",)),
    (normalize_iban, ("NL91ABN10417164300",)),
    (normalize_iban, ("XX91ABNA0417164300",)),
    (normalize_iban, ("NL91ABNA041716430",)),
    (normalize_iban, ("91NLABNA0417164300",)),
    (normalize_iban, ("NL9XABNA0417164300",)),
    (normalize_iban, ("NL91 ABNA 0417 1643 0!",)),
    (normalize_phone, ("06-1234abcd",)),
    (normalize_phone, ("020#123",)),
    (normalize_phone, ("06123456",)),
    (normalize_phone, ("+999 123",)),
    (normalize_phone, ("+3221234",)),
    (normalize_email, ("bert@",)),
    (normalize_email, ("@school.nl",)),
    (normalize_email, ("bert",)),
    (normalize_email, ("bert@school",)),
    (normalize_email, ("a..b@school.nl",)),
    (check_free_text, ("bel 111222333",)),
    (check_free_text, ("a\x07b",)),
    (check_free_text, ("x" * 2001,)),
    (parse_date, ("2026-3-2", "start_date")),
    (parse_date, ("2026-02-30", "start_date")),
    (check_phones, ("0612345678; 06123",)),
    (check_phones, (" ; ",)),
]


def test_every_rule_has_dutch_and_the_validation_modules_english() -> None:
    for code, english_text in RULES.items():
        nl, en = CATALOGUE[f"validation.{code}"]
        assert en == english_text, code
        assert nl.strip(), code
        assert nl != en or code == "iban.part.a", code  # "{count} letters" in both
        assert placeholders(nl) == placeholders(en), code
    for field, label in FIELD_LABELS.items():
        nl, en = CATALOGUE[f"validation.field.{field}"]
        assert en == label and nl.strip(), field


@pytest.mark.parametrize(("check", "args"), REJECTIONS)
def test_rejections_carry_known_codes_and_read_the_same_in_english(
    check: object, args: tuple[object, ...], english: object
) -> None:
    error = rejection(check, *args)
    assert error.parts, "a rule without a code cannot be translated"
    assert all(part.code in RULES for part in error.parts)
    assert error.code == error.parts[0].code
    assert rule_text(error) == error.rule  # the app's English is the CLI's English


@pytest.mark.parametrize(("check", "args"), REJECTIONS)
def test_rejections_read_in_dutch_without_the_value(
    check: object, args: tuple[object, ...], dutch: object
) -> None:
    error = rejection(check, *args)
    text = rule_text(error)
    assert text and text != error.rule
    assert "{" not in text  # every placeholder was filled
    if error.parts[0].english is None:
        for english_word in (" must ", " only ", " is required", "characters"):
            assert english_word not in text
    if len(error.value) > 3 and not error.show_value:
        assert error.value not in text


def test_composite_rules_in_dutch(dutch: object) -> None:
    error = rejection(normalize_postcode, "0123 AB")
    assert rule_text(error) == (
        "moet vier cijfers (eerste niet 0) en twee letters zijn, bijv. 1234 AB; "
        "het eerste cijfer mag geen 0 zijn"
    )
    error = rejection(normalize_iban, "NL91ABN10417164300")
    assert (
        rule_text(error) == "na de controlecijfers heeft een IBAN uit NL 4 letters, dan 10 cijfers"
    )
    error = rejection(check_phones, "0612345678; 06123")
    assert rule_text(error).startswith("nummer 2: is geen geldig Nederlands telefoonnummer (bijv.")
    assert error_text(error).startswith("telefoon beheerder: nummer 2: ")
    assert "06123" not in error_text(error)


def test_an_explanation_without_a_code_says_something_general_in_dutch(dutch: object) -> None:
    error = rejection(normalize_email, "bert@xn--ls8h.la")  # IDNA: no code of its own
    assert error.parts[0].code == "email.invalid"
    assert rule_text(error) == "is geen geldig e-mailadres"
    assert str(error) == f"e-mail: {error.rule}"  # the CLI keeps email-validator's detail


def test_plain_text_rules_from_services_are_shown_as_they_are(dutch: object) -> None:
    error = FieldError("brin", "05KO", "already used by organisation #7")
    assert error.parts == () and error.code is None
    assert rule_text(error) == "already used by organisation #7"
    assert rule_text(FieldError("status", "", "is required")) == "is verplicht"


# --- in the app ----------------------------------------------------------------------------


def seed(ctx: AppContext) -> int:
    with session_scope(ctx.engine) as s:
        org = records.create_organisation(
            s,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "OBS De Klimop",
                    "street": "Kerkstraat 1",
                    "postcode": "1234 AB",
                    "city": "Utrecht",
                    "brin": "05KO",
                    "phone": "030 123 4567",
                    "email": "info@klimop.example",
                }
            ),
        )
        return org.id  # type: ignore[return-value]


@SQLITE
@pytest.mark.parametrize(
    ("lang", "postcode_rule", "email_rule"),
    [
        ("nl", "het eerste cijfer mag geen 0 zijn", "er moet iets na de @ staan."),
        ("en", "the first digit cannot be 0", "there must be something after the @-sign."),
    ],
)
async def test_forms_show_rules_inline_in_the_configured_language(
    ctx: AppContext, lang: str, postcode_rule: str, email_rule: str
) -> None:
    org_id = seed(ctx)
    ctx.settings = ctx.settings.model_copy(update={"language": lang})
    app = PlusjeklasApp(ctx)
    app.auto_refresh_seconds = 3600
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await app.push_screen(RecordScreen(org_id))
            await pilot.pause(0.3)
            await pilot.press("e")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, OrganisationForm)
            field = form.form_field("postcode")
            field.focus_input()
            field.input.value = ""  # type: ignore[union-attr]
            await pilot.press(*"0123 AB")
            await pilot.press("tab")
            assert field.error_text.endswith(postcode_rule)
            assert "0123" not in field.error_text
            await pilot.press("escape")  # discard? yes
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            await pilot.press("n")  # a new person
            await pilot.pause()
            form = app.screen
            assert isinstance(form, AdministratorForm)
            email = form.form_field("admin_email")
            email.focus_input()
            assert isinstance(email.input, Input)
            await pilot.press(*"bert@")
            await pilot.press("tab")
            assert email.error_text == email_rule
    finally:
        set_language("en")
