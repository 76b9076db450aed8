"""Shared set-up of the Retention and Deletions screen tests: a configuration whose Mailchimp
is the imitation the app starts itself (``imitation = true``, as in the demo), schools built
with chosen dates (``tests/retention_world.py``), and waiting for the app's workers."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from retention_world import School, add_school
from sqlalchemy import func, select
from textual.worker import WorkerCancelled

from plusjeklas_tui.context import AppContext, open_context
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services.deadlines import add_months
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID
from plusjeklas_tui.tui.app import PlusjeklasApp

TODAY = dt.date(2026, 11, 27)

PLUGINS = f"""
[plugins.mailchimp]
enabled = true
imitation = true
list_id = "{DEFAULT_LIST_ID}"
"""

Contexts = Callable[..., AppContext]


@pytest.fixture
def contexts(write_config: Callable[..., Path]) -> Iterator[Contexts]:
    """``contexts(user=None)``: an opened context on one migrated database with Mailchimp."""
    from plusjeklas_tui import db

    path = write_config(extra=PLUGINS)
    opened: list[AppContext] = []

    def open_(user: str | None = None) -> AppContext:
        context = open_context(path, user, require_ready=False)
        if not opened:
            db.upgrade(context.engine)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()


def ago(months: int, days: int = 0) -> dt.date:
    return add_months(TODAY, -months) - dt.timedelta(days=days)


def school(ctx: AppContext, n: int, ended: dt.date, people: int = 2) -> School:
    """A school whose people are at Mailchimp (links only: the imitation does not know them,
    so erasing them there is *already gone*, which counts as done)."""
    with session_scope(ctx.engine) as session:
        return add_school(session, n, ended=ended, people=people, links=("mailchimp",))


def count(ctx: AppContext, model: type, *where: object) -> int:
    with ctx.engine.connect() as conn:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)
        return conn.execute(query).scalar_one()


def make_app(ctx: AppContext) -> PlusjeklasApp:
    return PlusjeklasApp(ctx, today=lambda: TODAY)


async def settle(app: PlusjeklasApp, pilot: object) -> None:
    """Wait for every worker, again after the screens react (they start new ones)."""
    for _ in range(4):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


def cells(table: object, row: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(row)]  # type: ignore[attr-defined]
