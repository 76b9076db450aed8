"""Mailchimp through the official ``mailchimp-marketing`` SDK, with the habits it lacks.

The SDK (``mailchimp_marketing.api_client``) is a thin wrapper over bare ``requests`` calls, and
several of its habits would make this plugin lie if used as they are:

* It returns, rather than raises, every response whose body is empty or not JSON: a 204, but
  also an empty-bodied 404, 429 or 403, and a 200 whose JSON is broken. So every call's HTTP
  status is read here (the client below remembers each thread's last raw response) and success
  is never assumed from "no exception".
* Its errors are :class:`ApiClientError` with the problem+json body as a raw *string* in
  ``.text`` (``application/problem+json`` is not ``application/json`` to it) and no headers; the
  title and detail are parsed here, and ``Retry-After`` is read from the remembered response.
* It rewrites the substring ``server`` anywhere in the request URL with the data centre. The
  host is built here in full (``https://us21.api.mailchimp.com/3.0``, or a loopback imitation)
  and the SDK's ``server`` is set empty, which turns the rewrite off.
* Its transport, ``ApiClient.request``, calls bare ``requests.get``/``post``/...: a new
  connection — and TLS handshake — per call. It is overridden below to send the same request
  (same URL, headers, Basic auth, JSON body) through one pooled ``requests.Session``;
  certificate verification stays on. Its timeout defaults to 120 s; it is set from
  ``timeout_seconds`` through its ``timeout`` configuration (its ``_request_timeout`` argument
  is accepted and ignored). Mailchimp allows 10 simultaneous connections: a semaphore here keeps
  every call of one provider within that, and the pool holds at most 10.

:meth:`MailchimpClient.call` retries 429 and 5xx answers, timeouts, connection errors and broken
JSON with backoff (honouring ``Retry-After``) within a time budget below the app's deadline, and
raises :class:`MailchimpProblem` — Mailchimp's title and detail, with personal data redacted —
for everything else that is not a success.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import requests
import requests.adapters
import requests.utils
from mailchimp_marketing.api.lists_api import ListsApi
from mailchimp_marketing.api.ping_api import PingApi
from mailchimp_marketing.api_client import ApiClient, ApiClientError

from plusjeklas_tui.providers import ProviderError, parse_retry_after, redact

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 10
"""Mailchimp's limit of simultaneous connections per user."""
MAX_ATTEMPTS = 6
BACKOFF_START = 0.2
BACKOFF_CAP = 5.0
BUDGET_FACTOR = 2.7
"""Retries of one call stop after this many times ``timeout_seconds`` (the app's deadline is
three times it)."""


class MailchimpProblem(ProviderError):
    """Mailchimp refused or failed a call; ``title``/``detail`` are its own words, redacted."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, status=status, transient=transient, retry_after=retry_after)
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Problem:
    """An error answer: Mailchimp's problem+json title and detail, when it sent one."""

    title: str | None
    detail: str | None
    described: bool
    """True when the body was Mailchimp's problem+json; False for an empty body or a page
    from something in between (a proxy's HTML). Only a described 404 proves "not there"."""
    errors: tuple[str, ...] = ()

    def text(self, status: int) -> str:
        if not self.described:
            return f"HTTP {status} ({_phrase(status)}) without an error description"
        parts = [part for part in (self.title, self.detail) if part]
        text = ": ".join(parts) or f"HTTP {status}"
        if self.errors:
            text += " (" + "; ".join(self.errors) + ")"
        return text


@dataclass(frozen=True)
class Answer:
    """A call's result: the HTTP status, the JSON body (None when empty), the problem if any."""

    status: int
    data: Any = None
    problem: Problem | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class _Failure:
    """One attempt that did not give an answer worth returning."""

    reason: str
    status: int | None
    problem: Problem | None
    transient: bool
    retry_after: float | None = None


class _ObservedApiClient(ApiClient):
    """The SDK's client on a pooled session, remembering each thread's last raw response.

    The SDK throws away the status of empty-bodied answers and the headers of error answers;
    both are needed (204 versus 404, ``Retry-After``). Calls run in several threads at once,
    hence a thread-local. :meth:`request` sends what the SDK's own would send (the body as
    ``json.dumps`` for POST, PUT and PATCH; Basic auth with the key) through the session.
    """

    def __init__(self, config: dict[str, Any], host: str, max_connections: int) -> None:
        super().__init__(config)
        self.host = host
        self.observed = threading.local()
        self.session = _session(host, max_connections)

    def request(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        headers: Any = None,
        body: Any = None,
    ) -> requests.Response:
        self.observed.response = None
        data = json.dumps(body) if method in ("POST", "PUT", "PATCH") else None
        response = self.session.request(
            method,
            url,
            params=query_params,
            headers=headers,
            auth=("user", self.api_key),
            data=data,
            timeout=self.timeout,
        )
        self.observed.response = response
        return response


