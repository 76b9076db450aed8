"""The register of processing activities (GDPR art. 30(1)), generated, and its self-check.

Where each field of art. 30(1) comes from:

* (a) controller and contact: ``[controller]`` in the configuration;
* (b) purposes, with their legal basis: the app's own processing is a fact of the code, so the
  activities are built in here (:func:`builtin_activities`: the purposes of the privacy
  statement, each with its basis); ``[[processing.activities]]`` adds processing done outside
  the app, and each extra consent purpose (``purposes = [...]``) gets a consent activity;
* (c) categories of people and of data: :mod:`plusjeklas_tui.data_categories`;
* (d) recipients: the processors the *enabled* plugins register (their
  :class:`~plusjeklas_tui.providers.ProcessorDetails`), never a disabled one;
* (e) transfers outside the EEA and their safeguard: from the same processor details;
* (f) erasure time limits per category: ``[retention]``;
* (g) security measures: read from the live configuration and, given an engine, from the
  database connection itself (``secure_delete``, TLS), not written as prose.

:func:`check_register` then compares the register with the database: every column must be
classified, every category that holds data must be named by an activity, and every provider
that holds identifiers here must be a recipient in use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from sqlalchemy import MetaData, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from plusjeklas_tui.config import PluginSettings, Settings, _is_local_host
from plusjeklas_tui.data_categories import (
    CATEGORIES,
    COLUMNS,
    Classification,
    DataCategory,
    stale_entries,
    unclassified_columns,
)
from plusjeklas_tui.plugins import PluginSet, provider_config
from plusjeklas_tui.providers import (
    InsecureBaseUrl,
    Provider,
    ProviderInfo,
    ProviderKind,
    check_base_url,
)
from plusjeklas_tui.sqltypes import EncryptedText

Language = Literal["nl", "en"]
Text = tuple[str, str]
"""A text in Dutch and in English."""

# fmt: off
EEA = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
})
# fmt: on
"""The EU member states plus Iceland, Liechtenstein and Norway (ISO 3166 alpha-2)."""

BASES: dict[str, Text] = {
    "consent": ("toestemming (art. 6 lid 1 sub a AVG)", "consent (GDPR art. 6(1)(a))"),
    "contract": (
        "uitvoering van de overeenkomst (art. 6 lid 1 sub b AVG)",
        "performance of the contract (GDPR art. 6(1)(b))",
    ),
    "legal_obligation": (
        "wettelijke verplichting (art. 6 lid 1 sub c AVG)",
        "legal obligation (GDPR art. 6(1)(c))",
    ),
    "vital_interests": (
        "vitaal belang (art. 6 lid 1 sub d AVG)",
        "vital interests (GDPR art. 6(1)(d))",
    ),
    "public_task": ("algemeen belang (art. 6 lid 1 sub e AVG)", "public task (GDPR art. 6(1)(e))"),
    "legitimate_interest": (
        "gerechtvaardigd belang (art. 6 lid 1 sub f AVG)",
        "legitimate interest (GDPR art. 6(1)(f))",
    ),
}


def t(value: Text, language: Language) -> str:
    return value[0] if language == "nl" else value[1]


# --- the register's values ---------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterProblem:
    """Something the register gets wrong or leaves out. ``message`` holds no personal data."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Recipient:
    """A processor in use: an enabled plugin's provider and its processor details."""

    name: str
    """The ``[plugins.<name>]`` table."""
    title: str
    kind: str
    company: str
    country: str
    data_categories: tuple[str, ...]
    agreement: str
    transfer_safeguard: str | None
    retained: tuple[str, ...] = ()
    """What it keeps after an erasure and why, in words."""

    @property
    def outside_eea(self) -> bool:
        return self.country.upper() not in EEA


@dataclass(frozen=True)
class Activity:
    key: str
    name: Text
    purpose: Text
    legal_basis: tuple[str, ...]
    basis_note: Text | None
    data_subjects: tuple[Text, ...]
    categories: tuple[DataCategory, ...]
    """The app's own categories this activity uses (what the self-check counts)."""
    other_categories: tuple[str, ...] = ()
    """Categories in words, for activities outside the app (from the configuration)."""
    recipient_kinds: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    """Recipients in use, by plugin name."""
    other_recipients: tuple[str, ...] = ()
    transfers: str | None = None
    retention: Text = ("", "")


@dataclass(frozen=True)
class Measure:
    text: Text
    checked: bool = False
    """True when the fact was read from the running system, not only from the configuration."""


@dataclass(frozen=True)
class Controller:
    name: str
    address: str | None
    contact_email: str
    phone: str | None
    chamber_of_commerce: str | None
    dpo: str | None


@dataclass(frozen=True)
class Register:
    controller: Controller
    activities: tuple[Activity, ...]
    recipients: tuple[Recipient, ...]
    not_in_use: tuple[str, ...]
    """Installed provider plugins that are disabled: no recipients, listed so nobody wonders."""
    retention: tuple[tuple[DataCategory, Text], ...]
    security: tuple[Measure, ...]
    generated_at: dt.datetime
    problems: tuple[RegisterProblem, ...] = ()
    """Found while building (a plugin enabled but missing, a transfer without safeguard)."""
    source: str | None = None

    def processor_names(self) -> set[str]:
        """The ``[plugins.<name>]`` names of the processors in use."""
        return {recipient.name for recipient in self.recipients}

    def categories_named(self) -> set[DataCategory]:
        return {category for activity in self.activities for category in activity.categories}

    @property
    def transfers(self) -> tuple[Recipient, ...]:
        return tuple(r for r in self.recipients if r.outside_eea)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["transfers"] = [asdict(r) for r in self.transfers]
        return data


