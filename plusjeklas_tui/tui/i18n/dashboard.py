"""Strings of the dashboard."""

STRINGS: dict[str, tuple[str, str]] = {
    "dashboard.title": ("Overzicht", "Overview"),
    "dashboard.subscriptions": ("Abonnementen", "Subscriptions"),
    "dashboard.status.trial": ("Proef", "Trial"),
    "dashboard.status.active": ("Actief", "Active"),
    "dashboard.status.cancelled": ("Opgezegd", "Cancelled"),
    "dashboard.status.ended": ("Beëindigd", "Ended"),
    "dashboard.retention": ("Bewaartermijn", "Retention"),
    "dashboard.retention.overdue": ("Over de termijn", "Overdue for deletion"),
    "dashboard.retention.due30": ("Binnen 30 dagen", "Due within 30 days"),
    "dashboard.retention.due90": ("Binnen 90 dagen", "Due within 90 days"),
    "dashboard.chart": (
        "Te verwijderen per maand (komende 12 maanden)",
        "Deletions due per month (next 12 months)",
    ),
    "dashboard.consent": ("Toestemming nieuwsbrief deze maand", "Newsletter consent this month"),
    "dashboard.consent.granted": ("Aanmeldingen", "Opt-ins"),
    "dashboard.consent.withdrawn": ("Afmeldingen", "Withdrawals"),
    "dashboard.providers": ("Verwerkers", "Providers"),
    "dashboard.providers.none": (
        "Nog geen verwerkers gekoppeld",
        "No providers connected yet",
    ),
    "dashboard.deletions": ("Verwijderingen bij verwerkers", "Deletions at providers"),
    "dashboard.deletions.none": ("Nog niet beschikbaar", "Not available yet"),
    "dashboard.requests": ("Verzoeken van betrokkenen", "Data-subject requests"),
    "dashboard.requests.none": ("Geen open verzoeken", "No open requests"),
    "dashboard.office": ("Privacy", "Privacy office"),
    "dashboard.requests.open": ("Open verzoeken", "Open requests"),
    "dashboard.requests.open_next": (
        "Open verzoeken (eerstvolgende: nog {days} dagen)",
        "Open requests (next due in {days} days)",
    ),
    "dashboard.requests.overdue": ("Verzoeken over de termijn", "Requests overdue"),
    "dashboard.breaches.open": ("Datalekken, nog te beslissen", "Breaches awaiting a decision"),
    "dashboard.breaches.left": (
        "Datalekken, nog te beslissen (melden binnen {hours} u {minutes} min)",
        "Breaches awaiting a decision (report within {hours} h {minutes} min)",
    ),
    "dashboard.breaches.late": (
        "Datalekken, nog te beslissen (72 uur verstreken!)",
        "Breaches awaiting a decision (72 hours passed!)",
    ),
    "dashboard.feedback": ("Scholen om feedback te vragen", "Schools to ask for feedback"),
    "dashboard.promises.never": (
        "Beloftecontrole: nog niet gedraaid (plusjeklas audit promises)",
        "Promise audit: not run yet (plusjeklas audit promises)",
    ),
    "dashboard.promises.passed": (
        "Beloftecontrole {when}: alles nagekomen",
        "Promise audit {when}: every promise kept",
    ),
    "dashboard.promises.failed": (
        "Beloftecontrole {when}: niet nagekomen",
        "Promise audit {when}: promises broken",
    ),
    "dashboard.loading": ("Laden…", "Loading…"),
    "dashboard.load_failed": (
        "De cijfers konden niet worden bijgewerkt; ze zijn van de laatste keer dat het lukte.",
        "The figures could not be updated; they are from the last time it worked.",
    ),
    "dashboard.updated": ("Bijgewerkt {time}", "Updated {time}"),
    "dashboard.open_tile": ("Openen", "Open"),
}
