"""The home screen: subscriptions, retention, consent, providers, deletions and requests.

Every figure is a :class:`Tile` that opens the list it summarises, already filtered. The
figures are computed by :mod:`plusjeklas_tui.services.dashboard` in a worker thread, so a slow
database never freezes the screen.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Label

from plusjeklas_tui.services import dashboard
from plusjeklas_tui.services.dashboard import DashboardStats
from plusjeklas_tui.tui.database import (
    check_database,
    database_message,
    database_problem,
    forget_connections,
)
from plusjeklas_tui.tui.filters import OrganisationFilter
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.month_chart import MonthChart
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.tile import Tile

if TYPE_CHECKING:
    from plusjeklas_tui.services import office_summary, sync

STATUSES = ("trial", "active", "cancelled", "ended")
RETENTION = (
    ("overdue", "dashboard.retention.overdue"),
    ("soon", "dashboard.retention.due30"),
    ("near", "dashboard.retention.due90"),
)


class DashboardScreen(Screen[None]):
    BINDINGS = []  # noqa: RUF012 - navigation keys live on the app

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self._failing = False
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="dashboard-problem", markup=False)
        with Horizontal(id="dashboard-columns"):
            with VerticalScroll(classes="dashboard-column"):
                yield from self._left_column()
            with VerticalScroll(classes="dashboard-column"):
                yield from self._right_column()
        yield QuietFooter()

    def _left_column(self) -> ComposeResult:
        with Vertical(classes="panel", id="panel-subscriptions"):
            yield Label(t("dashboard.subscriptions"), classes="panel-title", markup=False)
            for status in STATUSES:
                yield Tile(
                    t(f"dashboard.status.{status}"),
                    filter=OrganisationFilter(status=status),
                    id=f"tile-status-{status}",
                )
        with Vertical(classes="panel", id="panel-consent"):
            yield Label(t("dashboard.consent"), classes="panel-title", markup=False)
            yield Tile(t("dashboard.consent.granted"), target="people", id="tile-consent-granted")
            yield Tile(
                t("dashboard.consent.withdrawn"), target="people", id="tile-consent-withdrawn"
            )
        with Vertical(classes="panel", id="panel-providers"):
            yield Label(t("dashboard.providers"), classes="panel-title", markup=False)
            yield from self._provider_tiles()
            yield Label(t("dashboard.deletions"), classes="panel-title", markup=False)
            yield Tile(
                t("dashboard.deletions.pending"), target="deletions", id="tile-deletions-pending"
            )
            yield Tile(
                t("dashboard.deletions.failed"), target="deletions", id="tile-deletions-failed"
            )
        with Vertical(classes="panel", id="panel-office"):
            yield Label(t("dashboard.office"), classes="panel-title", markup=False)
            yield Tile(t("dashboard.requests.open"), target="requests", id="tile-requests-open")
            yield Tile(
                t("dashboard.requests.overdue"), target="requests", id="tile-requests-overdue"
            )
            yield Tile(t("dashboard.breaches.open"), target="breaches", id="tile-breaches-open")
            yield Tile(t("dashboard.feedback"), target="feedback", id="tile-feedback")
            yield Tile(t("dashboard.promises.never"), target="audit", id="tile-promises")

    def enabled_providers(self) -> list[str]:
        plugins = self.app.context.settings.plugins  # type: ignore[attr-defined]
        return sorted(name for name, table in plugins.items() if table.enabled)

    def _provider_tiles(self) -> ComposeResult:
        names = self.enabled_providers()
        if not names:
            yield Label(t("dashboard.providers.none"), classes="muted", markup=False)
            return
        for name in names:
            yield Tile(name, target="providers", id=f"tile-provider-{name}")
        yield Tile(t("dashboard.payment_failed"), target="providers", id="tile-payment-failed")

    def _right_column(self) -> ComposeResult:
        with Vertical(classes="panel", id="panel-retention"):
            yield Label(t("dashboard.retention"), classes="panel-title", markup=False)
            for band, key in RETENTION:
                yield Tile(
                    t(key), filter=OrganisationFilter(urgency=band), id=f"tile-retention-{band}"
                )
        with Vertical(classes="panel", id="panel-chart"):
            yield Label(t("dashboard.chart"), classes="panel-title", markup=False)
            yield MonthChart(id="month-chart")

    OFFICE_REFRESH_SECONDS = 60.0
    """The privacy office figures change by hand, not by the minute, and the feedback count
    reads every ended subscription: refreshed at this pace (and on Ctrl+R), not every 5 s."""

    def on_mount(self) -> None:
        self.query(Tile).first().focus()
        self._office_loaded = False
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._periodic_refresh)
        self.set_interval(self.OFFICE_REFRESH_SECONDS, self.load_office)

    def _periodic_refresh(self) -> None:
        self.load_stats()
        self.load_deletions()
        if self.enabled_providers():
            self.load_providers()

    def refresh_data(self) -> None:
        """Ctrl+R (and the first show): every figure. The office figures wait for the main
        figures the first time, so they never slow the dashboard's first figures down."""
        self._periodic_refresh()
        if self._office_loaded:
            self.load_office()

    @work(thread=True, exclusive=True, group="dashboard-office", exit_on_error=False)
    def load_office(self) -> None:
        """Open requests, breach countdown, feedback to ask, last promise audit."""
        import datetime as dt

        from plusjeklas_tui.services import office_summary

        app: Any = self.app
        try:
            check_database(app.context.engine)
            summary = office_summary.collect(
                app.context.engine,
                app.today(),
                dt.datetime.now(dt.UTC),
                app.context.settings.retention,
            )
        except Exception:
            return  # the figures above report database trouble; these stay as they were
        with contextlib.suppress(RuntimeError):  # "App is not running": it has ended
            app.call_from_thread(self.show_office, summary)

    def show_office(self, summary: office_summary.OfficeSummary) -> None:
        if not self.is_attached or summary == getattr(self, "office", None):
            return  # unchanged: nothing to redraw
        self.office = summary
        requests = summary.requests
        tile = self.query_one("#tile-requests-open", Tile)
        if requests is not None and requests.next_days_left is not None:
            tile.label = t("dashboard.requests.open_next", days=requests.next_days_left)
        else:
            tile.label = t("dashboard.requests.open")
        tile.set_value(None if requests is None else requests.open)
        self.query_one("#tile-requests-overdue", Tile).set_value(
            None if requests is None else requests.overdue
        )
        breaches = summary.breaches
        tile = self.query_one("#tile-breaches-open", Tile)
        left = None if breaches is None else breaches.next_time_left
        if left is None:
            tile.label = t("dashboard.breaches.open")
        elif left.total_seconds() <= 0:
            tile.label = t("dashboard.breaches.late")
        else:
            minutes = int(left.total_seconds() // 60)
            tile.label = t("dashboard.breaches.left", hours=minutes // 60, minutes=minutes % 60)
        tile.set_value(None if breaches is None else breaches.open)
        self.query_one("#tile-feedback", Tile).set_value(summary.feedback_open)
        tile = self.query_one("#tile-promises", Tile)
        promises = summary.promises
        if promises is None:
            tile.label = t("dashboard.promises.never")
            tile.set_value(None)
        else:
            when = promises.ran_at.astimezone().strftime("%d-%m %H:%M")
            key = "dashboard.promises.passed" if promises.passed else "dashboard.promises.failed"
            tile.label = t(key, when=when)
            tile.set_value(promises.failures)

    @work(thread=True, exclusive=True, group="dashboard-providers")
    def load_providers(self) -> None:
        """Last sync, result and error count per enabled provider, from the database only (the
        dashboard never starts a provider or calls one)."""
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import sync

        try:
            with session_scope(self.app.context.engine) as session:  # type: ignore[attr-defined]
                summaries = sync.summaries(session, self.enabled_providers())
                failed = sync.failed_payments(session)
        except Exception:
            return  # the figures above report database trouble; these stay as they were
        self.app.call_from_thread(self.show_providers, summaries, failed)

    @work(thread=True, exclusive=True, group="dashboard-deletions", exit_on_error=False)
    def load_deletions(self) -> None:
        """Pending and failed deletion tasks, counted in the database (no provider is called)."""
        from plusjeklas_tui.services.deletions import task_counts

        app: Any = self.app
        try:
            check_database(app.context.engine)  # never open (and so create) a missing file
            counts = task_counts(app.context.engine)
        except Exception:
            return  # the figures above report database trouble; these stay as they were
        with contextlib.suppress(RuntimeError):  # "App is not running": it has ended
            app.call_from_thread(self.show_deletions, counts.pending, counts.failed)

    def show_deletions(self, pending: int, failed: int) -> None:
        if not self.is_attached or (pending, failed) == getattr(self, "deletion_counts", None):
            return  # unchanged: nothing to redraw
        self.deletion_counts = (pending, failed)
        self.query_one("#tile-deletions-pending", Tile).set_value(pending)
        self.query_one("#tile-deletions-failed", Tile).set_value(failed)

    def show_providers(self, summaries: list[sync.ProviderSummary], failed: int) -> None:
        if not self.is_attached:
            return
        for summary in summaries:
            tile = self.query_one(f"#tile-provider-{summary.provider}", Tile)
            result = summary.last_result
            tile.label = t(
                "dashboard.provider.line",
                name=summary.provider,
                result=t(f"providers.result.{result}") if result else "—",
                when=summary.last_finished_at.astimezone().strftime("%d-%m %H:%M")
                if summary.last_finished_at
                else t("dashboard.provider.never"),
                failures=summary.failures_total,
            )
            tile.set_value(summary.failures_in_a_row)
        self.query_one("#tile-payment-failed", Tile).set_value(failed)

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def load_stats(self) -> None:
        """The figures, after checking the database is still the one this version knows
        (another version may have migrated it while the app was open)."""
        app: Any = self.app
        engine = app.context.engine
        try:
            check_database(engine)
            stats = dashboard.collect(engine, app.retention_rule, app.today())
        except Exception as error:  # the dashboard stays up; the next refresh tries again
            if database_problem(error) is not None:
                forget_connections(engine)
            with contextlib.suppress(RuntimeError):  # "App is not running": it has ended
                app.call_from_thread(self.stats_failed, error)
            return
        with contextlib.suppress(RuntimeError):
            app.call_from_thread(self.show_stats, stats)

    def stats_failed(self, error: Exception) -> None:
        """Say what is wrong above the tiles (they keep the last figures), and notify once."""
        if not self.is_attached:
            return
        problem = self.query_one("#dashboard-problem", Label)
        problem.update(Content(database_message(error) or t("dashboard.load_failed")))
        problem.add_class("-shown")
        if not self._failing:  # once, not again at every automatic refresh
            self._failing = True
            self.app.report_error(error)  # type: ignore[attr-defined]

    def show_stats(self, stats: DashboardStats) -> None:
        if not self.is_attached:  # the reload finished after the screen went away
            return
        if self._failing:  # the database is back
            self._failing = False
            self.query_one("#dashboard-problem", Label).remove_class("-shown")
        for status in STATUSES:
            self.query_one(f"#tile-status-{status}", Tile).set_value(
                stats.subscriptions_by_status.get(status, 0)
            )
        for band, value in (
            ("overdue", stats.overdue),
            ("soon", stats.due_within_30),
            ("near", stats.due_within_90),
        ):
            self.query_one(f"#tile-retention-{band}", Tile).set_value(value)
        self.query_one("#tile-consent-granted", Tile).set_value(stats.newsletter_granted_this_month)
        self.query_one("#tile-consent-withdrawn", Tile).set_value(
            stats.newsletter_withdrawn_this_month
        )
        self.query_one(MonthChart).show([(m.month, m.count) for m in stats.due_per_month])
        self.stats = stats
        if not self._office_loaded:  # the first figures are on screen: now the office's
            self._office_loaded = True
            self.load_office()
