"""Delivering deletion tasks from the app: one run (after a sweep, an erasure, on request) and
the background loop, both through the app's providers (:meth:`PlusjeklasApp.provider_runtime`).

Everything here blocks and runs in worker threads; nothing writes to the terminal. The outcome
is put in words from the catalogue for a notification (provider texts stay plain text: the
caller shows them with ``markup=False``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plusjeklas_tui.tui.i18n import t

if TYPE_CHECKING:
    from plusjeklas_tui.services.deletions import RunReport, TaskResult

BACKGROUND_RETRY_SECONDS = 60.0
"""After the background loop fails (the database went away), wait this long and start again."""


def deliver_once(
    app: Any,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Deliver every task due now to the available providers; *progress(done, total)* after
    each attempt (total: the tasks due at the start)."""
    from plusjeklas_tui.services import deletions

    runtime = app.provider_runtime()
    engine = app.context.engine
    total = sum(deletions.due_counts(engine).values())
    done = 0
    lock = threading.Lock()

    def on_result(result: TaskResult) -> None:
        nonlocal done
        with lock:
            done += 1
            count = done
        if progress is not None:
            progress(count, max(total, count))

    if progress is not None:
        progress(0, total)
    return deletions.run_once(
        engine,
        runtime.available,
        problems=runtime.problems,
        cancel=cancel,
        on_result=on_result,
    )


def describe_run(report: RunReport) -> tuple[str, bool]:
    """The run in one sentence, and whether it went wrong (something failed or waits)."""
    if not report.providers:
        return t("deletions.delivered.nothing"), False
    text = t(
        "deletions.delivered",
        done=report.done,
        failed=report.failed,
        waiting=report.not_attempted,
    )
    reasons = [
        f"{name}: {reason}"
        for name, result in sorted(report.providers.items())
        for reason in ([result.reason] if result.reason else []) + result.errors[:1]
    ]
    if reasons:
        text += " — " + "; ".join(reasons)
    return text, not report.ok


def run_in_background(app: Any, cancel: threading.Event) -> None:
    """Deliver tasks whenever they fall due, until *cancel* is set (the app's exit).

    The providers are built once (a demo starts its imitations here, off the UI thread).
    A failure (the database locked or gone) waits and starts again: the app shows database
    trouble itself, and this loop must never end the app or write to its terminal.
    """
    from plusjeklas_tui.services import deletions

    while not cancel.is_set():
        try:
            runtime = app.provider_runtime()
            if not runtime.available:
                return  # nothing this process can deliver to; the screens say why
            deletions.run_forever(
                app.context.engine,
                runtime.available,
                cancel=cancel,
                problems=runtime.problems,
            )
        except Exception:  # see the docstring
            cancel.wait(BACKGROUND_RETRY_SECONDS)
