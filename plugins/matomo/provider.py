"""The Matomo provider: website analytics, kept in step with analytics consent.

Who is who: a person is known at Matomo only by the opaque user id the app issued
(:mod:`plusjeklas_plugins.matomo.ids`), kept in the app's provider link and handed back as
``Subject.external_id``. The website sets that id for a signed-in person (Matomo's ``setUserId``)
only while analytics consent stands; Matomo stores it with each of their visits.

What each operation does, and the decisions behind it:

* ``health``: ``API.getMatomoVersion`` (reachable, token accepted), ``SitesManager.getSiteFromId``
  (the configured site exists and the token sees it) and ``SitesManager.getSitesIdWithAdminAccess``
  (erasure through the GDPR tools needs *admin* access to every configured site; a view-only
  token could sync but not erase, so it is reported unhealthy).
* ``push``: consent for ``analytics`` granted → the person gets a user id when they have none
  (the outcome's ``external_id``); no Matomo call is needed — the website sets the id, Matomo
  learns it from the next tracked visit. Retrying such a push issues a fresh id for a person who
  still has none, which is harmless: nothing at Matomo used the first one. Withdrawn → every
  visit stored under that user id is deleted, exactly as ``erase`` does, so Matomo stops holding
  the cross-site browsing data gathered with consent; the link (and id) is kept, so a later
  grant reuses it. Contact changes and other purposes are none of Matomo's business: ok, no call.
  A refusal by Matomo is a failed outcome with its reason; a failure a retry may cure (429, 5xx,
  timeouts) raises, so the app sends the whole batch again (every push is idempotent).
* ``sync``: Matomo has no cheap per-person pull; what the app can learn is which user ids Matomo
  has visits for, including ids it does not know. ``Live.getLastVisitsDetails`` pages through
  the site's visits that carry a user id (segment ``userId!=``), oldest first, without actions,
  asking only for the few columns needed; each page yields one :class:`AnalyticsSubject` per user
  id in it, with Matomo's visit counter and the time of the latest visit seen. A user id seen on
  a later page comes again with newer values. The checkpoint is a keyset cursor
  (:mod:`plusjeklas_plugins.matomo.cursor`), so a stopped sync resumes after the last page the
  app applied and a finished one makes the next sync incremental. User ids that look like
  e-mail addresses (a website misusing the user id) are left out and only counted in the log.
* ``erase``: ``PrivacyManager.findDataSubjects`` with ``userId==<id>`` on the configured sites
  (Matomo returns at most 401 visits a call), then ``PrivacyManager.deleteDataSubjects`` with
  those visits, repeated until none are left. None found at the first look: already gone.
  Matomo invalidates the affected reports; they are rebuilt without the visits at its next
  archiving run.
* ``verify_erased``: ``findDataSubjects`` finds nothing.
* ``export``: the visits found (listed page by page through ``Live.getLastVisitsDetails`` when
  ``findDataSubjects`` hit its cap), and ``PrivacyManager.exportDataSubjects`` for them, 400
  visits a call, tables merged.

A subject without a user id never had one issued: Matomo holds nothing under one, so erase is
already gone, verification true and the export empty, without a call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from plusjeklas_plugins.matomo import ids
from plusjeklas_plugins.matomo.client import MatomoClient
from plusjeklas_plugins.matomo.cursor import Cursor

from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.providers import (
    AnalyticsSubject,
    Change,
    ChangeKind,
    ChangeOutcome,
    ErasureOutcome,
    ErasureStatus,
    Health,
    ProcessorDetails,
    Provider,
    ProviderConfig,
    ProviderError,
    ProviderInfo,
    ProviderKind,
    Subject,
    SyncPage,
    check_base_url,
)

log = logging.getLogger(__name__)

NAME = "matomo"
PURPOSE = "analytics"
OPTIONS = frozenset(
    {
        "site_id",
        "also_site_ids",
        "page_size",
        "company",
        "country",
        "agreement",
        "transfer_safeguard",
    }
)
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
EXPORT_CHUNK = 400
"""Visits per ``exportDataSubjects`` call."""
FIND_CAP = 401
"""``findDataSubjects`` returns at most this many visits (its ``filter_limit`` in Matomo 3-5)."""
MAX_ROUNDS = 1000
"""A bound on find-and-delete rounds for one person (400,000 visits): no endless loop."""
CALL_BUDGET_FACTOR = 2.7
"""A provider call made of several requests stops after this many times ``timeout_seconds``,
before the app's deadline (three times) abandons it, so it can say how far it got."""
ALL_TIME = "1998-01-01,today"
"""The date range ``findDataSubjects`` itself uses: every visit Matomo holds."""
SYNC_COLUMNS = "idSite,idVisit,userId,visitCount,lastActionTimestamp"
LIST_COLUMNS = "idSite,idVisit,lastActionDateTime"

