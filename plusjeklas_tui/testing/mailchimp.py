"""An imitation of the Mailchimp Marketing API (v3.0) for tests, the demo and benchmarks.

What it reproduces, because the plugin (through the real ``mailchimp-marketing`` SDK) depends on it:

* paths under ``/3.0`` as at ``https://<dc>.api.mailchimp.com/3.0``; HTTP Basic authentication
  with any user name and the API key as password (else 401 "API Key Invalid"/"API Key Missing");
* errors as ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and
  ``instance`` — a content type the SDK does not recognise as JSON, so it hands the body over as a
  raw string;
* at most 10 simultaneous connections; the 11th is answered 429 "Too Many Requests";
* members keyed by subscriber hash (MD5 of the lower-cased address; an address or the hash is
  accepted in the path), with ``id``, ``email_address``, ``status``, ``merge_fields``,
  ``last_changed`` and the other usual fields; the ``fields`` parameter (``members.id`` style)
  trims answers as the real API does;
* member lists paged with ``count`` (at most 1000) and ``offset``, filtered by
  ``since_last_changed`` (strictly after) and ``status``, with ``total_items``;
* the batch endpoint ``POST /lists/{list_id}`` (up to 500 members, ``update_existing``), which
  answers 200 with ``new_members``, ``updated_members`` and per-address ``errors``;
* ``actions/delete-permanent`` (204) makes the address *forgotten*: it reads as 404 from then on
  and re-adding it is refused with 400 "Forgotten Email Not Subscribed" (in a batch: an error
  entry), as Mailchimp does;
* a member's activity at ``/activity-feed`` (and the older ``/activity``);
* member tags: ``POST .../members/{hash}/tags`` with ``{"tags": [{"name", "status":
  "active"|"inactive"}]}`` answers 204 (404 for no such member, 400 for a malformed body); a
  member shows ``tags`` (``id``, ``name``) and ``tags_count``;
* ``GET /ping`` answers ``{"health_status": "Everything's Chimpy!"}``.

Seeding (for tests, the demo and benchmarks; all thread-safe, none of them counts as a request):

* :meth:`MailchimpImitation.add_member` — one member, any status and merge fields, optional
  ``last_changed``; returns its subscriber hash.
* :meth:`MailchimpImitation.add_members` / :meth:`MailchimpImitation.seed_members` — many at once
  (50,000 in well under a second), from addresses or generated ``member<i>@<domain>`` ones.
* :meth:`MailchimpImitation.set_status` — what a person does at Mailchimp (unsubscribe), bumping
  ``last_changed``.
* :meth:`MailchimpImitation.add_activity` — an open, click, bounce ... for a member.
* :meth:`MailchimpImitation.member_tags` — a member's active tag names, sorted.
* :meth:`MailchimpImitation.member`, :meth:`MailchimpImitation.is_forgotten`,
  :meth:`MailchimpImitation.members_count` — read back what "Mailchimp" holds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from plusjeklas_tui.testing.imitation import Imitation, Request, Response, Route, route

DEFAULT_LIST_ID = "5c1a9e0d42"
DEFAULT_LIST_NAME = "Plusjeklas nieuwsbrief"
PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
MAX_COUNT = 1000
MAX_BATCH = 500
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
FORGOTTEN_TITLE = "Forgotten Email Not Subscribed"
FORGOTTEN_DETAIL = (
    "{email} was permanently deleted and cannot be re-imported. "
    "The contact must re-subscribe to get back on the list."
)
INVALID_DETAIL = (
    "The resource submitted could not be validated. "
    "For field-specific details, see the 'errors' array."
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_LIST = r"/3\.0/lists/(?P<list_id>[^/]+)"
_MEMBER = _LIST + r"/members/(?P<member>[^/]+)"


def subscriber_hash(email: str) -> str:
    """Mailchimp's id for a member: the MD5 of the lower-cased address (hex)."""
    return hashlib.md5(email.lower().encode("utf-8")).hexdigest()


