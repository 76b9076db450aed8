"""The demo's vocabulary: word lists of Dutch schools, and Faker's streets, cities and names.

What the generator draws from. Faker is called only to fill the pools
(:func:`load_pools`), once per run, because it is slow per call; the generator then combines
them with its own seeded :class:`random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

# The demo installation's staff accounts: its config names them, consent events cite the editor.
DEMO_VIEWER = "demo-viewer"
DEMO_EDITOR = "demo-editor"


def _split(text: str, separator: str | None = None) -> tuple[str, ...]:
    """Word lists are kept as text blocks: ``"a | b"`` -> ``("a", "b")``."""
    return tuple(part.strip() for part in text.split(separator) if part.strip())


# (prefix, weight): how Dutch primary schools announce their denomination or pedagogy.
PREFIXES = (
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
CORES = _split(
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
PATRONS = _split(
    """
    Koningin Julianaschool | Koningin Beatrixschool | Prins Clausschool |
    Willem de Zwijgerschool | Johan Frisoschool | Prinses Margrietschool |
    Koning Willem-Alexanderschool | Sint Jozefschool | Sint Franciscusschool |
    Maria Montessorischool | Anne Frankschool | Annie M.G. Schmidtschool
    """,
    "|",
)
TITLES = ("Dr.", "Mr.", "Meester", "Juf", "Ds.")
AREAS = ("Noord", "Zuid", "Oost", "West", "Centrum")
NOTES = (
    "Lessen bij voorkeur op woensdagochtend.",
    "Factuur graag naar het administratiekantoor van het schoolbestuur.",
    "Gymzaal is op dinsdag niet beschikbaar.",
    "Contact loopt via de directie; niet in de schoolvakanties bellen.",
    "Interesse in een extra workshop voor groep 7 en 8.",
    "Nieuw gebouw vanaf volgend schooljaar.",
)
CONTACT_BOXES = ("info", "info", "info", "administratie", "directie", "secretariaat")
BANKS = ("ABNA", "INGB", "RABO", "SNSB", "ASNB", "TRIO", "KNAB", "BUNQ", "RBRB")
PLANS = ("Plusjeklas Basis", "Plusjeklas Plus", "Plusjeklas Compleet")
TRIAL_PLAN = "Plusjeklas Proef"
# Area codes of Dutch fixed lines (two- and three-digit); 085/088 are common for school boards.
AREA_CODES = _split(
    """
    10 13 15 20 23 24 26 30 33 35 36 38 40 43 45 46 50 53 55 58 70 71 72 73 74 75 76 77 78 79
    111 113 114 115 117 118 161 162 164 165 166 167 168 172 174 180 181 182 183 184 186 187 222
    223 224 226 227 228 229 251 252 255 294 297 299 313 314 315 316 317 318 320 321 341 342 343
    344 345 346 347 348 411 412 413 416 418 475 478 481 485 486 487 488 492 493 495 497 499 511
    512 513 514 515 516 517 518 519 521 522 523 524 525 527 528 529 541 543 544 545 546 547 548
    561 562 566 570 571 572 573 575 577 578
    """
)
MOBILE_PREFIXES = ("61", "62", "63", "64", "65", "68")
PURPOSE_GRANT_RATE = {"newsletter": 0.55, "analytics": 0.3, "feedback": 0.4}
DEMO_STAFF_TAGS = ("staff:sascha", f"staff:{DEMO_EDITOR}")
# Postcode letters in use; SA, SD and SS are never issued (stdnum rejects them).
POSTCODE_LETTERS = tuple(
    a + b
    for a in "ABCDEGHJKLMNPRSTVWXZ"
    for b in "ABCDEGHJKLMNPRSTVWXZ"
    if a + b not in {"SA", "SD", "SS"}
)

PREFIX_NAMES = tuple(name for name, _ in PREFIXES)
PREFIX_CUMULATIVE = tuple(accumulate(weight for _, weight in PREFIXES))
WEB_FORM_EVIDENCE = {
    purpose: tuple(
        f"web form v{version}" + (", double opt-in confirmed" if purpose == "newsletter" else "")
        for version in (1, 2, 3)
    )
    for purpose in PURPOSE_GRANT_RATE
}
STAFF_EVIDENCE = ("asked by e-mail", "asked by phone", "workshop sign-up")


@dataclass(frozen=True)
class Pools:
    streets: list[str]
    cities: list[str]
    city_prefix: dict[str, int]
    first_names: list[str]
    last_names: list[str]


def load_pools(seed: int) -> Pools:
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
    return Pools(streets, cities, city_prefix, first_names, last_names)