SELF_HOSTED = ProcessorDetails(
    company="Jongleren.biz (self-hosted Matomo)",
    country="NL",
    data_categories=(
        "website activity (pages visited, times, device and browser)",
        "visitor id and the Matomo user id the app issued",
        "cross-site browsing data (visits under the same user id on the company's other sites)",
        "IP address (as anonymised by Matomo's privacy settings)",
    ),
    agreement="self-hosted; no processor agreement needed",
)


@dataclass(frozen=True)
class MatomoOptions:
    """The plugin's own keys from ``[plugins.matomo]``, checked."""

    site_id: int
    also_site_ids: tuple[int, ...] = ()
    page_size: int = DEFAULT_PAGE_SIZE
    processor: ProcessorDetails = SELF_HOSTED

    @property
    def site_ids(self) -> tuple[int, ...]:
        return (self.site_id, *(s for s in self.also_site_ids if s != self.site_id))

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> MatomoOptions:
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(
                f"plugins.{NAME} has no option {unknown[0]!r}; its own options are "
                + ", ".join(sorted(OPTIONS))
            )
        if "site_id" not in options:
            raise ConfigError(
                f"plugins.{NAME}.site_id is required: the id of the website in Matomo "
                "(Administration > Websites > Manage)"
            )
        site_id = _positive_int(options["site_id"], "site_id")
        also = options.get("also_site_ids", [])
        if not isinstance(also, list):
            raise ConfigError(f"plugins.{NAME}.also_site_ids must be a list of site ids")
        also_ids = tuple(_positive_int(value, "also_site_ids") for value in also)
        page_size = _positive_int(options.get("page_size", DEFAULT_PAGE_SIZE), "page_size")
        if page_size > MAX_PAGE_SIZE:
            raise ConfigError(f"plugins.{NAME}.page_size must be at most {MAX_PAGE_SIZE}")
        return cls(site_id, also_ids, page_size, _processor(options))


def _positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"plugins.{NAME}.{key} must be a whole number of 1 or more")
    return value


def _text_option(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"plugins.{NAME}.{key} must be non-empty text")
    return value.strip()


def _processor(options: Mapping[str, Any]) -> ProcessorDetails:
    """The processor details: self-hosted by default; ``company`` etc. for a hosted Matomo."""
    company = _text_option(options, "company")
    country = _text_option(options, "country")
    agreement = _text_option(options, "agreement")
    safeguard = _text_option(options, "transfer_safeguard")
    if country is not None and not (len(country) == 2 and country.isalpha()):
        raise ConfigError(f"plugins.{NAME}.country must be a two-letter ISO 3166 code such as 'NL'")
    if company is not None and agreement is None:
        raise ConfigError(
            f"plugins.{NAME}.agreement is required when plugins.{NAME}.company is set: a Matomo "
            "hosted by another company processes data for you under a processing agreement "
            "(name it and where it is kept)"
        )
    return dataclasses.replace(
        SELF_HOSTED,
        company=company or SELF_HOSTED.company,
        country=(country or SELF_HOSTED.country).upper(),
        agreement=agreement or SELF_HOSTED.agreement,
        transfer_safeguard=safeguard,
    )