def _session(host: str, max_connections: int) -> requests.Session:
    """A pooled session for one account: kept-alive connections (no TLS handshake per call),
    at most ``max_connections`` of them.

    The environment (proxies, ``REQUESTS_CA_BUNDLE``) is read once here, as ``requests`` would
    read it on every call; certificate verification stays on.
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max_connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.proxies = dict(requests.utils.get_environ_proxies(host))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    return session


class MailchimpClient:
    """The SDK's ``lists`` and ``ping`` APIs for one account, and :meth:`call` to use them."""

    def __init__(
        self,
        *,
        api_key: str,
        host: str,
        timeout_seconds: float,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        # "server": "" turns off the SDK's rewrite of "server" in URLs; the host is complete.
        config = {"api_key": api_key, "server": "", "timeout": timeout_seconds}
        self.api_client = _ObservedApiClient(config, host, max_connections)
        self.lists = ListsApi(self.api_client)
        self.ping = PingApi(self.api_client)
        self.timeout_seconds = timeout_seconds
        self.budget_seconds = BUDGET_FACTOR * timeout_seconds
        self._slots = threading.BoundedSemaphore(max_connections)

    @property
    def host(self) -> str:
        return self.api_client.host

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.api_client.session.close()

    def call(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        allow: Collection[int] = (),
        hide: Collection[str] = (),
        **kwargs: Any,
    ) -> Answer:
        """Call an SDK method; return its 2xx answer, or the answer for a status in ``allow``.

        ``what`` names the operation in messages and logs (never personal data). Transient
        failures are retried with backoff while the budget lasts; then, and for every other
        failure, :class:`MailchimpProblem` is raised. ``hide`` lists values (the addresses the
        call is about) taken out of its message even where they do not look like addresses.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(method, args, kwargs)
            if isinstance(outcome, Answer):
                if outcome.ok or outcome.status in allow:
                    return outcome
                outcome = _classify(outcome)
            if not outcome.transient:
                raise self._problem(what, outcome, hide=hide)
            wait = _backoff(attempt, outcome.retry_after)
            elapsed = time.monotonic() - started
            if attempt >= MAX_ATTEMPTS or elapsed + wait + self.timeout_seconds > (
                self.budget_seconds
            ):
                raise self._problem(what, outcome, attempts=attempt, hide=hide)
            log.info("mailchimp %s: %s; retry %d in %.2f s", what, _short(outcome), attempt, wait)
            time.sleep(wait)

    def _attempt(
        self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Answer | _Failure:
        observed = self.api_client.observed
        with self._slots:
            observed.response = None
            try:
                result = method(*args, **kwargs)
            except ApiClientError as err:
                response: requests.Response | None = observed.response
                if err.status_code is None:
                    return self._transport_failure(err.text)
                return Answer(err.status_code, None, _problem_of(err.text), _retry_after(response))
            response = observed.response
        if isinstance(result, requests.Response):
            return _read_raw(result)
        if response is None:  # cannot happen with the SDK as it is; never assume success
            return _Failure("the SDK gave no HTTP response", None, None, transient=False)
        if isinstance(result, str):
            kind = response.headers.get("content-type", "no content type")
            return _Failure(
                f"Mailchimp answered HTTP {response.status_code} with {kind}, not JSON",
                response.status_code,
                None,
                transient=True,
            )
        return Answer(response.status_code, result)

    def _transport_failure(self, error: object) -> _Failure:
        if isinstance(error, requests.Timeout):
            return _Failure(
                f"Mailchimp did not answer within {self.timeout_seconds:g} s",
                None,
                None,
                transient=True,
            )
        if isinstance(error, requests.ConnectionError):
            return _Failure("Mailchimp could not be reached", None, None, transient=True)
        return _Failure(
            f"the request to Mailchimp failed ({type(error).__name__})", None, None, True
        )

    def _problem(
        self, what: str, failure: _Failure, attempts: int = 1, hide: Collection[str] = ()
    ) -> MailchimpProblem:
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        problem = failure.problem
        return MailchimpProblem(
            scrub(f"Mailchimp {what}: {failure.reason}{tries}", hide),
            status=failure.status,
            title=scrub(problem.title, hide) if problem and problem.title else None,
            detail=scrub(problem.detail, hide) if problem and problem.detail else None,
            transient=failure.transient,
            retry_after=failure.retry_after,
        )


def scrub(text: str, values: Collection[str]) -> str:
    """``text`` without any of ``values`` (case-insensitive), then :func:`redact` ed."""
    for value in values:
        if value:
            text = re.sub(re.escape(value), "<e-mail>", text, flags=re.IGNORECASE)
    return redact(text)


# --- reading answers -----------------------------------------------------------------------------


def _read_raw(response: requests.Response) -> Answer | _Failure:
    """An answer the SDK handed back unread: empty, or JSON it could not parse."""
    status = response.status_code
    body = response.content.strip()
    if 200 <= status < 300:
        if not body:
            return Answer(status, None)
        try:
            return Answer(status, json.loads(body))
        except ValueError:
            return _Failure(
                f"Mailchimp sent a malformed JSON answer (HTTP {status})",
                status,
                None,
                transient=True,
            )
    return Answer(status, None, _problem_of(response.text), _retry_after(response))


def _problem_of(text: object) -> Problem:
    if isinstance(text, str) and text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and ("title" in data or "detail" in data):
            errors = tuple(
                f"{item.get('field', '?')}: {item.get('message', '')}"
                for item in data.get("errors") or ()
                if isinstance(item, dict)
            )
            return Problem(_text(data.get("title")), _text(data.get("detail")), True, errors)
    return Problem(None, None, False)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _classify(answer: Answer) -> _Failure:
    status = answer.status
    problem = answer.problem or Problem(None, None, False)
    transient = status == 429 or status >= 500
    return _Failure(problem.text(status), status, problem, transient, answer.retry_after)


def _retry_after(response: requests.Response | None) -> float | None:
    return None if response is None else parse_retry_after(response.headers.get("Retry-After"))


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return min(BACKOFF_CAP, BACKOFF_START * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _short(failure: _Failure) -> str:
    return f"HTTP {failure.status}" if failure.status else "no answer"
