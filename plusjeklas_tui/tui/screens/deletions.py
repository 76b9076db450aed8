"""The Deletions screen: erasures waiting to be delivered to the providers (the outbox).

One row per task, as ``plusjeklas deletions list`` shows them (:func:`services.deletions.
list_tasks`): provider, what it is about (by internal id), state, attempts, the next attempt and
the provider's last error (or why it cannot be delivered from here). Failed tasks are never
dropped; they stay here until a provider confirms.

``r`` (admins: the ``erase`` permission) makes the highlighted task due now
(:func:`services.deletions.retry`, audited); ``s`` (editors and admins) delivers everything due
now in a worker thread with a progress count; Escape stops it after the requests under way.
``t`` also lists the tasks already done. The list reloads every few seconds, redrawing only
when it changed.

Provider names and error texts come from the configuration and the providers: plain text.
"""

from __future__ import annotations

import contextlib
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

from plusjeklas_tui.services.deletions import TaskCounts, task_counts
from plusjeklas_tui.services.records import LOCAL_TZ
from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import check_database
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

if TYPE_CHECKING:
    from plusjeklas_tui.services.deletions import RunReport, TaskView

COLUMNS = ("provider", "subject", "state", "attempts", "next", "reason")
REASON_CELL = 24
"""The reason column is cut here (so the list fits 80 columns); the highlighted task's whole
reason, with its id, is shown under the list."""
LIST_LIMIT = 1_000
"""Tasks listed at most (the next to be tried first); the summary counts all of them."""


def task_state(task: TaskView) -> str:
    if task.state != "pending":
        return "done"
    if task.leased_by:
        return "busy"
    return "failed" if task.attempts > 0 else "pending"


