"""The Mailchimp provider: one audience (list), kept in step with newsletter consent.

Who is who: Mailchimp's id for a member is the subscriber hash, the MD5 of the lower-cased
address. A :class:`Subject`'s ``external_id`` is that hash when the app knows it; otherwise it is
computed from ``email``. When both are known and differ (the address changed here after the link
was made), erasure, verification and export look at both.

What each operation does, and the decisions behind it:

* ``health``: ``GET /ping``, then ``GET /lists/{list_id}`` (a wrong audience id is unhealthy).
* ``sync``: the audience's members, 1000 a page, fetched up to 10 pages at a time and yielded in
  order (see :mod:`plusjeklas_plugins.mailchimp.paging`); only id, address, status and
  ``last_changed`` are asked for.
* ``push``: consent granted for ``newsletter`` → the member is upserted as ``subscribed``;
  withdrawn → ``unsubscribed`` (never deleted); contact changed → address and name updated at
  the old hash. More than :data:`HANDFUL` consent changes go through the batch members endpoint
  (500 a call, several calls at once). Consent changes for other purposes are none of
  Mailchimp's business: they get an ok outcome without any call. A change Mailchimp refuses
  (a permanently deleted address, an address it calls fake) is a failed outcome with its reason;
  a failure that a retry may cure (429, 5xx, timeouts) raises, so the app keeps the whole
  batch and sends it again later (every push is idempotent). A change that carries ``tags``
  (``(name, active)`` pairs: which mail the contact may get, ``newsletter`` and ``service``)
  has them set on the member afterwards (``POST .../members/{hash}/tags``), one call per
  member, several at once; a refused tag call fails that change.
* ``erase``: ``actions/delete-permanent``; a 404 *described by Mailchimp* (problem+json) means
  already gone, after checking once that the audience itself exists (a wrong ``list_id`` also
  answers 404). An empty-bodied 404, or any other answer but 204/200, is not a confirmation.
* ``verify_erased``: ``GET`` the member; only a described 404 means gone.
* ``export``: the member record and its activity feed (all pages).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from plusjeklas_plugins.mailchimp import paging
from plusjeklas_plugins.mailchimp.client import MAX_CONNECTIONS, Answer, MailchimpClient, scrub

from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.providers import (
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

NAME = "mailchimp"
PURPOSE = "newsletter"
BATCH_SIZE = 500
"""Members per call of the batch endpoint (Mailchimp's maximum)."""
HANDFUL = 5
"""Up to this many batchable changes go one request each; more go through the batch endpoint."""
ACTIVITY_PAGE = 1000
OPTIONS = frozenset({"list_id", "send_names"})
_DATA_CENTRE = re.compile(r"[a-z]{2,4}\d{1,3}")
_LIST_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_FORGOTTEN = re.compile(r"permanently deleted|forgotten email", re.IGNORECASE)

FORGOTTEN_REASON = (
    "Mailchimp refuses to add this address again: it was permanently deleted there, and only "
    "the person can subscribe again, through a Mailchimp signup form"
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 (hex) of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def api_host(config: ProviderConfig) -> str:
    """The SDK's host: the ``base_url`` override, or the data centre's from the key's suffix."""
    if config.base_url:
        base = check_base_url(config.base_url, NAME)
        return base if base.endswith("/3.0") else f"{base}/3.0"
    key = config.api_key or ""
    _, dash, centre = key.rpartition("-")
    if not dash or not _DATA_CENTRE.fullmatch(centre):
        raise ConfigError(
            f"plugins.{NAME}: the API key (from plugins.{NAME}.api_key_env) must end in its data "
            "centre, such as '-us21', as Mailchimp's keys do; set plugins.mailchimp.base_url "
            "to use another address"
        )
    return f"https://{centre}.api.mailchimp.com/3.0"


class MailchimpProvider(Provider):
    """Mailchimp Marketing API v3, one audience; see the module docstring."""

    info: ClassVar[ProviderInfo] = ProviderInfo(
        name=NAME,
        kind=ProviderKind.NEWSLETTER,
        title="Mailchimp",
        concurrency=MAX_CONNECTIONS,  # Mailchimp answers an 11th connection with 429
        processor=ProcessorDetails(
            company="The Rocket Science Group LLC d/b/a Mailchimp (an Intuit company)",
            country="US",
            data_categories=(
                "e-mail address",
                "first and last name",
                "newsletter subscription status",
                "newsletter activity (opens, clicks, bounces)",
            ),
            agreement=(
                "Mailchimp Data Processing Addendum, part of Mailchimp's Standard Terms of Use "
                "(https://mailchimp.com/legal/data-processing-addendum/)"
            ),
            transfer_safeguard=(
                "EU-US Data Privacy Framework (Intuit Inc. is certified), with the Standard "
                "Contractual Clauses of the Data Processing Addendum as fallback"
            ),
        ),
        purposes=(PURPOSE,),
    )

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        options = dict(config.options)
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(
                f"plugins.{NAME} has no option {unknown[0]!r}; its own options are "
                + ", ".join(sorted(OPTIONS))
            )
        list_id = options.get("list_id")
        if not isinstance(list_id, str) or not list_id.strip():
            raise ConfigError(
                f"plugins.{NAME}.list_id is required when the plugin is enabled: the audience "
                "id (Mailchimp: Audience → Settings → Audience name and defaults)"
            )
        if not _LIST_ID.fullmatch(list_id):
            raise ConfigError(
                f"plugins.{NAME}.list_id must be letters and digits only, like '5c1a9e0d42'"
            )
        send_names = options.get("send_names", True)
        if not isinstance(send_names, bool):
            raise ConfigError(f"plugins.{NAME}.send_names must be true or false")
        if not config.api_key:
            raise ConfigError(
                f"plugins.{NAME} needs an API key: set plugins.{NAME}.api_key_env to the name "
                "of the environment variable that holds it"
            )
        self.list_id = list_id
        self.send_names = send_names
        self.client = MailchimpClient(
            api_key=config.api_key,
            host=api_host(config),
            timeout_seconds=config.timeout_seconds,
        )
        self._audience_confirmed = False

    # --- health ----------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            ping = self.client.call("ping", self.client.ping.get)
            if not isinstance(ping.data, dict) or "health_status" not in ping.data:
                return Health(False, "Mailchimp's ping answered without a health status")
            if not self._audience_exists():
                return Health(False, _no_audience())
        except ProviderError as exc:
            return Health(False, str(exc))
        return Health(True)

    def _audience_exists(self) -> bool:
        answer = self.client.call(
            "audience", self.client.lists.get_list, self.list_id, fields=["id"], allow=(404,)
        )
        if answer.status == 404:
            _require_described(answer, "audience")
            return False
        self._audience_confirmed = True
        return True

    def confirm_audience(self) -> None:
        """Once per provider: a 404 for a member means gone only if the audience exists."""
        if not self._audience_confirmed and not self._audience_exists():
            raise ProviderError(_no_audience())

    # --- sync ------------------------------------------------------------------------------------

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        return paging.member_pages(self.client, self.list_id, checkpoint)

    # --- push ------------------------------------------------------------------------------------

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        return _Push(self, changes).run()

    # --- erasure ---------------------------------------------------------------------------------

    def erase(self, subject: Subject) -> ErasureOutcome:
        erased = 0
        for key in _hashes(subject):
            answer = self.client.call(
                "permanent delete",
                self.client.lists.delete_list_member_permanent,
                self.list_id,
                key,
                allow=(404,),
            )
            if answer.status == 404:
                _require_described(answer, "permanent delete")
                self.confirm_audience()
                continue
            erased += 1
        if erased:
            return ErasureOutcome(
                ErasureStatus.ERASED, detail="member permanently deleted from the audience"
            )
        return ErasureOutcome(
            ErasureStatus.ALREADY_GONE, detail="not a member of the audience (already deleted)"
        )

    def verify_erased(self, subject: Subject) -> bool | None:
        for key in _hashes(subject):
            if self._get_member(key, "verify", fields=["id", "status"]) is not None:
                return False
        return True

    def export(self, subject: Subject) -> dict[str, Any]:
        found = []
        for key in _hashes(subject):
            member = self._get_member(key, "export member", exclude_fields=["_links"])
            if member is None:
                continue
            found.append({"member": member, "activity": self._activity(key)})
        return {"provider": NAME, "list_id": self.list_id, "members": found}

    def close(self) -> None:
        self.client.close()

    def _get_member(self, key: str, what: str, **params: Any) -> dict[str, Any] | None:
        answer = self.client.call(
            what, self.client.lists.get_list_member, self.list_id, key, allow=(404,), **params
        )
        if answer.status == 404:
            _require_described(answer, what)
            self.confirm_audience()
            return None
        if not isinstance(answer.data, dict):
            raise ProviderError(f"Mailchimp {what}: the answer is not a member record")
        return answer.data

    def _activity(self, key: str) -> list[Any]:
        events: list[Any] = []
        while True:
            answer = self.client.call(
                "export activity",
                self.client.lists.get_list_member_activity_feed,
                self.list_id,
                key,
                count=ACTIVITY_PAGE,
                offset=len(events),
                exclude_fields=["_links"],
            )
            data = answer.data if isinstance(answer.data, dict) else {}
            page = data.get("activity")
            if not isinstance(page, list):
                raise ProviderError("Mailchimp export activity: the answer has no activity list")
            events.extend(page)
            total = data.get("total_items")
            if not page or not isinstance(total, int) or len(events) >= total:
                return events


# --- push ----------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one change becomes: the member it is about and the call that carries it."""

    index: int
    change: Change
    key: str
    """The subscriber hash the change addresses (the old one, for a new address)."""
    email: str | None


class _Push:
    """One ``push`` call: plan the changes, send them (batched when many), map the outcomes."""

    def __init__(self, provider: MailchimpProvider, changes: Sequence[Change]) -> None:
        self.provider = provider
        self.client = provider.client
        self.list_id = provider.list_id
        self.changes = list(changes)
        self.outcomes: list[ChangeOutcome | None] = [None] * len(self.changes)

    def run(self) -> list[ChangeOutcome]:
        plans = self._plan()
        last: dict[str, _Plan] = {}
        for plan in plans:  # one call per member: its last change decides the end state
            last[plan.key] = plan
        finals = list(last.values())
        batchable = [p for p in finals if self._batchable(p)]
        single = [p for p in finals if not self._batchable(p)]
        if len(batchable) <= HANDFUL:
            single, batchable = single + batchable, []
        chunks = [batchable[i : i + BATCH_SIZE] for i in range(0, len(batchable), BATCH_SIZE)]
        jobs = len(single) + len(chunks)
        if jobs:
            with ThreadPoolExecutor(max_workers=min(MAX_CONNECTIONS, jobs)) as pool:
                futures = [pool.submit(self._batch, chunk) for chunk in chunks]
                futures += [pool.submit(self._single, plan) for plan in single]
                for future in futures:
                    future.result()  # a transient failure raises: the app sends it all again
        self._tag_all(finals)
        for plan in plans:
            if self.outcomes[plan.index] is None:
                final = last[plan.key]
                outcome = self.outcomes[final.index]
                assert outcome is not None
                self.outcomes[plan.index] = ChangeOutcome(
                    plan.change, outcome.ok, outcome.external_id, outcome.reason
                )
        return [outcome for outcome in self.outcomes if outcome is not None]

    def _tag_all(self, finals: list[_Plan]) -> None:
        """Set the tags of every change that carries them and reached its member."""
        todo = []
        for plan in finals:
            outcome = self.outcomes[plan.index]
            if _tags(plan.change) and outcome is not None and outcome.ok and outcome.external_id:
                todo.append(plan)
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(MAX_CONNECTIONS, len(todo))) as pool:
            for future in [pool.submit(self._tag, plan) for plan in todo]:
                future.result()

    def _tag(self, plan: _Plan) -> None:
        outcome = self.outcomes[plan.index]
        assert outcome is not None and outcome.external_id is not None
        body = {
            "tags": [
                {"name": name, "status": "active" if active else "inactive"}
                for name, active in _tags(plan.change)
            ]
        }
        answer = self.client.call(
            "member tags",
            self.client.lists.update_list_member_tags,
            self.list_id,
            outcome.external_id,
            body,
            allow=(400, 404),
            hide=_private(plan),
        )
        if answer.status in (400, 404):
            text = answer.problem.text(answer.status) if answer.problem else f"HTTP {answer.status}"
            self._done(
                plan, False, outcome.external_id, f"Mailchimp refused the member's tags: {text}"
            )

    def _done(self, plan: _Plan, ok: bool, external_id: str | None, reason: str | None) -> None:
        self.outcomes[plan.index] = ChangeOutcome(
            plan.change, ok, external_id, None if reason is None else scrub(reason, _private(plan))
        )

    def _plan(self) -> list[_Plan]:
        plans = []
        for index, change in enumerate(self.changes):
            subject = change.subject
            email = change.email or subject.email
            if change.kind != ChangeKind.CONTACT_CHANGED and change.purpose != PURPOSE:
                self.outcomes[index] = ChangeOutcome(change, True, subject.external_id)
                continue
            if change.kind == ChangeKind.CONTACT_CHANGED:
                old = change.previous_email
                key = subject.external_id or (subscriber_hash(old) if old else None)
            else:
                key = subject.external_id
            if key is None and email:
                key = subscriber_hash(email)
            if key is None or (change.kind != ChangeKind.CONSENT_WITHDRAWN and not email):
                self.outcomes[index] = ChangeOutcome(
                    change, False, None, "no e-mail address to find or add the member by"
                )
                continue
            plans.append(_Plan(index, change, key.lower(), email))
        return plans

    def _batchable(self, plan: _Plan) -> bool:
        """The batch endpoint finds members by address only: it suits consent changes whose
        address is the member's. A withdrawal goes there only for a known member, since the
        endpoint would otherwise create one just to mark it unsubscribed."""
        kind = plan.change.kind
        if kind == ChangeKind.CONTACT_CHANGED or plan.email is None:
            return False
        if plan.key != subscriber_hash(plan.email):
            return False
        return kind == ChangeKind.CONSENT_GRANTED or plan.change.subject.external_id is not None

    def _merge_fields(self, change: Change) -> dict[str, str]:
        if not self.provider.send_names or not change.name:
            return {}
        first, _, last = change.name.strip().partition(" ")
        return {"FNAME": first, "LNAME": last.strip()}

    # --- one request per change

    def _single(self, plan: _Plan) -> None:
        change = plan.change
        lists = self.client.lists
        if change.kind == ChangeKind.CONSENT_GRANTED:
            body: dict[str, Any] = {
                "email_address": plan.email,
                "status_if_new": "subscribed",
                "status": "subscribed",
            }
            body.update(_merge(self._merge_fields(change)))
            answer = self.client.call(
                "subscribe",
                lists.set_list_member,
                self.list_id,
                plan.key,
                body,
                allow=(400,),
                hide=_private(plan),
            )
        elif change.kind == ChangeKind.CONSENT_WITHDRAWN:
            answer = self.client.call(
                "unsubscribe",
                lists.update_list_member,
                self.list_id,
                plan.key,
                {"status": "unsubscribed"},
                allow=(400, 404),
                hide=_private(plan),
            )
        else:
            body = {"email_address": plan.email}
            body.update(_merge(self._merge_fields(change)))
            if plan.key == subscriber_hash(plan.email or "") and "merge_fields" not in body:
                self._done(plan, True, plan.key, None)  # nothing Mailchimp holds has changed
                return
            answer = self.client.call(
                "update contact",
                lists.update_list_member,
                self.list_id,
                plan.key,
                body,
                allow=(400, 404),
                hide=_private(plan),
            )
        self._record(plan, answer)

    def _record(self, plan: _Plan, answer: Answer) -> None:
        if answer.status == 404:
            if answer.problem is None or not answer.problem.described:
                raise ProviderError(
                    "Mailchimp answered 404 without an error description; the change is not "
                    "confirmed",
                    status=404,
                    transient=True,
                )
            self.provider.confirm_audience()
            self._done(plan, True, None, None)  # not a member: nothing to withdraw or update
            return
        if answer.status == 400:
            problem = answer.problem
            text = problem.text(400) if problem else "HTTP 400"
            if problem and _FORGOTTEN.search(f"{problem.title} {problem.detail}"):
                self._done(plan, False, None, FORGOTTEN_REASON)
            else:
                self._done(plan, False, None, f"Mailchimp refused the change: {text}")
            return
        member_id = answer.data.get("id") if isinstance(answer.data, dict) else None
        if not isinstance(member_id, str):
            raise ProviderError("Mailchimp answered without the member's id", transient=True)
        self._done(plan, True, member_id, None)

    # --- the batch endpoint

    def _batch(self, chunk: list[_Plan]) -> None:
        members = []
        for plan in chunk:
            granted = plan.change.kind == ChangeKind.CONSENT_GRANTED
            member: dict[str, Any] = {
                "email_address": plan.email,
                "status": "subscribed" if granted else "unsubscribed",
            }
            if granted:
                member.update(_merge(self._merge_fields(plan.change)))
            members.append(member)
        answer = self.client.call(
            "batch subscribe",
            self.client.lists.batch_list_members,
            self.list_id,
            {"members": members, "update_existing": True},
            hide=[address for plan in chunk for address in _private(plan)],
        )
        data = answer.data if isinstance(answer.data, dict) else {}
        done: dict[str, str] = {}
        for name in ("new_members", "updated_members"):
            for member in data.get(name) or ():
                if isinstance(member, dict) and isinstance(member.get("email_address"), str):
                    done[member["email_address"].lower()] = str(member.get("id") or "")
        refused: dict[str, str] = {}
        for error in data.get("errors") or ():
            if isinstance(error, dict) and isinstance(error.get("email_address"), str):
                refused[error["email_address"].lower()] = str(error.get("error") or "")
        for plan in chunk:
            address = (plan.email or "").lower()
            if address in done:
                self._done(plan, True, done[address] or plan.key, None)
            elif address in refused:
                message = refused[address]
                withdrawn = plan.change.kind == ChangeKind.CONSENT_WITHDRAWN
                if _FORGOTTEN.search(message) and withdrawn:
                    self._done(plan, True, None, None)  # erased there: nothing left to withdraw
                elif _FORGOTTEN.search(message):
                    self._done(plan, False, None, FORGOTTEN_REASON)
                else:
                    self._done(plan, False, None, f"Mailchimp refused the change: {message}")
            else:
                self._done(plan, False, None, "Mailchimp's batch answer did not mention it")


def _private(plan: _Plan) -> list[str]:
    return [v for v in (plan.email, plan.change.previous_email) if v]


def _tags(change: Change) -> list[tuple[str, bool]]:
    """The ``(name, active)`` pairs a change carries (an app's ``TaggedChange``), if any."""
    pairs = getattr(change, "tags", None) or ()
    return [
        (name, active)
        for name, active in pairs
        if isinstance(name, str) and name and isinstance(active, bool)
    ]


def _merge(fields: dict[str, str]) -> dict[str, Any]:
    return {"merge_fields": fields} if fields else {}


def _hashes(subject: Subject) -> list[str]:
    """Every subscriber hash the subject may be known by at Mailchimp (stored id first)."""
    keys = []
    if subject.external_id:
        keys.append(subject.external_id.lower())
    if subject.email:
        computed = subscriber_hash(subject.email)
        if computed not in keys:
            keys.append(computed)
    if not keys:
        raise ProviderError(
            f"{subject.subject_type} #{subject.local_id} has neither a Mailchimp subscriber id "
            "nor an e-mail address to find the member by"
        )
    return keys


def _require_described(answer: Answer, what: str) -> None:
    """Only Mailchimp's own 404 (problem+json) says "not there"; an empty one says nothing."""
    if answer.problem is None or not answer.problem.described:
        raise ProviderError(
            f"Mailchimp {what}: HTTP 404 without an error description; not treated as "
            "'not found' (a proxy or a wrong address may have answered)",
            status=404,
            transient=True,
        )


def _no_audience() -> str:
    return (
        f"the audience in plugins.{NAME}.list_id was not found at Mailchimp "
        "(check the audience id and that the API key belongs to its account)"
    )
