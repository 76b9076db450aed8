"""Plugin events, told after commit: record changed, consent changed, subject erased.

Every change the app makes writes an :class:`~plusjeklas_tui.models.AuditEvent` in the same
transaction (``services/audit.py``), so the audit rows a transaction added say exactly what
changed. This module collects them as the session flushes and, once the transaction has
committed (never before, never after a rollback), hands them to the plugins' event hooks on one
background thread: a slow or broken listener never holds up a screen or a command, and each
listener is called on its own (:func:`plusjeklas_tui.plugins.notify`).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from plusjeklas_tui.models import AuditEvent

log = logging.getLogger(__name__)

PENDING = "plusjeklas_pending_events"
RECORD_ENTITIES = frozenset({"organisation", "administrator", "subscription"})
RECORD_ACTIONS = frozenset({"create", "update"})

_executor: ThreadPoolExecutor | None = None
_plugin_set: Any = None


def use_plugins(plugin_set: Any) -> None:
    """Send events to this plugin set (tests; the app uses the discovered plugins)."""
    global _plugin_set
    _plugin_set = plugin_set


def _plugins() -> Any:
    global _plugin_set
    if _plugin_set is None:
        from plusjeklas_tui.plugins import discover

        _plugin_set = discover()
    return _plugin_set


def event_for(audit: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    """The plugin event an audit row stands for, or None."""
    try:
        detail = json.loads(audit.detail or "{}")
    except ValueError:
        return None
    if audit.entity in RECORD_ENTITIES and audit.action in RECORD_ACTIONS and audit.entity_id:
        fields = detail.get("fields") or []
        return "record_changed", {
            "entity": audit.entity,
            "entity_id": audit.entity_id,
            "fields": [str(f) for f in fields],
        }
    if audit.action == "consent" and audit.entity_id:
        return "consent_changed", {
            "administrator_id": audit.entity_id,
            "purpose": str(detail.get("purpose", "")),
            "action": str(detail.get("consent", "")),
            "source": str(detail.get("source", "")),
        }
    if audit.action == "erase" and audit.entity_id:
        return "subject_erased", {
            "subject_type": audit.entity,
            "subject_id": audit.entity_id,
            "reason": str(detail.get("rule") or detail.get("reason") or "request"),
        }
    return None


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    found = [
        pending
        for obj in session.new
        if isinstance(obj, AuditEvent) and (pending := event_for(obj)) is not None
    ]
    if found:
        session.info.setdefault(PENDING, []).extend(found)


@event.listens_for(Session, "after_commit")
def _tell_plugins(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        _submit(pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


def _submit(pending: list[tuple[str, dict[str, Any]]]) -> Future[None]:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plusjeklas-events")
    return _executor.submit(_deliver, pending)


def _deliver(pending: list[tuple[str, dict[str, Any]]]) -> None:
    from plusjeklas_tui.plugins import notify

    plugin_set = _plugins()
    for hook_name, kwargs in pending:
        notify(plugin_set, hook_name, **kwargs)


def drain(timeout: float = 5.0) -> None:
    """Wait until every event told so far has been delivered (tests, and before exiting)."""
    if _executor is not None:
        _executor.submit(lambda: None).result(timeout)
