"""The plugin manager: discovery through entry points, and calls that one plugin cannot break.

Bundled plugins (``plusjeklas_plugins.*``) are registered through the same ``plusjeklas``
entry-point group as third-party ones, by this project's own ``pyproject.toml``. A plugin that
fails to import is remembered with its reason and reported by ``plusjeklas plugins``; the app
goes on without it.

Provider calls go through :func:`call_with_deadline`: the call runs in a daemon thread and the
caller waits at most the deadline. A provider that hangs past it is abandoned (its thread
finishes or dies with the process) and the call is recorded as failed; the UI never waits on it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from plusjeklas_tui import hookspecs
from plusjeklas_tui.config import PluginSettings, Settings
from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.providers import (
    Provider,
    ProviderConfig,
    ProviderError,
    ProviderInfo,
    ProviderKind,
    check_base_url,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "plusjeklas"
ONLY_ENV = "PLUSJEKLAS_LOAD_PLUGINS"
"""Comma-separated entry-point names to load (as ``LLM_LOAD_PLUGINS``); unset loads all.

It narrows which code runs, for debugging a broken plugin; it grants nothing."""

DEADLINE_FACTOR = 3.0
"""A provider call may take this many times its per-request timeout (a few requests, a retry)."""

T = TypeVar("T")


@dataclass
class LoadFailure:
    name: str
    reason: str


@dataclass
class ProviderEntry:
    """A provider class found in a plugin, and how the configuration sees it."""

    cls: type[Provider]
    plugin: str
    version: str

    @property
    def info(self) -> ProviderInfo:
        return self.cls.info

    @property
    def name(self) -> str:
        return self.cls.info.name


@dataclass
class PluginSet:
    """What discovery found: the plugin manager, provider classes, and load failures."""

    manager: pluggy.PluginManager
    providers: dict[str, ProviderEntry] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)

    def enabled(self, settings: Settings) -> list[ProviderEntry]:
        return [
            entry
            for name, entry in sorted(self.providers.items())
            if settings.plugins.get(name, PluginSettings()).enabled
        ]


def _describe(exc: BaseException) -> str:
    """A readable reason for a plugin fault, without the exception's arguments' values.

    Exception text from third-party code may quote data it was given; only the type and, for
    our own errors, the message (which we write without personal data) are kept.
    """
    if isinstance(exc, ProviderError | ConfigError):
        return str(exc)
    if isinstance(exc, ImportError | ModuleNotFoundError) and exc.name:
        return f"{type(exc).__name__}: cannot import {exc.name}"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError in {os.path.basename(exc.filename or '?')} line {exc.lineno}"
    return f"{type(exc).__name__} raised inside the plugin"


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    only = os.environ.get(ONLY_ENV)
    wanted = {name.strip() for name in only.split(",")} if only is not None else None
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is None or entry_point.name in wanted:
            yield entry_point


def discover(extra: Iterable[tuple[str, object]] = ()) -> PluginSet:
    """Load every entry-point plugin (each on its own), then ``extra`` (name, module) pairs.

    ``extra`` is how tests put a deliberately broken plugin beside the real ones.
    """
    plugin_set = PluginSet(manager=new_manager())
    versions: dict[str, str] = {}
    for entry_point in _entry_points():
        try:
            module = entry_point.load()
            plugin_set.manager.register(module, name=entry_point.name)
        except Exception as exc:  # a broken plugin must not stop the app
            plugin_set.failures.append(LoadFailure(entry_point.name, _describe(exc)))
            log.warning("plugin %s failed to load: %s", entry_point.name, _describe(exc))
            continue
        dist_version = entry_point.dist.version if entry_point.dist else "?"
        versions[entry_point.name] = str(getattr(module, "__version__", dist_version))
    for name, module in extra:
        try:
            plugin_set.manager.register(module, name=name)
        except Exception as exc:
            plugin_set.failures.append(LoadFailure(name, _describe(exc)))
            continue
        versions[name] = str(getattr(module, "__version__", "?"))
    _collect_providers(plugin_set, versions)
    return plugin_set


def _collect_providers(plugin_set: PluginSet, versions: dict[str, str]) -> None:
    manager = plugin_set.manager
    for impl in manager.hook.register_providers.get_hookimpls():
        plugin_name = manager.get_name(impl.plugin) or "?"
        found: list[type[Provider]] = []

        def register(cls: type[Provider], found: list[type[Provider]] = found) -> None:
            found.append(cls)

        try:
            impl.function(*_arguments(impl, {"register": register}))
        except Exception as exc:
            plugin_set.failures.append(LoadFailure(plugin_name, _describe(exc)))
            continue
        for cls in found:
            problem = _check_provider_class(cls)
            if problem:
                plugin_set.failures.append(LoadFailure(plugin_name, problem))
                continue
            if cls.info.name in plugin_set.providers:
                plugin_set.failures.append(
                    LoadFailure(plugin_name, f"provider {cls.info.name!r} is already registered")
                )
                continue
            plugin_set.providers[cls.info.name] = ProviderEntry(
                cls=cls, plugin=plugin_name, version=versions.get(plugin_name, "?")
            )


def _arguments(impl: Any, kwargs: dict[str, Any]) -> list[Any]:
    """The positional arguments an implementation asks for (pluggy lets it take a subset)."""
    return [kwargs[name] for name in impl.argnames]


def _check_provider_class(cls: object) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        return f"registered {type(cls).__name__}, not a Provider subclass"
    info = getattr(cls, "info", None)
    if not isinstance(info, ProviderInfo):
        return f"{cls.__name__}.info is not a ProviderInfo"
    if not isinstance(info.kind, ProviderKind):
        return f"{cls.__name__}.info.kind is not one of newsletter, payment, analytics"
    return None


# --- building providers ------------------------------------------------------------------------


def provider_config(
    name: str, settings: PluginSettings, *, base_url: str | None = None, api_key: str | None = None
) -> ProviderConfig:
    """Resolve a ``[plugins.<name>]`` table: the API key from its environment variable, the
    address checked for HTTPS. ``base_url``/``api_key`` override both (the demo's imitations)."""
    url = base_url or settings.base_url
    if url is not None:
        url = check_base_url(url, name)
    key = api_key
    if key is None and settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ConfigError(
                f"plugins.{name}.api_key_env names the environment variable "
                f"{settings.api_key_env}, but it is not set"
            )
    options = dict(settings.model_extra or {})
    return ProviderConfig(
        name=name,
        base_url=url,
        api_key=key,
        timeout_seconds=settings.timeout_seconds,
        options=options,
    )


# --- isolated calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallOutcome:
    """How one provider call ended. ``reason`` is readable and holds no personal data."""

    ok: bool
    value: Any = None
    reason: str = ""
    transient: bool = False
    timed_out: bool = False


def call_with_deadline(
    func: Callable[..., T],
    *args: Any,
    deadline_seconds: float,
    expect: type | tuple[type, ...] | None = None,
    what: str = "call",
) -> CallOutcome:
    """Run ``func(*args)`` in a daemon thread; give up after ``deadline_seconds``.

    Any exception, a hang, or a value that is not an instance of ``expect`` becomes a failed
    :class:`CallOutcome` with a readable reason.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = func(*args)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"plusjeklas-{what}", daemon=True)
    thread.start()
    if not done.wait(deadline_seconds):
        return CallOutcome(
            ok=False,
            reason=f"{what} did not answer within {deadline_seconds:g} s",
            transient=True,
            timed_out=True,
        )
    if "error" in box:
        exc = box["error"]
        transient = isinstance(exc, ProviderError) and exc.transient
        return CallOutcome(ok=False, reason=_describe(exc), transient=transient)
    value = box.get("value")
    if expect is not None and not isinstance(value, expect):
        return CallOutcome(
            ok=False, reason=f"{what} returned {type(value).__name__}, which is not expected"
        )
    return CallOutcome(ok=True, value=value)


def deadline_for(provider: Provider) -> float:
    return provider.config.timeout_seconds * DEADLINE_FACTOR


def notify(plugin_set: PluginSet, hook_name: str, **kwargs: Any) -> list[tuple[str, str]]:
    """Tell every plugin about an event, one implementation at a time.

    Returns (plugin, reason) for each implementation that failed or overran; the others still
    ran. Events must be quick, so the deadline is short.
    """
    failures: list[tuple[str, str]] = []
    hook = getattr(plugin_set.manager.hook, hook_name)
    for impl in hook.get_hookimpls():
        name = plugin_set.manager.get_name(impl.plugin) or "?"
        outcome = call_with_deadline(
            impl.function, *_arguments(impl, kwargs), deadline_seconds=2.0, what=hook_name
        )
        if not outcome.ok:
            failures.append((name, outcome.reason))
            log.warning("plugin %s failed on %s: %s", name, hook_name, outcome.reason)
    return failures
