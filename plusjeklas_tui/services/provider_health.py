"""Health of the configured providers: every plugin found, enabled or not, and why not healthy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from plusjeklas_tui.config import PluginSettings, Settings
from plusjeklas_tui.plugins import call_with_deadline, deadline_for
from plusjeklas_tui.providers import Health
from plusjeklas_tui.runtime import Providers


@dataclass(frozen=True)
class PluginStatus:
    """One line of ``plusjeklas plugins``."""

    name: str
    plugin: str
    version: str
    kind: str
    enabled: bool
    healthy: bool | None
    """None: not checked (disabled, or a plugin that did not load)."""
    reason: str = ""


def plugin_statuses(settings: Settings, providers: Providers) -> list[PluginStatus]:
    """Every provider found and every plugin that failed to load; health-check the enabled.

    The checks run at the same time, each under its provider's deadline, so one provider that
    hangs costs its deadline, not the sum.
    """
    plugin_set = providers.plugin_set
    available = providers.available
    with ThreadPoolExecutor(max_workers=max(len(available), 1)) as pool:
        futures = {
            name: pool.submit(
                call_with_deadline,
                provider.health,
                deadline_seconds=deadline_for(provider),
                expect=Health,
                what=f"{name} health check",
            )
            for name, provider in available.items()
        }
        outcomes = {name: future.result() for name, future in futures.items()}
    statuses: list[PluginStatus] = []
    for name, entry in sorted(plugin_set.providers.items()):
        enabled = settings.plugins.get(name, PluginSettings()).enabled
        healthy: bool | None = None
        reason = ""
        if name in providers.problems:
            healthy, reason = False, providers.problems[name]
        elif name in outcomes:
            outcome = outcomes[name]
            if not outcome.ok:
                healthy, reason = False, outcome.reason
            else:
                healthy, reason = outcome.value.ok, outcome.value.reason
        elif not enabled:
            reason = f"disabled: set enabled = true in [plugins.{name}]"
        statuses.append(
            PluginStatus(
                name, entry.plugin, entry.version, entry.info.kind.value, enabled, healthy, reason
            )
        )
    for failure in plugin_set.failures:
        enabled = settings.plugins.get(failure.name, PluginSettings()).enabled
        statuses.append(
            PluginStatus(
                failure.name,
                failure.name,
                "?",
                "?",
                enabled,
                False,
                f"failed to load: {failure.reason}",
            )
        )
    for name, reason in sorted(providers.problems.items()):
        if name not in plugin_set.providers and all(s.name != name for s in statuses):
            statuses.append(PluginStatus(name, "?", "?", "?", True, False, reason))
    return statuses
