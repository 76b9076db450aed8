"""Issue 4's Mollie benchmark: the state of 5,000 customers, against the imitation at 30 ms.

A Mollie sync reads one list page per 250 customers and, per customer, its mandates, its
subscriptions and its latest payment: ``ceil(n / 250) + 3 n`` requests. With every request
taking the imitation's injected 30 ms and the plugin keeping ``concurrency`` requests in
flight, no client can do better than ``requests / concurrency x 30 ms`` — the concurrency
floor. The sync must finish within 1.5x of it.
"""

from __future__ import annotations

import math
import random
import time

from plusjeklas_plugins.mollie.client import PAGE_LIMIT
from plusjeklas_plugins.mollie.provider import DEFAULT_CONCURRENCY, MollieProvider

from benchmarks.harness import Result, Workspace, benchmark, say
from plusjeklas_tui.providers import PaymentStatus, ProviderConfig
from plusjeklas_tui.testing.mollie import CustomerSeed, MollieImitation

LATENCY_SECONDS = 0.03
FULL_CUSTOMERS = 5_000
FLOOR_FACTOR = 1.5
REQUESTS_PER_CUSTOMER = 3  # mandates, subscriptions, latest payment


def _seeds(count: int) -> list[CustomerSeed]:
    """Customers in the mix a payment provider holds: most paying, some failing or stopped."""
    rng = random.Random(41)
    seeds = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.8:
            mandates, subscription, payments = ("valid",), "active", ("paid", "paid", "paid")
        elif roll < 0.9:
            mandates, subscription, payments = ("valid",), "suspended", ("paid", "failed")
        elif roll < 0.95:
            mandates, subscription, payments = ("invalid",), "canceled", ("paid",)
        else:
            mandates, subscription, payments = (), None, ()
        seeds.append(
            CustomerSeed(
                name=f"Benchmarkschool {n}",
                email=f"administratie{n}@benchmark-school{n % 97}.nl",
                brin=f"{n % 100:02d}{chr(65 + n % 26)}{chr(65 + n // 26 % 26)}",
                mandates=mandates,
                subscription_status=subscription,
                payments=payments,
            )
        )
    return seeds


@benchmark("mollie_sync_5000_customers")
def mollie_sync_5000_customers(workspace: Workspace) -> Result:
    """Sync (every page, as the app pulls it) the Mollie state of 5,000 customers (500 quick).

    Value: wall time of the whole sync. Floor: the requests it needs divided by the plugin's
    concurrency, times the 30 ms latency; floor factor 1.5. The imitation's request count must
    equal the requests needed, and every customer must come back once.
    """
    customers = workspace.size(FULL_CUSTOMERS)
    imitation = MollieImitation(latency_seconds=LATENCY_SECONDS, seed=5)
    imitation.add_customers(_seeds(customers))
    with imitation:
        provider = MollieProvider(
            ProviderConfig(
                name="mollie",
                base_url=imitation.api_url,
                api_key=imitation.api_key,
                timeout_seconds=10.0,
            )
        )
        try:
            say(f"syncing {customers:,} Mollie customers at {LATENCY_SECONDS * 1000:g} ms ...")
            start = time.perf_counter()
            seen: list[str] = []
            for page in provider.sync(None):
                seen.extend(item.external_id for item in page.items)
                if not all(isinstance(item, PaymentStatus) for item in page.items):
                    raise AssertionError("the Mollie sync returned something else than payments")
            elapsed = time.perf_counter() - start
        finally:
            provider.close()
        needed = math.ceil(customers / PAGE_LIMIT) + REQUESTS_PER_CUSTOMER * customers
        made = imitation.count("GET")
    if len(seen) != customers or len(set(seen)) != customers:
        raise AssertionError(f"expected {customers} distinct customers, got {len(set(seen))}")
    if made != needed:
        raise AssertionError(f"the sync made {made} requests; {needed} are needed")
    floor = needed / DEFAULT_CONCURRENCY * LATENCY_SECONDS
    say(
        f"{made:,} requests in {elapsed:.2f} s; floor {floor:.2f} s "
        f"(peak {imitation.peak_active} requests at once)"
    )
    return Result.of(
        "mollie_sync_5000_customers", elapsed, "s", floor=floor, floor_factor=FLOOR_FACTOR
    )
