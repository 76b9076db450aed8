"""An imitation of Matomo's HTTP Reporting API (``/index.php?module=API``) for tests and the demo.

What it reproduces, because the Matomo plugin depends on it (read from Matomo's own source:
``plugins/PrivacyManager/API.php``, ``Model/DataSubjects.php``, ``plugins/Live/API.php`` and
``Model.php``, ``core/Segment.php`` and ``core/Segment/SegmentExpression.php``):

* one endpoint, ``/index.php``, by GET or POST; parameters from the query string and a
  form-encoded body merged (as PHP's ``$_GET`` + ``$_POST``); ``module=API`` and ``method=``
  ``Plugin.method`` pick what runs; ``format=json`` (anything else gets Matomo's default, XML).
  Any other ``module`` gets the web interface: an HTML login page with HTTP 200;
* errors as ``{"result": "error", "message": "..."}``. Authentication and access failures
  (Matomo's ``NoAccessException``) answer **HTTP 401**, as Matomo 4 and later do for the API; every
  other API error (an unknown method, a missing parameter, a bad segment, no visits given)
  answers **HTTP 200** — the caller must read the body, not only the status;
* ``token_auth``: a wrong one gets 401 "Unable to authenticate with the provided token. It is
  either invalid or expired."; one sent in the URL (query string) instead of the POST body is
  refused with 401 and the "... or is required to be sent as a POST parameter." wording, as
  Matomo 5 does for a token created with *only allow secure requests*. A request without a token
  is the anonymous user, who may see nothing;
* ``API.getMatomoVersion`` -> ``{"value": "5.2.1"}``; ``SitesManager.getSiteFromId`` -> the site;
  ``SitesManager.getSitesIdWithAdminAccess`` -> ``[1, ...]``;
* ``Live.getLastVisitsDetails``: visits with Matomo's field names (``idSite``, ``idVisit``,
  ``userId``, ``visitCount``, ``lastActionTimestamp``, ...), newest first unless
  ``filter_sort_order=asc``, paged with ``filter_limit`` (default 10; -1 or 0: all) and
  ``filter_offset``, ``minTimestamp`` (last action strictly after), ``period=range`` with
  ``date=YYYY-MM-DD,today``, ``segment``, ``showColumns``/``hideColumns``;
* ``PrivacyManager.findDataSubjects(idSite, segment)``: at most :attr:`MatomoImitation.find_limit`
  visits (401, Matomo's ``filter_limit``), newest first, only Matomo's kept columns; ``idSite``
  may be ``all`` or a comma-separated list;
* ``PrivacyManager.deleteDataSubjects(visits)`` / ``exportDataSubjects(visits)`` with
  ``visits[0][idsite]=1&visits[0][idvisit]=5`` (PHP array notation), validated as Matomo does
  ("No list of visits given", "No idsite key set for visit at index 1"), admin access checked
  per site; delete answers counts per log table (``{"log_visit": 2, ...}``), export the rows of
  each log table (``log_visit``, ``log_link_visit_action``, ``log_conversion``, ... and the
  ``log_action_*`` names of the pages);
* segments decoded as Matomo does: the whole ``segment`` value is URL-decoded once more when
  that still parses (``Segment::__construct`` tries both), split on ``;`` (AND) and ``,`` (OR)
  not preceded by a backslash, then each condition is URL-decoded and its value URL-decoded
  again (``SegmentExpression::parseSubExpressions``) — so a value is decoded twice after HTTP,
  PHP's ``urldecode`` turns ``+`` into a space, and an unencoded ``,`` in a value splits it into
  an invalid condition. ``userId!=`` means "has a user id", ``userId==`` "has none".
  Supported segments: ``userId``, ``visitorId``, ``visitId``.

Seeding and reading back (thread-safe; none of them counts as a request):

* :meth:`MatomoImitation.add_site` — a website (site 1, "Jongleren.biz", exists from the start).
* :meth:`MatomoImitation.add_visits` — ``count`` visits for a user id (or anonymous ones with
  ``user_id=None``) on a site, an hour apart ending at ``last_at`` (default: now), each with a
  few page views; returns their ``idvisit`` numbers.
* :meth:`MatomoImitation.visits_of` / :meth:`MatomoImitation.visit_count` — what "Matomo" still
  holds for a user id.
* :attr:`MatomoImitation.calls` — the API method of every request answered, for tests that
  count calls (``calls.count("PrivacyManager.deleteDataSubjects")``).
* :attr:`MatomoImitation.admin_access` — False makes the token a view-only one (the GDPR tools
  then refuse it); :attr:`MatomoImitation.find_limit` — lower it to test paging of deletions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from plusjeklas_tui.testing.imitation import Imitation, Request, Response, Route, route

VERSION = "5.2.1"
FIND_LIMIT = 401
"""``PrivacyManager.findDataSubjects`` asks ``Live.getLastVisitsDetails`` for 401 visits."""
DEFAULT_SITE = {
    "idsite": 1,
    "name": "Jongleren.biz",
    "main_url": "https://jongleren.biz",
    "timezone": "Europe/Amsterdam",
    "currency": "EUR",
}
DEFAULT_PAGES = (
    "https://jongleren.biz/",
    "https://jongleren.biz/workshops",
    "https://jongleren.biz/contact",
)
BAD_TOKEN = "Unable to authenticate with the provided token. It is either invalid or expired."
TOKEN_IN_URL = (
    "Unable to authenticate with the provided token. It is either invalid, expired or is "
    "required to be sent as a POST parameter."
)
FIND_COLUMNS = (
    "lastActionDateTime",
    "idVisit",
    "idSite",
    "siteName",
    "visitorId",
    "visitIp",
    "userId",
    "deviceType",
    "deviceModel",
    "deviceTypeIcon",
    "operatingSystem",
    "operatingSystemIcon",
    "browser",
    "browserFamilyDescription",
    "browserIcon",
    "country",
    "region",
    "countryFlag",
)
"""The columns ``findDataSubjects`` keeps of each visit (``$columnsToKeep`` in its source)."""
SEGMENTS = {"userId": "user_id", "visitorId": "idvisitor", "visitId": "idvisit"}
_OPERATORS = re.compile(r"^(.+?)(==|!=|>=|<=|>|<|=@|!@|=\^|=\$)(.*)$", re.DOTALL)
_VISIT_KEY = re.compile(r"^visits\[(\d+)\]\[(\w+)\]$")
LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in - Matomo</title></head>"
    b"<body><form method='post'><input name='form_login'></form></body></html>"
)


class ApiError(Exception):
    """An API exception, answered as ``{"result": "error"}`` (401 when ``no_access``)."""

    def __init__(self, message: str, *, no_access: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.no_access = no_access


def _php_urldecode(text: str) -> str:
    """PHP's ``urldecode``: ``%XX`` escapes and ``+`` as a space."""
    return unquote_plus(text, encoding="utf-8", errors="replace")


