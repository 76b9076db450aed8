"""Writing audit events: who did what to which record, by id, never with personal data.

:func:`record` is the one writer. The event it adds is sealed into the tamper-evident chain
when the session flushes it (:mod:`plusjeklas_tui.services.audit_chain`: the next ``seq`` and
a keyed MAC over the event and its predecessor's MAC), so the seal and the event are committed
with the change they describe, or not at all. Audit events are never updated or deleted (the
database refuses it); erasure leaves them alone, since they hold ids only.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from plusjeklas_tui.models import AuditEvent
from plusjeklas_tui.services import audit_chain  # noqa: F401 - seals events as sessions flush
from plusjeklas_tui.sqltypes import utcnow
from plusjeklas_tui.staff import StaffMember

SAFE_DETAIL_TYPES = (int, float, bool, type(None))


def record(
    session: Session,
    staff: StaffMember | str,
    action: str,
    entity: str,
    entity_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to *session* (committed with the change it describes).

    ``detail`` takes counts, flags, field names and other non-personal facts. Strings are
    allowed only as lists of field names or short identifiers chosen by code, never values
    typed by a person — callers pass ``fields=[...]``, ``count=3``, ``rule="general"``.

    The session's engine must carry the keyring (the seal's key); the writers' lock is taken
    when the session flushes the event and held until it commits.
    """
    actor = staff.username if isinstance(staff, StaffMember) else staff
    event = AuditEvent(
        occurred_at=utcnow(),
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        detail=json.dumps(detail, sort_keys=True, default=str),
    )
    session.add(event)
    return event