# --- building ---------------------------------------------------------------------------------

C = DataCategory
_SCHOOL_CONTACTS: Text = ("contactpersonen van scholen", "contact persons of schools")
_ADMINS: Text = ("beheerders van scholen", "school administrators")
_STAFF: Text = ("medewerkers", "staff")
_REQUESTERS: Text = ("personen die een AVG-verzoek doen", "people who make a GDPR request")
_VISITORS: Text = ("bezoekers van de website", "website visitors")


def _general(settings: Settings) -> Text:
    months = settings.retention.general_after_end_months
    return (
        f"{months} maanden na het einde van het laatste abonnement van de school",
        f"{months} months after the school's last subscription ended",
    )


def _administrator(settings: Settings) -> Text:
    days = settings.retention.administrator_after_leaving_days
    general = _general(settings)
    return (
        f"{general[0]}; van een vertrokken beheerder {days} dagen na vertrek",
        f"{general[1]}; for an administrator who left, {days} days after leaving",
    )


def _payment_records(settings: Settings) -> Text:
    years = settings.retention.payment_records_years
    basis = settings.retention.payment_records_legal_basis
    return (
        f"{years} jaar na het einde van het boekjaar ({basis}); daarna gewist",
        f"{years} years after the end of the financial year ({basis}); then erased",
    )


def retention_for(category: DataCategory, settings: Settings) -> Text:
    """The erasure time limit of one category (art. 30(1)(f)), from ``[retention]``."""
    if category in {C.ADMINISTRATOR_NAME, C.ADMINISTRATOR_EMAIL, C.ADMINISTRATOR_PHONE}:
        return _administrator(settings)
    if category == C.ADMINISTRATOR_ROLE:
        return _administrator(settings)
    if category == C.PAYMENT_RECORDS:
        return _payment_records(settings)
    if category == C.IBAN and settings.retention.keep_local_iban_as_payment_record:
        general = _general(settings)
        kept = _payment_records(settings)
        return (
            f"{general[0]}; bij wissen afgeschermd bewaard: {kept[0]}",
            f"{general[1]}; on erasure kept restricted: {kept[1]}",
        )
    if category == C.REQUESTS:
        return (
            "tot het verzoek is afgehandeld; na een voltooid wisverzoek blijven alleen soort, "
            "data, status en uitkomst over",
            "until the request is handled; after a completed erasure request only kind, dates, "
            "status and outcome remain",
        )
    if category in {C.BREACH_RECORDS, C.STAFF_ACCOUNTS}:
        return (
            "bewaard als verantwoording (art. 5 lid 2, art. 33 lid 5 AVG); niet automatisch gewist",
            "kept for accountability (GDPR art. 5(2), 33(5)); not erased automatically",
        )
    return _general(settings)


