"""Strings of the three list screens (organisations, people, audit) and their filter bar."""

STRINGS: dict[str, tuple[str, str]] = {
    # shared
    "lists.title": ("{app} · {screen}", "{app} · {screen}"),
    "lists.loading": ("Laden…", "Loading…"),
    "lists.searching": ("zoeken…", "searching…"),
    "lists.load_failed": ("niet geladen", "not loaded"),
    "lists.nothing_found": ("Niets gevonden met dit filter", "Nothing matches this filter"),
    "lists.filter.done": ("Naar de lijst", "To the list"),
    "lists.focus_list": ("Naar de lijst", "To the list"),
    "lists.chip.remove": ("Filter weghalen", "Remove filter"),
    "lists.clear_filters": ("Filters wissen", "Clear filters"),
    # organisations
    "lists.organisations.placeholder": (
        "/ Zoek op naam, plaats, BRIN, postcode of exact e-mailadres",
        "/ Search name, city, BRIN, postcode or exact e-mail",
    ),
    "lists.organisations.count": ("{count} scholen", "{count} schools"),
    "lists.organisations.count.one": ("1 school", "1 school"),
    "lists.organisations.empty": ("Nog geen scholen", "No schools yet"),
    "lists.col.name": ("Naam", "Name"),
    "lists.col.city": ("Plaats", "City"),
    "lists.col.brin": ("BRIN", "BRIN"),
    "lists.col.postcode": ("Postcode", "Postcode"),
    "lists.col.status": ("Status", "Status"),
    "lists.col.deadline": ("Bewaren tot", "Keep until"),
    "lists.status.trial": ("proef", "trial"),
    "lists.status.active": ("actief", "active"),
    "lists.status.cancelled": ("opgezegd", "cancelled"),
    "lists.status.ended": ("beëindigd", "ended"),
    "lists.status.none": ("geen", "none"),
    "lists.deadline.none": ("loopt", "running"),
    "lists.chip.status": ("Status: {status}", "Status: {status}"),
    "lists.chip.urgency.overdue": ("Over de termijn", "Overdue for deletion"),
    "lists.chip.urgency.soon": ("Binnen 30 dagen", "Due within 30 days"),
    "lists.chip.urgency.near": ("Binnen 90 dagen", "Due within 90 days"),
    "lists.chip.due_month": ("Te verwijderen in {month}", "Due in {month}"),
    # people
    "lists.people.placeholder": (
        "/ Exact e-mailadres (namen zijn versleuteld: niet doorzoekbaar)",
        "/ Exact e-mail address (names are encrypted: not searchable)",
    ),
    "lists.people.count": ("{count} personen", "{count} people"),
    "lists.people.count.one": ("1 persoon", "1 person"),
    "lists.people.empty": ("Nog geen personen", "No people yet"),
    "lists.people.need_email": (
        "Typ een volledig e-mailadres; alleen exact zoeken is mogelijk.",
        "Type a complete e-mail address; only exact search is possible.",
    ),
    "lists.col.person": ("Naam", "Name"),
    "lists.col.email": ("E-mail", "E-mail"),
    "lists.col.phones": ("Telefoon", "Phone"),
    "lists.col.organisation": ("School", "School"),
    "lists.col.left_on": ("Vertrokken", "Left on"),
    # audit
    "lists.audit.placeholder": (
        "/ actor:vera action:export since:2026-11-01 until:2026-11-30",
        "/ actor:vera action:export since:2026-11-01 until:2026-11-30",
    ),
    "lists.audit.count": ("{count} gebeurtenissen", "{count} events"),
    "lists.audit.count.one": ("1 gebeurtenis", "1 event"),
    "lists.audit.empty": ("Nog niets in het auditlog", "Nothing in the audit log yet"),
    "lists.audit.no_record": (
        "Deze gebeurtenis hoort niet (meer) bij een school.",
        "This event does not (or no longer) belong to a school.",
    ),
    "lists.audit.error.unknown_key": (
        "Onbekend filterwoord '{word}:'; gebruik actor:, action:, entity:, since: of until:",
        "Unknown filter word '{word}:'; use actor:, action:, entity:, since: or until:",
    ),
    "lists.audit.error.empty_value": (
        "Na '{word}:' ontbreekt een waarde",
        "'{word}:' needs a value",
    ),
    "lists.audit.error.bad_date": (
        "'{word}:' verwacht een datum als JJJJ-MM-DD, bijvoorbeeld 2026-11-01",
        "'{word}:' expects a date as YYYY-MM-DD, e.g. 2026-11-01",
    ),
    "lists.audit.error.bad_range": (
        "'until:' ligt vóór 'since:'",
        "'until:' is before 'since:'",
    ),
    "lists.audit.error.bad_quotes": (
        "Een aanhalingsteken wordt niet gesloten",
        "A quotation mark is not closed",
    ),
    "lists.col.when": ("Wanneer", "When"),
    "lists.col.actor": ("Wie", "Who"),
    "lists.col.action": ("Actie", "Action"),
    "lists.col.entity": ("Soort", "Kind"),
    "lists.col.entity_id": ("Nr", "Id"),
    "lists.col.detail": ("Details", "Details"),
}
