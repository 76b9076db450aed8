"""Strings of the paged table widget."""

STRINGS: dict[str, tuple[str, str]] = {
    "table.down": ("Omlaag", "Down"),
    "table.up": ("Omhoog", "Up"),
    "table.first": ("Eerste rij", "First row"),
    "table.last": ("Laatste rij", "Last row"),
    "table.page_up": ("Pagina omhoog", "Page up"),
    "table.page_down": ("Pagina omlaag", "Page down"),
    "table.column_left": ("Kolom links", "Column left"),
    "table.column_right": ("Kolom rechts", "Column right"),
    "table.open": ("Openen", "Open"),
    "table.sort": ("Sorteren", "Sort"),
    "table.empty": ("Niets te tonen", "Nothing to show"),
    "table.load_failed": ("De lijst kon niet worden geladen", "The list could not be loaded"),
}
