"""One delivery attempt at a provider, and how long to wait after a failed one.

**Done means confirmed.** :func:`attempt` calls ``erase`` (answering erased or already gone),
then ``verify_erased``: True means done and verified, None done with ``verified`` unknown (the
provider cannot tell); False is not done. Each call runs under the provider's deadline
(:func:`plugins.call_with_deadline`), so a hanging or garbage-answering provider is a readable,
non-personal failure, never an exception. No database is touched here.

After a failure the task waits :class:`Backoff` (exponential, full jitter), or the provider's
``retry_after`` when that is later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from plusjeklas_tui.plugins import call_with_deadline, deadline_for
from plusjeklas_tui.providers import (
    ErasureOutcome,
    ErasureStatus,
    Provider,
    ProviderError,
    Subject,
)

MAX_RETRY_AFTER_SECONDS = 7 * 24 * 3600.0
"""A provider's Retry-After is honoured up to this; beyond it is a broken header."""


# --- backoff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: after the n-th failed attempt, wait a uniformly
    random time in [0, min(cap, base·2ⁿ⁻¹)], at least ``floor_seconds``.

    Full jitter spreads the retries of many tasks (and of several workers) that failed together
    in one outage over the whole window, so a provider coming back is not hit by all at once.
    The floor keeps a retry out of the run that failed it.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    floor_seconds: float = 1.0

    def ceiling(self, attempts: int) -> float:
        exponent = min(max(attempts, 1) - 1, 60)
        return min(self.cap_seconds, self.base_seconds * 2.0**exponent)

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``attempts`` failed attempts (the provider's hint if later)."""
        wait = max(self.floor_seconds, rng.uniform(0.0, self.ceiling(attempts)))
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return wait


# --- delivering one task ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    done: bool
    outcome: str | None = None
    verified: bool | None = None
    reason: str | None = None
    retry_after: float | None = None


def _erase_noting_retry_after(
    provider: Provider, subject: Subject, box: dict[str, float | None]
) -> ErasureOutcome:
    """``provider.erase``, keeping a ProviderError's retry_after (CallOutcome drops it)."""
    try:
        return provider.erase(subject)
    except ProviderError as exc:
        box["retry_after"] = exc.retry_after
        raise


def _verify_noting_retry_after(
    provider: Provider, subject: Subject, box: dict[str, float | None]
) -> bool | None:
    try:
        return provider.verify_erased(subject)
    except ProviderError as exc:
        box["retry_after"] = exc.retry_after
        raise


def attempt(provider: Provider, subject: Subject) -> Attempt:
    """Erase at the provider, then read back. Never raises; never touches the database."""
    name = provider.info.name
    deadline = deadline_for(provider)
    box: dict[str, float | None] = {}
    erased = call_with_deadline(
        _erase_noting_retry_after,
        provider,
        subject,
        box,
        deadline_seconds=deadline,
        expect=ErasureOutcome,
        what=f"{name} erase",
    )
    if not erased.ok:
        return Attempt(False, reason=erased.reason, retry_after=box.get("retry_after"))
    try:
        status = ErasureStatus(erased.value.status)
    except ValueError:
        return Attempt(False, reason=f"{name} erase returned an unknown status")
    checked = call_with_deadline(
        _verify_noting_retry_after,
        provider,
        subject,
        box,
        deadline_seconds=deadline,
        expect=(bool, type(None)),
        what=f"{name} verify_erased",
    )
    if not checked.ok:
        return Attempt(
            False,
            reason=f"erased, but the check failed: {checked.reason}",
            retry_after=box.get("retry_after"),
        )
    if checked.value is False:
        return Attempt(
            False, reason=f"{name} still holds the subject after the erasure (read back)"
        )
    return Attempt(True, outcome=status.value, verified=checked.value)
