"""A breach as the Autoriteit Persoonsgegevens' notification form asks it, ready to copy over.

Two forms of the same content: Markdown in Dutch or English, section by section in the order
of the regulator's online form, and JSON with every field (codes as stored, times in UTC, and
the organisation filled in from the configuration). Every question of the form appears, also
when the register has no answer yet: it then says so, and :attr:`BreachForm.unfilled` lists
those questions, so nobody sends a form with a silent gap.

The organisation comes from ``[controller]`` (name, address, e-mail, phone, KvK number) and the
address for reports from ``[breach] contact``. The ``[controller]`` section is read defensively:
a configuration without it still exports, with those questions listed as unfilled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from plusjeklas_tui.config import Settings
from plusjeklas_tui.models import Breach
from plusjeklas_tui.services.breaches import (
    LOCAL_TZ,
    breach_deadline,
    breach_time_left,
    split_duration,
    values_of,
)
from plusjeklas_tui.sqltypes import utcnow

Language = Literal["nl", "en"]

# (key, Dutch, English): the form's sections and questions, in its order.
SECTIONS: tuple[tuple[str, str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "notification",
        "Melding",
        "Notification",
        (
            ("follow_up", "Nieuwe melding of vervolgmelding", "New notification or follow-up"),
            ("earlier_reference", "Meldnummer eerdere melding", "Number of the earlier report"),
        ),
    ),
    (
        "organisation",
        "Organisatie",
        "Organisation",
        (
            ("organisation_name", "Naam organisatie", "Name of the organisation"),
            ("organisation_address", "Adres", "Address"),
            ("organisation_chamber_of_commerce", "KvK-nummer", "Chamber of Commerce number"),
            ("organisation_email", "E-mailadres organisatie", "E-mail of the organisation"),
            ("organisation_phone", "Telefoon organisatie", "Phone of the organisation"),
            ("contact_name", "Naam contactpersoon", "Contact person's name"),
            ("contact_function", "Functie contactpersoon", "Contact person's function"),
            ("contact_phone", "Telefoon contactpersoon", "Contact person's phone"),
            ("contact_email", "E-mail contactpersoon", "Contact person's e-mail"),
        ),
    ),
    (
        "processor",
        "Verwerker",
        "Processor",
        (
            ("processor_involved", "Is een verwerker betrokken?", "Was a processor involved?"),
            ("processor_name", "Naam verwerker", "Name of the processor"),
        ),
    ),
    (
        "timeline",
        "Tijdlijn",
        "Timeline",
        (
            ("started_at", "Begin van het datalek", "When the breach started"),
            ("ended_at", "Einde van het datalek", "When the breach ended"),
            ("ongoing", "Duurt het datalek nog voort?", "Is the breach still going on?"),
            ("discovered_at", "Ontdekt op", "When it was discovered"),
            ("deadline", "Uiterste meldmoment (72 uur)", "Deadline to report (72 hours)"),
            (
                "late_reason",
                "Reden van melden na 72 uur",
                "Reason for reporting after 72 hours",
            ),
        ),
    ),
    (
        "incident",
        "Wat is er gebeurd",
        "What happened",
        (
            ("summary", "Samenvatting", "Summary"),
            ("nature", "Aard van het datalek", "Nature of the breach"),
            ("cause", "Oorzaak", "Cause"),
        ),
    ),
    (
        "data",
        "Gegevens",
        "Data",
        (
            ("data_types", "Soort persoonsgegevens", "Types of personal data"),
            ("data_types_other", "Andere gegevens", "Other data"),
            ("records_approx", "Aantal records (ongeveer)", "Number of records (approximately)"),
        ),
    ),
    (
        "people",
        "Betrokkenen",
        "People affected",
        (
            ("groups", "Groepen betrokkenen", "Groups of people affected"),
            ("people_min", "Aantal betrokkenen (minimaal)", "Number of people (minimum)"),
            ("people_max", "Aantal betrokkenen (maximaal)", "Number of people (maximum)"),
            (
                "vulnerable_groups",
                "Kinderen of andere kwetsbare groepen?",
                "Children or other vulnerable groups?",
            ),
        ),
    ),
    (
        "protection",
        "Beveiliging",
        "Protection",
        (
            (
                "encrypted",
                "Versleuteld, gehasht of anderszins onbegrijpelijk?",
                "Encrypted, hashed or otherwise unintelligible?",
            ),
        ),
    ),
    (
        "consequences",
        "Gevolgen",
        "Consequences",
        (("consequences", "Mogelijke gevolgen voor betrokkenen", "Likely consequences"),),
    ),
    (
        "informing",
        "Informeren betrokkenen",
        "Informing the people",
        (
            ("informed", "Zijn de betrokkenen geïnformeerd?", "Were the people informed?"),
            ("informed_how", "Hoe en wanneer", "How and when"),
        ),
    ),
    (
        "measures",
        "Maatregelen",
        "Measures",
        (("measures", "Genomen maatregelen", "Measures taken"),),
    ),
)

FORM_FIELDS: tuple[str, ...] = tuple(key for *_, questions in SECTIONS for key, *_ in questions)
"""Every question of the form, in order (a test checks each is filled or listed as unfilled)."""

CHOICE_TEXT: dict[str, tuple[str, str]] = {
    # nature
    "read": ("gelezen", "read"),
    "copied": ("gekopieerd", "copied"),
    "altered": ("veranderd", "altered"),
    "deleted": ("verwijderd of vernietigd", "deleted or destroyed"),
    "stolen": ("gestolen", "stolen"),
    "lost": ("verloren", "lost"),
    "unknown": ("onbekend", "unknown"),
    # data types
    "name_address": ("naam, adres en woonplaats", "name and address"),
    "phone": ("telefoonnummers", "phone numbers"),
    "email": ("e-mailadressen", "e-mail addresses"),
    "login": ("inloggegevens", "login data"),
    "financial": ("financiële gegevens (zoals IBAN)", "financial data (such as IBAN)"),
    "bsn": ("burgerservicenummer (BSN)", "citizen service number (BSN)"),
    "id_copies": ("kopieën van identiteitsbewijzen", "copies of ID documents"),
    "birth_date": ("geboortedatum", "date of birth"),
    "special_categories": ("bijzondere persoonsgegevens", "special categories of data"),
    "other": ("anders", "other"),
    # encrypted / informed
    "yes": ("ja", "yes"),
    "partly": ("gedeeltelijk", "partly"),
    "no": ("nee", "no"),
    "planned": ("nog niet, gaat gebeuren", "not yet, will be"),
    "not_required": ("nee, niet nodig", "no, not required"),
    "not_yet_decided": ("nog niet besloten", "not yet decided"),
}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("Melding datalek #{id}", "Data breach notification #{id}"),
    "intro": (
        "Ingevuld vanuit het datalekkenregister, in de volgorde van het meldformulier van de "
        "Autoriteit Persoonsgegevens. Tijden in Nederlandse tijd (Europe/Amsterdam).",
        "Filled from the breach register, in the order of the Autoriteit Persoonsgegevens' "
        "notification form. Times in Dutch time (Europe/Amsterdam).",
    ),
    "status": ("Status", "Status"),
    "status.open": ("nog niet gemeld: {left}", "not yet reported: {left}"),
    "status.reported": (
        "gemeld op {when}, meldnummer {reference}",
        "reported on {when}, reference {reference}",
    ),
    "status.not_reportable": ("niet meldplichtig: {reason}", "not reportable: {reason}"),
    "new": ("nieuwe melding", "new notification"),
    "follow_up": ("vervolgmelding", "follow-up"),
    "not_given": ("(niet ingevuld)", "(not filled in)"),
    "not_applicable": ("(niet van toepassing)", "(not applicable)"),
    "unfilled": ("Nog niet ingevuld", "Not filled in yet"),
    "left": ("nog {hours} u {minutes} min", "{hours} h {minutes} min left"),
    "overdue": ("{hours} u {minutes} min te laat", "overdue by {hours} h {minutes} min"),
    "send_to": ("Contactadres voor meldingen", "Contact address for reports"),
}

_NOT_APPLICABLE = {
    "earlier_reference": lambda v: not v["follow_up"],
    "processor_name": lambda v: not v["processor_involved"],
    "ended_at": lambda v: v["ongoing"],
    "late_reason": lambda v: not v["reported_late"],
    "data_types_other": lambda v: "other" not in v["data_types"],
    "informed_how": lambda v: v["informed"] not in ("yes", "planned"),
}
"""Questions the form only asks after a certain answer: no answer is then no gap."""


@dataclass
class BreachForm:
    """The filled form: ``answers`` holds every question of :data:`FORM_FIELDS`."""

    breach_id: int
    status: str
    answers: dict[str, Any]
    contact_for_reports: str
    unfilled: list[str] = field(default_factory=list)
    reported_at: str | None = None
    ap_reference: str | None = None
    not_reportable_reason: str | None = None
    time_left: dt.timedelta | None = None
    """Until the deadline, while the breach is open (negative when overdue)."""


def _controller(settings: Settings) -> dict[str, Any]:
    """The organisation's own details; every key may be missing from an older configuration."""
    controller = getattr(settings, "controller", None)

    def get(*names: str) -> Any:
        for name in names:
            value = getattr(controller, name, None)
            if value not in (None, ""):
                return value
        return None

    return {
        "organisation_name": get("name"),
        "organisation_address": get("address"),
        "organisation_chamber_of_commerce": get("chamber_of_commerce", "kvk"),
        "organisation_email": get("contact_email", "email") or settings.breach.contact,
        "organisation_phone": get("phone"),
    }


