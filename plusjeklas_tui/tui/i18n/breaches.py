"""Strings of the Breaches screen, its detail view and its forms, and the ``breach.*`` rules.

The rules' English is the service's own
(:data:`~plusjeklas_tui.services.breach_rules.BREACH_RULES`), so the app and the CLI say the
same thing; only the Dutch is written here.
"""

from plusjeklas_tui.services.breach_rules import BREACH_RULES

DUTCH_RULES: dict[str, str] = {
    "choice": "kies een van: {allowed}",
    "choices": "onbekende keuze {found}; kies een of meer van: {allowed}",
    "choices_required": "kies ten minste een van: {allowed}",
    "flag": "vul ja of nee in",
    "count": "moet een heel getal zijn van 0 of meer",
    "moment.format": (
        "schrijf een tijd als JJJJ-MM-DD UU:MM (Nederlandse tijd), bijvoorbeeld 2026-03-02 14:30"
    ),
    "moment.gap": "bestaat niet in Nederland (die nacht ging de klok vooruit); controleer de tijd",
    "moment.ambiguous": (
        "kwam in Nederland twee keer voor (die nacht ging de klok terug); zet er +02:00 achter "
        "voor de eerste keer of +01:00 voor de tweede"
    ),
    "moment.future": "mag niet in de toekomst liggen",
    "started_after_discovery": "mag niet na het moment van ontdekken liggen",
    "ended_before_start": "mag niet voor het begin van het datalek liggen",
    "ended_while_ongoing": "moet leeg zijn zolang het datalek nog voortduurt",
    "max_below_min": "moet ten minste het minimale aantal betrokkenen zijn ({minimum})",
    "other_needs_description": "is verplicht als de soorten gegevens 'other' bevatten",
    "follow_up_needs_reference": (
        "is verplicht bij een vervolgmelding: het meldnummer van de eerdere melding"
    ),
    "processor_needs_name": "is verplicht als er een verwerker betrokken was",
    "informed_needs_how": (
        "is verplicht als de betrokkenen zijn of worden geïnformeerd: hoe en wanneer"
    ),
    "reported_before_discovery": "mag niet voor het moment van ontdekken liggen",
    "late_needs_reason": (
        "is verplicht: de melding is later dan 72 uur na het ontdekken van het datalek gedaan"
    ),
    "not_reportable_needs_reason": "is verplicht: zeg waarom dit datalek niet gemeld hoeft",
}

