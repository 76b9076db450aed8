"""Reading an audience's members page by page, several pages at a time, in order.

Mailchimp pages with ``count`` (at most 1000) and ``offset`` and says ``total_items``. With 30 ms
or more per request and 10 simultaneous connections allowed, one page at a time would leave nine
connections idle; so up to :data:`WINDOW` pages are in flight at once and handed to the app in
offset order, each with a checkpoint that resumes right after it.

The checkpoint is JSON. While a sync runs it is ``{"since": …, "started": …, "offset": n}``: the
filter of this run, when the run began, and the offset to resume at. The last page of a run
carries ``{"since": <when that run began>}``, so the next run asks only for members changed
since then (``since_last_changed``, less :data:`CLOCK_MARGIN` against clock skew between this
machine and Mailchimp). Offsets move when members are added or removed during a run; whatever
changes while a run is under way has a newer ``last_changed`` and comes again in the next run.

A full sync (no checkpoint yet) does not know how many pages there are, so it asks for the first
:data:`WINDOW` at once; an incremental one (usually a few changes) asks for one page first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from plusjeklas_plugins.mailchimp.client import MAX_CONNECTIONS, MailchimpClient

from plusjeklas_tui.providers import MemberStatus, ProviderError, SyncPage

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
WINDOW = MAX_CONNECTIONS
CLOCK_MARGIN = dt.timedelta(minutes=5)
FIELDS = [
    "members.id",
    "members.email_address",
    "members.status",
    "members.last_changed",
    "total_items",
]


@dataclass(frozen=True)
class Position:
    """Where a sync stands: its ``since_last_changed`` filter, its start, its next offset."""

    since: dt.datetime | None
    started: dt.datetime
    offset: int = 0

    def resume_after(self, offset: int) -> str:
        return json.dumps(
            {"since": _iso(self.since), "started": _iso(self.started), "offset": offset},
            separators=(",", ":"),
        )

    def finished(self) -> str:
        return json.dumps({"since": _iso(self.started)}, separators=(",", ":"))

    @classmethod
    def from_checkpoint(cls, checkpoint: str | None, now: dt.datetime) -> Position:
        """Resume a run, or start the next one; an unreadable checkpoint starts a full sync."""
        if not checkpoint:
            return cls(None, now)
        try:
            data = json.loads(checkpoint)
            since = _parse(data.get("since"))
            if "offset" in data:
                offset = int(data["offset"])
                started = _parse(data.get("started"))
                if offset < 0 or started is None:
                    raise ValueError("bad offset or start")
                return cls(since, started, offset)
            if since is None:
                raise ValueError("no since")
            return cls(since, now)
        except (ValueError, TypeError, AttributeError):
            log.warning("mailchimp: the stored sync checkpoint is unreadable; doing a full sync")
            return cls(None, now)


def member_pages(
    client: MailchimpClient,
    list_id: str,
    checkpoint: str | None,
    *,
    now: dt.datetime | None = None,
) -> Iterator[SyncPage]:
    """The audience's members as :class:`SyncPage` s, in offset order (see module docstring)."""
    position = Position.from_checkpoint(checkpoint, now or dt.datetime.now(dt.UTC))
    since = None if position.since is None else _iso(position.since - CLOCK_MARGIN)

    def fetch(offset: int) -> dict[str, Any]:
        params: dict[str, Any] = {"count": PAGE_SIZE, "offset": offset, "fields": FIELDS}
        if since is not None:
            params["since_last_changed"] = since
        answer = client.call("member list", client.lists.get_list_members_info, list_id, **params)
        data = answer.data
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("members"), list)
            or not isinstance(data.get("total_items"), int)
        ):
            raise ProviderError("Mailchimp member list: the answer has no members or total")
        return data

    pool = ThreadPoolExecutor(max_workers=WINDOW, thread_name_prefix="mailchimp-sync")
    pending: deque[tuple[int, Future[dict[str, Any]]]] = deque()
    next_offset = position.offset
    first = WINDOW if position.since is None else 1
    try:
        for _ in range(first):
            pending.append((next_offset, pool.submit(fetch, next_offset)))
            next_offset += PAGE_SIZE
        while pending:
            offset, future = pending.popleft()
            data = future.result()
            members = data["members"]
            total = data["total_items"]
            while len(pending) < WINDOW and next_offset < total:
                pending.append((next_offset, pool.submit(fetch, next_offset)))
                next_offset += PAGE_SIZE
            end = len(members) < PAGE_SIZE or offset + len(members) >= total
            items = [_member(raw) for raw in members]
            if end:
                yield SyncPage(items, position.finished(), total)
                return
            yield SyncPage(items, position.resume_after(offset + len(members)), total)
            if not pending:
                pending.append((next_offset, pool.submit(fetch, next_offset)))
                next_offset += PAGE_SIZE
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _member(raw: Any) -> MemberStatus:
    """One member of a page (hot: 50,000 in a full sync of a big audience)."""
    try:
        changed = raw.get("last_changed")
        return MemberStatus(
            raw["id"],
            raw["email_address"],
            raw["status"],
            _FROM_ISO(changed) if changed else None,  # Mailchimp's times carry +00:00
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        raise ProviderError(
            "Mailchimp member list: a member lacks its id, address or status, or has an "
            "unreadable last_changed"
        ) from None


_FROM_ISO = dt.datetime.fromisoformat


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def _parse(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
