"""An imitation of the Mollie v2 API (customers, mandates, subscriptions, payments).

It answers the way Mollie does, as far as the app and its tests depend on it:

* paths under ``/v2`` with ``Authorization: Bearer <key>``; a wrong or missing key gets Mollie's
  401 (``Unauthorized Request``);
* ``application/hal+json`` bodies; lists as ``{"count", "_embedded": {"<kind>": [...]},
  "_links": {"self", "previous", "next", "documentation"}}`` with absolute links, newest first,
  paged by a ``from`` id (inclusive) and ``limit`` (default 50, at most 250: more is a 400);
* errors as ``{"status", "title", "detail", "field"?, "_links": {"documentation"}}``;
* a deleted customer answers ``410 Gone`` (set :attr:`MollieImitation.gone_status`, or call
  :meth:`MollieImitation.purge_deleted`, for the ``404 Not Found`` Mollie gives once it has
  forgotten the customer); its payments stay, as Mollie keeps payment records;
* cancelling a subscription answers 200 with ``status: canceled``; cancelling it again is a 422
  ("The subscription has been canceled."); revoking a mandate makes it ``invalid`` and cancels
  the subscriptions it carried; revoking it again is a 410;
* ``Idempotency-Key`` on POST/PATCH/DELETE: the same key with the same method, path and body
  gets the first answer again without doing anything; the same key on a different request is a
  422. (Replays are kept in memory only, not in the state file.)

Seeding, for tests, the demo and the benchmarks::

    mollie = MollieImitation(api_key="test_key", latency_seconds=0.03)
    cst = mollie.add_customer("OBS De Klimop", "admin@klimop.nl", "12AB",
                              mandates=("valid",), subscription_status="active",
                              payments=("paid", "paid", "failed"))
    mollie.add_customers(CustomerSeed(...) for ...)   # bulk: one lock, one state write

Customer ids are ``cst_`` and ten random letters and digits, as Mollie's are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plusjeklas_tui.testing.imitation import Imitation, Request, Response, Route, route

HAL = "application/hal+json"
DOCS = "https://docs.mollie.com/overview/handling-errors"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
ID_ALPHABET = string.ascii_letters + string.digits
DEMO_API_KEY = "test_plusjeklasDemoKey00000000000"
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})

_CUSTOMER = r"/v2/customers/(?P<customer>cst_[A-Za-z0-9]+)"


@dataclass
class CustomerSeed:
    """One customer to add in bulk; see :meth:`MollieImitation.add_customer` for the fields."""

    name: str
    email: str
    brin: str | None
    mandates: Sequence[str] = ("valid",)
    subscription_status: str | None = "active"
    payments: Sequence[str | tuple[str, dt.datetime]] = ()
    iban: str = "NL91ABNA0417164300"
    extra_metadata: dict[str, Any] = field(default_factory=dict)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class MollieImitation(Imitation):
    """The Mollie v2 API on a loopback port; state is plain JSON (see :meth:`initial_state`)."""

    name = "mollie"
    gone_status = 410
    """What a customer deleted here answers (410 Gone; Mollie later answers 404)."""

    def __init__(
        self,
        *,
        api_key: str = DEMO_API_KEY,
        state_path: Path | None = None,
        latency_seconds: float = 0.0,
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.replays: dict[str, tuple[str, Response]] = {}
        super().__init__(
            api_key=api_key, state_path=state_path, latency_seconds=latency_seconds, port=port
        )
        # The base handler writes the headers and the body in two sends; with Nagle's algorithm
        # on, the body waits for the client's delayed ACK (~40 ms on Linux) on every keep-alive
        # request, which would swamp the 30 ms latency the benchmarks inject.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]

    @property
    def api_url(self) -> str:
        """The base URL the plugin is configured with (``.../v2``)."""
        return f"{self.url}/v2"

    def initial_state(self) -> dict[str, Any]:
        """``customers`` by id, in creation order (the list shows them newest first);
        ``mandates``/``subscriptions``/``payments`` lists per customer id, oldest first;
        ``deleted`` customer id -> {"deletedAt", "status"} (the status they answer)."""
        return {"customers": {}, "mandates": {}, "subscriptions": {}, "payments": {}, "deleted": {}}

    # --- seeding ----------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choices(ID_ALPHABET, k=10))

    def add_customer(
        self,
        name: str,
        email: str,
        brin: str | None,
        *,
        mandates: Sequence[str] = ("valid",),
        subscription_status: str | None = "active",
        payments: Sequence[str | tuple[str, dt.datetime]] = (),
        iban: str = "NL91ABNA0417164300",
        extra_metadata: dict[str, Any] | None = None,
    ) -> str:
        """Add a customer with ``metadata.brin``, its mandates (one per status given, direct
        debit on ``iban``), a subscription with ``subscription_status`` (None: none) on the
        first mandate, and payments (statuses, or (status, when) pairs, oldest first). Returns
        the new ``cst_`` id."""
        seed = CustomerSeed(
            name,
            email,
            brin,
            mandates,
            subscription_status,
            payments,
            iban,
            dict(extra_metadata or {}),
        )
        return self.add_customers([seed])[0]

    def add_customers(self, seeds: Iterable[CustomerSeed]) -> list[str]:
        """The bulk path: many customers under one lock and one state write (5,000 in ~0.2 s)."""
        ids: list[str] = []
        now = _now()
        with self.lock:
            for seed in seeds:
                ids.append(self._add(seed, now))
        self.save_state()
        return ids

    def _add(self, seed: CustomerSeed, now: dt.datetime) -> str:
        state = self.state
        customer_id = self.new_id("cst_")
        metadata = dict(seed.extra_metadata)
        if seed.brin is not None:
            metadata["brin"] = seed.brin
        created = now - dt.timedelta(days=400)
        state["customers"][customer_id] = {
            "resource": "customer",
            "id": customer_id,
            "mode": "test",
            "name": seed.name,
            "email": seed.email,
            "locale": "nl_NL",
            "metadata": metadata or None,
            "createdAt": _iso(created),
        }
        mandates = []
        for status in seed.mandates:
            mandates.append(
                {
                    "resource": "mandate",
                    "id": self.new_id("mdt_"),
                    "mode": "test",
                    "status": status,
                    "method": "directdebit",
                    "details": {
                        "consumerName": seed.name,
                        "consumerAccount": seed.iban,
                        "consumerBic": "ABNANL2A",
                    },
                    "mandateReference": None,
                    "signatureDate": created.date().isoformat(),
                    "createdAt": _iso(created),
                }
            )
        if mandates:
            state["mandates"][customer_id] = mandates
        if seed.subscription_status is not None:
            subscription: dict[str, Any] = {
                "resource": "subscription",
                "id": self.new_id("sub_"),
                "customerId": customer_id,
                "mode": "test",
                "createdAt": _iso(created),
                "status": seed.subscription_status,
                "amount": {"value": "25.00", "currency": "EUR"},
                "times": None,
                "interval": "1 month",
                "description": "Plusjeklas abonnement",
                "method": "directdebit",
                "mandateId": mandates[0]["id"] if mandates else None,
                "startDate": created.date().isoformat(),
            }
            if seed.subscription_status == "canceled":
                subscription["canceledAt"] = _iso(now)
            state["subscriptions"][customer_id] = [subscription]
        if seed.payments:
            count = len(seed.payments)
            state["payments"][customer_id] = [
                self._payment(customer_id, entry, now - dt.timedelta(days=30 * (count - n)), seed)
                for n, entry in enumerate(seed.payments)
            ]
        return customer_id

    def _payment(
        self,
        customer_id: str,
        entry: str | tuple[str, dt.datetime],
        default_when: dt.datetime,
        seed: CustomerSeed,
    ) -> dict[str, Any]:
        status, when = (entry, default_when) if isinstance(entry, str) else entry
        payment: dict[str, Any] = {
            "resource": "payment",
            "id": self.new_id("tr_"),
            "mode": "test",
            "createdAt": _iso(when),
            "amount": {"value": "25.00", "currency": "EUR"},
            "description": "Plusjeklas abonnement",
            "method": "directdebit",
            "status": status,
            "sequenceType": "recurring",
            "customerId": customer_id,
            "details": {
                "consumerName": seed.name,
                "consumerAccount": seed.iban,
                "consumerBic": "ABNANL2A",
            },
        }
        moment = {
            "paid": "paidAt",
            "failed": "failedAt",
            "expired": "expiredAt",
            "canceled": "canceledAt",
        }.get(status)
        if moment:
            payment[moment] = _iso(when + dt.timedelta(days=3))
        return payment

    def purge_deleted(self, customer_id: str | None = None) -> None:
        """Mollie has forgotten deleted customers (one, or all): they answer 404 from now on."""
        with self.lock:
            for cid, record in self.state["deleted"].items():
                if customer_id is None or cid == customer_id:
                    record["status"] = 404
        self.save_state()

    # --- the API's shapes -------------------------------------------------------------------------

    def error(
        self, status: int, title: str, detail: str, field_name: str | None = None
    ) -> Response:
        body: dict[str, Any] = {"status": status, "title": title, "detail": detail}
        if field_name:
            body["field"] = field_name
        body["_links"] = {"documentation": {"href": DOCS, "type": "text/html"}}
        return Response.json(body, status, content_type=HAL)

    def too_many_requests(self) -> Response:
        return self.error(
            429, "Too Many Requests", "You are making too many requests. Please slow down."
        )

    def not_found(self, request: Request) -> Response:
        return self.error(404, "Not Found", "The resource could not be found.")

    def bad_json(self, request: Request) -> Response:
        return self.error(400, "Bad Request", "The request body is not valid JSON.")

    def authorize(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return Response.json(
            {
                "status": 401,
                "title": "Unauthorized Request",
                "detail": "Missing authentication, or failed to authenticate",
                "_links": {
                    "documentation": {
                        "href": "https://docs.mollie.com/overview/authentication",
                        "type": "text/html",
                    }
                },
            },
            401,
            content_type=HAL,
        )

    def _link(self, path: str, query: str = "") -> dict[str, str]:
        href = f"{self.url}{path}" + (f"?{query}" if query else "")
        return {"href": href, "type": HAL}

    def _with_links(self, obj: dict[str, Any], path: str) -> dict[str, Any]:
        shown = dict(obj)
        shown["_links"] = {
            "self": self._link(path),
            "documentation": {"href": "https://docs.mollie.com/reference", "type": "text/html"},
        }
        return shown

    def _list(
        self, request: Request, kind: str, path: str, objects: list[tuple[str, dict[str, Any]]]
    ) -> Response:
        """A page of ``objects`` (already newest first, as (self path, object)) the Mollie way."""
        raw_limit = request.arg("limit")
        try:
            limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            return self.error(
                400,
                "Bad Request",
                f"The limit must be a number between 1 and {MAX_LIMIT}.",
                "limit",
            )
        start = 0
        cursor = request.arg("from")
        if cursor is not None:
            ids = [obj["id"] for _, obj in objects]
            if cursor not in ids:
                return self.error(
                    400, "Bad Request", "The 'from' parameter does not refer to an object.", "from"
                )
            start = ids.index(cursor)
        page = objects[start : start + limit]
        links: dict[str, Any] = {
            "self": self._link(path, _query(cursor, limit)),
            "previous": None,
            "next": None,
            "documentation": {
                "href": f"https://docs.mollie.com/reference/list-{kind}",
                "type": "text/html",
            },
        }
        if start > 0:
            previous = objects[max(0, start - limit)][1]["id"]
            links["previous"] = self._link(path, _query(previous, limit))
        if start + limit < len(objects):
            links["next"] = self._link(path, _query(objects[start + limit][1]["id"], limit))
        body = {
            "count": len(page),
            "_embedded": {kind: [self._with_links(obj, p) for p, obj in page]},
            "_links": links,
        }
        return Response.json(body, content_type=HAL)

    # --- routes -----------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/v2/customers", self._list_customers),
            route("POST", r"/v2/customers", self._idempotent(self._create_customer)),
            route("GET", _CUSTOMER, self._get_customer),
            route("PATCH", _CUSTOMER, self._idempotent(self._update_customer)),
            route("DELETE", _CUSTOMER, self._idempotent(self._delete_customer)),
            route("GET", _CUSTOMER + r"/mandates", self._list_of("mandates")),
            route("GET", _CUSTOMER + r"/mandates/(?P<item>mdt_\w+)", self._get_item("mandates")),
            route(
                "DELETE",
                _CUSTOMER + r"/mandates/(?P<item>mdt_\w+)",
                self._idempotent(self._revoke_mandate),
            ),
            route("GET", _CUSTOMER + r"/subscriptions", self._list_of("subscriptions")),
            route(
                "GET",
                _CUSTOMER + r"/subscriptions/(?P<item>sub_\w+)",
                self._get_item("subscriptions"),
            ),
            route(
                "DELETE",
                _CUSTOMER + r"/subscriptions/(?P<item>sub_\w+)",
                self._idempotent(self._cancel_subscription),
            ),
            route("GET", _CUSTOMER + r"/payments", self._list_of("payments")),
        ]

    def _idempotent(self, handler: Any) -> Any:
        """Wrap a write: the same ``Idempotency-Key`` and request get the first answer again."""

        def run(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            if not key:
                return handler(request)
            fingerprint = hashlib.sha256(
                f"{request.method} {request.path}\n".encode() + request.body
            ).hexdigest()
            with self.lock:
                seen = self.replays.get(key)
                if seen is not None:
                    if seen[0] != fingerprint:
                        return self.error(
                            422,
                            "Unprocessable Entity",
                            "The Idempotency-Key was already used for a different request.",
                        )
                    return seen[1]
                response = handler(request)
                if response.status < 500:
                    self.replays[key] = (fingerprint, response)
                return response

        return run

    def _customer_or_error(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        customer_id = request.params["customer"]
        customer = self.state["customers"].get(customer_id)
        if customer is not None:
            return customer, None
        deleted = self.state["deleted"].get(customer_id)
        if deleted is not None and deleted.get("status", self.gone_status) == 410:
            return None, self.error(410, "Gone", "The customer is no longer available.")
        return None, self.error(404, "Not Found", f"No customer exists with token {customer_id}.")

    def _list_customers(self, request: Request) -> Response:
        with self.lock:
            customers = [
                (f"/v2/customers/{cid}", customer)
                for cid, customer in reversed(self.state["customers"].items())
            ]
        return self._list(request, "customers", "/v2/customers", customers)

    def _create_customer(self, request: Request) -> Response:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise ValueError("not an object")
        metadata = body.get("metadata")
        with self.lock:
            customer_id = self.new_id("cst_")
            customer = {
                "resource": "customer",
                "id": customer_id,
                "mode": "test",
                "name": body.get("name"),
                "email": body.get("email"),
                "locale": body.get("locale"),
                "metadata": metadata,
                "createdAt": _iso(_now()),
            }
            self.state["customers"][customer_id] = customer
        return Response.json(
            self._with_links(customer, f"/v2/customers/{customer_id}"), 201, content_type=HAL
        )

    def _get_customer(self, request: Request) -> Response:
        with self.lock:
            customer, problem = self._customer_or_error(request)
        if problem is not None:
            return problem
        assert customer is not None
        return Response.json(self._with_links(customer, request.path), content_type=HAL)

    def _update_customer(self, request: Request) -> Response:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise ValueError("not an object")
        with self.lock:
            customer, problem = self._customer_or_error(request)
            if problem is not None:
                return problem
            assert customer is not None
            email = body.get("email")
            if email is not None and (not isinstance(email, str) or "@" not in email):
                return self.error(
                    422,
                    "Unprocessable Entity",
                    "The email address is invalid.",
                    "email",
                )
            for key in ("name", "email", "locale", "metadata"):
                if key in body:
                    customer[key] = body[key]
            shown = self._with_links(customer, request.path)
        return Response.json(shown, content_type=HAL)

    def _delete_customer(self, request: Request) -> Response:
        with self.lock:
            _, problem = self._customer_or_error(request)
            if problem is not None:
                return problem
            customer_id = request.params["customer"]
            now = _iso(_now())
            for subscription in self.state["subscriptions"].get(customer_id, []):
                if subscription["status"] in ("active", "pending", "suspended"):
                    subscription["status"] = "canceled"
                    subscription["canceledAt"] = now
            for mandate in self.state["mandates"].get(customer_id, []):
                mandate["status"] = "invalid"
            del self.state["customers"][customer_id]
            self.state["deleted"][customer_id] = {"deletedAt": now, "status": self.gone_status}
        return Response(204, b"", HAL)

    def _items(self, kind: str, customer_id: str) -> list[dict[str, Any]]:
        return self.state[kind].setdefault(customer_id, [])

    def _list_of(self, kind: str) -> Any:
        def handler(request: Request) -> Response:
            with self.lock:
                _, problem = self._customer_or_error(request)
                if problem is not None:
                    return problem
                base = request.path
                objects = [
                    (f"{base}/{obj['id']}", obj)
                    for obj in reversed(self.state[kind].get(request.params["customer"], []))
                ]
            return self._list(request, kind, base, objects)

        return handler

    def _find(self, request: Request, kind: str) -> tuple[dict[str, Any] | None, Response | None]:
        _, problem = self._customer_or_error(request)
        if problem is not None:
            return None, problem
        for obj in self.state[kind].get(request.params["customer"], []):
            if obj["id"] == request.params["item"]:
                return obj, None
        singular = kind[:-1]
        return None, self.error(
            404, "Not Found", f"No {singular} exists with token {request.params['item']}."
        )

    def _get_item(self, kind: str) -> Any:
        def handler(request: Request) -> Response:
            with self.lock:
                obj, problem = self._find(request, kind)
                if problem is not None:
                    return problem
                assert obj is not None
                return Response.json(self._with_links(obj, request.path), content_type=HAL)

        return handler

    def _revoke_mandate(self, request: Request) -> Response:
        with self.lock:
            mandate, problem = self._find(request, "mandates")
            if problem is not None:
                return problem
            assert mandate is not None
            if mandate["status"] == "invalid":
                return self.error(410, "Gone", "The mandate is no longer available.")
            mandate["status"] = "invalid"
            now = _iso(_now())
            for subscription in self._items("subscriptions", request.params["customer"]):
                on_it = subscription.get("mandateId") in (None, mandate["id"])
                if on_it and subscription["status"] in ("active", "pending", "suspended"):
                    subscription["status"] = "canceled"
                    subscription["canceledAt"] = now
        return Response(204, b"", HAL)

    def _cancel_subscription(self, request: Request) -> Response:
        with self.lock:
            subscription, problem = self._find(request, "subscriptions")
            if problem is not None:
                return problem
            assert subscription is not None
            if subscription["status"] in ("canceled", "completed"):
                return self.error(
                    422,
                    "Unprocessable Entity",
                    f"The subscription has been {subscription['status']}.",
                )
            subscription["status"] = "canceled"
            subscription["canceledAt"] = _iso(_now())
            shown = self._with_links(subscription, request.path)
        return Response.json(shown, content_type=HAL)

    # --- for tests --------------------------------------------------------------------------------

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.state["customers"].get(customer_id)
            return json.loads(json.dumps(found)) if found is not None else None

    def statuses(self, kind: str, customer_id: str) -> list[str]:
        """The statuses of a customer's mandates/subscriptions/payments, oldest first."""
        with self.lock:
            return [obj["status"] for obj in self.state[kind].get(customer_id, [])]


def _query(cursor: str | None, limit: int) -> str:
    return f"from={cursor}&limit={limit}" if cursor else f"limit={limit}"
