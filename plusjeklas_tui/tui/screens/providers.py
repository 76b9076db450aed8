"""The Providers screen: each provider's state, its sync runs, and a sync with progress.

`s` syncs the highlighted provider, `S` all of them; a progress bar per provider counts pages as
they are applied; Escape stops after the current page (the next sync resumes there). The sync runs
in a worker thread (:mod:`plusjeklas_tui.services.sync`); this screen only shows what it reports.
Everything a provider said (its error texts) is shown as plain text, never as markup.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, ProgressBar

from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter

if TYPE_CHECKING:
    from plusjeklas_tui.services.sync import SyncProgress, SyncReport

SYNC_ACTIONS = frozenset({"sync_one", "sync_all"})


def _when(value: object) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else "—"  # type: ignore[attr-defined]


class ProvidersScreen(Screen[None]):
    BINDINGS: ClassVar = [
        Binding("s", "sync_one", "providers.sync_one", id="sync-one"),
        Binding("S", "sync_all", "providers.sync_all", id="sync-all"),
        Binding("escape", "cancel_sync", "providers.cancel", id="cancel-sync"),
    ]

    def __init__(self) -> None:
        super().__init__(id="providers")
        translate_bindings(self)
        self.cancel: threading.Event | None = None
        self.names: list[str] = []
        self.available: list[str] = []
        self.progress_widgets: dict[str, tuple[Label, ProgressBar]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="providers-body"):
            yield Label(t("providers.title"), classes="panel-title", markup=False)
            yield DataTable(id="providers-table", cursor_type="row", zebra_stripes=False)
            yield Vertical(id="sync-progress")
            yield Label(t("providers.runs"), classes="panel-title", markup=False)
            yield DataTable(id="runs-table", cursor_type="row")
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#providers-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(
            *(
                t(key)
                for key in (
                    "providers.col.name",
                    "providers.col.kind",
                    "providers.col.enabled",
                    "providers.col.last_sync",
                    "providers.col.result",
                    "providers.col.linked",
                    "providers.col.failures",
                    "providers.col.reason",
                )
            )
        )
        self.query_one("#runs-table", DataTable).add_columns(
            *(
                t(key)
                for key in (
                    "providers.col.started",
                    "providers.col.name",
                    "providers.col.actor",
                    "providers.col.result",
                    "providers.col.fetched",
                    "providers.col.applied",
                    "providers.col.unknown",
                    "providers.col.pushed",
                    "providers.col.reason",
                )
            )
        )
        self.table.focus()
        self.refresh_data()

    # --- keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SYNC_ACTIONS:
            if not self.app.context.staff.can(Permission.EDIT):  # type: ignore[attr-defined]
                return False
            return None if self.cancel is not None else True
        if action == "cancel_sync":
            return self.cancel is not None
        return True

    def action_sync_one(self) -> None:
        if not self.names:
            return
        row = self.table.cursor_row
        if 0 <= row < len(self.names):
            self.start_sync([self.names[row]])

    def action_sync_all(self) -> None:
        self.start_sync([])

    def action_cancel_sync(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.notify(t("providers.stopping"), markup=False)

    # --- data ----------------------------------------------------------------------------

    def refresh_data(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="providers-load")
    def load(self) -> None:
        from plusjeklas_tui.config import PluginSettings
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import sync

        try:
            runtime = self.app.provider_runtime()  # type: ignore[attr-defined]
            settings = self.app.context.settings  # type: ignore[attr-defined]
            entries = runtime.plugin_set.providers
            names = sorted(set(entries) | set(runtime.problems))
            with session_scope(self.app.context.engine) as session:  # type: ignore[attr-defined]
                summaries = {s.provider: s for s in sync.summaries(session, names)}
                runs = sync.recent_runs(session, 30)
                run_rows = [
                    (
                        _when(run.started_at),
                        run.provider,
                        run.actor,
                        t(f"providers.result.{run.state}"),
                        str(run.fetched),
                        str(run.applied),
                        str(run.unknown),
                        str(run.pushed),
                        run.error or "",
                    )
                    for run in runs
                ]
        except Exception as error:
            self.app.call_from_thread(self.app.report_error, error)  # type: ignore[attr-defined]
            return
        rows = []
        for name in names:
            entry = entries.get(name)
            summary = summaries[name]
            enabled = settings.plugins.get(name, PluginSettings()).enabled
            reason = runtime.problems.get(name) or summary.last_error or ""
            rows.append(
                (
                    entry.info.title if entry else name,
                    t(f"providers.kind.{entry.info.kind.value}") if entry else "?",
                    t("providers.yes") if enabled else t("providers.no"),
                    _when(summary.last_finished_at),
                    t(f"providers.result.{summary.last_result}") if summary.last_result else "—",
                    str(summary.linked),
                    str(summary.failures_total),
                    reason,
                )
            )
        available = [name for name in names if name in runtime.available]
        self.app.call_from_thread(self.show, names, available, rows, run_rows)

    def show(
        self,
        names: list[str],
        available: list[str],
        rows: list[tuple[str, ...]],
        run_rows: list[tuple[str, ...]],
    ) -> None:
        if not self.is_attached:
            return
        self.names = names
        self.available = available
        table = self.table
        cursor = table.cursor_row
        table.clear()
        for name, row in zip(names, rows, strict=True):
            table.add_row(*(Text(cell) for cell in row), key=name)
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
        runs = self.query_one("#runs-table", DataTable)
        runs.clear()
        for row in run_rows:
            runs.add_row(*(Text(cell) for cell in row))
        if not names:
            self.notify(t("providers.none"), markup=False)

    # --- sync ----------------------------------------------------------------------------

    def start_sync(self, names: list[str]) -> None:
        if self.cancel is not None:
            return
        self.cancel = threading.Event()
        progress = self.query_one("#sync-progress", Vertical)
        progress.remove_children()
        self.progress_widgets = {}
        self.refresh_bindings()
        self.run_sync(names, self.cancel)

    @work(thread=True, exclusive=True, group="providers-sync")
    def run_sync(self, names: list[str], cancel: threading.Event) -> None:
        from plusjeklas_tui.services import sync

        app = self.app
        reports: list[SyncReport] = []
        error: BaseException | None = None
        try:
            runtime = app.provider_runtime()  # type: ignore[attr-defined]
            unusable = [name for name in names if name not in runtime.available]
            if unusable:
                raise PlusjeklasError(
                    t(
                        "providers.unusable",
                        name=unusable[0],
                        reason=runtime.problems.get(unusable[0], "?"),
                    )
                )
            context = app.context  # type: ignore[attr-defined]
            reports = sync.sync(
                context.engine,
                runtime.chosen(names),
                context.staff,
                context.settings.consent_purposes,
                cancel=cancel,
                progress=lambda update: app.call_from_thread(self.show_progress, update),
            )
        except Exception as exc:
            error = exc
        app.call_from_thread(self.sync_finished, reports, error)

    def show_progress(self, update: SyncProgress) -> None:
        if not self.is_attached:
            return
        widgets = self.progress_widgets.get(update.provider)
        if widgets is None:
            widgets = (Label("", markup=False), ProgressBar(show_eta=False))
            self.progress_widgets[update.provider] = widgets
            self.query_one("#sync-progress", Vertical).mount(*widgets)
        label, bar = widgets
        bar.update(total=update.total, progress=update.done)
        label.update(
            Text(
                t(
                    "providers.progress",
                    name=update.provider,
                    phase=t(f"providers.phase.{update.phase}"),
                    done=update.done,
                    total=update.total if update.total is not None else "?",
                    applied=update.applied,
                    unknown=update.unknown,
                )
            )
        )

    def sync_finished(self, reports: list[SyncReport], error: BaseException | None) -> None:
        self.cancel = None
        if not self.is_attached:
            return
        self.refresh_bindings()
        if error is not None:
            self.app.report_error(error)  # type: ignore[attr-defined]
        for report in reports:
            message = t(
                f"providers.done.{report.state}",
                name=report.provider,
                fetched=report.fetched,
                applied=report.applied,
                unknown=report.unknown,
                pushed=report.pushed,
                reason=report.error or "",
            )
            severity = "error" if report.state == "failed" else "information"
            self.notify(Text(message), severity=severity, markup=False)  # type: ignore[arg-type]
        self.refresh_data()
