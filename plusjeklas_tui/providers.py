"""What the app and a provider plugin say to each other: the provider contract and its values.

A plugin registers :class:`Provider` subclasses (see :mod:`plusjeklas_tui.hookspecs`); the app
builds one instance per enabled ``[plugins.<name>]`` table and calls its methods from worker
threads, each call under a deadline (:mod:`plusjeklas_tui.plugins`). The methods block: they do
HTTP. They never touch the database or the UI; they take and return the plain values below, and
the services (``services/sync.py``, later the erasure worker) turn those into records.

Personal values in these objects (e-mail addresses, names) are left out of ``repr`` so a value
that ends up in a log line or a traceback carries ids only.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import ipaddress
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from plusjeklas_tui.errors import PlusjeklasError


class ProviderKind(enum.StrEnum):
    NEWSLETTER = "newsletter"
    PAYMENT = "payment"
    ANALYTICS = "analytics"


@dataclass(frozen=True)
class RetainedCategory:
    """Data a provider keeps after an erasure because a law says so (e.g. payment records)."""

    category: str
    legal_basis: str
    years: int
    counted_from: str = "end of the financial year of the record"


@dataclass(frozen=True)
class ProcessorDetails:
    """The provider as a processor, for the register of processing (GDPR Art. 30)."""

    company: str
    country: str
    """Where the data is processed (ISO 3166 alpha-2, e.g. ``"US"``)."""
    data_categories: tuple[str, ...]
    agreement: str
    """The data processing agreement: its name and where it is kept."""
    transfer_safeguard: str | None = None
    """For processing outside the EEA: the safeguard (e.g. the EU-US Data Privacy Framework)."""
    retained: tuple[RetainedCategory, ...] = ()


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    """The ``[plugins.<name>]`` table that configures it; lower-case, stable."""
    kind: ProviderKind
    title: str
    processor: ProcessorDetails
    purposes: tuple[str, ...] = ()
    """Consent purposes this provider acts on (e.g. ``("newsletter",)``); changes to consent
    for these purposes are pushed to it."""
    concurrency: int = 4
    """How many requests the provider accepts from us at once (Mailchimp: 10 connections).
    The deletion worker keeps this many erasures in flight; more would only be refused."""


@dataclass(frozen=True)
class ProviderConfig:
    """One provider's settings as the app resolved them: secrets read, demo addresses filled in."""

    name: str
    base_url: str | None
    api_key: str | None = field(repr=False)
    timeout_seconds: float
    options: Mapping[str, Any] = field(default_factory=dict)
    """The plugin's own keys from its table (e.g. Mailchimp's ``list_id``)."""


# --- subjects and changes ------------------------------------------------------------------


SubjectType = Literal["administrator", "organisation"]


@dataclass(frozen=True)
class Subject:
    """Who a call is about: the local id, the provider's own id, and only what finds them.

    ``email`` is set only for providers that find people by address (Mailchimp's subscriber
    hash is derived from it). It never appears in ``repr``.
    """

    subject_type: SubjectType
    local_id: int
    external_id: str | None = None
    email: str | None = field(default=None, repr=False)


class ChangeKind(enum.StrEnum):
    CONSENT_GRANTED = "consent_granted"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONTACT_CHANGED = "contact_changed"


@dataclass(frozen=True)
class Change:
    """One change to push to a provider. ``key`` makes a retried push idempotent."""

    kind: ChangeKind
    subject: Subject
    key: str
    purpose: str | None = None
    email: str | None = field(default=None, repr=False)
    name: str | None = field(default=None, repr=False)
    previous_email: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ChangeOutcome:
    change: Change
    ok: bool
    external_id: str | None = None
    """The provider's id for the subject, when the push created or found one."""
    reason: str | None = None
    """Why it failed: readable, no personal data."""


# --- sync ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberStatus:
    """A newsletter audience member as the provider holds it."""

    external_id: str
    email: str = field(repr=False)
    status: str
    """The provider's word: ``subscribed``, ``unsubscribed``, ``cleaned``, ``pending``, ..."""
    changed_at: dt.datetime | None = None


@dataclass(frozen=True)
class PaymentStatus:
    """A payment customer: the state of its mandate, subscription and latest payment."""

    external_id: str
    organisation_ref: str | None
    """What the app stored at the provider to find the organisation again (its BRIN)."""
    mandate_status: str | None = None
    subscription_status: str | None = None
    last_payment_status: str | None = None
    last_payment_at: dt.datetime | None = None