def _when(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return t("retention.none")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment <= now:
        return t("deletions.now")
    return moment.astimezone(LOCAL_TZ).strftime("%d-%m %H:%M")  # backoff: days, not years


def task_row(task: TaskView, now: dt.datetime) -> tuple[str, ...]:
    state = task_state(task)
    reason = task.reason.replace("\n", " ")
    if len(reason) > REASON_CELL:
        reason = reason[: REASON_CELL - 1] + "…"
    cells = (
        task.provider,
        t(f"deletions.subject.{task.subject_type}", id=task.subject_id)
        if task.subject_type in ("organisation", "administrator")
        else f"{task.subject_type} #{task.subject_id}",
        t(f"deletions.state.{state}"),
        str(task.attempts),
        _when(task.next_attempt_at, now) if state != "done" else t("retention.none"),
        reason,
    )
    return tuple(plain_text(cell) for cell in cells)


class DeletionsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "deletions.retry", id="deletions.retry"),
        Binding("s", "deliver", "deletions.deliver", id="deletions.deliver"),
        Binding("t", "toggle_done", "deletions.toggle_done", id="deletions.toggle_done"),
        Binding("escape", "cancel_delivery", "deletions.cancel", id="deletions.cancel"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    DeletionsScreen #deletions-table {
        height: 1fr;
    }
    DeletionsScreen #deletions-detail {
        width: 100%;
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $panel;
    }
    DeletionsScreen #deletions-progress {
        height: auto;
        display: none;
        padding: 0 1;
    }
    DeletionsScreen #deletions-progress.-shown {
        display: block;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="deletions")
        translate_bindings(self)
        self.show_done = False
        self.tasks: list[TaskView] = []
        self.rows: list[tuple[str, ...]] | None = None
        self.cancel: threading.Event | None = None
        self.last_delivery: RunReport | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("deletions.title")), id="deletions-title", classes="screen-title")
        yield Label(
            Content(t("retention.loading")), id="deletions-summary", classes="screen-summary"
        )
        yield DataTable(id="deletions-table", cursor_type="row")
        yield Label("", id="deletions-detail", markup=False)
        with Vertical(id="deletions-progress"):
            yield Label("", id="deletions-progress-label", markup=False)
            yield ProgressBar(id="deletions-progress-bar", show_eta=False)
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#deletions-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(t(f"deletions.col.{key}") for key in COLUMNS))
        self.table.focus()
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def _reload_if_shown(self) -> None:
        if self.app.screen is self:
            self.refresh_data()

    # --- keys ----------------------------------------------------------------------------

    def highlighted(self) -> TaskView | None:
        row = self.table.cursor_row
        return self.tasks[row] if 0 <= row < len(self.tasks) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        staff = self.app.context.staff  # type: ignore[attr-defined]
        if action == "retry":
            if not staff.can(Permission.ERASE):
                return False
            task = self.highlighted()
            return True if task is not None and task.state == "pending" else None
        if action == "deliver":
            if not staff.can(Permission.EDIT):
                return False
            return None if self.cancel is not None else True
        if action == "cancel_delivery":
            return self.cancel is not None
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    def show_detail(self) -> None:
        """The highlighted task's whole reason under the list (the column is cut at 80)."""
        task = self.highlighted()
        text = ""
        if task is not None and task.reason:
            text = plain_text(
                t("deletions.detail", id=task.id, provider=task.provider, reason=task.reason)
            )
        self.query_one("#deletions-detail", Label).update(Content(text))

    def action_toggle_done(self) -> None:
        self.show_done = not self.show_done
        self.refresh_data()

    def action_retry(self) -> None:
        task = self.highlighted()
        if task is None:
            return
        app: Any = self.app
        self.run_retry(app, task.id)

    @work(thread=True, group="deletions-retry")
    def run_retry(self, app: Any, task_id: int) -> None:
        from plusjeklas_tui.services import deletions

        try:
            deletions.retry(app.context.engine, task_id, app.context.staff)
        except Exception as error:
            self._deliver(app, app.report_error, error)
            return
        self._deliver(app, self.retried, task_id)

    def retried(self, task_id: int) -> None:
        if not self.is_attached:
            return
        self.notify(t("deletions.retried", id=task_id), markup=False)
        self.refresh_data()

    def action_deliver(self) -> None:
        if self.cancel is not None:
            return
        if not self.app.context.staff.can(Permission.EDIT):  # type: ignore[attr-defined]
            return
        self.cancel = threading.Event()
        self.query_one("#deletions-progress").add_class("-shown")
        self.show_progress(0, 0)
        self.refresh_bindings()
        self.run_delivery(self.app, self.cancel)

    def action_cancel_delivery(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.notify(t("deletions.stopping"), markup=False)

    # --- data ----------------------------------------------------------------------------

    @staticmethod
    def _deliver(app: Any, callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
            app.call_from_thread(callback, *args)

    _load_failing = False

    def load_failed(self, error: BaseException) -> None:
        """Say what went wrong once, not at every automatic refresh; keep what is shown."""
        if self._load_failing:
            return
        self._load_failing = True
        self.app.report_error(error)  # type: ignore[attr-defined]

    def refresh_data(self) -> None:
        self.load(self.app, self.show_done)

    @work(thread=True, exclusive=True, group="deletions-load")
    def load(self, app: Any, include_done: bool) -> None:
        from plusjeklas_tui.services import deletions

        try:
            engine = app.context.engine
            check_database(engine)  # never open (and so create) a missing file
            runtime = app.provider_runtime()
            tasks = deletions.list_tasks(
                engine,
                include_done=include_done,
                available=list(runtime.available),
                problems=runtime.problems,
                limit=LIST_LIMIT,
            )
            counts = task_counts(engine)
        except Exception as error:
            self._deliver(app, self.load_failed, error)
            return
        now = dt.datetime.now(dt.UTC)
        rows = [task_row(task, now) for task in tasks]
        self._deliver(app, self.show_tasks, tasks, rows, counts)

    def show_tasks(
        self, tasks: list[TaskView], rows: list[tuple[str, ...]], counts: TaskCounts
    ) -> None:
        """Show the tasks; the table is rebuilt only when a row changed."""
        self._load_failing = False
        if not self.is_attached:
            return
        self.tasks = tasks
        summary = t(
            "deletions.summary", pending=counts.pending, failed=counts.failed, shown=len(rows)
        )
        if not rows:
            summary = t("deletions.empty")
        self.query_one("#deletions-summary", Label).update(Content(summary))
        if rows != self.rows:
            self.rows = rows
            table = self.table
            cursor = table.cursor_row
            table.clear()
            for task, cells in zip(tasks, rows, strict=True):
                table.add_row(*(Text(cell) for cell in cells), key=str(task.id))
            if rows:
                table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
            self.show_detail()
        self.refresh_bindings()

    # --- delivery ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="deletions-deliver")
    def run_delivery(self, app: Any, cancel: threading.Event) -> None:
        from plusjeklas_tui.tui.delivery import deliver_once

        report: RunReport | None = None
        error: BaseException | None = None
        try:
            report = deliver_once(
                app,
                cancel=cancel,
                progress=lambda done, total: self._deliver(app, self.show_progress, done, total),
            )
        except Exception as exc:
            error = exc
        self._deliver(app, self.delivery_finished, report, error)

    def show_progress(self, done: int, total: int) -> None:
        if not self.is_attached:
            return
        self.query_one("#deletions-progress-label", Label).update(
            Content(t("retention.progress.deliver", done=done, total=total))
        )
        self.query_one("#deletions-progress-bar", ProgressBar).update(
            total=max(total, 1), progress=done
        )

    def delivery_finished(self, report: RunReport | None, error: BaseException | None) -> None:
        from plusjeklas_tui.tui.delivery import describe_run

        self.cancel = None
        self.last_delivery = report
        if not self.is_attached:
            return
        self.query_one("#deletions-progress").remove_class("-shown")
        self.refresh_bindings()
        if error is not None:
            self.app.report_error(error)  # type: ignore[attr-defined]
        if report is not None:
            text, bad = describe_run(report)
            self.notify(
                Text(text),  # type: ignore[arg-type]
                severity="warning" if bad else "information",
                markup=False,
            )
        self.refresh_data()
