"""HTTP to Matomo's Reporting API: one ``httpx.Client``, bounded retries, readable errors.

Every call is ``POST {base_url}/index.php?module=API&method=<Plugin.method>&format=json`` with
everything else — ``token_auth`` above all, but also ``idSite``, segments holding user ids and the
visits to delete — in the form-encoded body. Only the method name shows up in a web server's
access log; the token and the pseudonymous user ids do not.

What every call gets:

* a timeout on every attempt (``timeout_seconds``), certificate verification always on, and no
  redirects followed (a redirect would re-send the token to wherever it points);
* 429 and 5xx answers, timeouts and broken connections are tried again a bounded number of
  times, honouring ``Retry-After``, only while the call still fits its time budget. Every method
  used here is safe to repeat (finding and exporting read; deleting visits that are already gone
  deletes nothing);
* Matomo reports failures as ``{"result": "error", "message": ...}``, usually with HTTP 200 (401
  for authentication): the body is checked on every answer, not only the status. An HTML page
  (a proxy's error page, Matomo's login page for a wrong address) or a body that is not JSON
  becomes a sentence saying so, never a parser's traceback.

Nothing here logs request or response bodies; log lines name the API method only.
"""

from __future__ import annotations

import html
import logging
import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from plusjeklas_tui.providers import ProviderError, parse_retry_after

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
"""One try and up to three retries for a 429, a 5xx, a timeout or a broken connection."""
REQUEST_BUDGET_FACTOR = 2.5
"""One logical request (with its retries) may take this many times ``timeout_seconds``; the app
gives a whole provider call three times, so a call of one request always ends before it gives up."""
BACKOFF_SECONDS = 0.25
"""First wait before a retry without a ``Retry-After`` (from Matomo or a proxy); then doubled."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
_TAG = re.compile(r"<[^>]{0,200}>")

Params = Mapping[str, str | int] | Sequence[tuple[str, str | int]]


class MatomoClient:
    """A small synchronous client for one Matomo installation, safe to share between threads."""

    def __init__(
        self, *, base_url: str, token: str, timeout_seconds: float, user_agent: str
    ) -> None:
        self.endpoint = f"{base_url.rstrip('/')}/index.php"
        self.timeout_seconds = timeout_seconds
        self._token = token
        self._http = httpx.Client(
            headers={"Accept": "application/json", "User-Agent": user_agent},
            timeout=httpx.Timeout(timeout_seconds),
            verify=True,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, params: Params = (), *, deadline: float | None = None) -> Any:
        """Call ``method`` (``"PrivacyManager.findDataSubjects"``) and return its JSON result.

        ``params`` go in the POST body beside the token. ``deadline`` (``time.monotonic()``)
        bounds a provider call made of several requests. Raises :class:`ProviderError`.
        """
        query = {"module": "API", "method": method, "format": "json"}
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        body = [("token_auth", self._token), *((k, str(v)) for k, v in items)]
        form = urlencode(body).encode("ascii")  # repeated and ordered keys: visits[0][idsite]
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
                    f"Matomo calls did not finish within the time allowed "
                    f"({max(budget_end - started, 0):.3g} s); try again later",
                    transient=True,
                )
            timeout = min(self.timeout_seconds, remaining)
            try:
                response = self._http.post(
                    self.endpoint,
                    params=query,
                    content=form,
                    headers=FORM_HEADERS,
                    timeout=httpx.Timeout(timeout),
                )
            except httpx.TimeoutException:
                failure = ProviderError(
                    f"Matomo did not answer {method} within {timeout:.3g} s", transient=True
                )
            except httpx.TransportError as exc:
                failure = ProviderError(
                    f"cannot reach Matomo ({type(exc).__name__})", transient=True
                )
            else:
                try:
                    return read_answer(response, method)
                except ProviderError as exc:
                    if response.status_code not in RETRY_STATUSES:
                        raise
                    failure = exc
            wait = _backoff(attempt, failure.retry_after)
            fits = time.monotonic() + wait + min(self.timeout_seconds, 1.0) <= budget_end
            if attempt >= MAX_ATTEMPTS or not fits:
                raise failure
            log.info("Matomo %s: %s; retry %d in %.2f s", method, failure, attempt, wait)
            time.sleep(wait)


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return BACKOFF_SECONDS * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


# --- answers ---------------------------------------------------------------------------------


def _looks_like_html(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "html" in content_type or response.content.lstrip()[:1] == b"<"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (either delta-seconds or an HTTP date), or None."""
    return parse_retry_after(response.headers.get("retry-after"))


def clean_message(message: object) -> str:
    """Matomo's error text as plain words: tags dropped, entities decoded, kept short."""
    text = html.unescape(_TAG.sub(" ", str(message)))
    return " ".join(text.split())[:240] or "no message"


def read_answer(response: httpx.Response, method: str) -> Any:
    """The JSON result of one answer, or a :class:`ProviderError` in Matomo's own words."""
    status = response.status_code
    transient = status in RETRY_STATUSES or status >= 500
    retry_after = retry_after_seconds(response)
    if 300 <= status < 400:
        raise ProviderError(
            f"Matomo answered {method} with a redirect (HTTP {status}); check that "
            "plugins.matomo.base_url is the exact https address of the Matomo installation",
            status=status,
        )
    if _looks_like_html(response):
        hint = "" if transient else "; check that plugins.matomo.base_url points at Matomo itself"
        raise ProviderError(
            f"Matomo answered {method} with an HTML page (HTTP {status}), not JSON{hint}",
            status=status,
            transient=transient,
            retry_after=retry_after,
        )
    if not response.content.strip():
        raise ProviderError(
            f"Matomo answered {method} with an empty body (HTTP {status})",
            status=status,
            transient=True,
            retry_after=retry_after,
        )
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(
            f"Matomo answered {method} with malformed JSON (HTTP {status})",
            status=status,
            transient=True,
            retry_after=retry_after,
        ) from None
    if isinstance(data, dict) and data.get("result") == "error":
        raise ProviderError(
            f"Matomo refused {method} (HTTP {status}): {clean_message(data.get('message'))}",
            status=status,
            transient=transient,
            retry_after=retry_after,
        )
    if status >= 400:
        raise ProviderError(
            f"Matomo answered {method} with HTTP {status}",
            status=status,
            transient=transient,
            retry_after=retry_after,
        )
    return data
