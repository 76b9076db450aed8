"""What a list shows: the filters a dashboard tile or the `/` box hands to a list screen.

Plain data with no Textual in it, so the services can read it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class OrganisationFilter:
    text: str = ""
    """Incremental filter over name, city, BRIN, postcode (and exact contact e-mail)."""
    status: str | None = None
    """Only organisations with a subscription in this state."""
    urgency: str | None = None
    """Retention band: 'overdue', 'soon' (30 days), 'near' (90 days)."""
    due_month: str | None = None
    """Deadline in this month, ``YYYY-MM``."""

    def without(self, name: str) -> OrganisationFilter:
        return replace(self, **{name: "" if name == "text" else None})

    def chips(self) -> list[tuple[str, str]]:
        """(field, value) pairs shown as removable chips."""
        pairs = [("status", self.status), ("urgency", self.urgency), ("due_month", self.due_month)]
        return [(name, value) for name, value in pairs if value]