def builtin_activities(settings: Settings) -> list[Activity]:
    """The app's own processing: the purposes of the privacy statement, and what the law asks."""
    general = _general(settings)
    records = _payment_records(settings)
    keep_local = settings.retention.keep_local_iban_as_payment_record
    analytics_months = settings.retention.analytics_months
    activities = [
        Activity(
            key="contract",
            name=("Contractadministratie", "Contract administration"),
            purpose=(
                "Abonnementen van scholen op Plusjeklas vastleggen en uitvoeren",
                "Recording and carrying out schools' Plusjeklas subscriptions",
            ),
            legal_basis=("contract",),
            basis_note=None,
            data_subjects=(_SCHOOL_CONTACTS, _ADMINS),
            categories=(
                C.SCHOOL_NAME_ADDRESS,
                C.SCHOOL_PHONE,
                C.BRIN,
                C.CONTACT_EMAIL,
                C.SUBSCRIPTION,
                C.ADMINISTRATOR_NAME,
                C.ADMINISTRATOR_EMAIL,
                C.ADMINISTRATOR_PHONE,
                C.ADMINISTRATOR_ROLE,
                C.FREE_TEXT_NOTES,
            ),
            retention=_administrator(settings),
        ),
        Activity(
            key="payments",
            name=("Het afhandelen van betalingen", "Handling payments"),
            purpose=(
                "Het afhandelen van betalingen: facturen en incasso's van abonnementen",
                "Invoicing and collecting subscription payments",
            ),
            legal_basis=("contract", "legal_obligation"),
            basis_note=(
                "bewaarplicht betaalgegevens: art. 52 AWR, art. 2:10 BW",
                "payment records must be kept: art. 52 AWR, art. 2:10 BW",
            ),
            data_subjects=(_SCHOOL_CONTACTS,),
            categories=(
                C.SCHOOL_NAME_ADDRESS,
                C.BRIN,
                C.CONTACT_EMAIL,
                C.IBAN,
                C.SUBSCRIPTION,
                C.PROVIDER_IDS,
                *(
                    (C.PAYMENT_RECORDS,)
                    if settings.retention.keep_local_iban_as_payment_record
                    else ()
                ),
            ),
            recipient_kinds=(ProviderKind.PAYMENT,),
            retention=(
                f"{general[0]}; facturen en betaalgegevens (bij de betaaldienst"
                f"{', en hier afgeschermd' if keep_local else ''}): {records[0]}",
                f"{general[1]}; invoices and payment records (at the payment provider"
                f"{', and here, restricted' if keep_local else ''}): {records[1]}",
            ),
        ),
        Activity(
            key="phone_calls",
            name=("Bellen voor de dienstverlening", "Phone calls for the service"),
            purpose=(
                "Je te kunnen bellen indien dit nodig is om onze dienstverlening uit te kunnen "
                "voeren",
                "Calling you when that is needed to deliver our service",
            ),
            legal_basis=("contract",),
            basis_note=None,
            data_subjects=(_ADMINS, _SCHOOL_CONTACTS),
            categories=(C.ADMINISTRATOR_NAME, C.ADMINISTRATOR_PHONE, C.SCHOOL_PHONE),
            retention=_administrator(settings),
        ),
        Activity(
            key="service_announcements",
            name=("Dienstberichten", "Service announcements"),
            purpose=(
                "Je te informeren over wijzigingen van onze diensten en producten die je afneemt",
                "Informing you about changes to the services and products you use",
            ),
            legal_basis=("contract",),
            basis_note=(
                "geen nieuwsbrief: alleen berichten over de lopende overeenkomst",
                "not the newsletter: only messages about the running contract",
            ),
            data_subjects=(_ADMINS, _SCHOOL_CONTACTS),
            categories=(C.ADMINISTRATOR_NAME, C.ADMINISTRATOR_EMAIL, C.CONTACT_EMAIL),
            retention=_administrator(settings),
        ),
        Activity(
            key="newsletter",
            name=("Nieuwsbrief", "Newsletter"),
            purpose=("Verzenden van onze nieuwsbrief", "Sending our newsletter"),
            legal_basis=("consent", "legitimate_interest"),
            basis_note=(
                "toestemming (opt-in); of de klantuitzondering van art. 11.7 lid 3 "
                "Telecommunicatiewet voor contactgegevens van klanten, met afmeldmogelijkheid "
                "in elke mail",
                "consent (opt-in); or the customer exception of art. 11.7(3) of the Dutch "
                "Telecommunications Act for customers' contact details, with an unsubscribe "
                "in every mail",
            ),
            data_subjects=(_ADMINS,),
            categories=(
                C.ADMINISTRATOR_NAME,
                C.ADMINISTRATOR_EMAIL,
                C.CONSENT,
                C.NEWSLETTER_BASIS,
                C.PROVIDER_IDS,
            ),
            recipient_kinds=(ProviderKind.NEWSLETTER,),
            retention=(
                f"tot intrekking van de toestemming of afmelding; uiterlijk {general[0]}",
                f"until consent is withdrawn or the person unsubscribes; at the latest "
                f"{general[1]}",
            ),
        ),
        Activity(
            key="feedback",
            name=("Feedback vragen", "Feedback requests"),
            purpose=(
                "Je te kunnen bereiken bij vragen voor feedback, ook na het abonnement",
                "Reaching you to ask for feedback, also after the subscription",
            ),
            legal_basis=("consent",),
            basis_note=(
                "toestemming voor het doel 'feedback' in de toestemmingsgeschiedenis",
                "consent for the purpose 'feedback' in the consent history",
            ),
            data_subjects=(_ADMINS, _SCHOOL_CONTACTS),
            categories=(C.ADMINISTRATOR_NAME, C.ADMINISTRATOR_EMAIL, C.CONSENT, C.FEEDBACK),
            retention=general,
        ),
        Activity(
            key="analytics",
            name=("Websitestatistieken", "Website analytics"),
            purpose=(
                "Gegevens over activiteiten op onze website, en met toestemming over surfgedrag "
                "over verschillende websites heen",
                "Data about activity on our website and, with consent, about browsing across "
                "websites",
            ),
            legal_basis=("legitimate_interest", "consent"),
            basis_note=(
                "gerechtvaardigd belang voor privacyvriendelijk tellen (IP-adres gemaskeerd, "
                "niets gedeeld); toestemming ('analytics') voor gegevens over meerdere websites",
                "legitimate interest for privacy-friendly counting (IP address masked, nothing "
                "shared); consent ('analytics') for data across websites",
            ),
            data_subjects=(_VISITORS, _ADMINS),
            categories=(C.CONSENT, C.PROVIDER_IDS),
            recipient_kinds=(ProviderKind.ANALYTICS,),
            retention=(
                f"ruwe gegevens {analytics_months} maanden",
                f"raw data {analytics_months} months",
            ),
        ),
        Activity(
            key="accountability",
            name=("Verantwoording en AVG-verzoeken", "Accountability and GDPR requests"),
            purpose=(
                "Aantonen dat de AVG wordt nageleefd: audit log, wisbewijzen, datalekregister, "
                "afhandeling van verzoeken van betrokkenen",
                "Showing compliance with the GDPR: audit log, erasure receipts, breach "
                "register, handling of data-subject requests",
            ),
            legal_basis=("legal_obligation",),
            basis_note=(
                "art. 5 lid 2, 12-22, 30, 32 en 33 lid 5 AVG",
                "GDPR art. 5(2), 12-22, 30, 32 and 33(5)",
            ),
            data_subjects=(_STAFF, _REQUESTERS, _ADMINS),
            categories=(C.STAFF_ACCOUNTS, C.REQUESTS, C.BREACH_RECORDS, C.CONSENT),
            retention=retention_for(C.STAFF_ACCOUNTS, settings),
        ),
    ]
    if settings.retention.keep_local_iban_as_payment_record:
        activities.append(
            Activity(
                key="payment_records",
                name=("Fiscale bewaarplicht", "Fiscal record keeping"),
                purpose=(
                    "Betaalgegevens van gewiste scholen afgeschermd bewaren (art. 18 AVG)",
                    "Keeping payment records of erased schools, restricted (GDPR art. 18)",
                ),
                legal_basis=("legal_obligation",),
                basis_note=(
                    settings.retention.payment_records_legal_basis,
                    settings.retention.payment_records_legal_basis,
                ),
                data_subjects=(_SCHOOL_CONTACTS,),
                categories=(C.PAYMENT_RECORDS,),
                retention=_payment_records(settings),
            )
        )
    builtin = {"newsletter", "analytics", "feedback"}
    for purpose in settings.consent_purposes:
        if purpose in builtin:
            continue
        activities.append(
            Activity(
                key=f"consent:{purpose}",
                name=(f"Toestemmingsdoel '{purpose}'", f"Consent purpose '{purpose}'"),
                purpose=(
                    f"Wat de beheerder voor '{purpose}' toestond",
                    f"What the administrator consented to for '{purpose}'",
                ),
                legal_basis=("consent",),
                basis_note=None,
                data_subjects=(_ADMINS,),
                categories=(C.ADMINISTRATOR_NAME, C.ADMINISTRATOR_EMAIL, C.CONSENT),
                retention=(
                    f"tot intrekking; uiterlijk {general[0]}",
                    f"until withdrawn; at the latest {general[1]}",
                ),
            )
        )
    return activities


