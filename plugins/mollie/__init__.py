"""The Mollie payment provider plugin: customers, mandates, subscriptions and payments.

Registered through the ``plusjeklas`` entry-point group as ``plusjeklas_plugins.mollie``;
configured by ``[plugins.mollie]`` (``api_key_env``, ``base_url``, ``timeout_seconds``, and
``concurrency``: requests to Mollie at once, 1 to 25, default 10). See ``provider.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from plusjeklas_plugins.mollie.provider import MollieProvider

from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.providers import Provider

__version__ = "1.0.0"
__all__ = ["MollieProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(MollieProvider)
