"""Where a Matomo sync resumes: a keyset cursor over visits by their last action time.

``Live.getLastVisitsDetails`` lists visits oldest first with ``filter_sort_order=asc``; its
``minTimestamp`` keeps visits whose last action is *strictly after* a Unix time. Paging by
offset alone would skip a visit whenever an earlier one moves to the end (a visit's last action
time grows while the person is still clicking), so the cursor is the last action time reached,
``after``, plus how many visits *at exactly that second* were already read, ``skip``: the next
page asks for ``minTimestamp = after - 1`` (so "at or after ``after``") from offset ``skip``.

A finished sync's cursor is the next sync's start, so every later sync is incremental: it reads
only visits with a last action at or after the newest one seen. Visits sent to Matomo later with
an older time (queued or imported tracking data) are not seen by an incremental sync.

The checkpoint is text, ``v1:<after>:<skip>``; anything else starts a full sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VERSION = "v1"


@dataclass(frozen=True)
class Cursor:
    after: int = 0
    """Last action time (Unix seconds, UTC) reached; 0: from the beginning."""
    skip: int = 0
    """Visits with a last action at exactly ``after`` that were already read."""

    @classmethod
    def parse(cls, checkpoint: str | None) -> Cursor:
        """The cursor in ``checkpoint``; a fresh one for None or text it does not understand."""
        if not checkpoint:
            return cls()
        version, _, rest = checkpoint.partition(":")
        after, _, skip = rest.partition(":")
        if version != VERSION or not after.isdigit() or not skip.isdigit():
            return cls()
        return cls(int(after), int(skip))

    def text(self) -> str:
        return f"{VERSION}:{self.after}:{self.skip}"

    def params(self) -> dict[str, int]:
        """``minTimestamp`` and ``filter_offset`` for the next page."""
        params = {"filter_offset": self.skip}
        if self.after > 1:
            params["minTimestamp"] = self.after - 1
        return params

    def advance(self, times: Sequence[int]) -> Cursor:
        """The cursor after a page whose visits have these last action times (ascending)."""
        if not times:
            return self
        last = times[-1]
        at_last = sum(1 for moment in times if moment == last)
        if last == self.after:
            return Cursor(last, self.skip + at_last)
        return Cursor(last, at_last)