def _configured_activities(settings: Settings) -> list[Activity]:
    activities = []
    for number, item in enumerate(settings.processing.activities, start=1):
        known = {c.value for c in DataCategory}
        activities.append(
            Activity(
                key=f"config:{number}",
                name=(item.name, item.name),
                purpose=(item.purpose, item.purpose),
                legal_basis=tuple(item.legal_basis),
                basis_note=None,
                data_subjects=tuple((s, s) for s in item.data_subjects),
                categories=tuple(DataCategory(c) for c in item.data_categories if c in known),
                other_categories=tuple(c for c in item.data_categories if c not in known),
                other_recipients=tuple(item.recipients),
                transfers=item.transfers,
                retention=(item.retention, item.retention),
            )
        )
    return activities


def _recipient(info: ProviderInfo) -> Recipient:
    processor = info.processor
    return Recipient(
        name=info.name,
        title=info.title,
        kind=str(info.kind),
        company=processor.company,
        country=processor.country.upper(),
        data_categories=tuple(processor.data_categories),
        agreement=processor.agreement,
        transfer_safeguard=processor.transfer_safeguard,
        retained=tuple(
            f"{kept.category}: {kept.years} y ({kept.legal_basis}), {kept.counted_from}"
            for kept in processor.retained
        ),
    )


def build_register(
    settings: Settings,
    provider_infos: Iterable[ProviderInfo],
    *,
    engine: Engine | None = None,
    now: dt.datetime | None = None,
) -> Register:
    """The register for this configuration and these providers (every installed one; the
    disabled ones are left out of the recipients). With *engine*, the security measures are
    also read from a live connection."""
    problems: list[RegisterProblem] = []
    infos = {info.name: info for info in provider_infos}
    recipients: list[Recipient] = []
    not_in_use: list[str] = []
    for name, info in sorted(infos.items()):
        if settings.plugins.get(name, PluginSettings()).enabled:
            recipients.append(_recipient(info))
        else:
            not_in_use.append(name)
    for name, table in sorted(settings.plugins.items()):
        if table.enabled and name not in infos:
            problems.append(
                RegisterProblem(
                    "missing_plugin",
                    f"plugins.{name} is enabled, but no installed plugin provides it: the "
                    "register cannot name this processor",
                )
            )
    for recipient in recipients:
        if recipient.outside_eea and not recipient.transfer_safeguard:
            problems.append(
                RegisterProblem(
                    "transfer_without_safeguard",
                    f"processor {recipient.name} processes data in {recipient.country}, outside "
                    "the EEA, and its plugin names no transfer safeguard (art. 44-49)",
                )
            )
    activities = []
    for activity in [*builtin_activities(settings), *_configured_activities(settings)]:
        names = tuple(r.name for r in recipients if r.kind in activity.recipient_kinds)
        activities.append(replace(activity, recipients=names))
    named = {c for a in activities for c in a.categories}
    retention = tuple(
        (category, retention_for(category, settings))
        for category in DataCategory
        if category in named
    )
    controller = settings.controller
    return Register(
        controller=Controller(
            name=controller.name,
            address=controller.address,
            contact_email=controller.contact_email,
            phone=controller.phone,
            chamber_of_commerce=controller.chamber_of_commerce,
            dpo=controller.dpo,
        ),
        activities=tuple(activities),
        recipients=tuple(recipients),
        not_in_use=tuple(not_in_use),
        retention=retention,
        security=tuple(security_measures(settings, recipients, engine)),
        generated_at=now or dt.datetime.now(dt.UTC),
        problems=tuple(problems),
        source=str(settings.source) if settings.source else None,
    )


