"""HTTP to the Mollie API: one ``httpx.Client``, bounded retries, Mollie's errors made readable.

Everything that talks to Mollie goes through :meth:`MollieClient.request`, so every call gets the
same treatment:

* a timeout on every attempt (``timeout_seconds``), certificate verification always on;
* 429 and 5xx answers, timeouts and broken connections are tried again a bounded number of times,
  honouring ``Retry-After``, but only while the whole call still fits its time budget (the app
  abandons a provider call after three times ``timeout_seconds``); a wait that does not fit is
  handed to the caller as a transient :class:`ProviderError` with ``retry_after`` set;
* Mollie's ``application/hal+json`` errors (``status``, ``title``, ``detail``, ``field``) become
  ``ProviderError("Mollie 422 Unprocessable Entity: ...")``; an HTML page from a proxy or a body
  that is not JSON gets a sentence saying so, not a parser's traceback;
* writes carry an ``Idempotency-Key`` so a retried write is not applied twice;
* list pages are followed through ``_links.next.href``, but only to the configured API address:
  the key is never sent to a host the configuration did not name.

Nothing here logs request or response bodies: they hold names, e-mail addresses and IBANs.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from plusjeklas_tui.providers import ProviderError, parse_retry_after

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mollie.com/v2"
PAGE_LIMIT = 250
"""Mollie's maximum ``limit`` for list endpoints."""

MAX_ATTEMPTS = 4
"""One try and up to three retries for a 429, a 5xx, a timeout or a broken connection."""
REQUEST_BUDGET_FACTOR = 2.5
"""One logical request (with its retries) may take this many times ``timeout_seconds``; the app
gives a provider call three times, so a call of one request always ends before the app gives up."""
BACKOFF_SECONDS = 0.25
"""First wait before a retry when Mollie gave no ``Retry-After``; doubled each time."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE_STATUSES = (404, 410)
"""How Mollie answers for a deleted customer: 410 Gone for a while, later 404 Not Found."""


class Gone(Exception):
    """The object (or the customer owning a list) is gone: Mollie answered 404 or 410."""

    def __init__(self, status: int) -> None:
        super().__init__(f"gone (HTTP {status})")
        self.status = status


@dataclass(frozen=True)
class Reply:
    """A successful (or explicitly allowed) answer: its status and its JSON body, if any."""

    status: int
    data: Any


def idempotency_key(*parts: str) -> str:
    """A stable ``Idempotency-Key`` for one logical write (the same write -> the same key).

    Hashed so the header carries no ids or text from the app, and stays under Mollie's length
    limit whatever the parts are.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"plusjeklas-{digest[:48]}"


