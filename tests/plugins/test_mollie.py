"""The Mollie plugin over real HTTP against the Mollie imitation: every method, paging, faults.

No database: these drive :class:`MollieProvider` (httpx) against
:class:`plusjeklas_tui.testing.mollie.MollieImitation` on a loopback port.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator

import httpx
import pytest
from plusjeklas_plugins.mollie import MollieProvider
from plusjeklas_plugins.mollie.client import error_from, retry_after_seconds
from plusjeklas_plugins.mollie.provider import PAYMENT_RECORDS

from plusjeklas_tui import plugins
from plusjeklas_tui.providers import (
    Change,
    ChangeKind,
    ErasureStatus,
    InsecureBaseUrl,
    PaymentStatus,
    ProviderConfig,
    ProviderError,
    ProviderKind,
    Subject,
)
from plusjeklas_tui.testing.mollie import CustomerSeed, MollieImitation

TIMEOUT = 1.0


@pytest.fixture
def mollie() -> Iterator[MollieImitation]:
    with MollieImitation(seed=7) as imitation:
        yield imitation


def make_provider(
    imitation: MollieImitation, *, api_key: str | None = None, **options: object
) -> MollieProvider:
    return MollieProvider(
        ProviderConfig(
            name="mollie",
            base_url=imitation.api_url,
            api_key=imitation.api_key if api_key is None else api_key,
            timeout_seconds=TIMEOUT,
            options=options,
        )
    )


@pytest.fixture
def provider(mollie: MollieImitation) -> Iterator[MollieProvider]:
    made = make_provider(mollie)
    yield made
    made.close()


def org(customer_id: str | None, local_id: int = 1) -> Subject:
    return Subject("organisation", local_id, customer_id)


def seed_many(imitation: MollieImitation, count: int) -> list[str]:
    return imitation.add_customers(
        CustomerSeed(f"School {n}", f"admin{n}@school{n}.nl", f"{n:02d}XY") for n in range(count)
    )


def assert_readable(error: ProviderError) -> None:
    text = str(error)
    assert text and "@" not in text and "Traceback" not in text


# --- registration and configuration ------------------------------------------------------------


def test_registered_through_the_entry_point_with_processor_details() -> None:
    found = plugins.discover()
    entry = found.providers["mollie"]
    assert entry.cls is MollieProvider
    info = entry.info
    assert info.kind is ProviderKind.PAYMENT and info.purposes == ()
    assert info.processor.company == "Mollie B.V." and info.processor.country == "NL"
    assert "payment history" in info.processor.data_categories
    assert info.processor.agreement.startswith("Mollie data processing agreement")
    assert info.processor.retained == (PAYMENT_RECORDS,)
    assert PAYMENT_RECORDS.years == 7 and "52 AWR" in PAYMENT_RECORDS.legal_basis


def test_plain_http_to_another_host_is_refused() -> None:
    config = ProviderConfig("mollie", "http://api.mollie.example/v2", "test_x", TIMEOUT)
    with pytest.raises(InsecureBaseUrl, match="must start with https://"):
        MollieProvider(config)


def test_default_address_is_mollies_https_api() -> None:
    made = MollieProvider(ProviderConfig("mollie", None, "test_x", TIMEOUT))
    try:
        assert made.client.base_url == "https://api.mollie.com/v2"
    finally:
        made.close()


def test_missing_key_and_bad_concurrency_are_refused_with_the_setting_named(
    mollie: MollieImitation,
) -> None:
    with pytest.raises(ProviderError, match="api_key_env"):
        MollieProvider(ProviderConfig("mollie", mollie.api_url, None, TIMEOUT))
    with pytest.raises(ProviderError, match=r"plugins\.mollie\.concurrency .* from 1 to 25"):
        make_provider(mollie, concurrency=0)
    with pytest.raises(ProviderError, match=r"plugins\.mollie\.concurrency"):
        make_provider(mollie, concurrency="ten")


# --- health --------------------------------------------------------------------------------------


def test_health_ok_with_the_right_key(provider: MollieProvider, mollie: MollieImitation) -> None:
    assert provider.health().ok
    assert mollie.count("GET", "/v2/customers") == 1


def test_health_reports_a_wrong_key_in_mollies_words(mollie: MollieImitation) -> None:
    wrong = make_provider(mollie, api_key="test_wrong")
    try:
        health = wrong.health()
    finally:
        wrong.close()
    assert not health.ok
    assert health.reason == (
        "Mollie 401 Unauthorized Request: Missing authentication, or failed to authenticate"
    )


def test_health_reports_an_unreachable_api() -> None:
    made = MollieProvider(ProviderConfig("mollie", "http://127.0.0.1:9/v2", "test_x", TIMEOUT))
    try:
        health = made.health()
    finally:
        made.close()
    assert not health.ok and health.reason.startswith("cannot reach Mollie")


# --- sync ----------------------------------------------------------------------------------------


def test_sync_reads_every_customer_with_its_state(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    paid_at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    failing = mollie.add_customer(
        "OBS De Klimop",
        "admin@klimop.nl",
        "12AB",
        mandates=("invalid", "valid"),
        subscription_status="suspended",
        payments=(("paid", paid_at), ("failed", paid_at + dt.timedelta(days=30))),
    )
    bare = mollie.add_customer(
        "CBS Kompas", "info@kompas.nl", None, mandates=(), subscription_status=None
    )
    pages = list(provider.sync(None))
    items = {item.external_id: item for page in pages for item in page.items}
    assert set(items) == {failing, bare}
    assert items[failing] == PaymentStatus(
        external_id=failing,
        organisation_ref="12AB",
        mandate_status="valid",
        subscription_status="suspended",
        last_payment_status="failed",
        last_payment_at=paid_at + dt.timedelta(days=33),  # failedAt: three days after creation
    )
    assert items[bare] == PaymentStatus(bare, None)
    assert pages[-1].checkpoint is None


def test_sync_pages_through_next_links_and_checkpoints_the_next_customer(
    mollie: MollieImitation,
) -> None:
    ids = seed_many(mollie, 520)  # three list pages of at most 250
    made = make_provider(mollie, concurrency=5)
    try:
        pages = list(made.sync(None))
    finally:
        made.close()
    seen = [item.external_id for page in pages for item in page.items]
    assert seen == list(reversed(ids))  # newest first, each once
    assert all(len(page.items) == 10 for page in pages[:-1])  # 2 x concurrency per page
    for page, following in itertools.pairwise(pages):
        assert page.checkpoint == following.items[0].external_id
    assert pages[-1].checkpoint is None
    assert mollie.count("GET", "/v2/customers") - mollie.count("GET", "/v2/customers/") == 3
    assert mollie.count("GET") == 3 + 3 * 520
    assert mollie.peak_active <= 5 + 1  # the pool, and the thread reading the list


def test_sync_resumes_at_its_checkpoint(mollie: MollieImitation) -> None:
    ids = seed_many(mollie, 300)
    made = make_provider(mollie, concurrency=4)
    try:
        pages = made.sync(None)
        first = [next(pages) for _ in range(3)]
        pages.close()  # cancelled: the app stops between pages
        seen = [item.external_id for page in first for item in page.items]
        rest = [item.external_id for page in made.sync(first[-1].checkpoint) for item in page.items]
    finally:
        made.close()
    assert len(seen) == 24
    assert seen + rest == list(reversed(ids))


def test_sync_starts_over_when_its_checkpoint_customer_is_gone(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    ids = seed_many(mollie, 30)
    pages = provider.sync(None)
    checkpoint = next(pages).checkpoint
    pages.close()
    assert checkpoint is not None
    provider.erase(org(checkpoint))
    again = [item.external_id for page in provider.sync(checkpoint) for item in page.items]
    assert sorted(again) == sorted(set(ids) - {checkpoint})


def test_sync_ignores_a_checkpoint_that_is_not_a_customer_id(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    ids = seed_many(mollie, 5)
    seen = [item.external_id for page in provider.sync("../payments") for item in page.items]
    assert sorted(seen) == sorted(ids)


def test_sync_with_a_wrong_key_fails_with_mollies_reason(mollie: MollieImitation) -> None:
    seed_many(mollie, 3)
    wrong = make_provider(mollie, api_key="test_wrong")
    try:
        with pytest.raises(ProviderError) as caught:
            list(wrong.sync(None))
    finally:
        wrong.close()
    assert caught.value.status == 401 and not caught.value.transient
    assert "Unauthorized Request" in str(caught.value)


def test_a_fault_during_sync_reaches_the_app_as_a_provider_error(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    seed_many(mollie, 30)
    mollie.inject("malformed_json", method="GET", path=r"/subscriptions$", times=None)
    with pytest.raises(ProviderError, match="malformed JSON") as caught:
        list(provider.sync(None))
    assert_readable(caught.value)


def test_a_next_link_to_another_host_is_not_followed(provider: MollieProvider) -> None:
    with pytest.raises(ProviderError, match="outside the configured API address"):
        provider.client.check_link("https://evil.example/v2/customers?from=cst_a")
    base = provider.client.base_url
    assert provider.client.check_link(f"{base}/customers?from=cst_a") == (
        f"{base}/customers?from=cst_a"
    )


# --- push ----------------------------------------------------------------------------------------


def contact(customer_id: str | None, key: str, **fields: str) -> Change:
    return Change(ChangeKind.CONTACT_CHANGED, org(customer_id), key, **fields)  # type: ignore[arg-type]


def test_push_updates_the_customer_and_replays_by_idempotency_key(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("Old Name", "old@school.nl", "12AB")
    change = contact(customer, "change-1", name="New Name", email="new@school.nl")
    [outcome] = provider.push([change])
    assert outcome.ok and outcome.external_id == customer
    held = mollie.customer(customer)
    assert held is not None and (held["name"], held["email"]) == ("New Name", "new@school.nl")
    with mollie.lock:
        mollie.state["customers"][customer]["name"] = "Changed at Mollie"
    [again] = provider.push([change])  # a retried push: same key, same body -> replayed
    assert again.ok
    held = mollie.customer(customer)
    assert held is not None and held["name"] == "Changed at Mollie"
    assert mollie.count("PATCH") == 2


def test_push_needs_no_call_for_consent_or_unlinked_subjects(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    person = Subject("administrator", 3, None, email="p@school.nl")
    changes = [
        Change(ChangeKind.CONSENT_GRANTED, person, "k1", purpose="newsletter"),
        Change(ChangeKind.CONSENT_WITHDRAWN, person, "k2", purpose="newsletter"),
        Change(ChangeKind.CONTACT_CHANGED, person, "k3", email="q@school.nl"),
        contact(None, "k4", name="Unlinked"),
    ]
    outcomes = provider.push(changes)
    assert [o.change for o in outcomes] == changes
    assert all(o.ok for o in outcomes)
    assert not mollie.requests


def test_push_reports_a_refused_change_on_its_own_without_the_address(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    good = mollie.add_customer("A", "a@school.nl", "11AA")
    bad = mollie.add_customer("B", "b@school.nl", "22BB")
    gone = mollie.add_customer("C", "c@school.nl", "33CC")
    provider.erase(org(gone))
    changes = [
        contact(good, "k1", email="fine@school.nl"),
        contact(bad, "k2", email="not-an-address"),
        contact(gone, "k3", name="Gone"),
    ]
    first, second, third = provider.push(changes)
    assert first.ok
    assert not second.ok and second.reason == (
        "Mollie 422 Unprocessable Entity: The email address is invalid. (field email)"
    )
    assert not third.ok and third.reason is not None and "gone (HTTP 410)" in third.reason


def test_push_raises_when_mollie_keeps_failing(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("500", method="PATCH", times=None)
    with pytest.raises(ProviderError, match="Mollie 500 Internal Server Error") as caught:
        provider.push([contact(customer, "k1", name="X")])
    assert caught.value.transient
    assert mollie.count("PATCH") in (3, 4)  # retried, as far as the time budget allows


# --- erase, verify, export -----------------------------------------------------------------------


def test_erase_cancels_revokes_deletes_and_keeps_payment_records(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer(
        "OBS De Klimop",
        "admin@klimop.nl",
        "12AB",
        mandates=("valid", "pending", "invalid"),
        subscription_status="active",
        payments=("paid", "paid"),
    )
    assert provider.verify_erased(org(customer)) is False
    outcome = provider.erase(org(customer))
    assert outcome.status is ErasureStatus.ERASED
    assert outcome.detail == "2 mandates revoked, 1 subscription cancelled, customer deleted"
    assert outcome.retained == (PAYMENT_RECORDS,)
    assert mollie.customer(customer) is None
    assert mollie.statuses("mandates", customer) == ["invalid", "invalid", "invalid"]
    assert mollie.statuses("subscriptions", customer) == ["canceled"]
    assert mollie.statuses("payments", customer) == ["paid", "paid"]  # Mollie keeps them
    assert mollie.count("DELETE") == 4
    assert provider.verify_erased(org(customer)) is True


def test_erase_twice_is_already_gone_for_410_and_404(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    assert provider.erase(org(customer)).status is ErasureStatus.ERASED
    again = provider.erase(org(customer))
    assert again.status is ErasureStatus.ALREADY_GONE and again.retained == (PAYMENT_RECORDS,)
    mollie.purge_deleted(customer)
    assert mollie.count("GET", f"/v2/customers/{customer}/subscriptions") == 2
    assert provider.erase(org(customer)).status is ErasureStatus.ALREADY_GONE
    assert provider.verify_erased(org(customer)) is True
    assert mollie.requests[-1][2] == 404


def test_an_interrupted_erase_finishes_when_tried_again(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA", mandates=("valid",))
    mollie.inject("500", method="DELETE", path=r"/customers/cst_\w+$", times=None)
    with pytest.raises(ProviderError) as caught:
        provider.erase(org(customer))
    assert caught.value.transient and mollie.customer(customer) is not None
    mollie.clear_faults()
    outcome = provider.erase(org(customer))
    assert outcome.status is ErasureStatus.ERASED
    assert outcome.detail == "0 mandates revoked, 0 subscriptions cancelled, customer deleted"


def test_erase_of_what_mollie_cannot_hold_makes_no_call(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    person = Subject("administrator", 4, "cst_abc")
    assert provider.erase(person).status is ErasureStatus.ALREADY_GONE
    assert provider.erase(org(None)).status is ErasureStatus.ALREADY_GONE
    assert provider.verify_erased(person) is None
    assert provider.verify_erased(org(None)) is None
    assert not mollie.requests


def test_a_stored_id_that_is_not_a_customer_id_never_reaches_a_url(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    for call in (provider.erase, provider.verify_erased, provider.export):
        with pytest.raises(ProviderError, match="not a customer id"):
            call(org("../payments"))
    assert not mollie.requests


def test_export_holds_customer_mandates_subscriptions_and_all_payments(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer(
        "OBS De Klimop", "admin@klimop.nl", "12AB", payments=["paid"] * 260
    )
    data = provider.export(org(customer))
    assert data["customer"]["email"] == "admin@klimop.nl"
    assert data["customer"]["metadata"] == {"brin": "12AB"}
    assert [m["status"] for m in data["mandates"]] == ["valid"]
    assert data["mandates"][0]["details"]["consumerAccount"] == "NL91ABNA0417164300"
    assert [s["status"] for s in data["subscriptions"]] == ["active"]
    assert len(data["payments"]) == 260  # two pages of at most 250
    assert len({p["id"] for p in data["payments"]}) == 260
    assert "_links" not in data["customer"] and "_links" not in data["payments"][0]
    assert mollie.count("GET", f"/v2/customers/{customer}/payments") == 2


def test_export_of_a_deleted_customer_says_so(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    provider.erase(org(customer))
    data = provider.export(org(customer))
    assert data["customer"] is None and "HTTP 410" in data["note"]


# --- faults --------------------------------------------------------------------------------------


def test_a_single_500_or_html_page_is_retried(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("500", method="GET")
    mollie.inject("html", method="GET")
    assert provider.verify_erased(org(customer)) is False
    assert mollie.count("GET") == 3


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("500", "Mollie 500 Internal Server Error: An unexpected error occurred."),
        ("html", "Mollie answered with an HTML page (HTTP 502), not JSON"),
        ("malformed_json", "Mollie answered HTTP 200 with malformed JSON"),
        ("429", "Mollie 429 Too Many Requests: You are making too many requests."),
    ],
)
def test_lasting_faults_become_readable_provider_errors(
    provider: MollieProvider, mollie: MollieImitation, kind: str, reason: str
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject(kind, method="GET", times=None, retry_after=0.1)
    with pytest.raises(ProviderError) as caught:
        provider.export(org(customer))
    assert str(caught.value).startswith(reason)
    assert caught.value.transient
    assert_readable(caught.value)


def test_429_waits_for_retry_after_then_succeeds(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("429", method="GET", retry_after=0.6)
    start = time.monotonic()
    assert provider.verify_erased(org(customer)) is False
    assert time.monotonic() - start >= 0.6
    assert [status for _, _, status in mollie.requests] == [429, 200]


def test_a_retry_after_beyond_the_budget_is_handed_back(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("429", method="GET", retry_after=30)
    start = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.verify_erased(org(customer))
    assert time.monotonic() - start < 1.0
    assert caught.value.transient and caught.value.retry_after == 30
    assert caught.value.status == 429


def test_a_hang_past_the_timeout_ends_before_the_apps_deadline(
    provider: MollieProvider, mollie: MollieImitation
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("hang", method="DELETE", times=None, hang_seconds=10)
    outcome = plugins.call_with_deadline(
        provider.erase, org(customer), deadline_seconds=plugins.deadline_for(provider)
    )
    assert not outcome.ok and not outcome.timed_out  # the plugin gave up first, readably
    assert outcome.transient
    assert "did not answer within" in outcome.reason or "time allowed" in outcome.reason


def test_a_single_hang_is_retried(provider: MollieProvider, mollie: MollieImitation) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    mollie.inject("hang", method="GET", hang_seconds=5)
    assert provider.verify_erased(org(customer)) is False


# --- error reading, without the network ----------------------------------------------------------


def test_mollie_errors_are_redacted_of_personal_data() -> None:
    response = httpx.Response(
        422,
        json={
            "status": 422,
            "title": "Unprocessable Entity",
            "detail": "The address jan@school.nl for NL91ABNA0417164300 is invalid",
            "field": "email",
        },
    )
    text = str(error_from(response))
    assert text == (
        "Mollie 422 Unprocessable Entity: The address <e-mail> for <iban> is invalid (field email)"
    )


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = retry_after_seconds(httpx.Response(429, headers={"Retry-After": header}))
    assert seconds is not None and 55 <= seconds <= 61
    assert retry_after_seconds(httpx.Response(429)) is None


# --- the imitation itself ------------------------------------------------------------------------


def test_imitation_speaks_mollies_list_and_error_shapes(mollie: MollieImitation) -> None:
    seed_many(mollie, 3)
    auth = {"Authorization": f"Bearer {mollie.api_key}"}
    with httpx.Client(base_url=mollie.api_url, headers=auth) as http:
        page = http.get("/customers", params={"limit": 2})
        assert page.headers["content-type"] == "application/hal+json"
        body = page.json()
        assert body["count"] == 2 and len(body["_embedded"]["customers"]) == 2
        assert body["_links"]["next"]["href"].startswith(f"{mollie.api_url}/customers?from=cst_")
        assert body["_links"]["previous"] is None
        second = http.get(body["_links"]["next"]["href"]).json()
        assert second["count"] == 1 and second["_links"]["next"] is None
        assert second["_links"]["previous"]["href"].startswith("http://127.0.0.1:")
        too_many = http.get("/customers", params={"limit": 251})
        assert too_many.status_code == 400
        error = too_many.json()
        assert (error["status"], error["title"], error["field"]) == (400, "Bad Request", "limit")
        assert error["_links"]["documentation"]["href"].startswith("https://docs.mollie.com/")
        assert http.get("/customers", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_imitation_replays_an_idempotency_key_and_refuses_it_for_another_request(
    mollie: MollieImitation,
) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    auth = {"Authorization": f"Bearer {mollie.api_key}", "Idempotency-Key": "key-1"}
    with httpx.Client(base_url=mollie.api_url, headers=auth) as http:
        first = http.patch(f"/customers/{customer}", json={"name": "B"})
        replay = http.patch(f"/customers/{customer}", json={"name": "B"})
        other = http.patch(f"/customers/{customer}", json={"name": "C"})
    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]


def test_imitation_cancelling_twice_is_mollies_422(mollie: MollieImitation) -> None:
    customer = mollie.add_customer("A", "a@school.nl", "11AA")
    auth = {"Authorization": f"Bearer {mollie.api_key}"}
    with httpx.Client(base_url=mollie.api_url, headers=auth) as http:
        [sub] = http.get(f"/customers/{customer}/subscriptions").json()["_embedded"][
            "subscriptions"
        ]
        cancelled = http.delete(f"/customers/{customer}/subscriptions/{sub['id']}")
        again = http.delete(f"/customers/{customer}/subscriptions/{sub['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
    assert again.status_code == 422
    assert again.json()["detail"] == "The subscription has been canceled."


def test_imitation_state_survives_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "mollie.json"
    with MollieImitation(state_path=path) as first:
        customer = first.add_customer("A", "a@school.nl", "11AA")
    with MollieImitation(state_path=path) as second:
        made = make_provider(second)
        try:
            assert made.erase(org(customer)).status is ErasureStatus.ERASED
        finally:
            made.close()
    with MollieImitation(state_path=path) as third:
        made = make_provider(third)
        try:
            assert made.verify_erased(org(customer)) is True
        finally:
            made.close()
