"""The Mailchimp plugin, through the real ``mailchimp-marketing`` SDK, over real HTTP against the
imitation in ``plusjeklas_tui.testing.mailchimp``: every operation, paging and resuming, the batch
endpoint, every injected fault, and the SDK habits the plugin must not trust (empty-bodied
answers, problem+json as a raw string, the ``server`` rewrite)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from plusjeklas_plugins.mailchimp import MailchimpProvider, __version__
from plusjeklas_plugins.mailchimp.provider import FORGOTTEN_REASON, subscriber_hash

from plusjeklas_tui import plugins
from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.providers import (
    Change,
    ChangeKind,
    ErasureStatus,
    InsecureBaseUrl,
    MemberStatus,
    ProviderConfig,
    ProviderError,
    ProviderKind,
    Subject,
)
from plusjeklas_tui.testing.imitation import Request, Response
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

MakeProvider = Callable[..., MailchimpProvider]


@pytest.fixture
def imitation() -> Iterator[MailchimpImitation]:
    with MailchimpImitation() as running:
        assert isinstance(running, MailchimpImitation)
        yield running


@pytest.fixture
def make(imitation: MailchimpImitation) -> MakeProvider:
    """A provider against the imitation; keyword arguments change its configuration."""

    def build(
        *,
        timeout: float = 2.0,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> MailchimpProvider:
        options.setdefault("list_id", DEFAULT_LIST_ID)
        return MailchimpProvider(
            ProviderConfig(
                name="mailchimp",
                base_url=base_url or imitation.url,
                api_key=api_key or imitation.api_key,
                timeout_seconds=timeout,
                options=options,
            )
        )

    return build


@pytest.fixture
def provider(make: MakeProvider) -> MailchimpProvider:
    return make()


def person(n: int, email: str | None = None, external_id: str | None = None) -> Subject:
    return Subject("administrator", n, external_id, email or f"person{n}@school.nl")


def grant(n: int, email: str | None = None, name: str | None = "Anna de Vries") -> Change:
    subject = person(n, email)
    return Change(
        ChangeKind.CONSENT_GRANTED, subject, f"grant-{n}", "newsletter", subject.email, name
    )


def withdraw(n: int, email: str | None = None, external_id: str | None = None) -> Change:
    subject = person(n, email, external_id)
    return Change(
        ChangeKind.CONSENT_WITHDRAWN, subject, f"withdraw-{n}", "newsletter", subject.email
    )


def assert_no_address(text: str | None) -> None:
    assert text is not None
    assert "@" not in text, text


# --- registration and configuration --------------------------------------------------------------


def test_the_plugin_registers_a_newsletter_provider_through_the_entry_point() -> None:
    found = plugins.discover()
    entry = found.providers["mailchimp"]
    assert entry.cls is MailchimpProvider
    assert entry.info.kind == ProviderKind.NEWSLETTER
    assert entry.info.purposes == ("newsletter",)
    assert entry.info.processor.country == "US"
    assert entry.info.processor.transfer_safeguard  # a US transfer needs its safeguard recorded
    assert __version__


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "plugins.mailchimp.list_id is required"),
        ({"list_id": ""}, "plugins.mailchimp.list_id is required"),
        ({"list_id": "../other"}, "plugins.mailchimp.list_id must be letters and digits"),
        ({"list_id": "abc", "lists": "x"}, "plugins.mailchimp has no option 'lists'"),
        ({"list_id": "abc", "send_names": "yes"}, "plugins.mailchimp.send_names must be true"),
    ],
)
def test_bad_options_are_refused_naming_the_key(options: dict[str, Any], message: str) -> None:
    config = ProviderConfig("mailchimp", None, "k-us21", 5.0, options)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        MailchimpProvider(config)


def test_the_data_centre_comes_from_the_key_and_a_strange_suffix_is_refused() -> None:
    good = MailchimpProvider(ProviderConfig("mailchimp", None, "0a1b-us21", 5.0, {"list_id": "a1"}))
    assert good.client.host == "https://us21.api.mailchimp.com/3.0"
    for key in ("nodash", "abc-evil.example/x", "abc-"):
        with pytest.raises(ConfigError, match="must end in its data centre") as caught:
            MailchimpProvider(ProviderConfig("mailchimp", None, key, 5.0, {"list_id": "a1"}))
        assert key not in str(caught.value)  # the key is a secret
    with pytest.raises(ConfigError, match="needs an API key"):
        MailchimpProvider(ProviderConfig("mailchimp", None, None, 5.0, {"list_id": "a1"}))


def test_plain_http_to_another_host_is_refused_and_verification_stays_on() -> None:
    config = ProviderConfig("mailchimp", "http://mailchimp.example.com", "k", 5.0, {"list_id": "a"})
    with pytest.raises(
        InsecureBaseUrl, match=r"plugins\.mailchimp\.base_url must start with https"
    ):
        MailchimpProvider(config)
    ok = MailchimpProvider(
        ProviderConfig("mailchimp", "https://sandbox.example.com", "k", 7.5, {"list_id": "a"})
    )
    assert ok.client.host == "https://sandbox.example.com/3.0"
    assert ok.client.api_client.session.verify is not False
    assert ok.client.api_client.timeout == 7.5  # the SDK's default would be 120 s


def test_the_sdk_rewrite_of_server_in_urls_is_turned_off(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    imitation.add_list("server2024", "Server audience")  # the SDK would turn it into "2024"
    assert make(list_id="server2024").health().ok


# --- health --------------------------------------------------------------------------------------


def test_health_pings_and_checks_the_audience(
    imitation: MailchimpImitation, provider: MailchimpProvider, make: MakeProvider
) -> None:
    assert provider.health().ok
    assert imitation.count("GET", "/3.0/ping") == 1
    assert imitation.count("GET", f"/lists/{DEFAULT_LIST_ID}") == 1
    missing = make(list_id="nosuchlist").health()
    assert not missing.ok
    assert "plugins.mailchimp.list_id was not found" in missing.reason
    refused = make(api_key="wrong-us1").health()
    assert not refused.ok
    assert "API Key Invalid" in refused.reason
    assert "wrong-us1" not in refused.reason


# --- sync ----------------------------------------------------------------------------------------


def test_a_full_sync_pages_in_order_with_resumable_checkpoints(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    emails = imitation.seed_members(2500)
    imitation.set_status(emails[10], "unsubscribed")
    imitation.set_status(emails[2400], "cleaned")
    pages = list(provider.sync(None))
    assert [len(page.items) for page in pages] == [1000, 1000, 500]
    assert {page.total for page in pages} == {2500}
    items = [item for page in pages for item in page.items]
    assert all(isinstance(item, MemberStatus) for item in items)
    assert [item.email for item in items] == emails  # in the audience's order, none twice
    assert items[0].external_id == subscriber_hash(emails[0])
    assert items[10].status == "unsubscribed" and items[2400].status == "cleaned"
    assert items[0].changed_at == OLD and items[0].changed_at.tzinfo is not None
    checkpoints = [json.loads(page.checkpoint or "") for page in pages]
    assert [c.get("offset") for c in checkpoints] == [1000, 2000, None]
    assert set(checkpoints[-1]) == {"since"}  # the next sync is incremental
    assert imitation.peak_active <= 10


def test_a_sync_resumes_after_the_last_applied_page(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    emails = imitation.seed_members(2500)
    first = next(iter(provider.sync(None)))
    rest = list(provider.sync(first.checkpoint))
    assert [len(page.items) for page in rest] == [1000, 500]
    assert [item.email for page in rest for item in page.items] == emails[1000:]


def test_after_a_full_sync_only_changed_members_come(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    emails = imitation.seed_members(1500)
    final = list(provider.sync(None))[-1].checkpoint
    imitation.set_status(emails[700], "unsubscribed")  # the person left at Mailchimp
    pages = list(provider.sync(final))
    assert [(i.email, i.status) for p in pages for i in p.items] == [(emails[700], "unsubscribed")]
    assert json.loads(pages[-1].checkpoint or "")["since"] >= json.loads(final or "")["since"]


def test_an_empty_audience_gives_one_empty_page_and_an_unreadable_checkpoint_a_full_sync(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    pages = list(provider.sync(None))
    assert len(pages) == 1 and pages[0].items == [] and pages[0].total == 0
    assert "since" in json.loads(pages[0].checkpoint or "")
    imitation.seed_members(3)
    [page] = list(provider.sync("{not json"))
    assert len(page.items) == 3


def test_a_big_sync_stays_within_ten_connections(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    imitation.latency_seconds = 0.02
    imitation.seed_members(12_000)
    assert sum(len(page.items) for page in provider.sync(None)) == 12_000
    assert imitation.peak_active <= 10
    assert imitation.count("GET", "/members") >= 12
    assert not [r for r in imitation.requests if r[2] == 429]


# --- push: one request per change ----------------------------------------------------------------


def test_granted_consent_subscribes_with_names_and_returns_the_hash(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    [outcome] = provider.push([grant(1, "Anna@School.nl")])
    assert outcome.ok and outcome.reason is None
    assert outcome.external_id == subscriber_hash("anna@school.nl")
    member = imitation.member("anna@school.nl")
    assert member is not None and member["status"] == "subscribed"
    assert member["merge_fields"] == {"FNAME": "Anna", "LNAME": "de Vries"}
    assert imitation.count("PUT", "/members/") == 1


def test_send_names_false_sends_the_address_only(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    [outcome] = make(send_names=False).push([grant(1)])
    assert outcome.ok
    member = imitation.member("person1@school.nl")
    assert member is not None and member["merge_fields"] == {}


def test_withdrawal_unsubscribes_never_deletes_and_creates_nobody(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    key = imitation.add_member("person2@school.nl")
    out = provider.push([withdraw(2, external_id=key), withdraw(3)])
    assert [o.ok for o in out] == [True, True]
    assert out[0].external_id == key
    member = imitation.member(key)
    assert member is not None and member["status"] == "unsubscribed"
    assert imitation.member("person3@school.nl") is None  # not a member: nothing to withdraw
    assert imitation.count("DELETE") == 0


def test_a_contact_change_moves_the_member_to_the_new_address(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    old = imitation.add_member("old@school.nl", merge_fields={"FNAME": "A"})
    change = Change(
        ChangeKind.CONTACT_CHANGED,
        Subject("administrator", 4, old, "new@school.nl"),
        "contact-4",
        email="new@school.nl",
        name="Bert Jansen",
    )
    [outcome] = provider.push([change])
    assert outcome.ok and outcome.external_id == subscriber_hash("new@school.nl")
    assert imitation.member(old) is None
    moved = imitation.member("new@school.nl")
    assert moved is not None and moved["merge_fields"] == {"FNAME": "Bert", "LNAME": "Jansen"}


def test_other_purposes_and_missing_addresses(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    analytics = Change(
        ChangeKind.CONSENT_GRANTED, person(5), "g-5", "analytics", "person5@school.nl"
    )
    nameless = Change(ChangeKind.CONSENT_GRANTED, Subject("administrator", 6), "g-6", "newsletter")
    before = len(imitation.requests)
    out = provider.push([analytics, nameless])
    assert len(imitation.requests) == before  # neither needs Mailchimp
    assert out[0].ok and out[0].reason is None  # none of Mailchimp's business
    assert not out[1].ok and out[1].reason == "no e-mail address to find or add the member by"


def test_a_permanently_deleted_address_cannot_be_subscribed_again(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    provider.push([grant(7)])
    assert provider.erase(person(7)).status == ErasureStatus.ERASED
    [outcome] = provider.push([grant(7)])
    assert not outcome.ok and outcome.reason == FORGOTTEN_REASON
    assert imitation.is_forgotten("person7@school.nl")


def test_a_refusal_is_shown_without_the_address(provider: MailchimpProvider) -> None:
    # "looks fake": Mailchimp quotes the address; one redact() would miss (one-letter domain)
    [outcome] = provider.push([grant(8, "piet@school.x")])
    assert not outcome.ok
    assert outcome.reason is not None and "looks fake or invalid" in outcome.reason
    assert_no_address(outcome.reason)


# --- push: the batch endpoint --------------------------------------------------------------------


def test_many_changes_go_through_the_batch_endpoint_in_order(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    leaving = [imitation.add_member(f"leaving{i}@school.nl") for i in range(200)]
    imitation.add_member("forgotten@school.nl")
    provider.erase(person(0, "forgotten@school.nl"))
    changes = [grant(i, f"new{i}@school.nl") for i in range(1000)]
    changes += [withdraw(2000 + i, f"leaving{i}@school.nl", key) for i, key in enumerate(leaving)]
    changes += [grant(3000, "forgotten@school.nl"), grant(3001, "bad@address.x")]
    changes += [grant(3002, "twice@school.nl"), withdraw(3002, "twice@school.nl")]
    before = imitation.count("PUT") + imitation.count("PATCH")
    out = provider.push(changes)
    assert [o.change.key for o in out] == [c.key for c in changes]
    batches = [r for r in imitation.requests if r[:2] == ("POST", f"/3.0/lists/{DEFAULT_LIST_ID}")]
    assert len(batches) == 3  # 1,202 members, 500 a call
    assert imitation.count("PUT") + imitation.count("PATCH") == before + 1  # the withdrawal
    assert all(o.ok for o in out[:1200])
    assert out[0].external_id == subscriber_hash("new0@school.nl")
    assert imitation.member(leaving[0])["status"] == "unsubscribed"  # type: ignore[index]
    assert out[1200].reason == FORGOTTEN_REASON
    assert not out[1201].ok and "looks fake or invalid" in (out[1201].reason or "")
    assert_no_address(out[1201].reason)
    # granted, then withdrawn in the same push: the last change decides, both report it
    assert out[1202].ok and out[1203].ok
    twice = imitation.member("twice@school.nl")
    assert twice is None or twice["status"] == "unsubscribed"


def test_a_withdrawal_in_a_batch_for_an_unknown_member_creates_nobody(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    changes = [grant(i) for i in range(10)] + [withdraw(99, "stranger@school.nl")]
    out = provider.push(changes)
    assert all(o.ok for o in out)
    assert imitation.member("stranger@school.nl") is None
    assert imitation.members_count() == 10


# --- erase, verify, export -----------------------------------------------------------------------


def test_erase_is_permanent_idempotent_and_verified(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    key = imitation.add_member("person9@school.nl")
    subject = person(9, external_id=key)
    assert provider.verify_erased(subject) is False
    first = provider.erase(subject)
    assert first.status == ErasureStatus.ERASED
    assert provider.verify_erased(subject) is True
    assert provider.erase(subject).status == ErasureStatus.ALREADY_GONE
    assert imitation.count("POST", "/actions/delete-permanent") == 2
    assert imitation.count("DELETE") == 0  # archiving is not erasing


def test_erase_looks_under_the_stored_id_and_the_current_address(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    old = imitation.add_member("before@school.nl")
    imitation.add_member("after@school.nl")
    subject = Subject("administrator", 10, old, "after@school.nl")
    assert provider.erase(subject).status == ErasureStatus.ERASED
    assert imitation.members_count() == 0
    assert provider.verify_erased(subject) is True


def test_a_404_from_a_wrong_audience_is_not_already_gone(make: MakeProvider) -> None:
    with pytest.raises(ProviderError, match=r"plugins\.mailchimp\.list_id was not found"):
        make(list_id="nosuchlist").erase(person(11))


def test_erase_without_any_id_says_so_without_personal_data(provider: MailchimpProvider) -> None:
    with pytest.raises(ProviderError, match="administrator #12 has neither"):
        provider.erase(Subject("administrator", 12))


class SilentProxy(MailchimpImitation):
    """Answers the permanent delete with an empty body and ``status`` (a proxy, a misroute)."""

    status = 404

    def _delete_permanent(self, request: Request) -> Response:
        return Response(self.status)


@pytest.mark.parametrize("status", [404, 403, 429])
def test_an_empty_bodied_answer_does_not_confirm_a_deletion(status: int) -> None:
    with SilentProxy() as silent:
        assert isinstance(silent, SilentProxy)
        silent.status = status
        silent.add_member("person13@school.nl")
        provider = MailchimpProvider(
            ProviderConfig("mailchimp", silent.url, silent.api_key, 0.5, {"list_id": "5c1a9e0d42"})
        )
        with pytest.raises(ProviderError) as caught:
            provider.erase(person(13))
        assert str(status) in str(caught.value)
        assert silent.member("person13@school.nl") is not None


def test_export_gives_the_member_and_all_its_activity(
    imitation: MailchimpImitation, provider: MailchimpProvider
) -> None:
    imitation.add_member("person14@school.nl", merge_fields={"FNAME": "Kees"})
    for kind in ("sent", "open", "click"):
        imitation.add_activity("person14@school.nl", kind)
    exported = provider.export(person(14))
    [found] = exported["members"]
    assert found["member"]["email_address"] == "person14@school.nl"
    assert found["member"]["merge_fields"] == {"FNAME": "Kees"}
    assert [a["activity_type"] for a in found["activity"]] == ["sent", "open", "click"]
    json.dumps(exported)  # JSON-ready
    assert provider.export(person(15))["members"] == []


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("500", "Internal Server Error"),
        ("429", "Too Many Requests"),
        ("malformed_json", "malformed JSON"),
        ("html", "HTTP 502 (Bad Gateway) without an error description"),
    ],
)
def test_a_lasting_fault_is_a_transient_readable_error(
    imitation: MailchimpImitation, make: MakeProvider, kind: str, words: str
) -> None:
    imitation.add_member("person16@school.nl")
    imitation.inject(kind, times=None, retry_after=0.05)
    provider = make(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        list(provider.sync(None))
    assert time.monotonic() - started < 1.5  # within the app's deadline of 3 x timeout
    assert words in str(caught.value)
    assert caught.value.transient
    assert_no_address(str(caught.value))
    assert imitation.count() >= 2  # it tried again before giving up


@pytest.mark.parametrize("kind", ["500", "429", "malformed_json", "html", "hang"])
def test_a_passing_fault_is_retried(
    imitation: MailchimpImitation, make: MakeProvider, kind: str
) -> None:
    imitation.add_member("person17@school.nl")
    imitation.inject(kind, times=1, retry_after=0.05, hang_seconds=3)
    [page] = list(make(timeout=0.5).sync(None))
    assert [item.email for item in page.items] == ["person17@school.nl"]


def test_retry_after_is_honoured_and_a_long_one_gives_up_at_once(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    provider = make(timeout=1.0)
    imitation.inject("429", path="/ping", times=1, retry_after=0.4)
    started = time.monotonic()
    assert provider.health().ok
    assert time.monotonic() - started >= 0.4
    imitation.inject("429", path=r"/actions/delete-permanent", times=None, retry_after=60)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.erase(person(18))
    assert time.monotonic() - started < 1.0  # no point waiting past the deadline
    assert caught.value.retry_after == 60 and caught.value.transient


def test_a_hang_past_the_timeout_fails_within_the_deadline(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    imitation.inject("hang", times=None, hang_seconds=5)
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"did not answer within 0.4 s") as caught:
        make(timeout=0.4).erase(person(19))
    assert time.monotonic() - started < 3 * 0.4
    assert caught.value.transient


def test_a_failing_batch_fails_the_whole_push_so_it_is_sent_again(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    imitation.inject("500", method="POST", times=None)
    with pytest.raises(ProviderError, match="Internal Server Error") as caught:
        make(timeout=0.5).push([grant(i) for i in range(20)])
    assert_no_address(str(caught.value))


def test_a_wrong_key_fails_at_once_without_showing_it(
    imitation: MailchimpImitation, make: MakeProvider
) -> None:
    with pytest.raises(ProviderError, match="API Key Invalid") as caught:
        make(api_key="secret-us9").push([grant(20)])
    assert not caught.value.transient and caught.value.status == 401
    assert "secret-us9" not in str(caught.value)
    assert imitation.count("PUT") == 1  # no retry of a refusal


# --- the imitation itself: what the plugin relies on -------------------------------------------


def test_the_imitation_speaks_problem_json_and_keeps_mailchimps_limits(
    imitation: MailchimpImitation,
) -> None:
    base = f"{imitation.api_url}/lists/{DEFAULT_LIST_ID}"
    auth = ("anyone", imitation.api_key)
    refused = requests.get(f"{imitation.api_url}/ping", auth=("anyone", "nope"), timeout=5)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert set(refused.json()) >= {"type", "title", "status", "detail", "instance"}
    assert requests.get(f"{imitation.api_url}/ping", auth=auth, timeout=5).json() == {
        "health_status": "Everything's Chimpy!"
    }
    too_many = requests.get(f"{base}/members", params={"count": 1001}, auth=auth, timeout=5)
    assert too_many.status_code == 400
    big = {"members": [{"email_address": f"a{i}@b.nl", "status": "subscribed"} for i in range(501)]}
    assert requests.post(base, json=big, auth=auth, timeout=5).status_code == 400
    imitation.add_member("x@school.nl")
    by_address = requests.get(f"{base}/members/x@school.nl", auth=auth, timeout=5).json()
    assert by_address["id"] == subscriber_hash("x@school.nl")


def test_the_imitation_answers_429_past_ten_simultaneous_requests(
    imitation: MailchimpImitation,
) -> None:

    imitation.latency_seconds = 0.3
    url, auth = f"{imitation.api_url}/ping", ("anyone", imitation.api_key)
    with ThreadPoolExecutor(max_workers=14) as pool:
        answers = list(pool.map(lambda _: requests.get(url, auth=auth, timeout=5), range(14)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(200) == 10 and statuses.count(429) == 4
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert "10 simultaneous connections" in limited.json()["detail"]
