"""Every plugin hook, in one place, documented (docs/plugins.md repeats them for plugin authors).

Two families, as in Datasette and ``llm``:

* ``register_providers`` hands the app :class:`~plusjeklas_tui.providers.Provider` classes.
  The provider *operations* — health check, sync, push, erase, verify, export — are methods of
  those classes, so the app holds typed objects and calls exactly one provider at a time, each
  under its own deadline, recording each outcome (a plain hook call would stop at the first
  exception and skip the rest).
* ``*_changed`` / ``subject_erased`` are events: the app tells every plugin after the change is
  committed. They must be quick (no network; queue work instead); each implementation is called
  on its own, and one that raises or hangs is recorded and skipped, never stopping the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from plusjeklas_tui.providers import Provider

PROJECT = "plusjeklas"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes: call ``register(ProviderClass)`` once per provider.

    Runs once when the app loads its plugins; must not do I/O. The class's ``info`` names the
    provider (its ``[plugins.<name>]`` table), its kind (newsletter, payment, analytics) and its
    processor details for the register of processing. The app builds an instance only when the
    table says ``enabled = true``, and then calls, off the UI thread and under a deadline:
    ``health()``, ``sync(checkpoint)``, ``push(changes)``, ``erase(subject)``,
    ``verify_erased(subject)`` and ``export(subject)`` (see :class:`Provider`).
    """


@hookspec
def record_changed(entity: str, entity_id: int, fields: Sequence[str]) -> None:
    """An organisation, administrator or subscription was created or changed (committed).

    ``fields`` names the changed fields; values are not passed (read them if needed). Quick.
    """


@hookspec
def consent_changed(administrator_id: int, purpose: str, action: str, source: str) -> None:
    """Consent for ``purpose`` was granted or withdrawn (``action``), committed. Quick."""


@hookspec
def subject_erased(subject_type: str, subject_id: int, reason: str) -> None:
    """A subject's personal data was destroyed here (retention rule or request). Quick."""
