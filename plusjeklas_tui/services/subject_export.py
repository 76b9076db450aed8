"""The answer to an access (art. 15) or portability (art. 20) request: everything held about the
subject here and at every provider, as JSON, plus a readable summary in Dutch or English.

Here: :func:`exporter.export_organisation` (the same export staff use for a school). For a
person's request it is narrowed to that person: their colleagues' data is not theirs to receive,
and of the school only its name and BRIN are kept, as context.

At the providers: each enabled provider's :meth:`Provider.export`, for each subject it holds
(a stored link, or for a newsletter provider the person's address), each call on its own under
the provider's deadline (:func:`plugins.call_with_deadline`). A provider that fails, hangs or
cannot be built is recorded in the export with its reason and never stops the others.

``here.retained`` says what is kept, why and until when
(:mod:`~plusjeklas_tui.services.retained`); for a person, their own deadline and no payment
records (those are the school's). The summary has it in a section of its own.

The database work happens before the network calls, so no transaction stays open while a
provider answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine

from plusjeklas_tui import db
from plusjeklas_tui.config import RetentionSettings
from plusjeklas_tui.errors import NotFound
from plusjeklas_tui.models import (
    DEFAULT_PURPOSES,
    Organisation,
    ProviderLink,
    RequestKind,
)
from plusjeklas_tui.plugins import call_with_deadline, deadline_for
from plusjeklas_tui.providers import Provider, ProviderKind, Subject
from plusjeklas_tui.services import audit, exporter
from plusjeklas_tui.services import requests as requests_service
from plusjeklas_tui.services.erasure import ProviderTarget
from plusjeklas_tui.services.records import local_today
from plusjeklas_tui.services.retained import retained_section
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import Permission, StaffMember

SUBJECT_EXPORT_SCHEMA = "plusjeklas-subject-export/1"
LANGUAGES = ("nl", "en")


@dataclass(frozen=True)
class _Call:
    provider: str
    subject: Subject


def _local_part(
    engine: Engine,
    staff: StaffMember,
    request_id: int,
    purposes: list[str],
    retention: RetentionSettings,
    targets: Mapping[str, ProviderTarget],
) -> tuple[dict[str, Any], list[Subject], dict[tuple[str, str, int], str]]:
    """The export here, the subjects in scope, and their provider links (one transaction)."""
    with db.session_scope(engine) as session:
        request = requests_service.get_request(session, request_id)
        if request.kind not in (RequestKind.ACCESS, RequestKind.PORTABILITY):
            raise requests_service.RequestStateError(
                f"request #{request_id} is an {request.kind} request; exports answer access "
                "and portability requests"
            )
        organisation = (
            None
            if request.organisation_id is None
            else session.get(Organisation, request.organisation_id)
        )
        if organisation is None:
            raise NotFound(f"the subject of request #{request_id} no longer exists")
        person_id = request.administrator_id
        if request.subject_type == requests_service.ADMINISTRATOR and person_id is None:
            raise NotFound(f"the person of request #{request_id} no longer exists")
        today = local_today()
        here = exporter.export_organisation(
            session,
            staff,
            organisation.brin,
            purposes=purposes,
            retention=retention,
            targets=targets,
            today=today,
        )
        if person_id is not None:
            here["administrators"] = [a for a in here["administrators"] if a["id"] == person_id]
            here["organisation"] = {
                key: here["organisation"][key] for key in ("id", "brin", "name")
            }
            here.pop("subscriptions", None)
            here["retained"] = retained_section(
                session,
                retention,
                organisation.id or 0,
                today=today,
                targets=targets,
                administrator_id=person_id,
            )
        people = {a["id"]: a["email"] for a in here["administrators"]}
        subjects = [
            Subject("administrator", pid, None, email=email) for pid, email in people.items()
        ]
        if person_id is None:
            subjects.insert(
                0, Subject("organisation", organisation.id or 0, None, email=organisation.email)
            )
        condition = or_(
            *(
                and_(
                    ProviderLink.subject_type == s.subject_type,
                    ProviderLink.subject_id == s.local_id,
                )
                for s in subjects
            )
        )
        links = {
            (link.provider, link.subject_type, link.subject_id): link.external_id
            for link in session.scalars(select(ProviderLink).where(condition))
        }
        here["requests"] = [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "received_on": r.received_on.isoformat(),
                "outcome": r.outcome,
            }
            for r in requests_service.requests_about(
                session,
                organisation_id=None if person_id is not None else organisation.id,
                administrator_id=person_id,
            )
        ]
        header = {
            "request": {
                "id": request.id,
                "kind": request.kind,
                "received_on": request.received_on.isoformat(),
            },
            "subject": {
                "type": request.subject_type,
                "id": person_id if person_id is not None else organisation.id,
            },
        }
    return {**header, "here": here}, subjects, links


def _calls(
    providers: Mapping[str, Provider],
    subjects: list[Subject],
    links: Mapping[tuple[str, str, int], str],
) -> list[_Call]:
    calls = []
    for name, provider in sorted(providers.items()):
        newsletter = provider.info.kind == ProviderKind.NEWSLETTER
        for subject in subjects:
            external = links.get((name, subject.subject_type, subject.local_id))
            finds_by_address = newsletter and subject.subject_type == "administrator"
            if external is None and not finds_by_address:
                continue  # this provider holds nothing about this subject
            calls.append(
                _Call(
                    name,
                    Subject(
                        subject.subject_type,
                        subject.local_id,
                        external,
                        email=subject.email if newsletter else None,
                    ),
                )
            )
    return calls


def export_for_request(
    engine: Engine,
    staff: StaffMember,
    request_id: int,
    providers: Mapping[str, Provider],
    *,
    problems: Mapping[str, str] | None = None,
    purposes: Iterable[str] = DEFAULT_PURPOSES,
    retention: RetentionSettings | None = None,
) -> dict[str, Any]:
    """Everything held about the subject of an access or portability request; audited.

    ``providers`` are the available providers (``runtime.open_providers(...).available``);
    ``problems`` those enabled but not available, with why: they appear as failed.
    ``retention`` is ``settings.retention`` (default: the defaults, the statement's rules).
    """
    staff.require(Permission.EXPORT, "export a subject's data")
    targets = {name: ProviderTarget(name, str(p.info.kind)) for name, p in providers.items()}
    data, subjects, links = _local_part(
        engine, staff, request_id, list(purposes), retention or RetentionSettings(), targets
    )
    results: dict[str, dict[str, Any]] = {}
    for name, reason in sorted((problems or {}).items()):
        results[name] = {"ok": False, "reason": reason, "subjects": []}
    for name in providers:
        results.setdefault(name, {"ok": True, "reason": None, "subjects": []})
    for call in _calls(providers, subjects, links):
        provider = providers[call.provider]
        outcome = call_with_deadline(
            provider.export,
            call.subject,
            deadline_seconds=deadline_for(provider),
            expect=dict,
            what=f"{call.provider} export",
        )
        entry: dict[str, Any] = {
            "subject_type": call.subject.subject_type,
            "subject_id": call.subject.local_id,
            "ok": outcome.ok,
        }
        if outcome.ok:
            entry["data"] = outcome.value
        else:
            entry["reason"] = outcome.reason
            results[call.provider]["ok"] = False
            results[call.provider]["reason"] = outcome.reason
        results[call.provider]["subjects"].append(entry)
    failed = sorted(name for name, result in results.items() if not result["ok"])
    data = {
        "schema": SUBJECT_EXPORT_SCHEMA,
        "exported_at": utcnow().isoformat(),
        "exported_by": staff.username,
        **data,
        "providers": results,
        "complete": not failed,
    }
    with db.session_scope(engine) as session:
        audit.record(
            session,
            staff,
            "request_export",
            requests_service.ENTITY,
            request_id,
            providers=len(results),
            provider_calls=sum(len(r["subjects"]) for r in results.values()),
            failed=failed,
        )
    return data


# --- the readable summary ------------------------------------------------------------------

_T: dict[str, tuple[str, str]] = {
    "title": ("Overzicht van uw gegevens bij Plusjeklas", "Overview of your data at Plusjeklas"),
    "request": ("Verzoek", "Request"),
    "received": ("ontvangen op", "received on"),
    "exported": ("Samengesteld op", "Compiled on"),
    "machine": (
        "Alle gegevens staan volledig in het bijgevoegde JSON-bestand (machineleesbaar).",
        "All data is in full in the enclosed JSON file (machine-readable).",
    ),
    "school": ("School", "School"),
    "people": ("Personen", "People"),
    "name": ("Naam", "Name"),
    "email": ("E-mail", "E-mail"),
    "phones": ("Telefoon", "Phone"),
    "address": ("Adres", "Address"),
    "iban": ("IBAN", "IBAN"),
    "consent": ("Toestemming", "Consent"),
    "granted": ("gegeven", "granted"),
    "withdrawn": ("ingetrokken", "withdrawn"),
    "none": ("geen", "none"),
    "subscriptions": ("Abonnementen", "Subscriptions"),
    "until": ("tot", "until"),
    "running": ("loopt", "running"),
    "providers": ("Bij onze verwerkers", "At our processors"),
    "holds_nothing": ("heeft niets over u", "holds nothing about you"),
    "failed": (
        "kon niet worden opgevraagd; wij vragen het opnieuw op en sturen het na",
        "could not be retrieved; we will ask again and send it on",
    ),
    "records": ("gegevens ontvangen", "data received"),
    "requests": ("Uw verzoeken", "Your requests"),
    "retained": ("Hoe lang wij gegevens bewaren", "How long we keep data"),
    "general_until": (
        "Deze gegevens bewaren wij tot en met {until}, daarna worden ze verwijderd",
        "We keep this data until {until} inclusive; then it is deleted",
    ),
    "general_running": (
        "Zolang het abonnement loopt, bewaren wij deze gegevens; daarna nog {months} maanden",
        "We keep this data while the subscription runs, and {months} months after it ends",
    ),
    "general_rule": (
        "{months} maanden na het einde van het laatste abonnement",
        "{months} months after the last subscription ended",
    ),
    "left_rule": (
        "{days} dagen nadat u bij de school bent vertrokken",
        "{days} days after you left the school",
    ),
    "hold": (
        "Het verwijderen is opgeschort door een juridische blokkade (sinds {since})",
        "Deletion is paused by a legal hold (since {since})",
    ),
    "kept_longer": (
        "{category} bewaart {where} langer, op grond van {basis}: tot en met {until}",
        "{where} keeps the {category} longer, on the basis of {basis}: until {until}",
    ),
    "kept_longer_moving": (
        " (minstens; elke nieuwe betaling verschuift deze datum)",
        " (at least; each new payment moves this date)",
    ),
    "restricted": (
        "{category}: afgeschermd bewaard, voor niets anders gebruikt, op grond van {basis}, "
        "tot en met {until}",
        "{category}: kept restricted, used for nothing else, on the basis of {basis}, "
        "until {until}",
    ),
    "payment records": ("De betaalgegevens", "payment records"),
    "payment record: name, address and IBAN": (
        "De betaalgegevens (naam, adres en IBAN)",
        "payment record (name, address and IBAN)",
    ),
    "here, restricted (GDPR art. 18)": (
        "Plusjeklas (afgeschermd, AVG art. 18)",
        "Plusjeklas (restricted, GDPR art. 18)",
    ),
    "the payment provider": ("de betaaldienst", "the payment provider"),
}


def _t(key: str, language: str) -> str:
    nl, en = _T[key]
    return nl if language == "nl" else en


def _md(value: Any) -> str:
    """A value as inert Markdown text (no links, emphasis or HTML from data)."""
    text = "" if value is None else str(value)
    for char in "\\`*_{}[]<>#|!":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _known(value: Any, language: str) -> str:
    """A fixed category or place in *language*; anything else as inert text."""
    text = str(value)
    return _t(text, language) if text in _T else _md(text)


def _retained_lines(retained: Mapping[str, Any], language: str) -> list[str]:
    """The section on what is kept, why and until when."""
    general = retained["general"]
    if general["rule"] == "administrator_left":
        rule = _t("left_rule", language).format(days=general["days"])
    else:
        rule = _t("general_rule", language).format(months=general["months"])
    if general["kept_until"] is None:
        text = _t("general_running", language).format(months=general["months"])
    else:
        text = _t("general_until", language).format(until=general["kept_until"]) + f" ({rule})"
    lines = [f"## {_t('retained', language)}", "", f"- {text}."]
    if retained.get("legal_hold"):
        since = str(retained["legal_hold"]["since"])[:10]
        lines.append(f"- {_t('hold', language).format(since=since)}.")
    for entry in retained.get("kept_longer", []):
        line = _t("kept_longer", language).format(
            category=_known(entry["category"], language),
            where=_known(entry["where"], language),
            basis=_md(entry["legal_basis"]),
            until=entry["kept_until"],
        )
        if not entry.get("final", True):
            line += _t("kept_longer_moving", language)
        lines.append(f"- {line[0].upper()}{line[1:]}.")
    for record in retained.get("restricted_records", []):
        line = _t("restricted", language).format(
            category=_known(record["category"], language),
            basis=_md(record["legal_basis"]),
            until=record["keep_until"],
        )
        lines.append(f"- {line[0].upper()}{line[1:]}.")
    return [*lines, ""]


def _describe_provider_data(data: Any, language: str) -> str:
    if not isinstance(data, dict):
        return _t("records", language)
    parts = []
    if isinstance(data.get("members"), list):
        statuses = sorted(
            {str(m.get("member", {}).get("status")) for m in data["members"] if isinstance(m, dict)}
        )
        parts.append(f"{len(data['members'])} × member ({', '.join(statuses) or '-'})")
    for key in ("payments", "subscriptions", "mandates", "visits"):
        if isinstance(data.get(key), list):
            parts.append(f"{len(data[key])} × {key}")
    if "customer" in data and data["customer"] is None:
        parts.append(_t("holds_nothing", language))
    return "; ".join(parts) or _t("records", language)


def summary_markdown(export: Mapping[str, Any], language: str = "nl") -> str:
    """A readable summary of :func:`export_for_request`'s result, in Dutch or English."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    here = export["here"]
    request = export["request"]
    lines = [
        f"# {_t('title', language)}",
        "",
        f"{_t('request', language)} #{request['id']} ({request['kind']}), "
        f"{_t('received', language)} {request['received_on']}. "
        f"{_t('exported', language)} {str(export['exported_at'])[:10]}.",
        "",
        _t("machine", language),
        "",
        f"## {_t('school', language)}",
        "",
    ]
    org = here["organisation"]
    lines.append(f"- {_md(org.get('name'))} (BRIN {_md(org.get('brin'))})")
    if "street" in org:
        lines.append(
            f"- {_t('address', language)}: {_md(org['street'])}, {_md(org['postcode'])} "
            f"{_md(org['city'])}"
        )
        if org.get("email"):
            lines.append(f"- {_t('email', language)}: {_md(org['email'])}")
        if org.get("iban"):
            lines.append(f"- {_t('iban', language)}: {_md(org['iban'])}")
    lines += ["", f"## {_t('people', language)}", ""]
    for person in here["administrators"]:
        lines.append(f"### {_md(person['name'])}")
        lines.append("")
        lines.append(f"- {_t('email', language)}: {_md(person['email'])}")
        if person.get("phones"):
            lines.append(
                f"- {_t('phones', language)}: {', '.join(_md(p) for p in person['phones'])}"
            )
        consents = []
        for purpose, state in person.get("consent", {}).items():
            current = state.get("current")
            shown = (
                _t(current, language)
                if current in ("granted", "withdrawn")
                else _t("none", language)
            )
            consents.append(f"{_md(purpose)}: {shown}")
        lines.append(f"- {_t('consent', language)}: {'; '.join(consents)}")
        lines.append("")
    if here.get("subscriptions"):
        lines += [f"## {_t('subscriptions', language)}", ""]
        for sub in here["subscriptions"]:
            end = sub.get("end_date")
            period = f"{_t('until', language)} {end}" if end else _t("running", language)
            lines.append(f"- {_md(sub['plan'])}: {sub['start_date']}, {period}")
        lines.append("")
    if here.get("retained"):
        lines += _retained_lines(here["retained"], language)
    lines += [f"## {_t('providers', language)}", ""]
    for name, result in sorted(export["providers"].items()):
        if not result["subjects"] and result["ok"]:
            lines.append(f"- {_md(name)}: {_t('holds_nothing', language)}")
            continue
        if not result["subjects"]:
            lines.append(f"- {_md(name)}: {_t('failed', language)}")
            continue
        for entry in result["subjects"]:
            what = (
                _describe_provider_data(entry.get("data"), language)
                if entry["ok"]
                else _t("failed", language)
            )
            lines.append(f"- {_md(name)} ({entry['subject_type']}): {what}")
    if here.get("requests"):
        lines += ["", f"## {_t('requests', language)}", ""]
        for r in here["requests"]:
            lines.append(f"- #{r['id']} {r['kind']}, {r['received_on']}: {r['status']}")
    return "\n".join(lines).rstrip() + "\n"


def export_json(export: Mapping[str, Any]) -> str:
    """The machine-readable file: UTF-8 JSON, keys in a stable order."""
    return json.dumps(export, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def export_file_stem(request_id: int, day: dt.date) -> str:
    return f"plusjeklas-request-{request_id}-{day.isoformat()}"


def write_private(path: Path, body: str) -> None:
    """Write a file only its owner can read (it holds personal data)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
    os.chmod(path, 0o600)


def write_files(
    export: Mapping[str, Any], folder: Path, day: dt.date, language: str
) -> tuple[Path, Path]:
    """The JSON file and the summary in *language*, in *folder* (made 0700 if new)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = export_file_stem(int(export["request"]["id"]), day)
    json_path = folder / f"{stem}.json"
    summary_path = folder / f"{stem}.{language}.md"
    write_private(json_path, export_json(export))
    write_private(summary_path, summary_markdown(export, language))
    return json_path, summary_path


def failed_providers(export: Mapping[str, Any]) -> list[str]:
    return sorted(name for name, result in export["providers"].items() if not result["ok"])
