"""The input rules of :mod:`plusjeklas_tui.validation`, shown inline in the forms.

The English texts are the validation module's own (:data:`~plusjeklas_tui.validation.RULES`,
also what the CLI prints), so the two cannot drift apart; the Dutch ones are here, one per
rule code, with the same ``{placeholders}``. Field labels are for errors shown above a form
rather than next to their field.
"""

from plusjeklas_tui.validation import FIELD_LABELS, RULES

_VOORBEELD = "bijv. 020 123 4567 of 06 12345678"

DUTCH: dict[str, str] = {
    "required": "is verplicht",
    "brin.shape": (
        "moet bestaan uit twee cijfers, twee letters en eventueel een vestigingsnummer van twee "
        "cijfers (bijv. 05KO of 05KO00)"
    ),
    "brin.odd": (
        "mag alleen cijfers en letters bevatten (spaties, streepjes en punten tellen niet mee), "
        "gevonden: {found}"
    ),
    "brin.length": "moet 4 of 6 tekens lang zijn, maar is {length}; bijv. 05KO of 05KO00",
    "brin.head_digits": "teken 1-2 moeten cijfers zijn",
    "brin.head_digits_o": "teken 1-2 moeten cijfers zijn (is een O bedoeld als nul?)",
    "brin.letters": "teken 3-4 moeten letters zijn",
    "brin.letters_zero": "teken 3-4 moeten letters zijn (is een nul bedoeld als de letter O?)",
    "brin.branch_digits": "teken 5-6 (het vestigingsnummer) moeten cijfers zijn",
    "brin.branch_digits_o": (
        "teken 5-6 (het vestigingsnummer) moeten cijfers zijn (is een O bedoeld als nul?)"
    ),
    "postcode.shape": "moet vier cijfers (eerste niet 0) en twee letters zijn, bijv. 1234 AB",
    "postcode.unused_letters": (
        "de letters SA, SD en SS worden in Nederlandse postcodes niet gebruikt"
    ),
    "postcode.odd": "mag alleen cijfers en letters bevatten, gevonden: {found}",
    "postcode.length": "heeft {length} tekens in plaats van 6",
    "postcode.first_four_digits": "de eerste vier tekens moeten cijfers zijn",
    "postcode.first_digit_zero": "het eerste cijfer mag geen 0 zijn",
    "postcode.last_two_letters": "de laatste twee tekens moeten letters zijn",
    "iban.odd": "mag alleen letters en cijfers bevatten (spaties mogen), gevonden: {found}",
    "iban.country_code": (
        "moet beginnen met een landcode van twee letters, bijv. NL91 ABNA 0417 1643 00"
    ),
    "iban.unknown_country": "{country} is geen landcode die IBAN gebruikt",
    "iban.check_digits": "teken 3-4 moeten de twee controlecijfers zijn",
    "iban.length": "een IBAN uit {country} heeft {expected} tekens, deze heeft er {length}",
    "iban.structure": "na de controlecijfers heeft een IBAN uit {country} {described}",
    "iban.part.n": "{count} cijfers",
    "iban.part.a": "{count} letters",
    "iban.part.c": "{count} letters of cijfers",
    "iban.part.then": ", dan ",
    "iban.checksum": (
        "de controlecijfers kloppen niet (mod-97); is er een teken verkeerd getypt of vergeten?"
    ),
    "iban.national_check": (
        "de bankcode of het rekeningnummer voldoet niet aan de nationale controle van {country}"
    ),
    "iban.account_length": "het rekeningnummer heeft de verkeerde lengte voor {country}",
    "iban.account_format": "het rekeningnummer heeft de verkeerde vorm voor {country}",
    "iban.invalid": "is geen geldige IBAN",
    "phone.letters": "bevat letters; gebruik alleen cijfers",
    "phone.characters": "mag alleen cijfers, spaties en + - ( ) . / bevatten",
    "phone.country_code": (
        "heeft een onbekende landcode; begin met 0 voor Nederlandse nummers of met +<landcode>"
    ),
    "phone.not_a_number": f"is geen telefoonnummer; {_VOORBEELD}",
    "phone.short_after_country": "is te kort na de landcode",
    "phone.too_short": f"is te kort; {_VOORBEELD}",
    "phone.too_long": f"is te lang; {_VOORBEELD}",
    "phone.dutch_invalid": f"is geen geldig Nederlands telefoonnummer ({_VOORBEELD})",
    "phone.dutch_digits": (
        "de meeste Nederlandse nummers hebben 10 cijfers inclusief de 0 vooraan, "
        "dit nummer heeft er {digits}"
    ),
    "phone.foreign_invalid": "is geen geldig telefoonnummer voor landcode +{country_code}",
    "phones.required": "er is minstens één telefoonnummer nodig",
    "phones.item": "nummer {position}: {rule}",
    "email.invalid": "is geen geldig e-mailadres",
    "email.no_at": "een e-mailadres moet een @ bevatten.",
    "email.nothing_before": "er moet iets vóór de @ staan.",
    "email.nothing_after": "er moet iets na de @ staan.",
    "email.no_period": "het deel na de @ is niet geldig: er hoort een punt in te staan.",
    "email.two_periods": "een e-mailadres mag geen twee punten achter elkaar hebben.",
    "email.local_characters": "het deel vóór de @ bevat ongeldige tekens: {found}.",
    "email.domain_characters": "het deel na de @ bevat ongeldige tekens: {found}.",
    "text.bsn": (
        "bevat iets wat op een BSN (burgerservicenummer) lijkt; de privacyverklaring belooft "
        "dat er geen gevoelige persoonsgegevens worden bewaard — haal het weg"
    ),
    "text.control": "bevat stuurtekens; gebruik gewone tekst",
    "text.too_long": "is te lang: hoogstens {max_length} tekens, dit zijn er {length}",
    "date.format": "moet een datum zijn in de vorm JJJJ-MM-DD, bijv. 2026-03-02",
    "date.not_existing": "is geen bestaande datum (JJJJ-MM-DD, bijv. 2026-03-02)",
}
"""Dutch text per rule code (a test checks every code has one, with the same placeholders)."""

DUTCH_LABELS: dict[str, str] = {
    "brin": "BRIN",
    "postcode": "postcode",
    "iban": "IBAN",
    "phone": "telefoon",
    "email": "e-mail",
    "name": "naam",
    "street": "straat",
    "house_number": "huisnummer",
    "city": "plaats",
    "plan": "abonnement",
    "notes": "notities",
    "start_date": "begindatum",
    "end_date": "einddatum",
    "started_on": "begindatum",
    "left_on": "vertrekdatum",
    "admin_email": "e-mail beheerder",
    "admin_phones": "telefoon beheerder",
    "admin_phone": "telefoon beheerder",
    "admin_name": "naam beheerder",
    "contact_name": "naam contactpersoon",
    "contact_email": "e-mail contactpersoon",
    "contact_phone": "telefoon contactpersoon",
}

STRINGS: dict[str, tuple[str, str]] = {
    **{f"validation.{code}": (DUTCH.get(code, ""), english) for code, english in RULES.items()},
    **{
        f"validation.field.{field}": (DUTCH_LABELS.get(field, ""), label)
        for field, label in FIELD_LABELS.items()
    },
}