def _moment(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- segments ---------------------------------------------------------------------------------


Condition = tuple[str, str, str]
"""(segment name, operator, value) after decoding."""


def _split_tree(text: str) -> list[list[str]]:
    """Matomo's ``parseTree``: AND groups (``;``) of OR operands (``,``); ``\\;``/``\\,`` escape."""
    groups: list[list[str]] = [[]]
    operand = ""
    backslash = False
    for char in text:
        if char in ";," and not backslash:
            groups[-1].append(operand)
            operand = ""
            if char == ";":
                groups.append([])
        elif char in ";," and backslash:
            operand = operand[:-1] + char
        else:
            operand += char
        backslash = char == "\\"
    groups[-1].append(operand)
    return groups


def _parse_segment(text: str) -> list[list[Condition]]:
    parsed: list[list[Condition]] = []
    for group in _split_tree(text):
        conditions: list[Condition] = []
        for operand in group:
            decoded = _php_urldecode(operand)
            found = _OPERATORS.match(decoded)
            if not found:
                raise ApiError(f"The segment condition '{decoded}' is not valid.")
            name, operator, value = found.group(1), found.group(2), _php_urldecode(found.group(3))
            if name not in SEGMENTS:
                raise ApiError(f"Segment '{name}' is not a supported segment.")
            if value == "" and operator not in ("==", "!="):
                raise ApiError(
                    f"The segment '{decoded}' has no value specified. You can leave this value "
                    "empty only when you use the operators: != (is not) or == (is)"
                )
            conditions.append((name, operator, value))
        parsed.append(conditions)
    return parsed


def parse_segment(raw: str) -> list[list[Condition]]:
    """A ``segment`` parameter (already HTTP-decoded) as Matomo reads it; [] for none.

    Like ``Segment::__construct``: parse the value URL-decoded once more and as it is, and keep
    the decoded reading unless the raw one yields more valid conditions.
    """
    if not raw.strip():
        return []
    decoded_text = _php_urldecode(raw)
    decoded: list[list[Condition]] | None = None
    if decoded_text != raw:
        try:
            decoded = _parse_segment(decoded_text)
        except ApiError:
            decoded = None
    try:
        as_is = _parse_segment(raw)
    except ApiError:
        if decoded is None:
            raise
        return decoded
    if decoded is None or sum(map(len, as_is)) > sum(map(len, decoded)):
        return as_is
    return decoded


def _matches(visit: dict[str, Any], condition: Condition) -> bool:
    name, operator, value = condition
    actual = visit.get(SEGMENTS[name])
    text = "" if actual is None else str(actual)
    if value == "":
        return text != "" if operator == "!=" else text == ""
    if operator == "==":
        return text == value
    if operator == "!=":
        return text != value
    if operator == "=@":
        return value.lower() in text.lower()
    if operator == "!@":
        return value.lower() not in text.lower()
    if operator == "=^":
        return text.lower().startswith(value.lower())
    if operator == "=$":
        return text.lower().endswith(value.lower())
    number = float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else None
    if number is None or not re.fullmatch(r"-?\d+(\.\d+)?", text):
        return False
    return {
        ">": float(text) > number,
        "<": float(text) < number,
        ">=": float(text) >= number,
        "<=": float(text) <= number,
    }[operator]


def segment_matches(visit: dict[str, Any], segment: list[list[Condition]]) -> bool:
    return all(any(_matches(visit, c) for c in group) for group in segment)


# --- the imitation ----------------------------------------------------------------------------


class MatomoImitation(Imitation):
    """Matomo's Reporting API for one installation; see the module docstring."""

    name = "matomo"

    def __init__(
        self,
        *,
        api_key: str = "test-token-auth",
        state_path: Path | None = None,
        latency_seconds: float = 0.0,
        port: int = 0,
    ) -> None:
        self.find_limit = FIND_LIMIT
        self.admin_access = True
        self.calls: list[str] = []
        """The ``method`` of every API request answered (refused ones too), in order."""
        self._dirty = False
        super().__init__(
            api_key=api_key, state_path=state_path, latency_seconds=latency_seconds, port=port
        )

    # --- state and seeding ---------------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return {"version": VERSION, "sites": {"1": dict(DEFAULT_SITE)}, "visits": [], "next": 1}

    def save_state(self) -> None:
        """Write the file only when something changed (most API calls here only read)."""
        if self._dirty or (self.state_path is not None and not self.state_path.exists()):
            super().save_state()
            self._dirty = False

    def add_site(self, site_id: int, name: str, main_url: str) -> None:
        with self.lock:
            self.state["sites"][str(site_id)] = {
                **DEFAULT_SITE,
                "idsite": site_id,
                "name": name,
                "main_url": main_url,
            }
            self._dirty = True

    def add_visits(
        self,
        user_id: str | None,
        count: int,
        site_id: int = 1,
        *,
        last_at: dt.datetime | None = None,
        spacing_seconds: int = 3600,
        pages: Sequence[str] = DEFAULT_PAGES,
        ip: str = "192.0.2.0",
    ) -> list[int]:
        """Record ``count`` visits of ``user_id`` on ``site_id``; returns their ``idvisit``.

        The visits end ``spacing_seconds`` apart, the newest at ``last_at`` (default: now). The
        visitor id is derived from the user id, as Matomo does when user ids overwrite visitor
        ids (its default); anonymous visits (``user_id=None``) get distinct visitor ids.
        """
        if str(site_id) not in self.state["sites"]:
            raise ValueError(f"site {site_id} does not exist; add it with add_site() first")
        end = int((last_at or dt.datetime.now(dt.UTC)).timestamp())
        made: list[int] = []
        with self.lock:
            visits: list[dict[str, Any]] = self.state["visits"]
            per_visitor = Counter(v["idvisitor"] for v in visits)
            for index in range(count):
                idvisit = self.state["next"]
                self.state["next"] += 1
                last = end - (count - 1 - index) * spacing_seconds
                first = last - 60 * max(len(pages) - 1, 0)
                seed = user_id if user_id is not None else f"anonymous-{idvisit}"
                visitor = hashlib.sha1(seed.encode("utf-8")).hexdigest()[:16]
                per_visitor[visitor] += 1
                visits.append(
                    {
                        "idvisit": idvisit,
                        "idsite": site_id,
                        "idvisitor": visitor,
                        "user_id": user_id,
                        "first": first,
                        "last": last,
                        "ip": ip,
                        "visit_count": per_visitor[visitor],
                        "actions": [
                            {"url": url, "at": first + 60 * position}
                            for position, url in enumerate(pages)
                        ],
                    }
                )
                made.append(idvisit)
            self._dirty = True
        return made

    def visits_of(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(v) for v in self.state["visits"] if v["user_id"] == user_id]

    def visit_count(self, user_id: str | None = None) -> int:
        with self.lock:
            if user_id is None:
                return len(self.state["visits"])
            return sum(1 for v in self.state["visits"] if v["user_id"] == user_id)

    # --- the provider's answers --------------------------------------------------------------

    def error(self, status: int, title: str, detail: str) -> Response:
        return Response.json({"result": "error", "message": detail}, status)

    def not_found(self, request: Request) -> Response:
        page = b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
        return Response(404, page, "text/html; charset=utf-8")

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/(index\.php)?", self._index),
            route("POST", r"/(index\.php)?", self._index),
        ]

    def _index(self, request: Request) -> Response:
        form = {name: values[-1] for name, values in request.form().items() if values}
        if form.get("module") != "API":
            return Response(200, LOGIN_PAGE, "text/html; charset=utf-8")
        with self.lock:
            self.calls.append(form.get("method", ""))
        try:
            self._authenticate(request, form)
            data = self._call(form.get("method", ""), form, request)
        except ApiError as exc:
            return self._answer(form, {"result": "error", "message": exc.message}, exc)
        return self._answer(form, data, None)

    def _answer(self, form: dict[str, str], data: Any, failure: ApiError | None) -> Response:
        status = 401 if failure is not None and failure.no_access else 200
        if form.get("format", "xml").lower() != "json":
            if failure is not None:
                inner = f'<error message="{html.escape(failure.message)}" />'
            else:
                inner = html.escape(str(data))
            body = f'<?xml version="1.0" encoding="utf-8" ?>\n<result>{inner}</result>'
            return Response(status, body.encode("utf-8"), "text/xml; charset=utf-8")
        return Response.json(data, status)

    def _authenticate(self, request: Request, form: dict[str, str]) -> None:
        if "token_auth" in request.query:
            raise ApiError(TOKEN_IN_URL, no_access=True)
        token = form.get("token_auth")
        if token is None or token == "anonymous":
            raise ApiError(
                "You can't access this resource as it requires 'view' access.", no_access=True
            )
        if token != self.api_key:
            raise ApiError(BAD_TOKEN, no_access=True)

    # --- methods -------------------------------------------------------------------------------

    def _call(self, method: str, form: dict[str, str], request: Request) -> Any:
        handlers = {
            "API.getMatomoVersion": self._version,
            "SitesManager.getSiteFromId": self._site,
            "SitesManager.getSitesIdWithAdminAccess": self._admin_sites,
            "Live.getLastVisitsDetails": self._last_visits,
            "PrivacyManager.findDataSubjects": self._find,
            "PrivacyManager.deleteDataSubjects": self._delete,
            "PrivacyManager.exportDataSubjects": self._export,
        }
        handler = handlers.get(method)
        if handler is None:
            module, _, name = method.partition(".")
            if not name:
                raise ApiError(f"The method '{method}' is not valid; it must be Module.methodName.")
            raise ApiError(
                f"The method '{name}' does not exist or is not available in the module "
                f"'\\Piwik\\Plugins\\{module}\\API'."
            )
        return handler(form, request)

    def _version(self, form: dict[str, str], request: Request) -> Any:
        return {"value": self.state["version"]}

    def _require(self, form: dict[str, str], name: str) -> str:
        value = form.get(name)
        if value is None or value == "":
            raise ApiError(f"Please specify a value for '{name}'.")
        return value

    def _site_ids(self, form: dict[str, str]) -> list[int]:
        raw = self._require(form, "idSite")
        with self.lock:
            known = sorted(int(key) for key in self.state["sites"])
        if raw == "all":
            return known
        ids: list[int] = []
        for part in raw.split(","):
            if not part.strip().isdigit():
                raise ApiError(
                    "An unexpected website was found in the request: "
                    f"website id was set to '{part}' ."
                )
            site_id = int(part)
            if site_id not in known:
                raise ApiError(
                    f"You can't access this resource as it requires 'view' access for the "
                    f"website id = {site_id}.",
                    no_access=True,
                )
            ids.append(site_id)
        return ids

    def _site(self, form: dict[str, str], request: Request) -> Any:
        site_id = self._site_ids(form)[0]
        with self.lock:
            site = dict(self.state["sites"][str(site_id)])
        return {
            "idsite": site["idsite"],
            "name": site["name"],
            "main_url": site["main_url"],
            "ts_created": "2019-03-01 09:00:00",
            "ecommerce": 0,
            "sitesearch": 1,
            "timezone": site["timezone"],
            "currency": site["currency"],
            "exclude_unknown_urls": 0,
            "type": "website",
            "group": "",
            "creator_login": "admin",
        }

    def _admin_sites(self, form: dict[str, str], request: Request) -> Any:
        if not self.admin_access:
            return []
        with self.lock:
            return sorted(int(key) for key in self.state["sites"])

    def _check_admin(self, site_ids: Iterable[int], *, any_site: bool = False) -> None:
        if self.admin_access:
            return
        if any_site:
            raise ApiError(
                "You can't access this resource as it requires 'admin' access for at least one "
                "website.",
                no_access=True,
            )
        first = min(site_ids, default=1)
        raise ApiError(
            f"You can't access this resource as it requires 'admin' access for the website id "
            f"= {first}.",
            no_access=True,
        )

    # --- visits ----------------------------------------------------------------------------------

    def _visit_row(self, visit: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            site = self.state["sites"].get(str(visit["idsite"]), DEFAULT_SITE)
        last = visit["last"]
        return {
            "idSite": visit["idsite"],
            "idVisit": visit["idvisit"],
            "visitIp": visit["ip"],
            "visitorId": visit["idvisitor"],
            "fingerprint": visit["idvisitor"][::-1],
            "userId": visit["user_id"],
            "visitorType": "returning" if visit["visit_count"] > 1 else "new",
            "visitCount": visit["visit_count"],
            "actions": len(visit["actions"]),
            "interactions": len(visit["actions"]),
            "firstActionTimestamp": visit["first"],
            "lastActionTimestamp": last,
            "lastActionDateTime": _moment(last),
            "serverTimestamp": last,
            "serverDate": _moment(last)[:10],
            "visitDuration": last - visit["first"],
            "siteName": site["name"],
            "siteCurrency": site["currency"],
            "deviceType": "Desktop",
            "deviceModel": "Generic Desktop",
            "deviceTypeIcon": "plugins/Morpheus/icons/dist/devices/desktop.png",
            "operatingSystem": "GNU/Linux",
            "operatingSystemIcon": "plugins/Morpheus/icons/dist/os/LIN.png",
            "browser": "Firefox 128.0",
            "browserFamilyDescription": "Gecko (Firefox)",
            "browserIcon": "plugins/Morpheus/icons/dist/browsers/FF.png",
            "country": "Netherlands",
            "countryCode": "nl",
            "region": "North Holland",
            "countryFlag": "plugins/Morpheus/icons/dist/flags/nl.png",
            "actionDetails": [],
        }

    def _select(
        self,
        site_ids: Sequence[int],
        segment: list[list[Condition]],
        *,
        ascending: bool = False,
        min_timestamp: int | None = None,
        start: int | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [
                dict(v)
                for v in self.state["visits"]
                if v["idsite"] in site_ids
                and (min_timestamp is None or v["last"] > min_timestamp)
                and (start is None or v["last"] >= start)
                and segment_matches(v, segment)
            ]
        chosen.sort(key=lambda v: (v["last"], v["idvisit"]), reverse=not ascending)
        return chosen

    def _last_visits(self, form: dict[str, str], request: Request) -> Any:
        site_ids = self._site_ids(form)
        segment = parse_segment(form.get("segment", ""))
        limit = _int(form.get("filter_limit", "10"), "filter_limit")
        offset = max(_int(form.get("filter_offset", "0"), "filter_offset"), 0)
        minimum = form.get("minTimestamp")
        min_timestamp = _int(minimum, "minTimestamp") if minimum not in (None, "", "0") else None
        chosen = self._select(
            site_ids,
            segment,
            ascending=form.get("filter_sort_order", "").lower() == "asc",
            min_timestamp=min_timestamp,
            start=_range_start(form.get("period"), form.get("date")),
        )
        chosen = chosen[offset:] if limit < 1 else chosen[offset : offset + limit]
        rows = [self._visit_row(v) for v in chosen]
        show = [c for c in form.get("showColumns", "").split(",") if c]
        hide = {c for c in form.get("hideColumns", "").split(",") if c}
        return [
            {k: v for k, v in row.items() if (not show or k in show) and k not in hide}
            for row in rows
        ]

    def _find(self, form: dict[str, str], request: Request) -> Any:
        self._check_admin((), any_site=True)
        site_ids = self._site_ids(form)
        segment = parse_segment(self._require(form, "segment"))
        chosen = self._select(site_ids, segment)[: self.find_limit]
        return [
            {k: v for k, v in self._visit_row(visit).items() if k in FIND_COLUMNS}
            for visit in chosen
        ]

    def _visits_param(self, form: dict[str, str]) -> list[tuple[int, int]]:
        """``visits[i][idsite]`` / ``visits[i][idvisit]`` pairs, checked as VisitsDataSubject."""
        entries: dict[int, dict[str, str]] = {}
        for key, value in form.items():
            found = _VISIT_KEY.match(key)
            if found:
                entries.setdefault(int(found.group(1)), {})[found.group(2)] = value
        if not entries:
            raise ApiError("No list of visits given")
        pairs: list[tuple[int, int]] = []
        for index in sorted(entries):
            entry = entries[index]
            if not entry.get("idsite") or entry.get("idsite") == "0":
                raise ApiError(f"No idsite key set for visit at index {index}")
            if not entry.get("idvisit") or entry.get("idvisit") == "0":
                raise ApiError(f"No idvisit key set for visit at index {index}")
            pairs.append((_int(entry["idsite"], "idsite"), _int(entry["idvisit"], "idvisit")))
        return pairs

    def _delete(self, form: dict[str, str], request: Request) -> Any:
        self._check_admin((), any_site=True)
        pairs = set(self._visits_param(form))
        self._check_admin(site for site, _ in pairs)
        with self.lock:
            gone = [v for v in self.state["visits"] if (v["idsite"], v["idvisit"]) in pairs]
            self.state["visits"] = [
                v for v in self.state["visits"] if (v["idsite"], v["idvisit"]) not in pairs
            ]
            self._dirty = self._dirty or bool(gone)
        return {
            "log_visit": len(gone),
            "log_link_visit_action": sum(len(v["actions"]) for v in gone),
            "log_conversion_item": 0,
            "log_conversion": 0,
        }

    def _export(self, form: dict[str, str], request: Request) -> Any:
        self._check_admin((), any_site=True)
        pairs = set(self._visits_param(form))
        self._check_admin(site for site, _ in pairs)
        with self.lock:
            chosen = sorted(
                (dict(v) for v in self.state["visits"] if (v["idsite"], v["idvisit"]) in pairs),
                key=lambda v: v["idvisit"],
            )
        actions: dict[str, int] = {}
        link_rows: list[dict[str, str]] = []
        counter = itertools.count(1)
        for visit in chosen:
            for position, action in enumerate(visit["actions"], start=1):
                idaction = actions.setdefault(action["url"], len(actions) + 1)
                link_rows.append(
                    {
                        "idlink_va": str(next(counter)),
                        "idsite": str(visit["idsite"]),
                        "idvisit": str(visit["idvisit"]),
                        "idvisitor": visit["idvisitor"],
                        "idaction_url": str(idaction),
                        "pageview_position": str(position),
                        "server_time": _moment(action["at"]),
                    }
                )
        return {
            "log_visit": [
                {
                    "idsite": f"Site {visit['idsite']}",
                    "idvisit": str(visit["idvisit"]),
                    "idvisitor": visit["idvisitor"],
                    "location_ip": visit["ip"],
                    "user_id": visit["user_id"],
                    "visit_first_action_time": _moment(visit["first"]),
                    "visit_last_action_time": _moment(visit["last"]),
                    "visit_total_actions": str(len(visit["actions"])),
                    "visitor_count_visits": str(visit["visit_count"]),
                    "config_browser_name": "Firefox",
                    "config_os": "GNU/Linux",
                    "location_country": "nl",
                }
                for visit in chosen
            ],
            "log_link_visit_action": link_rows,
            "log_conversion_item": [],
            "log_conversion": [],
            "log_action_log_link_visit_action_idaction_url": [
                {"idaction": str(idaction), "name": url}
                for url, idaction in sorted(actions.items(), key=lambda item: item[1])
            ],
        }


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "0")
    except ValueError:
        raise ApiError(f"The parameter '{name}' must be an integer.") from None


def _range_start(period: str | None, date: str | None) -> int | None:
    """The lower bound of ``period=range&date=YYYY-MM-DD,...`` (the upper one is "today")."""
    if not period or not date:
        return None
    if period != "range":
        raise ApiError(f"The period '{period}' is not supported by this imitation; use range.")
    start, _, _ = date.partition(",")
    try:
        day = dt.date.fromisoformat(start)
    except ValueError:
        raise ApiError(
            f"Date format must be: YYYY-MM-DD, or 'today' or 'yesterday'; got '{start}'"
        ) from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
