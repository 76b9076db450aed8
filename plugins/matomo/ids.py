"""Matomo user ids: issued opaque, refused when Matomo could not match them, put in segments right.

The app, not the website, issues the id a person is known by at Matomo: ``pjk-`` and 32 random
hex digits. It says nothing about the person (never an e-mail address: Matomo shows user ids in
its reports and keeps them in its logs), and it is unguessable, so nobody can pose as someone
else in the statistics by setting a predictable id.

Matomo finds a person's visits with a segment, ``userId==<id>``. It URL-decodes a segment value
twice after the HTTP layer (``SegmentExpression`` decodes the condition and then the value), and
current versions first try decoding the whole segment once more. So the value is URL-encoded once
(as Matomo's documentation asks) — that keeps ``,`` and ``;``, which join conditions, out of the
segment's syntax — and the form encoding of the request body adds the outer layer. For ids with
``%`` or ``+`` the number of decodings changes the value (``+`` becomes a space) and differs
between Matomo versions; ``&<>"'\\`` are HTML-escaped by Matomo's request sanitising. Ids with any
of those cannot be matched reliably and are refused with a clear reason instead of silently
matching nothing (an erasure that finds nothing would look like "already gone").
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

from plusjeklas_tui.providers import ProviderError

PREFIX = "pjk-"
MAX_LENGTH = 200
"""Matomo's ``log_visit.user_id`` is a VARCHAR(200)."""
_UNMATCHABLE = re.compile(r"[%+&<>\"'\\\x00-\x1f\x7f]")
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def new_user_id() -> str:
    """A fresh opaque Matomo user id, ``pjk-`` and 128 random bits in hex."""
    return PREFIX + secrets.token_hex(16)


def looks_like_email(user_id: str) -> bool:
    return bool(_EMAIL_LIKE.fullmatch(user_id.strip()))


def check_user_id(user_id: str) -> str:
    """The id unchanged, or a :class:`ProviderError` saying why Matomo cannot match it.

    The message never quotes the id.
    """
    if not user_id or not user_id.strip():
        raise ProviderError("the Matomo user id is empty")
    if len(user_id) > MAX_LENGTH:
        raise ProviderError(f"the Matomo user id is longer than Matomo's {MAX_LENGTH} characters")
    if _UNMATCHABLE.search(user_id):
        raise ProviderError(
            "the Matomo user id contains one of % + & < > \" ' \\ or a control character, "
            "which Matomo decodes or escapes in segments, so its visits cannot be found "
            "reliably through the API; use Matomo's GDPR tools by hand for this person"
        )
    return user_id


def user_id_segment(user_id: str) -> str:
    """The segment selecting one user id's visits, its value URL-encoded (see the module)."""
    return "userId==" + quote(check_user_id(user_id), safe="")


HAS_USER_ID = "userId!="
"""Matomo's segment for "a user id is set" (``!=`` with an empty value: not null nor empty)."""