def timestamp(moment: dt.datetime | None = None) -> str:
    """Mailchimp's time format, ``2024-05-01T09:30:00+00:00`` (UTC, whole seconds)."""
    moment = (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.replace(microsecond=0).isoformat()


class _Invalid(Exception):
    """A request Mailchimp would refuse with 400; carries the problem's title and detail."""

    def __init__(self, title: str, detail: str, errors: list[dict[str, str]] | None = None):
        super().__init__(title)
        self.title = title
        self.detail = detail
        self.errors = errors


class MailchimpImitation(Imitation):
    """Mailchimp's Marketing API on a loopback port (see the module docstring)."""

    name = "mailchimp"
    max_concurrent = 10

    def __init__(
        self,
        *,
        api_key: str = "0123456789abcdef0123456789abcdef-us0",
        list_id: str = DEFAULT_LIST_ID,
        state_path: Path | None = None,
        latency_seconds: float = 0.0,
        port: int = 0,
    ) -> None:
        self.default_list_id = list_id
        super().__init__(
            api_key=api_key, state_path=state_path, latency_seconds=latency_seconds, port=port
        )
        # Answer headers and body without waiting for the client's delayed ACK (Nagle): the
        # base handler writes them separately, which costs a kept-alive connection 40 ms.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]

    @property
    def api_url(self) -> str:
        """The API root as the SDK's ``host`` expects it (``.../3.0``)."""
        return f"{self.url}/3.0"

    # --- state ---------------------------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return {"lists": {self.default_list_id: _new_list(self.default_list_id, DEFAULT_LIST_NAME)}}

    def reset(self) -> None:
        """Forget every member, list and activity: back to one empty audience."""
        with self.lock:
            self.state = self.initial_state()
            self.requests.clear()

    def add_list(self, list_id: str, name: str = "Audience") -> None:
        with self.lock:
            self.state["lists"].setdefault(list_id, _new_list(list_id, name))

    def add_member(
        self,
        email: str,
        status: str = "subscribed",
        merge_fields: Mapping[str, Any] | None = None,
        last_changed: dt.datetime | None = None,
        *,
        list_id: str | None = None,
    ) -> str:
        """Put one member in the audience (replacing one with that address); returns its hash."""
        if status not in (*STATUSES, "archived"):
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        when = timestamp(last_changed)
        with self.lock:
            audience = self._audience(list_id)
            key = subscriber_hash(email)
            audience["forgotten"].pop(key, None)
            audience["members"][key] = _record(
                audience, email, status, dict(merge_fields or {}), when
            )
            return key

    def add_members(
        self,
        emails: Iterable[str],
        status: str = "subscribed",
        last_changed: dt.datetime | None = None,
        *,
        list_id: str | None = None,
    ) -> int:
        """Bulk seeding: every address as a member with ``status``; returns how many were added."""
        when = timestamp(last_changed or dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        added = 0
        with self.lock:
            audience = self._audience(list_id)
            members = audience["members"]
            for email in emails:
                members[subscriber_hash(email)] = _record(audience, email, status, {}, when)
                added += 1
        return added

    def seed_members(
        self,
        count: int,
        *,
        domain: str = "example.org",
        start: int = 0,
        status: str = "subscribed",
        list_id: str | None = None,
    ) -> list[str]:
        """``count`` generated members ``member<i>@<domain>``; returns their addresses."""
        emails = [f"member{i}@{domain}" for i in range(start, start + count)]
        self.add_members(emails, status, list_id=list_id)
        return emails

    def set_status(self, email_or_hash: str, status: str, *, list_id: str | None = None) -> None:
        """What the person does at Mailchimp (e.g. unsubscribes): new status, new last_changed."""
        with self.lock:
            record = self._audience(list_id)["members"][_key(email_or_hash)]
            record["status"] = status
            record["last_changed"] = timestamp()

    def add_activity(
        self,
        email_or_hash: str,
        activity_type: str = "open",
        *,
        campaign_title: str = "Nieuwsbrief",
        at: dt.datetime | None = None,
        list_id: str | None = None,
    ) -> None:
        """One activity event for a member (``open``, ``click``, ``bounce``, ``unsub``, ...)."""
        with self.lock:
            audience = self._audience(list_id)
            key = _key(email_or_hash)
            if key not in audience["members"]:
                raise KeyError("no member with that address or hash")
            events = audience["activity"].setdefault(key, [])
            events.append(
                {
                    "activity_type": activity_type,
                    "created_at_timestamp": timestamp(at),
                    "campaign_id": f"{len(events) + 1:010x}",
                    "campaign_title": campaign_title,
                }
            )

    def member(self, email_or_hash: str, *, list_id: str | None = None) -> dict[str, Any] | None:
        """The member as the API would show it, or None."""
        with self.lock:
            audience = self._audience(list_id)
            key = _key(email_or_hash)
            record = audience["members"].get(key)
            return None if record is None else _member(audience, key, record, None)

    def member_tags(self, email_or_hash: str, *, list_id: str | None = None) -> list[str]:
        """The member's active tags, sorted (KeyError when there is no such member)."""
        with self.lock:
            record = self._audience(list_id)["members"][_key(email_or_hash)]
            return sorted(record.get("tags", ()))

    def is_forgotten(self, email_or_hash: str, *, list_id: str | None = None) -> bool:
        with self.lock:
            return _key(email_or_hash) in self._audience(list_id)["forgotten"]

    def members_count(self, *, list_id: str | None = None) -> int:
        with self.lock:
            return len(self._audience(list_id)["members"])

    def _audience(self, list_id: str | None) -> dict[str, Any]:
        return self.state["lists"][list_id or self.default_list_id]

    # --- protocol ------------------------------------------------------------------------------

    def error(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
    ) -> Response:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        if errors is not None:
            body["errors"] = errors
        return Response.json(body, status, content_type=PROBLEM_JSON)

    def too_many_requests(self) -> Response:
        return self.error(
            429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."
        )

    def bad_json(self, request: Request) -> Response:
        return self.error(
            400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
        )

    def not_found(self, request: Request) -> Response:
        return self.error(404, "Resource Not Found", "The requested resource could not be found.")

    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return self.error(401, "API Key Missing", "Your request did not include an API key.")
        scheme, _, value = header.partition(" ")
        password = None
        if scheme.lower() == "basic":
            try:
                _, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                password = None
        if password != self.api_key:
            return self.error(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        return None

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/3\.0/?", self._root),
            route("GET", r"/3\.0/ping", self._ping),
            route("GET", _LIST, self._get_list),
            route("POST", _LIST, self._batch),
            route("GET", _LIST + r"/members", self._list_members),
            route("POST", _LIST + r"/members", self._add_member),
            route("GET", _MEMBER, self._get_member),
            route("PUT", _MEMBER, self._put_member),
            route("PATCH", _MEMBER, self._patch_member),
            route("DELETE", _MEMBER, self._archive_member),
            route("POST", _MEMBER + r"/actions/delete-permanent", self._delete_permanent),
            route("GET", _MEMBER + r"/activity-feed", self._activity_feed),
            route("GET", _MEMBER + r"/activity", self._activity),
            route("POST", _MEMBER + r"/tags", self._member_tags),
        ]

    def dispatch(self, request: Request) -> Response | None:
        try:
            return super().dispatch(request)
        except _Invalid as invalid:
            return self.error(400, invalid.title, invalid.detail, invalid.errors)

    # --- handlers ------------------------------------------------------------------------------

    def _root(self, request: Request) -> Response:
        return Response.json({"account_id": "imitation", "account_name": "Plusjeklas (imitation)"})

    def _ping(self, request: Request) -> Response:
        return Response.json({"health_status": "Everything's Chimpy!"})

    def _find_audience(self, request: Request) -> dict[str, Any] | None:
        return self.state["lists"].get(request.params["list_id"])

    def _get_list(self, request: Request) -> Response:
        with self.lock:
            audience = self._find_audience(request)
            if audience is None:
                return self.not_found(request)
            counts = {status: 0 for status in STATUSES}
            for record in audience["members"].values():
                counts[record["status"]] = counts.get(record["status"], 0) + 1
            body = {
                "id": audience["id"],
                "web_id": 1,
                "name": audience["name"],
                "stats": {
                    "member_count": counts["subscribed"],
                    "unsubscribe_count": counts["unsubscribed"],
                    "cleaned_count": counts["cleaned"],
                    "total_contacts": len(audience["members"]),
                },
            }
        return Response.json(_only(body, _fields(request)))

    def _list_members(self, request: Request) -> Response:
        count = _int_arg(request, "count", 10, 1, MAX_COUNT)
        offset = _int_arg(request, "offset", 0, 0, None)
        since = _time_arg(request, "since_last_changed")
        status = request.arg("status")
        fields = _fields(request)
        member_fields = _sub_fields(fields, "members")
        with self.lock:
            audience = self._find_audience(request)
            if audience is None:
                return self.not_found(request)
            items: Iterable[tuple[str, dict[str, Any]]] = audience["members"].items()
            if since is not None or status is not None:
                selected = [
                    (key, record)
                    for key, record in items
                    if (since is None or record["last_changed"] > since)
                    and (status is None or record["status"] == status)
                ]
                total, items = len(selected), selected
            else:
                total = len(audience["members"])
            page = [
                _member(audience, key, record, member_fields)
                for key, record in itertools.islice(items, offset, offset + count)
            ]
            body = {"members": page, "list_id": audience["id"], "total_items": total, "_links": []}
        return Response.json(_only(body, fields))

    def _get_member(self, request: Request) -> Response:
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            record = None if audience is None else audience["members"].get(key)
            if audience is None or record is None:
                return self.not_found(request)
            fields = _fields(request)
            return Response.json(_only(_member(audience, key, record, fields), fields))

    def _add_member(self, request: Request) -> Response:
        body = _body(request)
        with self.lock:
            audience = self._find_audience(request)
            if audience is None:
                return self.not_found(request)
            email = _valid_email(body)
            status = _valid_status(body, "status", required=True)
            key = subscriber_hash(email)
            if key in audience["forgotten"]:
                raise _Invalid(FORGOTTEN_TITLE, FORGOTTEN_DETAIL.format(email=email))
            if key in audience["members"]:
                raise _Invalid(
                    "Member Exists",
                    f"{email} is already a list member. Use PUT to insert or update list members.",
                )
            record = _record(audience, email, status, _merge(body), timestamp())
            audience["members"][key] = record
            return Response.json(_member(audience, key, record, None))

    def _put_member(self, request: Request) -> Response:
        """Add or update: ``status_if_new`` for a new member, ``status`` for an existing one."""
        body = _body(request)
        with self.lock:
            audience = self._find_audience(request)
            if audience is None:
                return self.not_found(request)
            email = _valid_email(body)
            key = _key(unquote(request.params["member"]))
            record = audience["members"].get(key)
            if record is None:
                status = _valid_status(body, "status_if_new", required=True)
                new_key = subscriber_hash(email)
                if new_key in audience["forgotten"] or key in audience["forgotten"]:
                    raise _Invalid(FORGOTTEN_TITLE, FORGOTTEN_DETAIL.format(email=email))
                if new_key in audience["members"]:
                    raise _Invalid(
                        "Member Exists", f"{email} is already a list member with another id."
                    )
                record = _record(audience, email, status, _merge(body), timestamp())
                audience["members"][new_key] = record
                return Response.json(_member(audience, new_key, record, None))
            new_key = self._update(audience, key, record, body, email)
            return Response.json(_member(audience, new_key, record, None))

    def _patch_member(self, request: Request) -> Response:
        body = _body(request)
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            record = None if audience is None else audience["members"].get(key)
            if audience is None or record is None:
                return self.not_found(request)
            email = _valid_email(body) if "email_address" in body else None
            new_key = self._update(audience, key, record, body, email)
            return Response.json(_member(audience, new_key, record, None))

    def _update(
        self,
        audience: dict[str, Any],
        key: str,
        record: dict[str, Any],
        body: dict[str, Any],
        email: str | None,
    ) -> str:
        """Apply a PUT/PATCH body to an existing member; a new address moves it to a new hash."""
        status = _valid_status(body, "status", required=False)
        new_key = key
        if email is not None and subscriber_hash(email) != key:
            new_key = subscriber_hash(email)
            if new_key in audience["members"]:
                raise _Invalid(
                    "Member Exists", f"{email} is already a list member with another id."
                )
            if new_key in audience["forgotten"]:
                raise _Invalid(FORGOTTEN_TITLE, FORGOTTEN_DETAIL.format(email=email))
            del audience["members"][key]
            audience["members"][new_key] = record
            if key in audience["activity"]:
                audience["activity"][new_key] = audience["activity"].pop(key)
        if email is not None:
            record["email"] = email
        if status is not None:
            record["status"] = status
        record["merge_fields"].update(_merge(body))
        record["last_changed"] = timestamp()
        return new_key

    def _archive_member(self, request: Request) -> Response:
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            record = None if audience is None else audience["members"].get(key)
            if audience is None or record is None:
                return self.not_found(request)
            record["status"] = "archived"
            record["last_changed"] = timestamp()
        return Response(204)

    def _delete_permanent(self, request: Request) -> Response:
        """Erase everything on the member; the address can never be re-imported."""
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            if audience is None or key not in audience["members"]:
                return self.not_found(request)
            del audience["members"][key]
            audience["activity"].pop(key, None)
            audience["forgotten"][key] = True
        return Response(204)

    def _member_tags(self, request: Request) -> Response:
        """Add (``active``) or remove (``inactive``) tags; unknown tags are created."""
        body = _body(request)
        tags = body.get("tags")
        valid = isinstance(tags, list) and all(
            isinstance(tag, dict)
            and isinstance(tag.get("name"), str)
            and 0 < len(tag["name"].strip()) <= 100
            and tag.get("status") in ("active", "inactive")
            for tag in tags
        )
        if not valid:
            raise _Invalid(
                "Invalid Resource",
                INVALID_DETAIL,
                [
                    {
                        "field": "tags",
                        "message": "Each tag needs a name (1-100 characters) and a status of "
                        "active or inactive.",
                    }
                ],
            )
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            record = None if audience is None else audience["members"].get(key)
            if audience is None or record is None:
                return self.not_found(request)
            known = audience.setdefault("tags", {})
            active = record.setdefault("tags", [])
            for tag in tags:  # type: ignore[union-attr]
                name = tag["name"].strip()
                if tag["status"] == "active":
                    known.setdefault(name, len(known) + 1)
                    if name not in active:
                        active.append(name)
                elif name in active:
                    active.remove(name)
        return Response(204)

    def _activity_feed(self, request: Request) -> Response:
        return self._activity_page(request, feed=True)

    def _activity(self, request: Request) -> Response:
        return self._activity_page(request, feed=False)

    def _activity_page(self, request: Request, *, feed: bool) -> Response:
        count = _int_arg(request, "count", 10, 1, MAX_COUNT)
        offset = _int_arg(request, "offset", 0, 0, None)
        with self.lock:
            audience = self._find_audience(request)
            key = _key(unquote(request.params["member"]))
            if audience is None or key not in audience["members"]:
                return self.not_found(request)
            events = list(audience["activity"].get(key, []))
        if not feed:  # the older endpoint's shape
            events = [
                {
                    "action": e["activity_type"],
                    "timestamp": e["created_at_timestamp"],
                    "campaign_id": e["campaign_id"],
                    "title": e["campaign_title"],
                }
                for e in events
            ]
        body = {
            "activity": events[offset : offset + count],
            "email_id": key,
            "list_id": audience["id"],
            "total_items": len(events),
            "_links": [],
        }
        return Response.json(_only(body, _fields(request)))

    def _batch(self, request: Request) -> Response:
        """Batch subscribe or unsubscribe: per-address outcomes in one 200 answer."""
        body = _body(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise _Invalid(
                "Invalid Resource",
                INVALID_DETAIL,
                [{"field": "members", "message": "This value should not be blank."}],
            )
        if len(members) > MAX_BATCH:
            raise _Invalid(
                "Invalid Resource",
                INVALID_DETAIL,
                [
                    {
                        "field": "members",
                        "message": f"This collection should contain {MAX_BATCH} elements or less.",
                    }
                ],
            )
        update_existing = bool(body.get("update_existing", False))
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            audience = self._find_audience(request)
            if audience is None:
                return self.not_found(request)
            now = timestamp()
            for item in members:
                kind, outcome = self._batch_one(audience, item, update_existing, now)
                (errors if kind == "error" else created if kind == "new" else updated).append(
                    outcome
                )
        return Response.json(
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    def _batch_one(
        self, audience: dict[str, Any], item: Any, update_existing: bool, now: str
    ) -> tuple[str, dict[str, Any]]:
        """One member of a batch: ("new" | "updated" | "error", what the answer lists)."""
        email = item.get("email_address") if isinstance(item, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            shown = email if isinstance(email, str) else ""
            return "error", _batch_error(
                shown, f"{shown} looks fake or invalid, please enter a real email address."
            )
        status = item.get("status")
        if status not in STATUSES:
            return "error", _batch_error(
                email,
                "Invalid status: use subscribed, unsubscribed, cleaned, pending or transactional.",
            )
        key = subscriber_hash(email)
        if key in audience["forgotten"]:
            return "error", _batch_error(email, FORGOTTEN_DETAIL.format(email=email))
        merge_fields = item.get("merge_fields")
        if not isinstance(merge_fields, dict):
            merge_fields = {}
        record = audience["members"].get(key)
        if record is None:
            record = _record(audience, email, status, dict(merge_fields), now)
            audience["members"][key] = record
            return "new", _batch_member(audience["id"], key, record)
        if not update_existing:
            return "error", _batch_error(
                email,
                f"{email} is already a list member, do you want to update? "
                "please provide update_existing:true in the request body",
                "ERROR_CONTACT_EXISTS",
            )
        record["status"] = status
        if merge_fields:
            record["merge_fields"].update(merge_fields)
        record["last_changed"] = now
        return "updated", _batch_member(audience["id"], key, record)


# --- helpers -------------------------------------------------------------------------------------


def _new_list(list_id: str, name: str) -> dict[str, Any]:
    return {"id": list_id, "name": name, "members": {}, "forgotten": {}, "activity": {}, "web": 0}


def _record(
    audience: dict[str, Any], email: str, status: str, merge_fields: dict[str, Any], when: str
) -> dict[str, Any]:
    audience["web"] += 1
    return {
        "email": email,
        "status": status,
        "merge_fields": merge_fields,
        "last_changed": when,
        "signup": when,
        "web_id": audience["web"],
    }


def _member(
    audience: dict[str, Any], key: str, record: dict[str, Any], fields: set[str] | None
) -> dict[str, Any]:
    """A member as the API shows it; with ``fields`` only those keys are built (it is hot)."""
    if fields == _CHEAP_FIELDS:  # what a sync asks for, 1000 at a time
        return {
            "id": key,
            "email_address": record["email"],
            "status": record["status"],
            "last_changed": record["last_changed"],
        }
    if fields is not None and fields <= _CHEAP_FIELDS:
        values = {
            "id": key,
            "email_address": record["email"],
            "status": record["status"],
            "last_changed": record["last_changed"],
        }
        return {name: values[name] for name in fields}
    merge = record["merge_fields"]
    full = {
        "id": key,
        "email_address": record["email"],
        "unique_email_id": key[:10],
        "contact_id": key[::-1],
        "full_name": " ".join(str(v) for v in (merge.get("FNAME"), merge.get("LNAME")) if v),
        "web_id": record["web_id"],
        "email_type": "html",
        "status": record["status"],
        "merge_fields": dict(merge),
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": "",
        "timestamp_signup": record["signup"],
        "ip_opt": "",
        "timestamp_opt": record["signup"],
        "member_rating": 2,
        "last_changed": record["last_changed"],
        "language": "",
        "vip": False,
        "email_client": "",
        "source": "API - Generic",
        "tags_count": len(record.get("tags", ())),
        "tags": _tag_list(audience, record),
        "list_id": audience["id"],
    }
    return full if fields is None else {name: full[name] for name in fields if name in full}


def _tag_list(audience: dict[str, Any], record: dict[str, Any]) -> list[dict[str, Any]]:
    known = audience.get("tags", {})
    return [{"id": known.get(name, 0), "name": name} for name in record.get("tags", ())]


def _batch_member(list_id: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """A member as the batch endpoint lists it (its schema is a little shorter than GET's)."""
    return {
        "id": key,
        "email_address": record["email"],
        "unique_email_id": key[:10],
        "email_type": "html",
        "status": record["status"],
        "merge_fields": dict(record["merge_fields"]),
        "interests": {},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": "",
        "timestamp_signup": record["signup"],
        "ip_opt": "",
        "timestamp_opt": record["signup"],
        "member_rating": 2,
        "last_changed": record["last_changed"],
        "language": "",
        "vip": False,
        "email_client": "",
        "tags_count": 0,
        "tags": [],
        "list_id": list_id,
    }


_CHEAP_FIELDS = frozenset({"id", "email_address", "status", "last_changed"})


def _key(email_or_hash: str) -> str:
    """The path segment Mailchimp accepts: a hash, or an address (hashed here)."""
    return subscriber_hash(email_or_hash) if "@" in email_or_hash else email_or_hash.lower()


def _batch_error(email: str, message: str, code: str = "ERROR_GENERIC") -> dict[str, Any]:
    return {
        "email_address": email,
        "error": message,
        "error_code": code,
        "field": "",
        "field_message": "",
    }


def _body(request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise _Invalid("Invalid Resource", "The request body must be a JSON object.")
    return data


def _valid_email(body: dict[str, Any]) -> str:
    email = body.get("email_address")
    if not isinstance(email, str) or not email:
        raise _Invalid(
            "Invalid Resource",
            INVALID_DETAIL,
            [{"field": "email_address", "message": "This value should not be blank."}],
        )
    if not _EMAIL.match(email):
        raise _Invalid(
            "Invalid Resource", f"{email} looks fake or invalid, please enter a real email address."
        )
    return email


def _valid_status(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    status = body.get(name)
    if status is None and not required:
        return None
    if status not in STATUSES:
        raise _Invalid(
            "Invalid Resource",
            INVALID_DETAIL,
            [{"field": name, "message": f"Must be one of {', '.join(STATUSES)}."}],
        )
    return str(status)


def _merge(body: dict[str, Any]) -> dict[str, Any]:
    merge = body.get("merge_fields")
    if merge is None:
        return {}
    if not isinstance(merge, dict):
        raise _Invalid(
            "Invalid Resource",
            INVALID_DETAIL,
            [
                {
                    "field": "merge_fields",
                    "message": "Schema describes object, found string instead.",
                }
            ],
        )
    return merge


def _int_arg(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _Invalid("Invalid Resource", f"The value of '{name}' must be {limit}.")
    return value


def _time_arg(request: Request, name: str) -> str | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise _Invalid(
            "Invalid Resource", f"The value of '{name}' must be an ISO 8601 time."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return timestamp(moment)


def _fields(request: Request) -> set[str] | None:
    raw = request.arg("fields")
    if not raw:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _sub_fields(fields: set[str] | None, prefix: str) -> set[str] | None:
    """``members.id,members.status`` -> ``{"id", "status"}``; None when ``members`` is whole."""
    if fields is None or prefix in fields:
        return None
    inner = {f[len(prefix) + 1 :] for f in fields if f.startswith(prefix + ".")}
    return inner or None


def _only(body: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
    """Keep the top-level keys ``fields`` names (``a`` or ``a.b`` both keep ``a``)."""
    if fields is None:
        return body
    top = {f.split(".", 1)[0] for f in fields}
    return {k: v for k, v in body.items() if k in top}
