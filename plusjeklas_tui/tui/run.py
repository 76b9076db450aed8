"""Start the staff app on an opened context (imported lazily: Textual costs start-up time)."""

from __future__ import annotations

from plusjeklas_tui.context import AppContext


def run_app(context: AppContext) -> int:
    from plusjeklas_tui.tui.app import PlusjeklasApp

    app = PlusjeklasApp(context)
    app.run()
    return app.return_code or 0
