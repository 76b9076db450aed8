"""The English text of the breach register's rules (codes ``breach.*``).

Kept apart from :mod:`plusjeklas_tui.services.breaches` so the staff app's string catalogue can
read them without importing the service (and the database code behind it) at start-up.
"""

from __future__ import annotations

BREACH_RULES: dict[str, str] = {
    "choice": "must be one of: {allowed}",
    "choices": "unknown choice {found}; use one or more of: {allowed}",
    "choices_required": "choose at least one of: {allowed}",
    "flag": "must be yes or no",
    "count": "must be a whole number of 0 or more",
    "moment.format": (
        "must be a time written as YYYY-MM-DD HH:MM (Amsterdam time), e.g. 2026-03-02 14:30"
    ),
    "moment.gap": (
        "does not exist in Amsterdam (the clocks were put forward that night); check the time"
    ),
    "moment.ambiguous": (
        "happened twice in Amsterdam (the clocks were put back that night); add +02:00 for "
        "the first or +01:00 for the second"
    ),
    "moment.future": "cannot be in the future",
    "started_after_discovery": "cannot be after the time the breach was discovered",
    "ended_before_start": "cannot be before the time the breach started",
    "ended_while_ongoing": "must be empty while the breach is still going on",
    "max_below_min": "must be at least the minimum number of people ({minimum})",
    "other_needs_description": "is required when the data types include 'other'",
    "follow_up_needs_reference": (
        "is required for a follow-up: the number of the earlier report to the regulator"
    ),
    "processor_needs_name": "is required when a processor was involved",
    "informed_needs_how": "is required when the people were or will be informed: say how and when",
    "reported_before_discovery": "cannot be before the time the breach was discovered",
    "late_needs_reason": (
        "is required: the report was made more than 72 hours after the breach was discovered"
    ),
    "not_reportable_needs_reason": "is required: say why this breach need not be reported",
}
