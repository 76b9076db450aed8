"""The staff app's tests run without its background deletion worker.

The app delivers deletion tasks in the background whenever a provider is enabled
(:attr:`PlusjeklasApp.deliver_deletions`); that worker runs until the app ends, so a test that
waits for every worker to finish would wait forever, and it would deliver tasks a test means
to inspect first. Tests of the worker itself switch it back on.
"""

from __future__ import annotations

import pytest

from plusjeklas_tui.tui.app import PlusjeklasApp


@pytest.fixture(autouse=True)
def no_background_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PlusjeklasApp, "deliver_deletions", False)