def _int_field(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if isinstance(value, bool):
        raise ProviderError(f"Matomo's visit has no usable {key}")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProviderError(f"Matomo's visit has no usable {key}") from None


def _rows(data: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ProviderError(f"Matomo's answer to {what} is not a list of visits")
    return data


def _visit_refs(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """(idsite, idvisit) of each visit, in order, without repeats."""
    refs: dict[tuple[int, int], None] = {}
    for row in rows:
        refs[(_int_field(row, "idSite"), _int_field(row, "idVisit"))] = None
    return list(refs)


def visits_params(refs: Sequence[tuple[int, int]]) -> list[tuple[str, int]]:
    """``visits[i][idsite]`` / ``visits[i][idvisit]``: the PHP array form Matomo reads."""
    params: list[tuple[str, int]] = []
    for index, (site, visit) in enumerate(refs):
        params.append((f"visits[{index}][idsite]", site))
        params.append((f"visits[{index}][idvisit]", visit))
    return params


def _merge_export(into: dict[str, Any], part: Any) -> None:
    if isinstance(part, list) and not part:
        return  # Matomo answers [] for no rows at all
    if not isinstance(part, dict):
        raise ProviderError("Matomo's export is not a set of tables")
    for table, rows in part.items():
        if isinstance(rows, list):
            into.setdefault(str(table), []).extend(rows)
        else:
            into[str(table)] = rows


class MatomoProvider(Provider):
    """Matomo's Reporting API on one installation; see the module docstring."""

    info: ClassVar[ProviderInfo] = ProviderInfo(
        name=NAME,
        kind=ProviderKind.ANALYTICS,
        title="Matomo",
        processor=SELF_HOSTED,
        purposes=(PURPOSE,),
    )

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.options = MatomoOptions.parse(config.options)
        if self.options.processor != SELF_HOSTED:
            # Configured processor details (a hosted Matomo) for this instance's register entry.
            self.info = dataclasses.replace(type(self).info, processor=self.options.processor)  # type: ignore[misc]
        if not config.base_url:
            raise ConfigError(
                f"plugins.{NAME}.base_url is required: the https address of the Matomo "
                "installation, such as https://analytics.example.nl"
            )
        if not config.api_key:
            raise ConfigError(
                f"plugins.{NAME}.api_key_env must name the environment variable holding the "
                "token_auth of a Matomo user with admin access to the site"
            )
        from plusjeklas_plugins.matomo import __version__

        self.client = MatomoClient(
            base_url=check_base_url(config.base_url, NAME),
            token=config.api_key,
            timeout_seconds=config.timeout_seconds,
            user_agent=f"plusjeklas-matomo/{__version__}",
        )

    def close(self) -> None:
        self.client.close()

    def _deadline(self) -> float:
        return time.monotonic() + CALL_BUDGET_FACTOR * self.config.timeout_seconds

    @property
    def _id_sites(self) -> str:
        return ",".join(str(site) for site in self.options.site_ids)

    # --- health --------------------------------------------------------------------------------

    def health(self) -> Health:
        deadline = self._deadline()
        try:
            version = self.client.call("API.getMatomoVersion", deadline=deadline)
            if not isinstance(version, dict) or not isinstance(version.get("value"), str):
                return Health(False, "Matomo's version answer has an unexpected shape")
            for site_id in self.options.site_ids:
                site = self.client.call(
                    "SitesManager.getSiteFromId", {"idSite": site_id}, deadline=deadline
                )
                if not isinstance(site, dict) or str(site.get("idsite")) != str(site_id):
                    return Health(False, f"Matomo did not describe site {site_id}")
            admin = self.client.call("SitesManager.getSitesIdWithAdminAccess", deadline=deadline)
            if not isinstance(admin, list):
                return Health(False, "Matomo's list of admin sites has an unexpected shape")
            admin_ids = {int(site) for site in admin if str(site).isdigit()}
            missing = [site for site in self.options.site_ids if site not in admin_ids]
            if missing:
                return Health(
                    False,
                    f"the Matomo token has no admin access to site {missing[0]}; deleting a "
                    "person's visits through Matomo's GDPR tools needs it",
                )
        except ProviderError as exc:
            return Health(False, str(exc))
        return Health(True, f"Matomo {version['value']}")

    # --- push ----------------------------------------------------------------------------------

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        # Ids issued earlier in this batch, so a grant and then a withdrawal agree on the id.
        issued: dict[tuple[str, int], str] = {}
        deadline = self._deadline()
        outcomes: list[ChangeOutcome] = []
        for change in changes:
            outcomes.append(self._push_one(change, issued, deadline))
        return outcomes

    def _push_one(
        self, change: Change, issued: dict[tuple[str, int], str], deadline: float
    ) -> ChangeOutcome:
        if change.kind == ChangeKind.CONTACT_CHANGED or change.purpose != PURPOSE:
            return ChangeOutcome(change, ok=True)
        subject = change.subject
        key = (subject.subject_type, subject.local_id)
        user_id = subject.external_id or issued.get(key)
        if change.kind == ChangeKind.CONSENT_GRANTED:
            if user_id is None:
                user_id = issued[key] = ids.new_user_id()
            return ChangeOutcome(change, ok=True, external_id=user_id)
        if user_id is None:
            return ChangeOutcome(change, ok=True)  # no id ever issued: nothing tracked under one
        try:
            self._delete_visits(user_id, deadline)
        except ProviderError as exc:
            if exc.transient:
                raise
            return ChangeOutcome(change, ok=False, external_id=user_id, reason=str(exc))
        return ChangeOutcome(change, ok=True, external_id=user_id)

    # --- sync ----------------------------------------------------------------------------------

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        cursor = Cursor.parse(checkpoint)
        if checkpoint and cursor == Cursor():
            log.warning("Matomo sync checkpoint not understood; starting a full sync")
        size = self.options.page_size
        while True:
            rows = _rows(
                self.client.call(
                    "Live.getLastVisitsDetails",
                    {
                        "idSite": self.options.site_id,
                        "period": "range",
                        "date": ALL_TIME,
                        "segment": ids.HAS_USER_ID,
                        "filter_limit": size,
                        "filter_sort_order": "asc",
                        "doNotFetchActions": 1,
                        "showColumns": SYNC_COLUMNS,
                        **cursor.params(),
                    },
                    deadline=self._deadline(),
                ),
                "Live.getLastVisitsDetails",
            )
            times = [_int_field(row, "lastActionTimestamp") for row in rows]
            if times != sorted(times):
                raise ProviderError("Matomo's visits did not come oldest first; sync stopped")
            cursor = cursor.advance(times)
            yield SyncPage(items=self._subjects(rows), checkpoint=cursor.text())
            if len(rows) < size:
                return

    def _subjects(self, rows: Sequence[Mapping[str, Any]]) -> list[AnalyticsSubject]:
        latest: dict[str, AnalyticsSubject] = {}
        email_like = 0
        for row in rows:
            user_id = row.get("userId")
            if not isinstance(user_id, str) or not user_id:
                continue
            if ids.looks_like_email(user_id):
                email_like += 1
                continue
            visits = _int_field(row, "visitCount") if row.get("visitCount") is not None else 0
            moment = dt.datetime.fromtimestamp(_int_field(row, "lastActionTimestamp"), dt.UTC)
            seen = latest.get(user_id)  # rows come oldest first: this one is the newer
            latest[user_id] = AnalyticsSubject(
                user_id, max(visits, seen.visits if seen else 0), moment
            )
        if email_like:
            log.warning(
                "Matomo: %d visits carry a user id that looks like an e-mail address; they were "
                "left out. Matomo user ids must be opaque: fix the website's setUserId call",
                email_like,
            )
        return list(latest.values())

    # --- finding and deleting ------------------------------------------------------------------

    def _find(self, user_id: str, deadline: float) -> list[dict[str, Any]]:
        return _rows(
            self.client.call(
                "PrivacyManager.findDataSubjects",
                {"idSite": self._id_sites, "segment": ids.user_id_segment(user_id)},
                deadline=deadline,
            ),
            "PrivacyManager.findDataSubjects",
        )

    def _delete_visits(self, user_id: str, deadline: float) -> int:
        """Delete every visit under ``user_id``; the number of visits Matomo deleted."""
        ids.check_user_id(user_id)
        deleted = 0
        for _ in range(MAX_ROUNDS):
            try:
                refs = _visit_refs(self._find(user_id, deadline))
                if not refs:
                    return deleted
                answer = self.client.call(
                    "PrivacyManager.deleteDataSubjects", visits_params(refs), deadline=deadline
                )
            except ProviderError as exc:
                if not deleted:
                    raise
                raise ProviderError(
                    f"{exc} ({deleted} visits were deleted before that; the rest will be "
                    "deleted when this is tried again)",
                    status=exc.status,
                    transient=exc.transient,
                    retry_after=exc.retry_after,
                ) from exc
            count = answer.get("log_visit") if isinstance(answer, dict) else None
            if not isinstance(count, int) or isinstance(count, bool):
                raise ProviderError("Matomo's answer to deleteDataSubjects has no log_visit count")
            if count == 0:
                raise ProviderError(
                    f"Matomo found {len(refs)} visits for this user id but deleted none of them; "
                    "check the token's admin access"
                )
            deleted += count
        raise ProviderError(
            f"Matomo still finds visits for this user id after deleting {deleted}; "
            "stopped to avoid an endless loop",
            transient=True,
        )

    # --- erase, verify, export -----------------------------------------------------------------

    def erase(self, subject: Subject) -> ErasureOutcome:
        if not subject.external_id:
            return ErasureOutcome(
                ErasureStatus.ALREADY_GONE,
                detail="no Matomo user id was issued for this person, so none is stored there",
            )
        deleted = self._delete_visits(subject.external_id, self._deadline())
        if deleted == 0:
            return ErasureOutcome(
                ErasureStatus.ALREADY_GONE, detail="Matomo holds no visits under this user id"
            )
        return ErasureOutcome(
            ErasureStatus.ERASED,
            detail=(
                f"{deleted} visits deleted at Matomo (sites {self._id_sites}); its reports are "
                "rebuilt without them at the next archiving run"
            ),
        )

    def verify_erased(self, subject: Subject) -> bool | None:
        if not subject.external_id:
            return True
        ids.check_user_id(subject.external_id)
        return not self._find(subject.external_id, self._deadline())

    def export(self, subject: Subject) -> dict[str, Any]:
        user_id = subject.external_id
        result: dict[str, Any] = {
            "provider": NAME,
            "user_id": user_id,
            "site_ids": list(self.options.site_ids),
            "visits": [],
            "data": {},
        }
        if not user_id:
            return result
        ids.check_user_id(user_id)
        deadline = self._deadline()
        rows = self._find(user_id, deadline)
        if len(rows) >= FIND_CAP - 1:
            rows = self._list_all_visits(user_id, deadline)
        refs = _visit_refs(rows)
        data: dict[str, Any] = {}
        for start in range(0, len(refs), EXPORT_CHUNK):
            chunk = refs[start : start + EXPORT_CHUNK]
            _merge_export(
                data,
                self.client.call(
                    "PrivacyManager.exportDataSubjects", visits_params(chunk), deadline=deadline
                ),
            )
        result["visits"] = rows
        result["data"] = data
        return result

    def _list_all_visits(self, user_id: str, deadline: float) -> list[dict[str, Any]]:
        """Every visit of ``user_id``, page by page, when ``findDataSubjects`` hit its cap."""
        found: list[dict[str, Any]] = []
        size = self.options.page_size
        for site_id in self.options.site_ids:
            offset = 0
            while True:
                rows = _rows(
                    self.client.call(
                        "Live.getLastVisitsDetails",
                        {
                            "idSite": site_id,
                            "period": "range",
                            "date": ALL_TIME,
                            "segment": ids.user_id_segment(user_id),
                            "filter_limit": size,
                            "filter_offset": offset,
                            "filter_sort_order": "asc",
                            "doNotFetchActions": 1,
                            "showColumns": LIST_COLUMNS,
                        },
                        deadline=deadline,
                    ),
                    "Live.getLastVisitsDetails",
                )
                found.extend(rows)
                offset += len(rows)
                if len(rows) < size:
                    break
        return found
