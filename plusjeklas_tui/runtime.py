"""The enabled providers, built from the configuration, ready to call (and closed after).

A provider whose table is enabled but cannot be built (its API-key variable unset, an
``http://`` address to another host, the plugin raising in its constructor) is not available,
and :attr:`Providers.problems` says why; the others work. In a demo configuration
(``imitation = true`` in a plugin's table) the bundled imitation of that provider's API is started
in this process on a free loopback port, with its state in a file beside the database, and the
provider is pointed at it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plusjeklas_tui.config import PluginSettings, Settings
from plusjeklas_tui.plugins import PluginSet, _describe, discover, provider_config
from plusjeklas_tui.providers import Provider

if TYPE_CHECKING:
    from plusjeklas_tui.testing.imitation import Imitation

log = logging.getLogger(__name__)


@dataclass
class Providers:
    plugin_set: PluginSet
    available: dict[str, Provider] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    imitations: list[Imitation] = field(default_factory=list)

    def chosen(self, names: list[str] | None = None) -> list[Provider]:
        if not names:
            return list(self.available.values())
        return [self.available[name] for name in names if name in self.available]

    def close(self) -> None:
        for provider in self.available.values():
            try:
                provider.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", provider.info.name, _describe(exc))
        for imitation in self.imitations:
            imitation.stop()
        self.available.clear()
        self.imitations.clear()

    def __enter__(self) -> Providers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def imitation_state_path(settings: Settings, name: str) -> Path:
    """Where a demo keeps what its imitation of ``name`` holds: beside the database file."""
    return settings.base_dir / f"{name}-imitation.json"


def open_providers(settings: Settings, plugin_set: PluginSet | None = None) -> Providers:
    plugin_set = plugin_set or discover()
    providers = Providers(plugin_set=plugin_set)
    for entry in plugin_set.enabled(settings):
        table = settings.plugins.get(entry.name, PluginSettings())
        overrides: dict[str, Any] = {}
        try:
            if table.imitation:
                imitation = _start_imitation(settings, entry.name)
                providers.imitations.append(imitation)
                overrides = {
                    "base_url": _imitation_base_url(entry.name, imitation),
                    "api_key": imitation.api_key,
                }
            config = provider_config(entry.name, table, **overrides)
            providers.available[entry.name] = entry.cls(config)
        except Exception as exc:
            providers.problems[entry.name] = _describe(exc)
    for name, table in settings.plugins.items():
        if table.enabled and name not in plugin_set.providers:
            providers.problems.setdefault(
                name, "enabled in the configuration, but no plugin for it"
            )
    return providers


def _start_imitation(settings: Settings, name: str) -> Imitation:
    from plusjeklas_tui.testing import demo_providers  # only demo configurations pay for it

    return demo_providers.start(name, imitation_state_path(settings, name))


def _imitation_base_url(name: str, imitation: Imitation) -> str:
    from plusjeklas_tui.testing import demo_providers

    return demo_providers.base_url(name, imitation)