def build_form(breach: Breach, settings: Settings, now: dt.datetime | None = None) -> BreachForm:
    """Every question of the notification form answered from *breach* and the configuration."""
    values = values_of(breach)
    discovered = values["discovered_at"]
    reported_late = breach.reported_at is not None and breach.reported_at > breach_deadline(breach)
    answers: dict[str, Any] = {**_controller(settings), **values}
    answers["contact_email"] = values["contact_email"] or settings.breach.contact
    answers["deadline"] = breach_deadline(breach)
    answers["discovered_at"] = discovered
    context = {**values, "reported_late": reported_late}
    unfilled = []
    for key in FORM_FIELDS:
        value = answers.get(key)
        empty = value is None or value == "" or value == []
        if empty and key in _NOT_APPLICABLE and _NOT_APPLICABLE[key](context):
            continue
        if empty:
            unfilled.append(key)
    time_left = breach_time_left(breach, now or utcnow())
    answers = {key: answers.get(key) for key in FORM_FIELDS}
    form = BreachForm(
        breach_id=breach.id or 0,
        status=breach.status,
        answers=answers,
        contact_for_reports=settings.breach.contact,
        unfilled=unfilled,
        reported_at=breach.reported_at.isoformat() if breach.reported_at else None,
        ap_reference=breach.ap_reference,
        not_reportable_reason=breach.not_reportable_reason,
        time_left=time_left,
    )
    return form


