"""Deliberately broken provider plugins, registered beside the real ones to prove isolation.

Each one fails differently: raises (with an e-mail address in its message, which must not reach
staff), hangs past its deadline, returns the wrong type, or fails while registering.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.providers import (
    Change,
    ChangeOutcome,
    ErasureOutcome,
    Health,
    ProcessorDetails,
    Provider,
    ProviderInfo,
    ProviderKind,
    Subject,
    SyncPage,
)

RELEASE = threading.Event()
"""Set at the end of a test so hanging threads finish."""


def _info(name: str) -> ProviderInfo:
    return ProviderInfo(
        name=name,
        kind=ProviderKind.NEWSLETTER,
        title=name.title(),
        processor=ProcessorDetails("Broken B.V.", "NL", ("e-mail address",), "none"),
        purposes=("newsletter",),
    )


class _Base(Provider):
    def health(self) -> Health:
        return Health(True)

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        return iter(())

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        return [ChangeOutcome(change, True) for change in changes]

    def erase(self, subject: Subject) -> ErasureOutcome:
        raise NotImplementedError

    def verify_erased(self, subject: Subject) -> bool | None:
        return None

    def export(self, subject: Subject) -> dict[str, Any]:
        return {}


class Raises(_Base):
    info = _info("raises")

    def health(self) -> Health:
        raise RuntimeError("connection refused for piet@example.nl")

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        raise RuntimeError("boom for piet@example.nl")

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        raise ValueError("cannot push piet@example.nl")


class Hangs(_Base):
    info = _info("hangs")

    def health(self) -> Health:
        RELEASE.wait(60)
        return Health(True)

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        RELEASE.wait(60)
        yield SyncPage([], None)


class Garbage(_Base):
    info = _info("garbage")

    def health(self) -> Health:
        return "fine"  # type: ignore[return-value]

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        yield {"members": []}  # type: ignore[misc]

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        return []


def module(name: str, *providers: type[Provider]) -> types.ModuleType:
    """A plugin module registering ``providers`` (what an entry point would load)."""
    plugin = types.ModuleType(name)

    @hookimpl
    def register_providers(register: Any) -> None:
        for cls in providers:
            register(cls)

    plugin.register_providers = register_providers  # type: ignore[attr-defined]
    plugin.__version__ = "0.0.1"  # type: ignore[attr-defined]
    return plugin


def failing_registration() -> types.ModuleType:
    plugin = types.ModuleType("fails_to_register")

    @hookimpl
    def register_providers(register: Any) -> None:
        raise RuntimeError("registration failed")

    plugin.register_providers = register_providers  # type: ignore[attr-defined]
    return plugin


def wrong_registration() -> types.ModuleType:
    plugin = types.ModuleType("registers_garbage")

    @hookimpl
    def register_providers(register: Any) -> None:
        register(object)

    plugin.register_providers = register_providers  # type: ignore[attr-defined]
    return plugin


BROKEN = [
    ("raises", module("raises", Raises)),
    ("hangs", module("hangs", Hangs)),
    ("garbage", module("garbage", Garbage)),
]
