"""Results of the promise audit (`plusjeklas audit promises`).

One row per run: when it ran, who ran it, whether every promise held, and per promise its
pass/fail, counts and the records at fault **by id only** (``"organisation#12"``), as JSON.
Nothing personal is stored here: ids, counts and sentences written by code. The dashboard
shows the last run (:func:`last_promise_audit`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Boolean, Column, Integer, Text, select
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from plusjeklas_tui.sqltypes import UTCDateTime

__all__ = ["PromiseAudit", "last_promise_audit"]


class PromiseAudit(SQLModel, table=True):
    """One run of the promise audit; ``results`` is the JSON list of per-promise results."""

    __tablename__ = "promise_audit"

    id: int | None = Field(default=None, primary_key=True)
    ran_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str = Field(max_length=64)
    passed: bool = Field(sa_column=Column(Boolean(), nullable=False))
    checks: int = Field(sa_column=Column(Integer, nullable=False))
    failures: int = Field(sa_column=Column(Integer, nullable=False))
    results: str = Field(
        default="[]",
        sa_column=Column(Text, nullable=False),
        description="JSON list: key, title, passed, counts, fault_ids, held_ids, note "
        "(ids and counts only, never personal data)",
    )

    def result_list(self) -> list[dict[str, Any]]:
        """The per-promise results, decoded (an unreadable value reads as no results)."""
        try:
            data = json.loads(self.results)
        except ValueError:
            return []
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def failed_keys(self) -> list[str]:
        """The keys of the promises that failed in this run, in run order."""
        return [str(item.get("key")) for item in self.result_list() if not item.get("passed")]


def last_promise_audit(session: Session) -> PromiseAudit | None:
    """The most recent promise audit, or None when none has run (the dashboard's tile)."""
    query = select(PromiseAudit).order_by(
        PromiseAudit.ran_at.desc(),  # type: ignore[attr-defined]
        PromiseAudit.id.desc(),  # type: ignore[union-attr]
    )
    return session.execute(query.limit(1)).scalars().first()