class MollieClient:
    """A small synchronous client for the Mollie v2 API, safe to share between threads."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_seconds: float,
        max_connections: int,
        user_agent: str,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        parts = urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self._base_path = parts.path.rstrip("/")
        self._http = httpx.Client(
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/hal+json, application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            verify=True,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # --- addresses --------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute address of an API path such as ``/customers/cst_x``."""
        return f"{self.base_url}{path}"

    def check_link(self, href: str) -> str:
        """Refuse a link (``_links.next.href``) that leaves the configured API address.

        Mollie's links are absolute; following one blindly would send the API key wherever a
        response (or something pretending to be Mollie) pointed.
        """
        parts = urlsplit(href)
        same_origin = (parts.scheme, parts.hostname, parts.port) == self._origin
        if not same_origin or not parts.path.startswith(self._base_path + "/"):
            raise ProviderError(
                "Mollie's next-page link points outside the configured API address; "
                "it was not followed"
            )
        return href

    # --- requests ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        key: str | None = None,
        allow: frozenset[int] | tuple[int, ...] = (),
        deadline: float | None = None,
    ) -> Reply:
        """Send one logical request, retrying what may pass; return its :class:`Reply`.

        ``key`` is the ``Idempotency-Key`` (required for writes). ``allow`` lists error statuses
        the caller handles itself (404/410 for "already gone"); they come back as a Reply.
        ``deadline`` (``time.monotonic()``) bounds a call made of several requests.
        """
        if method != "GET" and key is None:
            raise ValueError(f"{method} to Mollie needs an idempotency key")
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        headers = {"Idempotency-Key": key} if key else {}
        started = time.monotonic()
        budget_end = started + REQUEST_BUDGET_FACTOR * self.timeout_seconds
        if deadline is not None:
            budget_end = min(budget_end, deadline)
        attempt = 0
        while True:
            attempt += 1
            remaining = budget_end - time.monotonic()
            if remaining <= 0.05:
                raise ProviderError(
                    f"Mollie calls did not finish within the time allowed "
                    f"({budget_end - started:.3g} s); try again later",
                    transient=True,
                )
            timeout = httpx.Timeout(min(self.timeout_seconds, remaining))
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=headers, timeout=timeout
                )
            except httpx.TimeoutException:
                failure = ProviderError(
                    f"Mollie did not answer within {timeout.read:g} s", transient=True
                )
                wait = self._backoff(attempt, None)
            except httpx.TransportError as exc:
                failure = ProviderError(
                    f"cannot reach Mollie ({type(exc).__name__})", transient=True
                )
                wait = self._backoff(attempt, None)
            else:
                if response.status_code < 400:
                    return Reply(response.status_code, parse_body(response))
                if response.status_code in allow:
                    reply = Reply(response.status_code, parse_body(response))
                    if is_mollie_error(reply):
                        return reply
                    raise error_from(response)
                failure = error_from(response)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                wait = self._backoff(attempt, failure.retry_after)
            fits = time.monotonic() + wait + min(self.timeout_seconds, 1.0) <= budget_end
            if attempt >= MAX_ATTEMPTS or not fits:
                raise failure
            log.info(
                "Mollie %s %s: %s; retry %d in %.2f s", method, _route(url), failure, attempt, wait
            )
            time.sleep(wait)

    @staticmethod
    def _backoff(attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return BACKOFF_SECONDS * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)

    def get(self, path_or_url: str, **kwargs: Any) -> Reply:
        return self.request("GET", path_or_url, **kwargs)

    def iter_list(
        self,
        path: str,
        embedded: str,
        *,
        limit: int = PAGE_LIMIT,
        deadline: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, page by page through ``_links.next.href``.

        Raises :class:`Gone` when the list's owner (a customer) answers 404 or 410.
        """
        url: str | None = self.url(path)
        params: dict[str, str | int] | None = {"limit": limit}
        while url is not None:
            reply = self.get(url, params=params, allow=GONE_STATUSES, deadline=deadline)
            if reply.status in GONE_STATUSES:
                raise Gone(reply.status)
            items, next_href = list_page(reply.data, embedded)
            yield from items
            url = self.check_link(next_href) if next_href else None
            params = None  # the next link carries its own query


def is_mollie_error(reply: Reply) -> bool:
    """An error answer in Mollie's own shape (``{"status": 404, "title": ...}``).

    Only such an answer counts as "gone" for a 404 or 410: a bare 404 from something else (a
    wrong ``base_url`` reaching a web server) is no proof that a customer was erased.
    """
    data = reply.data
    return isinstance(data, dict) and data.get("status") == reply.status and "title" in data


def list_page(data: Any, embedded: str) -> tuple[list[dict[str, Any]], str | None]:
    """The objects and the next-page link of one list answer; a readable error if malformed."""
    try:
        items = data["_embedded"][embedded]
        links = data.get("_links") or {}
        following = links.get("next") or {}
        next_href = following.get("href") if isinstance(following, dict) else None
    except (KeyError, TypeError, AttributeError):
        raise ProviderError(
            f"Mollie's list of {embedded} has an unexpected shape (no _embedded.{embedded})"
        ) from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ProviderError(f"Mollie's list of {embedded} is not a list of objects")
    if next_href is not None and not isinstance(next_href, str):
        raise ProviderError(f"Mollie's list of {embedded} has a next link that is not text")
    return items, next_href


# --- answers --------------------------------------------------------------------------------------


def _looks_like_html(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type:
        return True
    return response.content.lstrip()[:1] == b"<"


def parse_body(response: httpx.Response) -> Any:
    """The JSON of a successful answer (None for 204 or an empty body)."""
    if response.status_code == 204 or not response.content:
        return None
    if _looks_like_html(response):
        raise ProviderError(
            f"Mollie answered with an HTML page (HTTP {response.status_code}), not JSON",
            status=response.status_code,
            transient=True,
        )
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            f"Mollie answered HTTP {response.status_code} with malformed JSON",
            status=response.status_code,
            transient=True,
        ) from None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (either delta-seconds or an HTTP date), or None."""
    return parse_retry_after(response.headers.get("retry-after"))


def error_from(response: httpx.Response) -> ProviderError:
    """A :class:`ProviderError` in Mollie's own words (``title``/``detail``), redacted."""
    status = response.status_code
    transient = status in RETRY_STATUSES or status >= 500
    retry_after = retry_after_seconds(response)
    if _looks_like_html(response):
        reason = f"Mollie answered with an HTML page (HTTP {status}), not JSON"
    else:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and (body.get("title") or body.get("detail")):
            title = str(body.get("title") or "").strip()
            detail = str(body.get("detail") or "").strip()
            reason = f"Mollie {status} {title}: {detail}" if detail else f"Mollie {status} {title}"
            field = body.get("field")
            if isinstance(field, str) and field:
                reason += f" (field {field})"
        elif body is None and response.content:
            reason = f"Mollie answered HTTP {status} with a body that is not JSON"
        else:
            reason = f"Mollie answered HTTP {status}"
    return ProviderError(reason, status=status, transient=transient, retry_after=retry_after)


def _route(url: str) -> str:
    """The path of a URL with ids blanked, for a log line (ids are not personal, but short)."""
    path = urlsplit(url).path
    return "/".join("…" if "_" in segment else segment for segment in path.split("/"))