STRINGS: dict[str, tuple[str, str]] = {
    **{
        f"validation.breach.{code}": (DUTCH_RULES[code], text)
        for code, text in BREACH_RULES.items()
    },
    # --- navigation ---------------------------------------------------------------------------
    "nav.breaches": ("Datalekken", "Breaches"),
    # --- the list -----------------------------------------------------------------------------
    "breaches.title": ("Datalekkenregister", "Breach register"),
    "breaches.loading": ("Laden…", "Loading…"),
    "breaches.empty": ("Er staan geen datalekken in het register.", "The register is empty."),
    "breaches.summary": (
        "Open: {open} (over de 72 uur: {overdue}) · in het register: {total}",
        "Open: {open} (past the 72 hours: {overdue}) · in the register: {total}",
    ),
    "breaches.col.id": ("Nr", "No"),
    "breaches.col.status": ("Status", "Status"),
    "breaches.col.discovered": ("Ontdekt", "Discovered"),
    "breaches.col.deadline": ("Melden vóór", "Report by"),
    "breaches.col.left": ("Resterend", "Time left"),
    "breaches.col.people": ("Betrokkenen", "People"),
    "breaches.col.summary": ("Samenvatting", "Summary"),
    "breaches.status.open": ("open", "open"),
    "breaches.status.reported": ("gemeld", "reported"),
    "breaches.status.not_reportable": ("niet meldplichtig", "not reportable"),
    "breaches.left": ("nog {hours} u {minutes} min", "{hours} h {minutes} min left"),
    "breaches.overdue": ("{hours} u {minutes} min te laat", "overdue by {hours} h {minutes} min"),
    "breaches.none": ("–", "–"),
    "breaches.new": ("Nieuw datalek", "New breach"),
    "breaches.open": ("Bekijken", "Open"),
    "breaches.report": ("Gemeld", "Reported"),
    "breaches.not_reportable": ("Niet meldplichtig", "Not reportable"),
    "breaches.edit": ("Wijzigen", "Edit"),
    "breaches.saved": ("Datalek #{id} is opgeslagen.", "Breach #{id} was saved."),
    # --- the detail view ----------------------------------------------------------------------
    "breaches.detail.title": ("Datalek #{id}", "Breach #{id}"),
    "breaches.detail.status_open": (
        "Nog niet gemeld — {left} (uiterlijk {deadline})",
        "Not reported yet — {left} (by {deadline})",
    ),
    "breaches.detail.status_reported": (
        "Gemeld op {when}, meldnummer {reference}",
        "Reported on {when}, reference {reference}",
    ),
    "breaches.detail.status_not_reportable": (
        "Niet meldplichtig (beoordeeld door {who}): {reason}",
        "Not reportable (judged by {who}): {reason}",
    ),
    "breaches.detail.contact": (
        "Contactadres voor meldingen: {address}",
        "Address for reports: {address}",
    ),
    # --- the forms ----------------------------------------------------------------------------
    "breaches.form.new_title": ("Nieuw datalek vastleggen", "Record a new breach"),
    "breaches.form.edit_title": ("Datalek #{id} wijzigen", "Edit breach #{id}"),
    "breaches.form.report_title": ("Datalek #{id} is gemeld", "Breach #{id} was reported"),
    "breaches.form.not_reportable_title": (
        "Datalek #{id} is niet meldplichtig",
        "Breach #{id} is not reportable",
    ),
    "breaches.form.time_hint": ("JJJJ-MM-DD UU:MM", "YYYY-MM-DD HH:MM"),
    "breaches.form.flag_hint": ("ja / nee", "yes / no"),
    "breaches.field.follow_up": ("Vervolgmelding", "Follow-up"),
    "breaches.field.earlier_reference": ("Eerder meldnr", "Earlier report"),
    "breaches.field.contact_name": ("Contactpersoon", "Contact person"),
    "breaches.field.contact_function": ("Functie", "Function"),
    "breaches.field.contact_phone": ("Telefoon", "Phone"),
    "breaches.field.contact_email": ("E-mail", "E-mail"),
    "breaches.field.processor_involved": ("Verwerker?", "Processor?"),
    "breaches.field.processor_name": ("Verwerker", "Processor"),
    "breaches.field.started_at": ("Begonnen", "Started"),
    "breaches.field.ended_at": ("Geëindigd", "Ended"),
    "breaches.field.ongoing": ("Duurt voort", "Ongoing"),
    "breaches.field.discovered_at": ("Ontdekt", "Discovered"),
    "breaches.field.late_reason": ("Reden te laat", "Late reason"),
    "breaches.field.summary": ("Samenvatting", "Summary"),
    "breaches.field.nature": ("Aard", "Nature"),
    "breaches.field.cause": ("Oorzaak", "Cause"),
    "breaches.field.data_types": ("Gegevens", "Data types"),
    "breaches.field.data_types_other": ("Andere gegevens", "Other data"),
    "breaches.field.records_approx": ("Records (ca.)", "Records (approx.)"),
    "breaches.field.groups": ("Groepen", "Groups"),
    "breaches.field.people_min": ("Personen min", "People min"),
    "breaches.field.people_max": ("Personen max", "People max"),
    "breaches.field.vulnerable_groups": ("Kwetsbaar?", "Vulnerable?"),
    "breaches.field.encrypted": ("Versleuteld", "Encrypted"),
    "breaches.field.consequences": ("Gevolgen", "Consequences"),
    "breaches.field.informed": ("Geïnformeerd", "Informed"),
    "breaches.field.informed_how": ("Hoe informeren", "How informed"),
    "breaches.field.measures": ("Maatregelen", "Measures"),
    "breaches.field.ap_reference": ("Meldnummer", "Reference"),
    "breaches.field.reported_at": ("Gemeld op", "Reported at"),
    "breaches.field.not_reportable_reason": ("Reden", "Reason"),
}