# --- security measures ------------------------------------------------------------------------


def _encrypted_columns(metadata: MetaData) -> list[str]:
    return [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    ]


def _key_measure(settings: Settings) -> Measure:
    if settings.keys.env:
        variable = settings.keys.env
        return Measure(
            (
                f"De sleutel staat in de omgevingsvariabele {variable}, niet op schijf",
                f"The key is read from the environment variable {variable}, not from disk",
            )
        )
    path = settings.key_file
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return Measure(
            (f"Sleutelbestand {path}: niet gevonden", f"Key file {path}: not found"), checked=True
        )
    others = "niet leesbaar voor anderen" if not mode & 0o007 else "LEESBAAR VOOR ANDEREN"
    others_en = "not readable by others" if not mode & 0o007 else "READABLE BY OTHERS"
    return Measure(
        (
            f"Sleutelbestand {path} met rechten {mode:04o} ({others})",
            f"Key file {path} with mode {mode:04o} ({others_en})",
        ),
        checked=True,
    )


def _database_measures(settings: Settings, engine: Engine | None) -> list[Measure]:
    url = make_url(settings.database_url)
    measures: list[Measure] = []
    if url.get_backend_name() == "sqlite":
        measures.append(
            Measure(
                (
                    "SQLite-bestand op deze machine: geen netwerkverbinding naar de database",
                    "SQLite file on this machine: no network connection to the database",
                )
            )
        )
        if engine is not None:
            with engine.connect() as conn:
                on = bool(conn.exec_driver_sql("PRAGMA secure_delete").scalar())
            measures.append(
                Measure(
                    (
                        f"SQLite secure_delete {'aan' if on else 'UIT'}: gewiste gegevens "
                        "worden overschreven",
                        f"SQLite secure_delete {'on' if on else 'OFF'}: erased data is "
                        "overwritten in the file",
                    ),
                    checked=True,
                )
            )
        return measures
    host = url.host or str(url.query.get("host") or "")
    if _is_local_host(host):
        measures.append(
            Measure(
                (
                    "PostgreSQL op deze machine (loopback of Unix-socket)",
                    "PostgreSQL on this machine (loopback or Unix socket)",
                )
            )
        )
    else:
        mode = url.query.get("sslmode")
        measures.append(
            Measure(
                (
                    f"PostgreSQL op {host}: TLS verplicht (sslmode={mode})",
                    f"PostgreSQL on {host}: TLS required (sslmode={mode})",
                )
            )
        )
    if engine is not None:
        with engine.connect() as conn:
            ssl = conn.execute(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).scalar()
        measures.append(
            Measure(
                (
                    f"Deze databaseverbinding gebruikt TLS: {'ja' if ssl else 'nee'}",
                    f"This database connection uses TLS: {'yes' if ssl else 'no'}",
                ),
                checked=True,
            )
        )
    return measures


def _staff_measure(settings: Settings) -> list[Measure]:
    roles = Counter(settings.staff.values())
    counts = ", ".join(f"{roles[r]} {r}" for r in ("admin", "editor", "viewer") if roles[r]) or "0"
    measures = [
        Measure(
            (
                f"Toegang alleen voor OS-accounts in [staff] ({counts}); de identiteit komt van "
                "de echte uid van het proces; rollen: viewer (lezen, IBAN gemaskeerd), editor, "
                "admin",
                f"Access only for the OS accounts in [staff] ({counts}); the identity is the "
                "process's real uid; roles: viewer (read, IBAN masked), editor, admin",
            )
        )
    ]
    if settings.allow_user_override:
        measures.append(
            Measure(
                (
                    "WAARSCHUWING: allow_user_override = true: iedereen kan een identiteit "
                    "kiezen (alleen voor demo en tests)",
                    "WARNING: allow_user_override = true: anyone can pick an identity (demo and "
                    "tests only)",
                )
            )
        )
    return measures