@dataclass(frozen=True)
class AnalyticsSubject:
    """A person the analytics provider has visits for, by the opaque user id the app issued."""

    external_id: str
    visits: int = 0
    last_visit_at: dt.datetime | None = None


SyncItem = MemberStatus | PaymentStatus | AnalyticsSubject


@dataclass(frozen=True)
class SyncPage:
    """One page of a sync: its items, and where to resume after it.

    The app applies a page and stores its ``checkpoint`` in one transaction, so a sync stopped
    between pages (cancelled, crashed, timed out) resumes at the next page. A finished sync's
    last checkpoint is what the next sync starts from (Mailchimp: ``since_last_changed``).
    """

    items: Sequence[SyncItem]
    checkpoint: str | None
    total: int | None = None
    """How many items the whole sync will bring, when the provider says."""


# --- erasure and health --------------------------------------------------------------------


class ErasureStatus(enum.StrEnum):
    ERASED = "erased"
    ALREADY_GONE = "already_gone"


@dataclass(frozen=True)
class ErasureOutcome:
    status: ErasureStatus
    retained: tuple[RetainedCategory, ...] = ()
    detail: str = ""
    """What was done, in non-personal words (e.g. "2 mandates revoked, customer deleted")."""


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str = ""


# --- errors ----------------------------------------------------------------------------------


class ProviderError(PlusjeklasError):
    """A provider call failed. ``str()`` is shown to staff: it must hold no personal data.

    ``transient`` says whether trying again later may help (429, 5xx, timeouts, connection
    errors); ``retry_after`` is the provider's own hint in seconds, when it gave one.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(redact(reason))
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


class InsecureBaseUrl(ProviderError):
    pass


_EMAIL = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?\b")
_LONG_NUMBER = re.compile(r"\+?\d[\d\s-]{7,}\d")


def redact(text: str, limit: int = 300) -> str:
    """Take e-mail addresses, IBANs and phone-like numbers out of a provider's message.

    Providers echo what they were sent ("x@y.nl is already a list member"); staff see the
    reason, never the value.
    """
    text = _EMAIL.sub("<e-mail>", text)
    text = _IBAN.sub("<iban>", text)
    text = _LONG_NUMBER.sub("<number>", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds, from either form (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, provider: str) -> str:
    """Refuse an API address that is not HTTPS, unless it is on this machine (an imitation).

    The privacy statement promises data is secure in transit; a plain ``http://`` address to
    another host would send API keys and personal data in the clear.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return url.rstrip("/")
    raise InsecureBaseUrl(
        f"plugins.{provider}.base_url must start with https:// "
        f"(plain http:// is only allowed for a loopback address such as 127.0.0.1); "
        f"got scheme {parts.scheme or 'none'!r}"
    )


# --- the contract ----------------------------------------------------------------------------


class Provider(ABC):
    """One processor's API. Subclass it in a plugin and register the class.

    Every method may be slow (network) and is called off the UI thread, under a deadline of a
    few times ``timeout_seconds``. Raise :class:`ProviderError` with a readable, non-personal
    reason on failure; anything else raised is recorded as a plugin fault.
    """

    info: ClassVar[ProviderInfo]

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.concurrency: int = self.info.concurrency
        """Requests this provider takes at once: :attr:`ProviderInfo.concurrency`, unless the
        plugin's configuration says otherwise (Mollie's ``concurrency``)."""

    @abstractmethod
    def health(self) -> Health:
        """Check credentials and reachability with one cheap call."""

    @abstractmethod
    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        """Read the provider's state page by page, starting after ``checkpoint``."""

    @abstractmethod
    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        """Apply consent and contact changes at the provider; one outcome per change, in order."""

    @abstractmethod
    def erase(self, subject: Subject) -> ErasureOutcome:
        """Delete the subject at the provider. Already gone counts as done."""

    @abstractmethod
    def verify_erased(self, subject: Subject) -> bool | None:
        """Read back: True when the provider no longer holds the subject, None when the API
        offers no way to check."""

    @abstractmethod
    def export(self, subject: Subject) -> dict[str, Any]:
        """Everything the provider holds on the subject, as JSON-ready data."""

    def close(self) -> None:  # noqa: B027 - optional hook with nothing to do by default
        """Release connections. Called once when the app is done with the provider."""
