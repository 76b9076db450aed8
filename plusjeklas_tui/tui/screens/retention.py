"""The Retention screen: the retention plan, and the sweep that carries it out.

It shows exactly what ``plusjeklas retention plan`` lists (:func:`services.retention.plan`):
per subject the school's BRIN and name, the rule, the last day it is kept, whether it is on
legal hold (and by whom), and the enabled providers holding a copy. ``n`` adds what falls due
within :attr:`RetentionScreen.window_days` days.

An admin (the ``sweep`` permission) presses ``s`` and types the number of organisations to be
deleted, as the CLI asks; a wrong number deletes nothing. The sweep runs in a worker thread
with a progress bar (subjects erased / due), then delivers the new deletion tasks to the
providers (one :func:`services.deletions.run_once`) with its own count, and says how both
went. Viewers and editors do not see the key, and the service refuses them anyway.

School names come from the database: plain text, control characters escaped.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, ProgressBar

from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import check_database
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

if TYPE_CHECKING:
    from plusjeklas_tui.services.deletions import RunReport
    from plusjeklas_tui.services.retention import PlanItem, RetentionPlan, SweepReport

WINDOW_DAYS = 30
COLUMNS = ("brin", "school", "rule", "deadline", "state", "providers")

PlanRow = tuple[str, tuple[str, ...]]
"""A row key and its cells, all plain strings."""


def plan_row(item: PlanItem, names: dict[int, str]) -> PlanRow:
    """One plan item as the table shows it: every word from the catalogue, data escaped."""
    none = t("retention.none")
    if item.on_hold:
        state = t("retention.state.hold", who=item.hold_set_by or "?")
    else:
        state = t("retention.state.due" if item.due else "retention.state.upcoming")
    name = names.get(item.organisation_id) if item.organisation_id is not None else None
    if item.kind != "organisation":  # a person or a payment record: say which, by id
        subject = t(f"retention.kind.{item.kind}", id=item.subject_id)
        name = f"{subject} · {name}" if name else subject
    cells = (
        item.brin or none,
        name or none,
        t(f"retention.rule.{item.rule}"),
        item.deadline.isoformat(),
        state,
        ", ".join(item.providers) or none,
    )
    return f"{item.kind}:{item.subject_id}", tuple(plain_text(cell) for cell in cells)


class RetentionScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sweep", "retention.sweep", id="retention.sweep"),
        Binding("n", "toggle_window", "retention.toggle_window", id="retention.toggle_window"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    RetentionScreen #retention-outcome {
        width: 100%;
        padding: 0 1;
        display: none;
    }
    RetentionScreen #retention-outcome.-shown {
        display: block;
    }
    RetentionScreen #retention-table {
        height: 1fr;
    }
    RetentionScreen #retention-progress {
        height: auto;
        display: none;
        padding: 0 1;
    }
    RetentionScreen #retention-progress.-shown {
        display: block;
    }
    """

    window_days: int = WINDOW_DAYS

    def __init__(self) -> None:
        super().__init__(id="retention")
        translate_bindings(self)
        self._relabel_toggle()
        self.within = False
        self.plan: RetentionPlan | None = None
        self.rows: list[PlanRow] | None = None
        self.sweeping = False
        self.last_sweep: SweepReport | None = None
        self.last_delivery: RunReport | None = None

    def _relabel_toggle(self) -> None:
        """The toggle's footer text names the window (catalogue text with a number)."""
        from dataclasses import replace

        bindings = self._bindings.key_to_bindings
        bindings["n"] = [
            replace(entry, description=t("retention.toggle_window", days=self.window_days))
            for entry in bindings["n"]
        ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("retention.title.now")), id="retention-title", classes="screen-title")
        yield Label(
            Content(t("retention.loading")), id="retention-summary", classes="screen-summary"
        )
        yield DataTable(id="retention-table", cursor_type="row")
        with Vertical(id="retention-progress"):
            yield Label("", id="retention-progress-label", markup=False)
            yield ProgressBar(id="retention-progress-bar", show_eta=False)
        yield Label("", id="retention-outcome", markup=False)
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#retention-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(t(f"retention.col.{key}") for key in COLUMNS))
        self.table.focus()
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def _reload_if_shown(self) -> None:
        if self.app.screen is self and not self.sweeping:
            self.refresh_data()

    # --- keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sweep":
            if not self.app.context.staff.can(Permission.SWEEP):  # type: ignore[attr-defined]
                return False
            if self.sweeping or self.plan is None or not self.plan.to_sweep:
                return None
            return True
        if action == "toggle_window":
            return None if self.sweeping else True
        return True

    def action_toggle_window(self) -> None:
        if self.sweeping:
            return
        self.within = not self.within
        key = "retention.title.within" if self.within else "retention.title.now"
        self.query_one("#retention-title", Label).update(Content(t(key, days=self.window_days)))
        self.refresh_data()

    def action_sweep(self) -> None:
        staff = self.app.context.staff  # type: ignore[attr-defined]
        if not staff.can(Permission.SWEEP):  # the key is hidden; refuse a call anyway
            from plusjeklas_tui.errors import PermissionDenied

            try:
                staff.require(Permission.SWEEP, "run a retention sweep")
            except PermissionDenied as error:
                self.app.report_error(error)  # type: ignore[attr-defined]
            return
        the_plan = self.plan
        if self.sweeping or the_plan is None:
            return
        if not the_plan.to_sweep:
            self.notify(t("retention.nothing_due"), markup=False)
            return

        from plusjeklas_tui.tui.screens.retention_modals import SweepConfirmScreen

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.start_sweep(the_plan)
            else:
                self.notify(t("retention.not_confirmed"), markup=False)

        self.app.push_screen(
            SweepConfirmScreen(len(the_plan.to_sweep), the_plan.organisations_to_sweep),
            answered,
        )

    # --- the plan ------------------------------------------------------------------------

    _load_failing = False

    def load_failed(self, error: BaseException) -> None:
        """Say what went wrong once, not at every automatic refresh; keep what is shown."""
        if self._load_failing:
            return
        self._load_failing = True
        self.app.report_error(error)  # type: ignore[attr-defined]

    def refresh_data(self) -> None:
        app: Any = self.app
        self.load(app, app.today(), self.window_days if self.within else 0)

    @work(thread=True, exclusive=True, group="retention-load")
    def load(self, app: Any, today: dt.date, within_days: int) -> None:
        from plusjeklas_tui.services import retention

        try:
            context = app.context
            check_database(context.engine)  # never open (and so create) a missing file
            the_plan = retention.plan(
                context.engine, context.settings, today, within_days=within_days
            )
            names = retention.school_names(
                context.engine,
                [i.organisation_id for i in the_plan.items if i.organisation_id is not None],
            )
            rows = [plan_row(item, names) for item in the_plan.items]
        except Exception as error:
            self._deliver(app, self.load_failed, error)
            return
        self._deliver(app, self.show_plan, the_plan, rows)

    @staticmethod
    def _deliver(app: Any, callback: Any, *args: Any) -> None:
        import contextlib

        with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
            app.call_from_thread(callback, *args)

    def show_plan(self, the_plan: RetentionPlan, rows: list[PlanRow]) -> None:
        """Show the plan; the table is rebuilt only when its rows changed (an idle screen
        sends nothing at the automatic refresh)."""
        self._load_failing = False
        if not self.is_attached:
            return
        self.plan = the_plan
        held = sum(1 for item in the_plan.items if item.on_hold)
        summary = t(
            "retention.summary",
            due=len(the_plan.to_sweep),
            organisations=the_plan.organisations_to_sweep,
            held=held,
            listed=len(the_plan.items),
        )
        if not the_plan.items:
            summary = t("retention.empty")
        self.query_one("#retention-summary", Label).update(Content(summary))
        if rows != self.rows:
            self.rows = rows
            table = self.table
            cursor = table.cursor_row
            table.clear()
            for key, cells in rows:
                table.add_row(*(Text(cell) for cell in cells), key=key)
            if rows:
                table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
        self.refresh_bindings()

    # --- the sweep -----------------------------------------------------------------------

    def start_sweep(self, the_plan: RetentionPlan) -> None:
        if self.sweeping:
            return
        self.sweeping = True
        self.query_one("#retention-progress").add_class("-shown")
        self.query_one("#retention-outcome").remove_class("-shown")
        self.show_progress("sweep", 0, len(the_plan.to_sweep))
        self.refresh_bindings()
        app: Any = self.app
        self.run_sweep(app, the_plan, app.today())

    @work(thread=True, exclusive=True, group="retention-sweep")
    def run_sweep(self, app: Any, the_plan: RetentionPlan, today: dt.date) -> None:
        from plusjeklas_tui.services import erasure, retention
        from plusjeklas_tui.tui.delivery import deliver_once

        context = app.context
        total = len(the_plan.to_sweep)
        done = 0
        report: SweepReport | None = None
        delivery: RunReport | None = None
        error: BaseException | None = None

        def erased(_line: str) -> None:
            nonlocal done
            done += 1
            self._deliver(app, self.show_progress, "sweep", done, total)

        try:
            runtime = app.provider_runtime()
            targets = erasure.provider_targets(context.settings, runtime.plugin_set)
            report = retention.sweep(
                context.engine,
                context.settings,
                context.staff,
                today,
                the_plan=the_plan,
                targets=targets,
                progress=erased,
            )
            if report.tasks:
                delivery = deliver_once(
                    app,
                    cancel=threading.Event(),
                    progress=lambda n, of: self._deliver(app, self.show_progress, "deliver", n, of),
                )
        except Exception as exc:
            error = exc
        self._deliver(app, self.sweep_finished, report, delivery, error)

    def show_progress(self, phase: str, done: int, total: int) -> None:
        if not self.is_attached:
            return
        self.query_one("#retention-progress-label", Label).update(
            Content(t(f"retention.progress.{phase}", done=done, total=total))
        )
        self.query_one("#retention-progress-bar", ProgressBar).update(
            total=max(total, 1), progress=done
        )

    def sweep_finished(
        self,
        report: SweepReport | None,
        delivery: RunReport | None,
        error: BaseException | None,
    ) -> None:
        from plusjeklas_tui.tui.delivery import describe_run

        self.sweeping = False
        self.last_sweep = report
        self.last_delivery = delivery
        if not self.is_attached:
            return
        self.query_one("#retention-progress").remove_class("-shown")
        lines = []
        failed = error is not None
        if report is not None:
            lines.append(
                t(
                    "retention.swept",
                    erased=len(report.actions),
                    skipped=len(report.skipped),
                    failed=len(report.failures),
                    tasks=report.tasks,
                )
            )
            lines += report.failures  # non-personal: the item and the kind of fault
            failed = failed or not report.ok
        if delivery is not None:
            text, bad = describe_run(delivery)
            lines.append(text)
            failed = failed or bad
        outcome = self.query_one("#retention-outcome", Label)
        outcome.update(Content("\n".join(plain_text(line) for line in lines)))
        outcome.set_class(bool(lines), "-shown")
        if error is not None:
            self.app.report_error(error)  # type: ignore[attr-defined]
        if lines:
            self.notify(
                Text("\n".join(lines)),  # type: ignore[arg-type]
                severity="warning" if failed else "information",
                markup=False,
            )
        self.refresh_data()