def _provider_measures(recipients: Sequence[Recipient], settings: Settings) -> list[Measure]:
    measures = [
        Measure(
            (
                "Verbindingen met verwerkers alleen via HTTPS (http alleen naar een imitatie op "
                "loopback); API-sleutels nooit in het configuratiebestand",
                "Connections to processors over HTTPS only (http only to an imitation on "
                "loopback); API keys never in the configuration file",
            )
        )
    ]
    for recipient in recipients:
        table = settings.plugins.get(recipient.name, PluginSettings())
        checked = False
        if table.imitation:
            where = ("de meegeleverde imitatie (demo)", "the bundled imitation (demo)")
        elif table.base_url:
            checked = True
            try:
                check_base_url(table.base_url, recipient.name)
                where = (
                    f"{table.base_url} (HTTPS gecontroleerd)",
                    f"{table.base_url} (HTTPS checked)",
                )
            except InsecureBaseUrl:
                where = (f"{table.base_url} (NIET VEILIG)", f"{table.base_url} (NOT SECURE)")
        else:
            where = ("het standaardadres van de plugin (HTTPS)", "the plugin's default (HTTPS)")
        measures.append(
            Measure(
                (f"{recipient.title}: {where[0]}", f"{recipient.title}: {where[1]}"),
                checked=checked,
            )
        )
    return measures


def _audit_chain_measure(metadata: MetaData) -> list[Measure]:
    audit = metadata.tables.get("audit_event")
    if audit is None or "mac" not in audit.c or "prev_mac" not in audit.c:
        return []
    return [
        Measure(
            (
                "Het audit log is een keten van HMAC's: weglaten of wijzigen valt op",
                "The audit log is an HMAC chain: a removed or altered event shows",
            )
        )
    ]


def security_measures(
    settings: Settings, recipients: Sequence[Recipient], engine: Engine | None = None
) -> list[Measure]:
    """The technical measures in force (art. 32), read from the configuration and the code."""
    from plusjeklas_tui.models import metadata

    encrypted = _encrypted_columns(metadata)
    measures = [
        Measure(
            (
                f"Persoonsgegevens versleuteld opgeslagen met AES-256-GCM ({len(encrypted)} "
                "kolommen, elk token gebonden aan zijn kolom); opzoeken via HMAC-SHA256 blind "
                "index",
                f"Personal data stored encrypted with AES-256-GCM ({len(encrypted)} columns, "
                "each token bound to its column); look-up through an HMAC-SHA256 blind index",
            ),
        ),
        _key_measure(settings),
        *_database_measures(settings, engine),
        *_staff_measure(settings),
        Measure(
            (
                "Elke wijziging, inzage van een IBAN, export en wissing komt in het audit log, "
                "met het account van de medewerker en zonder persoonsgegevens",
                "Every change, IBAN reveal, export and erasure goes to the audit log, with the "
                "staff account and without personal data",
            )
        ),
        *_audit_chain_measure(metadata),
        Measure(
            (
                "Bewaartermijnen per categorie worden afgedwongen (retention sweep); wissen bij "
                "verwerkers via een wachtrij die pas stopt als de verwerker het bevestigt, "
                "nagecontroleerd waar de API dat toelaat",
                "Retention per category is enforced (retention sweep); erasure at processors "
                "through a queue that stops only when the processor confirms, verified where the "
                "API allows",
            )
        ),
        *_provider_measures(recipients, settings),
        *(Measure((m, m)) for m in settings.processing.organisational_measures),
    ]
    return measures


# --- the self-check ---------------------------------------------------------------------------


def _connection(engine_or_session: Engine | Session | Connection) -> Any:
    if isinstance(engine_or_session, Engine):
        return engine_or_session.connect()
    if isinstance(engine_or_session, Session):
        return _Borrowed(engine_or_session.connection())
    return _Borrowed(engine_or_session)


