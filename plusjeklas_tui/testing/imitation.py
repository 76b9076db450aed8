"""A small real HTTP server to imitate a provider's API on a loopback port.

Each provider's imitation (``mailchimp.py``, ``mollie.py``, ``matomo.py`` beside this module)
subclasses :class:`Imitation` with its routes, its authentication and its error format. The base
gives them what every imitation needs:

* real HTTP/1.1 on ``127.0.0.1`` and a free port, one thread per connection, so the real SDKs and
  httpx talk to it exactly as to the provider;
* a limit on simultaneous requests, answered the provider's way (Mailchimp: 429 past 10);
* injected latency on every request, and one-shot or repeated faults: ``500``, ``429`` with
  ``Retry-After``, ``hang`` (no answer until the client gives up), ``malformed_json`` (200 with a
  broken body), ``html`` (a proxy's HTML error page);
* state as plain JSON-ready data, optionally kept in a file, so what one command did at the
  "provider" the next command sees (the demo);
* a log of the requests it answered, for tests that count calls.

It is shipped in the package (not only under ``tests/``) because ``plusjeklas demo`` runs the
imitations in-process so a newcomer can sync without any provider account.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("500", "429", "hang", "malformed_json", "html")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    """Named groups from the route's pattern."""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON; raises ValueError (answered as the provider's 400) when it is not."""
        if not self.body:
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        """A form-encoded body merged over the query string (Matomo accepts both)."""
        merged = dict(self.query)
        if self.body:
            merged.update(parse_qs(self.body.decode("utf-8"), keep_blank_values=True))
        return merged


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Response:
        return cls(
            status,
            json.dumps(data, separators=(",", ":")).encode(),
            content_type,
            dict(headers or {}),
        )


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    times: int | None = 1
    """How many matching requests it hits; None: every one until cleared."""
    retry_after: float = 1.0
    hang_seconds: float = 30.0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return not (self.path and not self.path.search(path))


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Imitation:
    """Base of a provider imitation. Subclasses fill :meth:`routes` and the error format."""

    name = "imitation"
    max_concurrent: int | None = None
    """Requests answered at once; more get :meth:`too_many_requests`. None: no limit."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        state_path: Path | None = None,
        latency_seconds: float = 0.0,
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.state_path = state_path
        self.latency_seconds = latency_seconds
        self.lock = threading.RLock()
        self.state: dict[str, Any] = self.load_state()
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        self.active = 0
        self.peak_active = 0
        self._routes = self.routes()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # --- to override --------------------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return {}

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def authorize(self, request: Request) -> Response | None:
        """None when the request carries the right credentials, else the provider's 401."""
        return None

    def error(self, status: int, title: str, detail: str) -> Response:
        """The provider's error body for ``status``."""
        return Response.json({"status": status, "title": title, "detail": detail}, status)

    def too_many_requests(self) -> Response:
        return self.error(429, "Too Many Requests", "You have exceeded the limit of connections.")

    def not_found(self, request: Request) -> Response:
        return self.error(404, "Resource Not Found", "The requested resource could not be found.")

    def bad_json(self, request: Request) -> Response:
        return self.error(400, "Bad Request", "The request body is not valid JSON.")

    # --- control, for tests and the demo -----------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Imitation:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"imitation-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:  # shutdown() waits for a serve_forever that must be running
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        self.save_state()

    def __enter__(self) -> Imitation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        retry_after: float = 1.0,
        hang_seconds: float = 30.0,
    ) -> None:
        """Make the next matching request(s) fail the way ``kind`` says (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
        with self.lock:
            self.faults.append(
                Fault(
                    kind,
                    method,
                    re.compile(path) if path else None,
                    times,
                    retry_after,
                    hang_seconds,
                )
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def reset_counts(self) -> None:
        """Forget the requests served so far (and the peak), e.g. after seeding over HTTP."""
        with self.lock:
            self.requests.clear()
            self.peak_active = self.active

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        with self.lock:
            return sum(
                1
                for m, p, _ in self.requests
                if (method is None or m == method) and path_contains in p
            )

    # --- state ---------------------------------------------------------------------------------

    def load_state(self) -> dict[str, Any]:
        if self.state_path and self.state_path.exists():
            return json.loads(self.state_path.read_text("utf-8"))
        return self.initial_state()

    def save_state(self) -> None:
        """Write the state atomically (0600: it holds the demo's personal data)."""
        if not self.state_path:
            return
        with self.lock:
            text = json.dumps(self.state, separators=(",", ":"))
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=".imitation-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- dispatch --------------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "500":
            return self.error(500, "Internal Server Error", "An unexpected error occurred.")
        if fault.kind == "429":
            response = self.too_many_requests()
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
            return response
        if fault.kind == "malformed_json":
            return Response(200, b'{"members": [{"id": ', "application/json")
        if fault.kind == "html":
            page = (
                b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
            )
            return Response(502, page, "text/html")
        self._stopping.wait(fault.hang_seconds)  # "hang": answer nothing until the client gives up
        return None

    def dispatch(self, request: Request) -> Response | None:
        """Route one request; None means: close the connection without an answer."""
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            return self._fault_response(fault)
        refused = self.authorize(request)
        if refused is not None:
            return refused
        allowed_methods: list[str] = []
        for route in self._routes:
            found = route.pattern.fullmatch(request.path)
            if not found:
                continue
            if route.method != request.method:
                allowed_methods.append(route.method)
                continue
            request.params = found.groupdict()
            try:
                response = route.handler(request)
            except ValueError:
                return self.bad_json(request)
            if request.method != "GET":
                self.save_state()
            return response
        if allowed_methods:
            return self.error(405, "Method Not Allowed", "The method is not allowed here.")
        return self.not_found(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its keep-alive connection is normal; anything else is printed."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


def _handler_for(imitation: Imitation) -> type[BaseHTTPRequestHandler]:
    class ImitationHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; with Nagle on, the body would wait for the
        # client's delayed ACK (~40 ms a request on loopback).
        disable_nagle_algorithm = True
        server_version = f"{imitation.name}-imitation"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: request lines carry e-mail hashes and ids; tests read ``requests``."""

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            with imitation.lock:
                over = (
                    imitation.max_concurrent is not None
                    and imitation.active >= imitation.max_concurrent
                )
                if not over:
                    imitation.active += 1
                    imitation.peak_active = max(imitation.peak_active, imitation.active)
            try:
                response = imitation.too_many_requests() if over else imitation.dispatch(request)
            finally:
                if not over:
                    with imitation.lock:
                        imitation.active -= 1
            if response is None:
                self.close_connection = True
                return
            with imitation.lock:
                imitation.requests.append((request.method, request.path, response.status))
            self.send_response(response.status, HTTPStatus(response.status).phrase)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return ImitationHandler


def route(method: str, pattern: str, handler: Handler) -> Route:
    return Route(method, re.compile(pattern), handler)


def paginate(items: list[Any], offset: int, count: int) -> list[Any]:
    return items[offset : offset + count]


def all_of(imitations: Iterable[Imitation]) -> dict[str, str]:
    return {imitation.name: imitation.url for imitation in imitations}
