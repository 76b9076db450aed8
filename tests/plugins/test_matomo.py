"""The Matomo plugin, driven over real HTTP against the bundled imitation of Matomo's API.

No database: these exercise the provider contract (health, push, sync, erase, verify_erased,
export) and the imitation's faithfulness (token only in the POST body, errors with HTTP 200,
segment decoding, the 401-visit cap of ``findDataSubjects``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from plusjeklas_plugins.matomo import MatomoProvider, ids
from plusjeklas_plugins.matomo.cursor import Cursor
from plusjeklas_plugins.matomo.provider import FIND_CAP, SELF_HOSTED

from plusjeklas_tui import plugins
from plusjeklas_tui.config import PluginSettings
from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.providers import (
    AnalyticsSubject,
    Change,
    ChangeKind,
    ErasureStatus,
    InsecureBaseUrl,
    ProviderConfig,
    ProviderError,
    ProviderKind,
    Subject,
    SyncPage,
)
from plusjeklas_tui.testing.imitation import Request, Response, Route, route
from plusjeklas_tui.testing.matomo import BAD_TOKEN, TOKEN_IN_URL, MatomoImitation, parse_segment

TOKEN = "test-token-auth"
AWKWARD_ID = "pjk-a,b;c=d/e f@g:h"
"""An id with characters a segment needs encoded: , and ; join conditions, = / space @ :."""
EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[a-z]{2,}", re.IGNORECASE)

FIND = "PrivacyManager.findDataSubjects"
DELETE = "PrivacyManager.deleteDataSubjects"
EXPORT = "PrivacyManager.exportDataSubjects"
LIVE = "Live.getLastVisitsDetails"


@pytest.fixture
def matomo() -> Iterator[MatomoImitation]:
    with MatomoImitation(api_key=TOKEN) as imitation:
        yield imitation  # type: ignore[misc]


def make(
    imitation: MatomoImitation,
    *,
    timeout: float = 1.0,
    token: str = TOKEN,
    base_url: str | None = None,
    **options: Any,
) -> MatomoProvider:
    options.setdefault("site_id", 1)
    return MatomoProvider(
        ProviderConfig(
            name="matomo",
            base_url=base_url or imitation.url,
            api_key=token,
            timeout_seconds=timeout,
            options=options,
        )
    )


def person(user_id: str | None, local_id: int = 7) -> Subject:
    return Subject("administrator", local_id, user_id)


def change(kind: ChangeKind, subject: Subject, key: str, purpose: str = "analytics") -> Change:
    return Change(kind=kind, subject=subject, key=key, purpose=purpose)


def assert_readable(error: ProviderError) -> str:
    text = str(error)
    assert text and not EMAIL.search(text), text
    assert "Traceback" not in text
    return text


# --- registration and configuration ---------------------------------------------------------


def test_registered_through_the_entry_point_group_as_an_analytics_provider() -> None:
    found = plugins.discover()
    entry = found.providers["matomo"]
    assert entry.cls is MatomoProvider
    info = entry.info
    assert info.kind == ProviderKind.ANALYTICS
    assert info.purposes == ("analytics",)
    assert info.processor.company == "Jongleren.biz (self-hosted Matomo)"
    assert info.processor.country == "NL"
    assert info.processor.agreement == "self-hosted; no processor agreement needed"
    assert any("cross-site" in category for category in info.processor.data_categories)


def test_a_hosted_matomo_is_described_by_its_options(matomo: MatomoImitation) -> None:
    provider = make(
        matomo,
        company="InnoCraft Ltd (Matomo Cloud)",
        country="de",
        agreement="Matomo Cloud DPA, in the contracts folder",
    )
    assert provider.info.processor.company == "InnoCraft Ltd (Matomo Cloud)"
    assert provider.info.processor.country == "DE"
    assert provider.info.processor.data_categories == SELF_HOSTED.data_categories
    assert MatomoProvider.info.processor == SELF_HOSTED  # the class default is untouched


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({}, "site_id is required"),
        ({"site_id": 0}, "site_id must be a whole number"),
        ({"site_id": True}, "site_id must be a whole number"),
        ({"site_id": "1"}, "site_id must be a whole number"),
        ({"site_id": 1, "also_site_ids": 2}, "also_site_ids must be a list"),
        ({"site_id": 1, "page_size": 10_000}, "page_size must be at most"),
        ({"site_id": 1, "company": "Hoster BV"}, "agreement is required when plugins.matomo"),
        ({"site_id": 1, "country": "Nederland"}, "two-letter ISO 3166"),
        ({"site_id": 1, "site": 1}, "has no option 'site'"),
    ],
)
def test_bad_options_are_refused_naming_the_key(
    matomo: MatomoImitation, options: dict[str, Any], needle: str
) -> None:
    config = ProviderConfig("matomo", matomo.url, TOKEN, 1.0, options)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        MatomoProvider(config)


def test_base_url_and_token_are_required(matomo: MatomoImitation) -> None:
    with pytest.raises(ConfigError, match="base_url is required"):
        MatomoProvider(ProviderConfig("matomo", None, TOKEN, 1.0, {"site_id": 1}))
    with pytest.raises(ConfigError, match="api_key_env"):
        MatomoProvider(ProviderConfig("matomo", matomo.url, None, 1.0, {"site_id": 1}))


@pytest.mark.parametrize(
    "url", ["http://analytics.example.nl", "http://10.0.0.5", "ftp://analytics.example.nl"]
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(InsecureBaseUrl, match="must start with https://"):
        MatomoProvider(ProviderConfig("matomo", url, TOKEN, 1.0, {"site_id": 1}))
    settings = PluginSettings(enabled=True, base_url=url, site_id=1)  # type: ignore[call-arg]
    with pytest.raises(InsecureBaseUrl):
        plugins.provider_config("matomo", settings, api_key=TOKEN)


def test_https_and_loopback_addresses_are_accepted() -> None:
    for url in ("https://analytics.example.nl/", "http://127.0.0.1:8080", "http://localhost"):
        provider = MatomoProvider(ProviderConfig("matomo", url, TOKEN, 1.0, {"site_id": 1}))
        assert provider.client.endpoint == url.rstrip("/") + "/index.php"
        provider.close()


# --- health ----------------------------------------------------------------------------------


def test_health_checks_version_site_and_admin_access(matomo: MatomoImitation) -> None:
    health = make(matomo).health()
    assert health.ok, health.reason
    assert health.reason == "Matomo 5.2.1"
    assert matomo.calls == [
        "API.getMatomoVersion",
        "SitesManager.getSiteFromId",
        "SitesManager.getSitesIdWithAdminAccess",
    ]


def test_health_with_a_wrong_token_says_so(matomo: MatomoImitation) -> None:
    health = make(matomo, token="not-the-token").health()
    assert not health.ok
    assert "HTTP 401" in health.reason and "Unable to authenticate" in health.reason


def test_health_with_an_unknown_site(matomo: MatomoImitation) -> None:
    health = make(matomo, site_id=9).health()
    assert not health.ok
    assert "requires 'view' access for the website id = 9" in health.reason


def test_health_with_a_view_only_token_is_unhealthy(matomo: MatomoImitation) -> None:
    matomo.admin_access = False
    health = make(matomo).health()
    assert not health.ok
    assert "no admin access to site 1" in health.reason


def test_health_at_an_address_that_is_not_matomo(matomo: MatomoImitation) -> None:
    health = make(matomo, base_url=matomo.url + "/wrong").health()
    assert not health.ok
    assert "HTML page (HTTP 404)" in health.reason and "base_url" in health.reason


# --- the token stays out of URLs ---------------------------------------------------------------


class RecordingMatomo(MatomoImitation):
    """Remembers the query string keys and the body of every request."""

    def routes(self) -> list[Route]:
        self.seen: list[tuple[dict[str, list[str]], bytes]] = []

        def record(request: Request) -> Response:
            self.seen.append((dict(request.query), request.body))
            return self._index(request)

        return [route("POST", r"/index\.php", record)]


def test_token_and_user_ids_travel_in_the_body_only() -> None:
    with RecordingMatomo(api_key=TOKEN) as imitation:
        imitation.add_visits(AWKWARD_ID, 2)
        provider = make(imitation)
        assert provider.verify_erased(person(AWKWARD_ID)) is False
        assert provider.erase(person(AWKWARD_ID)).status == ErasureStatus.ERASED
    assert imitation.seen
    for query, body in imitation.seen:
        assert set(query) == {"module", "method", "format"}
        assert b"token_auth=" + TOKEN.encode() in body


def test_the_imitation_refuses_a_token_in_the_url(matomo: MatomoImitation) -> None:
    answer = httpx.get(
        matomo.url + "/index.php",
        params={
            "module": "API",
            "method": "API.getMatomoVersion",
            "format": "json",
            "token_auth": TOKEN,
        },
    )
    assert answer.status_code == 401
    assert answer.json() == {"result": "error", "message": TOKEN_IN_URL}
    wrong = httpx.post(
        matomo.url + "/index.php",
        data={
            "module": "API",
            "method": "API.getMatomoVersion",
            "format": "json",
            "token_auth": "nope",
        },
    )
    assert (wrong.status_code, wrong.json()["message"]) == (401, BAD_TOKEN)


def test_the_imitation_answers_api_errors_with_http_200(matomo: MatomoImitation) -> None:
    answer = httpx.post(
        matomo.url + "/index.php",
        data={
            "module": "API",
            "method": "PrivacyManager.forgetEverything",
            "format": "json",
            "token_auth": TOKEN,
        },
    )
    assert answer.status_code == 200
    assert answer.json()["result"] == "error"
    assert "does not exist" in answer.json()["message"]
    page = httpx.post(matomo.url + "/index.php", data={"module": "CoreHome"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


# --- push --------------------------------------------------------------------------------------


def test_granting_consent_issues_an_opaque_id_without_calling_matomo(
    matomo: MatomoImitation,
) -> None:
    provider = make(matomo)
    outcomes = provider.push(
        [
            change(ChangeKind.CONSENT_GRANTED, person(None, 1), "consent-1"),
            change(ChangeKind.CONSENT_GRANTED, person(None, 2), "consent-2"),
            change(ChangeKind.CONSENT_GRANTED, person("pjk-kept", 3), "consent-3"),
        ]
    )
    assert [o.ok for o in outcomes] == [True, True, True]
    first, second, kept = (o.external_id for o in outcomes)
    assert first and second and re.fullmatch(r"pjk-[0-9a-f]{32}", first)
    assert first != second
    assert kept == "pjk-kept"
    assert matomo.calls == []


def test_withdrawing_consent_deletes_the_visits_under_the_id(matomo: MatomoImitation) -> None:
    matomo.add_visits("pjk-leaving", 3)
    matomo.add_visits("pjk-staying", 2)
    provider = make(matomo)
    [outcome] = provider.push(
        [change(ChangeKind.CONSENT_WITHDRAWN, person("pjk-leaving"), "consent-9")]
    )
    assert outcome.ok and outcome.external_id == "pjk-leaving"
    assert matomo.visit_count("pjk-leaving") == 0
    assert matomo.visit_count("pjk-staying") == 2


def test_grant_then_withdraw_in_one_batch_agree_on_the_id(matomo: MatomoImitation) -> None:
    provider = make(matomo)
    granted, withdrawn, again = provider.push(
        [
            change(ChangeKind.CONSENT_GRANTED, person(None, 4), "consent-1"),
            change(ChangeKind.CONSENT_WITHDRAWN, person(None, 4), "consent-2"),
            change(ChangeKind.CONSENT_GRANTED, person(None, 4), "consent-3"),
        ]
    )
    assert granted.ok and withdrawn.ok and again.ok
    assert granted.external_id == withdrawn.external_id == again.external_id
    assert matomo.calls == [FIND]  # the withdrawal looked for visits; there were none


def test_other_purposes_contact_changes_and_unlinked_withdrawals_need_no_call(
    matomo: MatomoImitation,
) -> None:
    provider = make(matomo)
    outcomes = provider.push(
        [
            change(ChangeKind.CONSENT_GRANTED, person(None), "c-1", purpose="newsletter"),
            change(ChangeKind.CONSENT_WITHDRAWN, person("pjk-x"), "c-2", purpose="feedback"),
            Change(ChangeKind.CONTACT_CHANGED, person("pjk-x"), "contact-1", email="a@b.nl"),
            change(ChangeKind.CONSENT_WITHDRAWN, person(None), "c-3"),
        ]
    )
    assert all(o.ok and o.external_id is None for o in outcomes)
    assert [o.change.key for o in outcomes] == ["c-1", "c-2", "contact-1", "c-3"]
    assert matomo.calls == []


def test_a_refused_withdrawal_is_a_failed_outcome(matomo: MatomoImitation) -> None:
    matomo.add_visits("pjk-leaving", 1)
    matomo.admin_access = False
    [outcome] = make(matomo).push(
        [change(ChangeKind.CONSENT_WITHDRAWN, person("pjk-leaving"), "consent-5")]
    )
    assert not outcome.ok
    assert outcome.reason and "requires 'admin' access" in outcome.reason
    assert matomo.visit_count("pjk-leaving") == 1


def test_a_withdrawal_that_may_pass_later_raises_so_the_batch_is_sent_again(
    matomo: MatomoImitation,
) -> None:
    matomo.add_visits("pjk-leaving", 1)
    matomo.inject("500", times=None)
    with pytest.raises(ProviderError) as caught:
        make(matomo, timeout=0.3).push(
            [change(ChangeKind.CONSENT_WITHDRAWN, person("pjk-leaving"), "consent-5")]
        )
    assert caught.value.transient
    assert_readable(caught.value)


# --- sync -------------------------------------------------------------------------------------


def seed_people(matomo: MatomoImitation, end: dt.datetime) -> None:
    matomo.add_visits("pjk-anna", 4, last_at=end - dt.timedelta(hours=1))
    matomo.add_visits("pjk-bram", 3, last_at=end)
    matomo.add_visits(AWKWARD_ID, 2, last_at=end - dt.timedelta(minutes=30))
    matomo.add_visits(None, 5, last_at=end)
    matomo.add_visits("someone@example.org", 2, last_at=end)


def collect(pages: Iterator[SyncPage]) -> tuple[dict[str, AnalyticsSubject], list[str]]:
    seen: dict[str, AnalyticsSubject] = {}
    checkpoints: list[str] = []
    for page in pages:
        for item in page.items:
            seen[item.external_id] = item  # later pages carry newer values
        assert page.checkpoint is not None
        checkpoints.append(page.checkpoint)
    return seen, checkpoints


def test_sync_finds_every_user_id_page_by_page(
    matomo: MatomoImitation, caplog: pytest.LogCaptureFixture
) -> None:
    end = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    seed_people(matomo, end)
    with caplog.at_level(logging.WARNING, logger="plusjeklas_plugins.matomo.provider"):
        seen, checkpoints = collect(make(matomo, page_size=3).sync(None))
    warnings = [record.getMessage() for record in caplog.records]
    assert any("looks like an e-mail address" in message for message in warnings)
    assert not any(EMAIL.search(message) for message in warnings)
    assert set(seen) == {"pjk-anna", "pjk-bram", AWKWARD_ID}  # no anonymous, no e-mail
    assert seen["pjk-anna"].visits == 4
    assert seen["pjk-anna"].last_visit_at == end - dt.timedelta(hours=1)
    assert seen["pjk-bram"].visits == 3 and seen["pjk-bram"].last_visit_at == end
    assert len(checkpoints) == 4  # 11 visits with a user id, 3 a page
    assert matomo.calls.count(LIVE) == 4


def test_sync_resumes_after_the_last_applied_page(matomo: MatomoImitation) -> None:
    end = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    seed_people(matomo, end)
    provider = make(matomo, page_size=3)
    pages = provider.sync(None)
    first = [next(pages), next(pages)]  # the app applied two pages, then was cancelled
    before = {item.external_id for page in first for item in page.items}
    rest, _ = collect(provider.sync(first[-1].checkpoint))
    assert before | set(rest) == {"pjk-anna", "pjk-bram", AWKWARD_ID}
    assert matomo.calls.count(LIVE) == 2 + 2  # the resumed sync read only the remaining pages


def test_a_finished_sync_makes_the_next_one_incremental(matomo: MatomoImitation) -> None:
    end = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    seed_people(matomo, end)
    provider = make(matomo, page_size=50)
    _, checkpoints = collect(provider.sync(None))
    matomo.add_visits("pjk-new", 2, last_at=end + dt.timedelta(days=1))
    later, more = collect(provider.sync(checkpoints[-1]))
    assert set(later) == {"pjk-new"}
    assert later["pjk-new"].visits == 2
    nothing, _ = collect(provider.sync(more[-1]))
    assert nothing == {}


def test_visits_in_the_same_second_across_a_page_boundary_are_all_read(
    matomo: MatomoImitation,
) -> None:
    moment = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    for index in range(7):
        matomo.add_visits(f"pjk-same-{index}", 1, last_at=moment)
    seen, checkpoints = collect(make(matomo, page_size=3).sync(None))
    assert set(seen) == {f"pjk-same-{index}" for index in range(7)}
    assert checkpoints[-1] == f"v1:{int(moment.timestamp())}:7"


def test_an_unknown_checkpoint_starts_a_full_sync(matomo: MatomoImitation) -> None:
    matomo.add_visits("pjk-anna", 1)
    seen, _ = collect(make(matomo).sync("something-else"))
    assert set(seen) == {"pjk-anna"}


def test_cursor_arithmetic() -> None:
    assert Cursor.parse(None) == Cursor() == Cursor.parse("v2:5:1") == Cursor.parse("v1:x:1")
    assert Cursor.parse("v1:100:2") == Cursor(100, 2)
    assert Cursor(100, 2).params() == {"filter_offset": 2, "minTimestamp": 99}
    assert Cursor().params() == {"filter_offset": 0}
    assert Cursor(100, 2).advance([100, 100]) == Cursor(100, 4)
    assert Cursor(100, 2).advance([100, 105, 105]) == Cursor(105, 2)
    assert Cursor(100, 2).advance([]) == Cursor(100, 2)


# --- erase, verify, export ---------------------------------------------------------------------


def test_erase_pages_through_find_and_delete_until_nothing_is_left(
    matomo: MatomoImitation,
) -> None:
    matomo.find_limit = 3
    matomo.add_visits("pjk-many", 8)
    matomo.add_visits("pjk-other", 2)
    provider = make(matomo)
    assert provider.verify_erased(person("pjk-many")) is False
    outcome = provider.erase(person("pjk-many"))
    assert outcome.status == ErasureStatus.ERASED
    assert outcome.detail.startswith("8 visits deleted")
    assert outcome.retained == ()
    assert matomo.calls.count(DELETE) == 3  # 3 + 3 + 2
    assert matomo.visit_count("pjk-many") == 0
    assert matomo.visit_count("pjk-other") == 2
    assert provider.verify_erased(person("pjk-many")) is True


def test_erasing_twice_is_already_gone(matomo: MatomoImitation) -> None:
    matomo.add_visits("pjk-once", 2)
    provider = make(matomo)
    assert provider.erase(person("pjk-once")).status == ErasureStatus.ERASED
    again = provider.erase(person("pjk-once"))
    assert again.status == ErasureStatus.ALREADY_GONE
    assert matomo.calls.count(DELETE) == 1


def test_a_person_without_a_user_id_has_nothing_at_matomo(matomo: MatomoImitation) -> None:
    provider = make(matomo)
    assert provider.erase(person(None)).status == ErasureStatus.ALREADY_GONE
    assert provider.verify_erased(person(None)) is True
    assert provider.export(person(None))["visits"] == []
    assert matomo.calls == []


def test_an_id_that_needs_encoding_matches_exactly_its_own_visits(
    matomo: MatomoImitation,
) -> None:
    matomo.add_visits(AWKWARD_ID, 2)
    matomo.add_visits("pjk-a", 1)  # what an unencoded "," would turn the segment into: OR
    matomo.add_visits("b", 1)
    provider = make(matomo)
    exported = provider.export(person(AWKWARD_ID))
    assert {row["userId"] for row in exported["visits"]} == {AWKWARD_ID}
    assert provider.erase(person(AWKWARD_ID)).detail.startswith("2 visits deleted")
    assert matomo.visit_count("pjk-a") == 1 and matomo.visit_count("b") == 1


@pytest.mark.parametrize("user_id", ["pjk+plus", "pjk-100%", "pjk-<b>", "pjk-'q'", "x" * 201])
def test_ids_matomo_cannot_match_are_refused_before_any_call(
    matomo: MatomoImitation, user_id: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        make(matomo).erase(person(user_id))
    assert user_id not in str(caught.value)
    assert matomo.calls == []


def test_why_plus_and_percent_are_refused() -> None:
    """Matomo URL-decodes a segment value more than once: '+' turns into a space, and a
    literal '%' is decoded again (here three times: whole segment, condition, value)."""
    assert parse_segment("userId==a%2Bb") == [[("userId", "==", "a b")]]
    assert parse_segment("userId==a%252541") == [[("userId", "==", "aA")]]
    assert parse_segment(ids.user_id_segment(AWKWARD_ID)) == [[("userId", "==", AWKWARD_ID)]]
    assert parse_segment("userId!=") == [[("userId", "!=", "")]]
    assert parse_segment("userId==a,userId==b;visitId==3") == [
        [("userId", "==", "a"), ("userId", "==", "b")],
        [("visitId", "==", "3")],
    ]


def test_an_unencoded_comma_breaks_the_segment_at_the_imitation(matomo: MatomoImitation) -> None:
    answer = httpx.post(
        matomo.url + "/index.php",
        data={
            "module": "API",
            "method": FIND,
            "format": "json",
            "token_auth": TOKEN,
            "idSite": "1",
            "segment": "userId==a,b",
        },
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "result": "error",
        "message": "The segment condition 'b' is not valid.",
    }


def test_visits_on_the_other_configured_sites_are_erased_too(matomo: MatomoImitation) -> None:
    matomo.add_site(2, "Shop", "https://shop.jongleren.biz")
    matomo.add_visits("pjk-both", 2, site_id=1)
    matomo.add_visits("pjk-both", 3, site_id=2)
    assert make(matomo).erase(person("pjk-both")).detail.startswith("2 visits deleted")
    assert matomo.visit_count("pjk-both") == 3  # site 2 was not configured
    outcome = make(matomo, also_site_ids=[2]).erase(person("pjk-both"))
    assert outcome.detail.startswith("3 visits deleted at Matomo (sites 1,2)")
    assert matomo.visit_count("pjk-both") == 0


def test_export_holds_the_visits_and_matomo_s_tables(matomo: MatomoImitation) -> None:
    made = matomo.add_visits("pjk-export", 2, pages=("https://jongleren.biz/a",))
    data = make(matomo).export(person("pjk-export"))
    assert data["user_id"] == "pjk-export" and data["site_ids"] == [1]
    assert sorted(row["idVisit"] for row in data["visits"]) == made
    tables = data["data"]
    assert sorted(int(row["idvisit"]) for row in tables["log_visit"]) == made
    assert {row["user_id"] for row in tables["log_visit"]} == {"pjk-export"}
    assert len(tables["log_link_visit_action"]) == 2
    assert tables["log_action_log_link_visit_action_idaction_url"][0]["name"].endswith("/a")
    assert matomo.calls == [FIND, EXPORT]


def test_export_of_more_visits_than_find_returns_lists_them_all(matomo: MatomoImitation) -> None:
    made = matomo.add_visits("pjk-busy", 450, spacing_seconds=60)
    data = make(matomo, timeout=5.0, page_size=200).export(person("pjk-busy"))
    assert matomo.calls.count(FIND) == 1 and len(made) > FIND_CAP
    assert sorted(row["idVisit"] for row in data["visits"]) == made
    assert sorted(int(row["idvisit"]) for row in data["data"]["log_visit"]) == made
    assert matomo.calls.count(LIVE) == 3  # 200 + 200 + 50
    assert matomo.calls.count(EXPORT) == 2  # 400 + 50


def test_a_deletion_matomo_does_not_carry_out_is_not_reported_as_done(
    matomo: MatomoImitation,
) -> None:
    class Stubborn(MatomoImitation):
        def _delete(self, form: dict[str, str], request: Request) -> Any:
            return {"log_visit": 0, "log_link_visit_action": 0}

    with Stubborn(api_key=TOKEN) as stubborn:
        stubborn.add_visits("pjk-stuck", 2)
        with pytest.raises(ProviderError, match="deleted none of them"):
            make(stubborn).erase(person("pjk-stuck"))


# --- faults -----------------------------------------------------------------------------------


def test_a_single_500_is_retried(matomo: MatomoImitation) -> None:
    matomo.add_visits("pjk-r", 1)
    matomo.inject("500")
    assert make(matomo).erase(person("pjk-r")).status == ErasureStatus.ERASED


def test_repeated_500s_end_in_a_transient_error(matomo: MatomoImitation) -> None:
    matomo.inject("500", times=None)
    with pytest.raises(ProviderError) as caught:
        make(matomo, timeout=0.4).verify_erased(person("pjk-r"))
    error = caught.value
    assert error.transient and error.status == 500
    assert "Matomo refused PrivacyManager.findDataSubjects (HTTP 500)" in assert_readable(error)


def test_429_waits_for_retry_after(matomo: MatomoImitation) -> None:
    matomo.inject("429", retry_after=0.3)
    started = time.monotonic()
    assert make(matomo).verify_erased(person("pjk-r")) is True
    assert time.monotonic() - started >= 0.3


def test_429_asking_for_longer_than_the_call_may_take_is_handed_back(
    matomo: MatomoImitation,
) -> None:
    matomo.inject("429", retry_after=30)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        make(matomo, timeout=0.5).verify_erased(person("pjk-r"))
    assert time.monotonic() - started < 1.0
    assert caught.value.transient and caught.value.retry_after == 30
    assert "HTTP 429" in assert_readable(caught.value)


def test_a_hang_past_the_timeout_ends_before_the_app_s_deadline(matomo: MatomoImitation) -> None:
    matomo.inject("hang", times=None, hang_seconds=5)
    provider = make(matomo, timeout=0.3)
    started = time.monotonic()
    outcome = plugins.call_with_deadline(
        provider.erase, person("pjk-r"), deadline_seconds=plugins.deadline_for(provider)
    )
    assert time.monotonic() - started < plugins.deadline_for(provider)
    assert not outcome.ok and not outcome.timed_out and outcome.transient
    assert "did not answer" in outcome.reason or "time allowed" in outcome.reason
    assert not EMAIL.search(outcome.reason)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("malformed_json", "malformed JSON (HTTP 200)"),
        ("html", "HTML page (HTTP 502), not JSON"),
    ],
)
def test_broken_answers_become_readable_errors(
    matomo: MatomoImitation, kind: str, needle: str
) -> None:
    matomo.inject(kind, times=None)
    with pytest.raises(ProviderError) as caught:
        make(matomo, timeout=0.4).erase(person("pjk-r"))
    assert needle in assert_readable(caught.value)
    assert caught.value.transient


def test_a_matomo_error_with_http_200_is_not_retried_and_is_redacted() -> None:
    class Echoing(MatomoImitation):
        def _find(self, form: dict[str, str], request: Request) -> Any:
            from plusjeklas_tui.testing.matomo import ApiError

            raise ApiError("No visits for <b>anna@example.org</b> &amp; friends")

    with Echoing(api_key=TOKEN) as echoing:
        with pytest.raises(ProviderError) as caught:
            make(echoing).verify_erased(person("pjk-r"))
        assert echoing.calls == [FIND]
    text = assert_readable(caught.value)
    assert not caught.value.transient and caught.value.status == 200
    assert "No visits for <e-mail> & friends" in text


def test_a_redirect_is_not_followed() -> None:
    class Moved(MatomoImitation):
        def routes(self) -> list[Route]:
            moved = Response(302, b"", "text/plain", {"Location": "https://elsewhere.example/"})
            return [route("POST", r"/index\.php", lambda request: moved)]

    with (
        Moved(api_key=TOKEN) as moved,
        pytest.raises(ProviderError, match=r"redirect \(HTTP 302\)"),
    ):
        make(moved).verify_erased(person("pjk-r"))


# --- the imitation's state file (the demo) ---------------------------------------------------


def test_state_is_kept_in_a_file_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "matomo.json"
    with MatomoImitation(api_key=TOKEN, state_path=path) as first:
        first.add_visits("pjk-kept", 2)
        first.add_visits("pjk-gone", 1)
        make(first).erase(person("pjk-gone"))
    assert path.stat().st_mode & 0o777 == 0o600
    with MatomoImitation(api_key=TOKEN, state_path=path) as second:
        assert second.visit_count("pjk-kept") == 2
        assert second.visit_count("pjk-gone") == 0
        provider = make(second)
        assert provider.verify_erased(person("pjk-gone")) is True
        provider.close()