class _Borrowed:
    """A connection the caller owns: used as a context manager without closing it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def stored_categories(
    conn: Connection, metadata: MetaData, columns: Classification = COLUMNS
) -> dict[DataCategory, list[str]]:
    """Category -> the ``table.column`` names that hold at least one value (non-NULL)."""
    existing = set(inspect(conn).get_table_names())
    held: dict[DataCategory, list[str]] = {}
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        listed = columns.get(table.name, {})
        personal = [c for c in table.columns if listed.get(c.name) is not None]
        if not personal:
            continue
        counts = conn.execute(select(*(func.count(c) for c in personal))).one()
        for column, count in zip(personal, counts, strict=True):
            if count:
                held.setdefault(listed[column.name], []).append(f"{table.name}.{column.name}")
    return held


def check_register(
    engine_or_session: Engine | Session | Connection,
    register: Register,
    *,
    metadata: MetaData | None = None,
    columns: Classification = COLUMNS,
) -> list[RegisterProblem]:
    """What the register gets wrong about this database; an empty list when it is complete.

    1. every column is classified (a category or explicitly not personal), and the
       classification names no column that no longer exists;
    2. every category that holds data here is named by a processing activity;
    3. every provider that holds identifiers of people here is a recipient in use.
    """
    if metadata is None:
        from plusjeklas_tui.models import metadata as app_metadata

        metadata = app_metadata
    problems = list(register.problems)
    for name in unclassified_columns(metadata, columns):
        problems.append(
            RegisterProblem(
                "unclassified_column",
                f"column {name} has no data category: add it to "
                "plusjeklas_tui/data_categories.py (a category, or None when it is not personal)",
            )
        )
    for name in stale_entries(metadata, columns):
        problems.append(
            RegisterProblem(
                "stale_classification",
                f"data_categories.py classifies {name}, which the models no longer have",
            )
        )
    named = register.categories_named()
    with _connection(engine_or_session) as conn:
        held = stored_categories(conn, metadata, columns)
        linked = _providers_holding_data(conn, metadata)
    for category, where in sorted(held.items()):
        if category not in named:
            problems.append(
                RegisterProblem(
                    "category_not_in_register",
                    f"the database holds '{category.value}' ({CATEGORIES[category].en}; in "
                    f"{', '.join(where)}), but no processing activity in the register names it",
                )
            )
    in_use = register.processor_names()
    for provider in sorted(linked - in_use):
        problems.append(
            RegisterProblem(
                "recipient_not_in_register",
                f"the database holds identifiers of people at provider '{provider}', which is "
                f"not a recipient in use: enable plugins.{provider} so the register names it, "
                "or erase those people there first",
            )
        )
    return problems


def _providers_holding_data(conn: Connection, metadata: MetaData) -> set[str]:
    found: set[str] = set()
    link = metadata.tables.get("provider_link")
    if link is not None:
        found |= set(conn.execute(select(link.c.provider).distinct()).scalars())
    task = metadata.tables.get("deletion_task")
    if task is not None:
        query = select(task.c.provider).where(task.c.locator.is_not(None)).distinct()
        found |= set(conn.execute(query).scalars())
    return found


# --- Markdown --------------------------------------------------------------------------------

_LABELS: dict[str, Text] = {
    "title": (
        "Register van verwerkingsactiviteiten (art. 30 lid 1 AVG)",
        "Register of processing activities (GDPR art. 30(1))",
    ),
    "generated": ("Gegenereerd op", "Generated on"),
    "from": ("uit", "from"),
    "controller": (
        "a. Verwerkingsverantwoordelijke en contact",
        "a. Controller and contact details",
    ),
    "name": ("Naam", "Name"),
    "address": ("Adres", "Address"),
    "email": ("E-mail", "E-mail"),
    "phone": ("Telefoon", "Phone"),
    "kvk": ("KvK-nummer", "Chamber of Commerce number"),
    "dpo": ("Functionaris gegevensbescherming", "Data protection officer"),
    "none_appointed": ("niet aangesteld", "none appointed"),
    "not_set": ("niet ingevuld", "not set"),
    "activities": (
        "b-c. Verwerkingsactiviteiten: doelen, grondslag, betrokkenen, gegevens",
        "b-c. Processing activities: purposes, legal basis, data subjects, data",
    ),
    "purpose": ("Doel", "Purpose"),
    "basis": ("Grondslag", "Legal basis"),
    "subjects": ("Categorieën betrokkenen", "Categories of data subjects"),
    "categories": ("Categorieën persoonsgegevens", "Categories of personal data"),
    "recipients_of": ("Ontvangers", "Recipients"),
    "transfers_of": ("Doorgifte buiten de EER", "Transfers outside the EEA"),
    "retention_of": ("Bewaartermijn", "Retention"),
    "none": ("geen", "none"),
    "recipients": ("d. Ontvangers (verwerkers)", "d. Recipients (processors)"),
    "processor": ("Verwerker", "Processor"),
    "company": ("Bedrijf", "Company"),
    "country": ("Land", "Country"),
    "data": ("Gegevens", "Data"),
    "agreement": ("Verwerkersovereenkomst", "Processing agreement"),
    "retained": ("Bewaart na wissen", "Keeps after erasure"),
    "no_recipients": (
        "Geen verwerkers in gebruik (geen provider-plugin ingeschakeld).",
        "No processors in use (no provider plugin enabled).",
    ),
    "not_in_use": (
        "Geïnstalleerd maar niet ingeschakeld (geen ontvanger)",
        "Installed but not enabled (not a recipient)",
    ),
    "transfers": (
        "e. Doorgifte naar derde landen en waarborgen",
        "e. Transfers to third countries and safeguards",
    ),
    "safeguard": ("Waarborg", "Safeguard"),
    "missing": ("ONTBREEKT", "MISSING"),
    "no_transfers": (
        "Geen doorgifte buiten de EER.",
        "No transfers outside the EEA.",
    ),
    "retention": ("f. Bewaartermijnen per categorie", "f. Retention per data category"),
    "category": ("Categorie", "Category"),
    "term": ("Termijn", "Time limit"),
    "security": (
        "g. Technische en organisatorische beveiligingsmaatregelen (art. 32)",
        "g. Technical and organisational security measures (art. 32)",
    ),
    "checked": ("gecontroleerd op het draaiende systeem", "checked on the running system"),
    "problems": ("Problemen", "Problems"),
}


def _cell(value: str) -> str:
    """A value safe inside a Markdown table cell: no pipe, no line break."""
    return " ".join(value.replace("|", "\\|").split())


def render_markdown(register: Register, language: Language = "nl") -> str:
    """The register as a Markdown document, every field of art. 30(1) under its own heading."""

    def L(key: str) -> str:
        return t(_LABELS[key], language)

    controller = register.controller
    lines = [f"# {L('title')}", ""]
    stamp = register.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    source = f" {L('from')} {register.source}" if register.source else ""
    lines += [f"{L('generated')} {stamp}{source}.", ""]
    lines += [f"## {L('controller')}", "", "| | |", "|---|---|"]
    rows = [
        (L("name"), controller.name),
        (L("address"), controller.address or L("not_set")),
        (L("email"), controller.contact_email),
        (L("phone"), controller.phone or L("not_set")),
        (L("kvk"), controller.chamber_of_commerce or L("not_set")),
        (L("dpo"), controller.dpo or L("none_appointed")),
    ]
    lines += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    lines += ["", f"## {L('activities')}", ""]
    titles = {r.name: r.title for r in register.recipients}
    outside = {r.name: r for r in register.recipients if r.outside_eea}
    for number, activity in enumerate(register.activities, start=1):
        basis = ", ".join(t(BASES[b], language) for b in activity.legal_basis)
        if activity.basis_note:
            basis += f" — {t(activity.basis_note, language)}"
        categories = [
            t((CATEGORIES[c].nl, CATEGORIES[c].en), language) for c in activity.categories
        ]
        categories += list(activity.other_categories)
        recipients = [titles[name] for name in activity.recipients]
        recipients += list(activity.other_recipients)
        transfers = [
            f"{outside[n].title} ({outside[n].country})"
            for n in activity.recipients
            if n in outside
        ]
        if activity.transfers:
            transfers.append(activity.transfers)
        lines += [
            f"### {number}. {t(activity.name, language)}",
            "",
            f"- {L('purpose')}: {t(activity.purpose, language)}",
            f"- {L('basis')}: {basis}",
            f"- {L('subjects')}: {', '.join(t(s, language) for s in activity.data_subjects)}",
            f"- {L('categories')}: {', '.join(categories)}",
            f"- {L('recipients_of')}: {', '.join(recipients) or L('none')}",
            f"- {L('transfers_of')}: {', '.join(transfers) or L('none')}",
            f"- {L('retention_of')}: {t(activity.retention, language)}",
            "",
        ]
    lines += [f"## {L('recipients')}", ""]
    if register.recipients:
        header = ["processor", "company", "country", "data", "agreement", "retained"]
        lines += ["| " + " | ".join(L(h) for h in header) + " |", "|---" * len(header) + "|"]
        for r in register.recipients:
            cells = [
                f"{r.title} ({r.name})",
                r.company,
                r.country,
                "; ".join(r.data_categories),
                r.agreement,
                "; ".join(r.retained) or "-",
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    else:
        lines.append(L("no_recipients"))
    if register.not_in_use:
        lines += ["", f"{L('not_in_use')}: {', '.join(register.not_in_use)}"]
    lines += ["", f"## {L('transfers')}", ""]
    if register.transfers:
        lines += [
            f"| {L('processor')} | {L('country')} | {L('safeguard')} |",
            "|---|---|---|",
        ]
        for r in register.transfers:
            cells = [f"{r.title} ({r.company})", r.country, r.transfer_safeguard or L("missing")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    else:
        lines.append(L("no_transfers"))
    lines += ["", f"## {L('retention')}", "", f"| {L('category')} | {L('term')} |", "|---|---|"]
    for category, term in register.retention:
        info = CATEGORIES[category]
        lines.append(f"| {_cell(t((info.nl, info.en), language))} | {_cell(t(term, language))} |")
    lines += ["", f"## {L('security')}", ""]
    for measure in register.security:
        mark = f" *({L('checked')})*" if measure.checked else ""
        lines.append(f"- {t(measure.text, language)}{mark}")
    if register.problems:
        lines += ["", f"## {L('problems')}", ""]
        lines += [f"- {problem.message}" for problem in register.problems]
    return "\n".join(lines) + "\n"


PLACEHOLDER_KEY = "placeholder-for-the-register"
"""Builds a provider only to read its info; constructors do no I/O, so it is never sent."""


def provider_infos_of(
    plugin_set: PluginSet, settings: Settings | None = None
) -> list[ProviderInfo]:
    """Every installed provider's info (enabled or not), from a discovered plugin set.

    With *settings*, an enabled provider whose processor details depend on its table (a Matomo
    hosted by another company names that company, country and safeguard in
    ``[plugins.matomo]``) is built once to read its instance's info; no secret is read for
    that, and a provider that cannot be built so gives its class's info.
    """
    infos = []
    for name, entry in sorted(plugin_set.providers.items()):
        info = entry.info
        table = settings.plugins.get(name) if settings else None
        if table is not None and table.enabled:
            info = _instance_info(entry.cls, name, table) or info
        infos.append(info)
    return infos


def _instance_info(cls: type[Provider], name: str, table: PluginSettings) -> ProviderInfo | None:
    try:
        provider = cls(provider_config(name, table, api_key=PLACEHOLDER_KEY))
    except Exception:  # the class's info is the fallback; the reason is not the register's
        return None
    try:
        return provider.info if isinstance(provider.info, ProviderInfo) else None
    finally:
        with contextlib.suppress(Exception):  # closing an unused client; nothing to report
            provider.close()


__all__ = [
    "Activity",
    "Measure",
    "Recipient",
    "Register",
    "RegisterProblem",
    "build_register",
    "check_register",
    "render_markdown",
]
