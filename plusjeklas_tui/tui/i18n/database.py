"""Strings for database trouble: what happened and what to do, never the driver's text."""

STRINGS: dict[str, tuple[str, str]] = {
    "db.locked": (
        "De database is bezet: iemand anders houdt hem vergrendeld. Probeer het zo opnieuw.",
        "The database is busy: someone else holds a lock on it. Try again shortly.",
    ),
    "db.unavailable": (
        "De database is niet te openen (weg, onleesbaar of onbereikbaar). Probeer het zo opnieuw.",
        "The database cannot be opened (gone, unreadable or unreachable). Try again shortly.",
    ),
    "db.newer": (
        "De database is bijgewerkt door een nieuwere versie van plusjeklas; deze versie leest "
        "en schrijft er niet meer in. Werk plusjeklas bij en start opnieuw.",
        "The database was migrated by a newer version of plusjeklas; this version no longer "
        "reads or writes it. Upgrade plusjeklas and start again.",
    ),
    "db.older": (
        "De database hoort bij een oudere versie: voer `plusjeklas db upgrade` uit.",
        "The database belongs to an older version: run `plusjeklas db upgrade`.",
    ),
    "db.missing": (
        "Er staat geen ingerichte database (meer) waar de database hoort te staan.",
        "There is no set-up database (any more) where the database should be.",
    ),
    "db.not_saved": ("Niet opgeslagen. {problem}", "Not saved. {problem}"),
}