def as_json(form: BreachForm) -> dict[str, Any]:
    """Every field, codes as stored and times as ISO 8601 in UTC."""
    time_left = form.time_left
    answers = {
        key: value.isoformat() if isinstance(value, dt.datetime) else value
        for key, value in form.answers.items()
    }
    return {
        "breach_id": form.breach_id,
        "status": form.status,
        "reported_at": form.reported_at,
        "ap_reference": form.ap_reference,
        "not_reportable_reason": form.not_reportable_reason,
        "time_left_seconds": None if time_left is None else int(time_left.total_seconds()),
        "contact_for_reports": form.contact_for_reports,
        "form": answers,
        "unfilled": form.unfilled,
    }


def _say(key: str, language: Language, **values: Any) -> str:
    text = TEXT[key][0 if language == "nl" else 1]
    return text.format(**values) if values else text


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def answer_text(key: str, value: Any, form: BreachForm, language: Language) -> str:
    """One answer as the form shows it: choices and flags in words, times in Amsterdam time."""
    index = 0 if language == "nl" else 1
    if key == "follow_up":
        return _say("follow_up" if value else "new", language)
    if value is None or value == "" or value == []:
        return _say("not_given" if key in form.unfilled else "not_applicable", language)
    if isinstance(value, bool):
        return CHOICE_TEXT["yes" if value else "no"][index]
    if isinstance(value, dt.datetime):
        return _local(value)
    if isinstance(value, list):
        return "; ".join(CHOICE_TEXT.get(code, (code, code))[index] for code in value)
    if key in ("encrypted", "informed"):
        return CHOICE_TEXT.get(value, (value, value))[index]
    return str(value)


def _time_left_text(delta: dt.timedelta | None, language: Language) -> str:
    if delta is None:
        return "-"
    overdue, hours, minutes = split_duration(delta)
    key = "overdue" if overdue else "left"
    return _say(key, language, hours=hours, minutes=f"{minutes:02d}")


def _quoted(text: str) -> str:
    """Free text as Markdown that cannot break out of its answer (every line quoted)."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def as_markdown(form: BreachForm, language: Language = "nl") -> str:
    """The form as Markdown, one section per part of the regulator's form."""
    index = 0 if language == "nl" else 1
    lines = [f"# {_say('title', language, id=form.breach_id)}", "", _say("intro", language), ""]
    if form.status == "reported":
        when = _local(dt.datetime.fromisoformat(form.reported_at)) if form.reported_at else "-"
        status = _say("status.reported", language, when=when, reference=form.ap_reference)
    elif form.status == "not_reportable":
        status = _say("status.not_reportable", language, reason=form.not_reportable_reason)
    else:
        left = _time_left_text(form.time_left, language)
        status = _say("status.open", language, left=left)
    lines += [f"**{_say('status', language)}:** {status}", ""]
    lines += [f"**{_say('send_to', language)}:** {form.contact_for_reports}", ""]
    for _key, nl, en, questions in SECTIONS:
        lines += [f"## {(nl, en)[index]}", ""]
        for key, q_nl, q_en in questions:
            answer = answer_text(key, form.answers.get(key), form, language)
            question = (q_nl, q_en)[index]
            if "\n" in answer:
                lines += [f"**{question}:**", "", _quoted(answer), ""]
            else:
                lines += [f"**{question}:** {answer}  "]
        lines.append("")
    if form.unfilled:
        questions = {key: (nl, en)[index] for *_, qs in SECTIONS for key, nl, en in qs}
        lines += [f"## {_say('unfilled', language)}", ""]
        lines += [f"- {questions[key]}" for key in form.unfilled]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
