"""Strings shared by the whole app: navigation, help, confirmations."""

STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("Plusjeklas privacy", "Plusjeklas privacy"),
    "app.subtitle": ("{user} ({role})", "{user} ({role})"),
    "nav.dashboard": ("Dashboard", "Dashboard"),
    "nav.organisations": ("Scholen", "Schools"),
    "nav.people": ("Personen", "People"),
    "nav.audit": ("Audit", "Audit"),
    "nav.help": ("Help", "Help"),
    "nav.screens": ("Schermen", "Screens"),
    "nav.back": ("Terug", "Back"),
    "nav.quit": ("Afsluiten", "Quit"),
    "nav.refresh": ("Vernieuwen", "Refresh"),
    "nav.filter": ("Filter", "Filter"),
    "help.title": ("Toetsen van dit scherm", "Keys on this screen"),
    "help.key": ("Toets", "Key"),
    "help.action": ("Actie", "Action"),
    "help.close": ("Escape of ? sluit dit venster", "Escape or ? closes this window"),
    "confirm.yes": ("Ja", "Yes"),
    "confirm.no": ("Nee", "No"),
    "confirm.quit_unsaved": (
        "Er zijn niet-opgeslagen wijzigingen. Toch afsluiten?",
        "There are unsaved changes. Quit anyway?",
    ),
    "role.viewer": ("kijker", "viewer"),
    "role.editor": ("bewerker", "editor"),
    "role.admin": ("beheerder", "admin"),
    "error.unexpected": (
        "Er ging iets mis ({kind}); de details staan niet op het scherm. Probeer het opnieuw.",
        "Something went wrong ({kind}); details are not shown. Please try again.",
    ),
    "error.permission": (
        "Uw rol ({role}) mag dit niet.",
        "Your role ({role}) may not do this.",
    ),
    "palette.screen": ("Ga naar {screen}", "Go to {screen}"),
    "palette.organisation": ("School openen: {name} ({brin})", "Open school: {name} ({brin})"),
}
