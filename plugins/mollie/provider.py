"""The Mollie provider: payment customers, their mandates, subscriptions and payments.

Mollie holds one customer per organisation (school board), created by the app with the school's
BRIN in the customer's ``metadata``. What the app needs from Mollie is the state of each customer
(can we collect? did the last direct debit fail?), the contact details kept in step, and on an
erasure: subscriptions cancelled, mandates revoked, the customer deleted. Payment records stay
with Mollie: Dutch fiscal law (art. 52 AWR) requires them to be kept for seven years, and the
outcome of every erasure says so.

Concurrency
    Syncing reads three lists per customer (mandates, subscriptions, latest payment), so 5,000
    customers cost 15,000 requests; one at a time at Mollie's ~100-200 ms each would take most
    of an hour. The per-customer reads run on a thread pool of ``concurrency`` workers (default
    10; ``[plugins.mollie] concurrency = N``, 1 to 25), and the HTTP connection pool is bounded
    to match. Mollie does not publish fixed rate limits and answers 429 when a client asks too
    much; every request backs off on 429 and honours ``Retry-After``. Ten requests in flight is
    gentle for Mollie and 10x faster than one at a time.

Paging and resuming
    Customers are listed 250 a page (Mollie's maximum) by following ``_links.next.href`` (only
    to the configured API address). Their states are fetched ahead of the app on the pool, and
    handed over in pages of ``2 x concurrency`` customers, so each page arrives well within the
    app's deadline. A page's checkpoint is the id of the next customer still to come (Mollie's
    ``from`` cursor, which includes that customer), not a URL: a URL would carry the address of
    the API, which differs between runs of the demo's imitation. The last page's checkpoint is
    None: payment state changes for any customer at any time, so every sync after a finished
    one reads all customers again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from plusjeklas_plugins.mollie import client as mollie
from plusjeklas_plugins.mollie.client import Gone, MollieClient, idempotency_key, list_page
from plusjeklas_plugins.mollie.status import (
    CANCELLABLE_SUBSCRIPTIONS,
    REVOCABLE_MANDATES,
    is_customer_id,
    payment_status,
    without_links,
)

from plusjeklas_tui.providers import (
    Change,
    ChangeKind,
    ChangeOutcome,
    ErasureOutcome,
    ErasureStatus,
    Health,
    PaymentStatus,
    ProcessorDetails,
    Provider,
    ProviderConfig,
    ProviderError,
    ProviderInfo,
    ProviderKind,
    RetainedCategory,
    Subject,
    SyncPage,
    check_base_url,
)

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 10
MAX_CONCURRENCY = 25
CUSTOMERS_PER_WORKER = 2
"""A sync page holds ``CUSTOMERS_PER_WORKER x concurrency`` customers (6 requests per worker)."""
PAGES_AHEAD = 3
"""Customers whose state is being fetched while the app applies a page, in pages."""
OPERATION_FACTOR = 2.8
"""An erase, export or push (several requests) must end within this many times the timeout;
the app gives up at three times."""
USER_AGENT = "plusjeklas-mollie"

PAYMENT_RECORDS = RetainedCategory(
    "payment records", "Art. 52 AWR (Dutch fiscal record-keeping, 7 years)", 7
)

INFO = ProviderInfo(
    name="mollie",
    kind=ProviderKind.PAYMENT,
    title="Mollie",
    concurrency=DEFAULT_CONCURRENCY,
    processor=ProcessorDetails(
        company="Mollie B.V.",
        country="NL",
        data_categories=(
            "organisation name",
            "contact e-mail",
            "IBAN and mandate details",
            "payment history",
        ),
        agreement="Mollie data processing agreement (part of the user agreement)",
        retained=(PAYMENT_RECORDS,),
    ),
    purposes=(),
)


def _concurrency(options: Mapping[str, Any]) -> int:
    value = options.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ProviderError(
            f"plugins.mollie.concurrency must be a whole number from 1 to {MAX_CONCURRENCY} "
            f"(requests to Mollie at once); got {value!r}"
        )
    return value


class _Pending:
    """A customer from the list whose state is being fetched on the pool."""

    __slots__ = ("customer_id", "future")

    def __init__(self, customer_id: str, future: Future[PaymentStatus | None]) -> None:
        self.customer_id = customer_id
        self.future = future


class MollieProvider(Provider):
    """Mollie over httpx; see the module docstring for concurrency, paging and resuming."""

    info = INFO

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        if not config.api_key:
            raise ProviderError(
                "plugins.mollie has no API key: set api_key_env to the name of the environment "
                "variable that holds it"
            )
        base_url = check_base_url(config.base_url or mollie.DEFAULT_BASE_URL, "mollie")
        self.concurrency = _concurrency(config.options)
        self.page_size = self.concurrency * CUSTOMERS_PER_WORKER
        self.client = MollieClient(
            base_url=base_url,
            api_key=config.api_key,
            timeout_seconds=config.timeout_seconds,
            # the pool's workers, the thread reading the customer list, and one caller
            max_connections=self.concurrency + 2,
            user_agent=USER_AGENT,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="mollie"
                )
            return self._pool

    def _deadline(self) -> float:
        return time.monotonic() + OPERATION_FACTOR * self.config.timeout_seconds

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    @staticmethod
    def _customer_id(subject: Subject) -> str | None:
        """The subject's Mollie customer id, checked; None when Mollie cannot hold it."""
        if subject.subject_type != "organisation" or subject.external_id is None:
            return None
        if not is_customer_id(subject.external_id):
            raise ProviderError(
                "the stored Mollie id of this organisation is not a customer id (cst_...)"
            )
        return subject.external_id

    # --- health -----------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            reply = self.client.get("/customers", params={"limit": 1}, deadline=self._deadline())
            list_page(reply.data, "customers")
        except ProviderError as exc:
            return Health(False, str(exc))
        return Health(True)

    # --- sync -------------------------------------------------------------------------------------

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        start = checkpoint
        if checkpoint is not None and not is_customer_id(checkpoint):
            log.warning("Mollie sync checkpoint is not a customer id; starting from the top")
            start = None
        return self._sync(start)

    def _sync(self, start: str | None) -> Iterator[SyncPage]:
        pool = self._executor()
        customers = self._customers(start)
        window: deque[_Pending] = deque()
        ahead = self.page_size * PAGES_AHEAD

        def fill() -> None:
            while len(window) < ahead:
                customer = next(customers, None)
                if customer is None:
                    return
                customer_id = customer.get("id")
                if not is_customer_id(customer_id):
                    raise ProviderError("Mollie listed a customer without a valid id")
                window.append(_Pending(customer_id, pool.submit(self._state_of, customer)))

        try:
            fill()
            while window:
                page = [window.popleft() for _ in range(min(self.page_size, len(window)))]
                fill()  # the next list page is read while the pool works on this one
                items = [state for p in page if (state := p.future.result()) is not None]
                checkpoint = window[0].customer_id if window else None
                yield SyncPage(items=items, checkpoint=checkpoint)
        finally:
            for pending in window:
                pending.future.cancel()

    def _customers(self, start: str | None) -> Iterator[dict[str, Any]]:
        """Every customer from ``start`` (inclusive; None: the first), list page by list page."""
        url: str | None = self.client.url("/customers")
        params: dict[str, str | int] | None = {"limit": mollie.PAGE_LIMIT}
        if start is not None:
            params["from"] = start
        while url is not None:
            try:
                reply = self.client.get(url, params=params)
            except ProviderError as exc:
                if start is not None and params and "from" in params and exc.status in (400, 404):
                    # the customer we were to resume at is gone: read everything again
                    log.warning("Mollie sync could not resume at its checkpoint; from the top")
                    params = {"limit": mollie.PAGE_LIMIT}
                    continue
                raise
            items, next_href = list_page(reply.data, "customers")
            yield from items
            url = self.client.check_link(next_href) if next_href else None
            params = None

    def _state_of(self, customer: dict[str, Any]) -> PaymentStatus | None:
        """One customer's mandate, subscription and latest payment; None if it was deleted."""
        customer_id = customer["id"]
        try:
            mandates = list(self.client.iter_list(f"/customers/{customer_id}/mandates", "mandates"))
            subscriptions = list(
                self.client.iter_list(f"/customers/{customer_id}/subscriptions", "subscriptions")
            )
            reply = self.client.get(
                f"/customers/{customer_id}/payments",
                params={"limit": 1},
                allow=mollie.GONE_STATUSES,
            )
        except Gone:
            return None
        if reply.status in mollie.GONE_STATUSES:
            return None
        payments, _ = list_page(reply.data, "payments")
        return payment_status(customer, mandates, subscriptions, payments[0] if payments else None)

    # --- push -------------------------------------------------------------------------------------

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        """Contact changes of organisations go to their customer; consent is not Mollie's.

        The changes run on the pool. A change Mollie refuses (422: an invalid address) fails on
        its own; a transient failure or a refused API key fails the whole call, so the app sends
        the batch again — the writes that did go through are then replayed by their
        ``Idempotency-Key`` rather than applied twice.
        """
        deadline = self._deadline()
        pool = self._executor()
        futures = [pool.submit(self._push_one, change, deadline) for change in changes]
        outcomes: list[ChangeOutcome] = []
        fatal: ProviderError | None = None
        for change, future in zip(changes, futures, strict=True):
            try:
                outcomes.append(future.result())
            except ProviderError as exc:
                if exc.transient or exc.status in (401, 403):
                    fatal = fatal or exc
                outcomes.append(ChangeOutcome(change, ok=False, reason=str(exc)))
        if fatal is not None:
            raise fatal
        return outcomes

    def _push_one(self, change: Change, deadline: float) -> ChangeOutcome:
        if change.kind is not ChangeKind.CONTACT_CHANGED:
            return ChangeOutcome(change, ok=True)  # payment is not consent-based
        customer_id = self._customer_id(change.subject)
        if customer_id is None:
            return ChangeOutcome(change, ok=True)  # no customer at Mollie to update
        body = {
            field: value
            for field, value in (("name", change.name), ("email", change.email))
            if value
        }
        if not body:
            return ChangeOutcome(change, ok=True, external_id=customer_id)
        # The body is part of the key: a retry of this write is replayed, a different write under
        # the same change key (corrected details) is a new request, not a 422 from Mollie.
        fingerprint = json.dumps(body, sort_keys=True)
        reply = self.client.request(
            "PATCH",
            f"/customers/{customer_id}",
            json=body,
            key=idempotency_key("push", change.key, customer_id, fingerprint),
            allow=mollie.GONE_STATUSES,
            deadline=deadline,
        )
        if reply.status in mollie.GONE_STATUSES:
            return ChangeOutcome(
                change,
                ok=False,
                external_id=customer_id,
                reason=f"the Mollie customer is gone (HTTP {reply.status}); nothing to update",
            )
        return ChangeOutcome(change, ok=True, external_id=customer_id)

    # --- erase and verify -------------------------------------------------------------------------

    def erase(self, subject: Subject) -> ErasureOutcome:
        """Cancel subscriptions, revoke mandates, delete the customer; payment records stay.

        Subscriptions go first: revoking a mandate makes Mollie cancel the subscriptions on it,
        and the outcome should count what this erasure did. Every DELETE carries an
        ``Idempotency-Key`` derived from what it deletes, so a retried erasure is safe; one that
        finds the customer already deleted is ``already_gone``.
        """
        if subject.subject_type != "organisation":
            return ErasureOutcome(
                ErasureStatus.ALREADY_GONE,
                detail="Mollie holds customers per organisation, not per administrator",
            )
        customer_id = self._customer_id(subject)
        if customer_id is None:
            return ErasureOutcome(ErasureStatus.ALREADY_GONE, detail="no Mollie customer is linked")
        deadline = self._deadline()
        base = f"/customers/{customer_id}"
        try:
            subscriptions = list(
                self.client.iter_list(f"{base}/subscriptions", "subscriptions", deadline=deadline)
            )
            cancelled = self._delete_each(
                customer_id, "subscriptions", subscriptions, CANCELLABLE_SUBSCRIPTIONS, deadline
            )
            mandates = list(
                self.client.iter_list(f"{base}/mandates", "mandates", deadline=deadline)
            )
            revoked = self._delete_each(
                customer_id, "mandates", mandates, REVOCABLE_MANDATES, deadline
            )
        except Gone:
            return ErasureOutcome(
                ErasureStatus.ALREADY_GONE,
                retained=(PAYMENT_RECORDS,),
                detail="the Mollie customer was already deleted",
            )
        reply = self.client.request(
            "DELETE",
            base,
            key=idempotency_key("erase", customer_id),
            allow=mollie.GONE_STATUSES,
            deadline=deadline,
        )
        if reply.status in mollie.GONE_STATUSES and not (cancelled or revoked):
            return ErasureOutcome(
                ErasureStatus.ALREADY_GONE,
                retained=(PAYMENT_RECORDS,),
                detail="the Mollie customer was already deleted",
            )
        return ErasureOutcome(
            ErasureStatus.ERASED,
            retained=(PAYMENT_RECORDS,),
            detail=f"{_count(revoked, 'mandate')} revoked, "
            f"{_count(cancelled, 'subscription')} cancelled, customer deleted",
        )

    def _delete_each(
        self,
        customer_id: str,
        kind: str,
        objects: list[dict[str, Any]],
        statuses: frozenset[str],
        deadline: float,
    ) -> int:
        """DELETE each object whose status is in ``statuses``; how many Mollie confirmed."""
        done = 0
        for obj in objects:
            object_id = obj.get("id")
            if obj.get("status") not in statuses:
                continue
            if not isinstance(object_id, str) or not object_id.replace("_", "").isalnum():
                raise ProviderError(f"Mollie listed {kind} without a valid id")
            reply = self.client.request(
                "DELETE",
                f"/customers/{customer_id}/{kind}/{object_id}",
                key=idempotency_key("erase", customer_id, kind, object_id),
                allow=mollie.GONE_STATUSES,
                deadline=deadline,
            )
            if reply.status not in mollie.GONE_STATUSES:
                done += 1
        return done

    def verify_erased(self, subject: Subject) -> bool | None:
        customer_id = self._customer_id(subject)
        if customer_id is None:
            return None
        reply = self.client.get(
            f"/customers/{customer_id}", allow=mollie.GONE_STATUSES, deadline=self._deadline()
        )
        return reply.status in mollie.GONE_STATUSES

    # --- export -----------------------------------------------------------------------------------

    def export(self, subject: Subject) -> dict[str, Any]:
        """The customer, its mandates, subscriptions and every payment, without API links."""
        customer_id = self._customer_id(subject)
        if customer_id is None:
            return {"provider": "mollie", "customer": None, "note": "no Mollie customer is linked"}
        deadline = self._deadline()
        reply = self.client.get(
            f"/customers/{customer_id}", allow=mollie.GONE_STATUSES, deadline=deadline
        )
        if reply.status in mollie.GONE_STATUSES:
            return {
                "provider": "mollie",
                "customer_id": customer_id,
                "customer": None,
                "note": f"Mollie no longer holds this customer (HTTP {reply.status}); "
                "its payment records are kept by Mollie under Dutch fiscal law",
            }
        pool = self._executor()
        lists = {
            kind: pool.submit(
                lambda kind=kind: list(
                    self.client.iter_list(
                        f"/customers/{customer_id}/{kind}", kind, deadline=deadline
                    )
                )
            )
            for kind in ("mandates", "subscriptions", "payments")
        }
        try:
            held = {kind: future.result() for kind, future in lists.items()}
        except Gone as gone:
            raise ProviderError(
                f"the Mollie customer was deleted during the export (HTTP {gone.status})"
            ) from None
        return {
            "provider": "mollie",
            "customer_id": customer_id,
            "customer": without_links(reply.data),
            **{kind: without_links(items) for kind, items in held.items()},
        }


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
