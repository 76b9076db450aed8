"""The Breaches screen: the register with each open breach's 72-hour countdown, and a breach's
detail as the regulator's form asks it.

The countdown is not a ticking clock: the list reloads on the app's automatic refresh and shows
time left to the minute, and the table is redrawn only when a row changed, so an idle screen
sends at most one small update a minute (and nothing when no breach is open).

``n`` records a new breach (editors and admins), Enter opens the highlighted one. The detail
view offers ``e`` edit, ``r`` reported and ``x`` not reportable (editors and admins). Every text
from the register is shown as plain text, never markup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label

from plusjeklas_tui.services.breaches import LOCAL_TZ, split_duration
from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import check_database
from plusjeklas_tui.tui.i18n import language, t, translate_bindings
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

if TYPE_CHECKING:
    from plusjeklas_tui.services.breach_form import BreachForm as FilledForm
    from plusjeklas_tui.services.breaches import BreachRow

COLUMNS = ("id", "status", "discovered", "deadline", "left", "people", "summary")
SUMMARY_CELL = 30


def left_text(delta: dt.timedelta | None) -> str:
    """Time left to the minute ("nog 41 u 05 min" / "3 u 10 min te laat"); "–" when stopped."""
    if delta is None:
        return t("breaches.none")
    overdue, hours, minutes = split_duration(delta)
    key = "breaches.overdue" if overdue else "breaches.left"
    return t(key, hours=hours, minutes=f"{minutes:02d}")


def _local(moment: dt.datetime, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(LOCAL_TZ).strftime(pattern)


def breach_row(row: BreachRow) -> tuple[str, ...]:
    summary = row.summary
    if len(summary) > SUMMARY_CELL:
        summary = summary[: SUMMARY_CELL - 1] + "…"
    cells = (
        str(row.id),
        t(f"breaches.status.{row.status}"),
        _local(row.discovered_at),
        _local(row.deadline, "%d-%m %H:%M") if row.time_left is not None else t("breaches.none"),
        left_text(row.time_left),
        f"{row.people_min}–{row.people_max}",
        summary,
    )
    return tuple(plain_text(cell) for cell in cells)


def _deliver(app: Any, callback: Any, *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
        app.call_from_thread(callback, *args)


class BreachesScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_breach", "breaches.new", id="breaches.new"),
        Binding("enter", "open_breach", "breaches.open", id="breaches.open"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    BreachesScreen #breaches-summary.-overdue {
        color: $text-error;
        text-style: bold;
    }
    BreachesScreen #breaches-table {
        height: 1fr;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="breaches")
        translate_bindings(self)
        self.breach_ids: list[int] = []
        self.rows: list[tuple[str, ...]] | None = None
        self.summary_text = ""
        self._load_failing = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("breaches.title")), id="breaches-title", classes="screen-title")
        yield Label(Content(t("breaches.loading")), id="breaches-summary", classes="screen-summary")
        yield DataTable(id="breaches-table", cursor_type="row")
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#breaches-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(t(f"breaches.col.{key}") for key in COLUMNS))
        self.table.focus()
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        self.refresh_data()  # back from a breach or a form: show what changed

    def _reload_if_shown(self) -> None:
        if self.app.screen is self:
            self.refresh_data()

    # --- keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new_breach":
            return self.app.context.staff.can(Permission.EDIT)  # type: ignore[attr-defined]
        if action == "open_breach":
            return True if self.highlighted() is not None else None
        return True

    def highlighted(self) -> int | None:
        row = self.table.cursor_row
        return self.breach_ids[row] if 0 <= row < len(self.breach_ids) else None

    def action_new_breach(self) -> None:
        from plusjeklas_tui.tui.screens.breach_forms import BreachForm

        self.app.push_screen(BreachForm(), self._after_form)

    def _after_form(self, breach_id: int | None) -> None:
        if breach_id is not None:
            self.notify(t("breaches.saved", id=breach_id), markup=False)
            self.refresh_data()

    def action_open_breach(self) -> None:
        breach_id = self.highlighted()
        if breach_id is not None:
            self.app.push_screen(BreachDetailScreen(breach_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_breach()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    # --- data ----------------------------------------------------------------------------

    def refresh_data(self) -> None:
        self.load(self.app)

    @work(thread=True, exclusive=True, group="breaches-load")
    def load(self, app: Any) -> None:
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import breaches

        now = dt.datetime.now(dt.UTC)
        try:
            check_database(app.context.engine)  # never open (and so create) a missing file
            with session_scope(app.context.engine) as session:
                rows = breaches.list_breaches(session, app.context.staff, now)
        except Exception as error:
            _deliver(app, self.load_failed, error)
            return
        cells = [breach_row(row) for row in rows]
        _deliver(app, self.show_rows, rows, cells)

    def load_failed(self, error: BaseException) -> None:
        """Say what went wrong once, not at every automatic refresh; keep what is shown."""
        if self._load_failing:
            return
        self._load_failing = True
        self.app.report_error(error)  # type: ignore[attr-defined]

    def show_rows(self, rows: list[BreachRow], cells: list[tuple[str, ...]]) -> None:
        """Show the register; the table is rebuilt only when a row changed."""
        self._load_failing = False
        if not self.is_attached:
            return
        open_rows = [row for row in rows if row.time_left is not None]
        overdue = sum(1 for row in open_rows if row.time_left and row.time_left.total_seconds() < 0)
        summary = self.query_one("#breaches-summary", Label)
        text = (
            t("breaches.summary", open=len(open_rows), overdue=overdue, total=len(rows))
            if rows
            else t("breaches.empty")
        )
        if text != self.summary_text:  # an unchanged label is not sent again
            self.summary_text = text
            summary.update(Content(text))
        summary.set_class(overdue > 0, "-overdue")
        if cells != self.rows:
            self.rows = cells
            self.breach_ids = [row.id for row in rows]
            table = self.table
            cursor = table.cursor_row
            table.clear()
            for row, line in zip(rows, cells, strict=True):
                table.add_row(*(Text(cell) for cell in line), key=str(row.id))
            if cells:
                table.move_cursor(row=min(max(cursor, 0), len(cells) - 1))
        self.refresh_bindings()


@dataclass(frozen=True)
class DetailData:
    """What the detail view shows, read in a worker."""

    form: FilledForm
    values: dict[str, Any]
    version: int
    decided_by: str | None
    late_reason: str | None


class BreachDetailScreen(Screen[None]):
    """One breach, section by section as the regulator's form asks it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit", "breaches.edit", id="breaches.edit"),
        Binding("r", "report", "breaches.report", id="breaches.report"),
        Binding("x", "not_reportable", "breaches.not_reportable", id="breaches.not_reportable"),
        Binding("escape", "back", "nav.back", id="breaches.back", show=False),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    BreachDetailScreen #breach-title {
        width: 100%;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    BreachDetailScreen #breach-status {
        width: 100%;
        padding: 0 1;
    }
    BreachDetailScreen #breach-status.-overdue {
        color: $text-error;
        text-style: bold;
    }
    BreachDetailScreen #breach-body {
        height: 1fr;
        padding: 0 1;
    }
    BreachDetailScreen .breach-section {
        margin-top: 1;
        text-style: bold;
    }
    """

    def __init__(self, breach_id: int) -> None:
        super().__init__()
        translate_bindings(self)
        self.breach_id = breach_id
        self.data: DetailData | None = None
        self.shown: tuple[str, tuple[tuple[str, str], ...]] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("breaches.detail.title", id=self.breach_id)), id="breach-title")
        yield Label(Content(t("breaches.loading")), id="breach-status")
        yield VerticalScroll(id="breach-body")
        yield QuietFooter()

    def on_mount(self) -> None:
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        self.refresh_data()

    def _reload_if_shown(self) -> None:
        if self.app.screen is self:
            self.refresh_data()

    def refresh_data(self) -> None:
        self.load(self.app)

    @work(thread=True, exclusive=True, group="breach-load")
    def load(self, app: Any) -> None:
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import breach_form, breaches

        try:
            check_database(app.context.engine)
            with session_scope(app.context.engine) as session:
                breach = breaches.get_breach(session, app.context.staff, self.breach_id)
                data = DetailData(
                    form=breach_form.build_form(breach, app.context.settings),
                    values=breaches.values_of(breach),
                    version=breach.version,
                    decided_by=breach.decided_by,
                    late_reason=breach.late_reason,
                )
        except Exception as error:
            _deliver(app, app.report_error, error)
            return
        _deliver(app, self.show, data)

    def status_text(self, data: DetailData) -> str:
        form = data.form
        if form.status == "reported" and form.reported_at:
            when = _local(dt.datetime.fromisoformat(form.reported_at))
            return t("breaches.detail.status_reported", when=when, reference=form.ap_reference)
        if form.status == "not_reportable":
            return t(
                "breaches.detail.status_not_reportable",
                who=data.decided_by or "?",
                reason=form.not_reportable_reason or "",
            )
        deadline = form.answers["deadline"]
        return t(
            "breaches.detail.status_open",
            left=left_text(form.time_left),
            deadline=_local(deadline),
        )

    async def show(self, data: DetailData) -> None:
        """Show the breach; the body is rebuilt only when something in it changed."""
        from plusjeklas_tui.services.breach_form import SECTIONS, answer_text

        if not self.is_attached:
            return
        self.data = data
        lang = "nl" if language() == "nl" else "en"
        index = 0 if lang == "nl" else 1
        status = self.status_text(data)
        label = self.query_one("#breach-status", Label)
        if self.shown is None or self.shown[0] != status:
            label.update(Content(plain_text(status)))
        left = data.form.time_left
        label.set_class(left is not None and left.total_seconds() < 0, "-overdue")
        lines: list[tuple[str, str]] = []
        for _key, nl, en, questions in SECTIONS:
            lines.append(("section", (nl, en)[index]))
            for key, q_nl, q_en in questions:
                answer = answer_text(key, data.form.answers.get(key), data.form, lang)
                lines.append((key, f"{(q_nl, q_en)[index]}: {answer}"))
        lines.append(
            ("contact", t("breaches.detail.contact", address=data.form.contact_for_reports))
        )
        shown = (status, tuple(lines))
        if shown[1] != (self.shown[1] if self.shown else None):
            body = self.query_one("#breach-body", VerticalScroll)
            await body.remove_children()
            await body.mount_all(
                Label(
                    Content(plain_text(text)),
                    classes="breach-section" if key == "section" else "breach-line",
                    id=None if key == "section" else f"breach-{key}",
                )
                for key, text in lines
            )
        self.shown = shown
        self.refresh_bindings()

    # --- keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("edit", "report", "not_reportable"):
            if not self.app.context.staff.can(Permission.EDIT):  # type: ignore[attr-defined]
                return False
            if self.data is None:
                return None
            status = self.data.form.status
            if action == "report":
                return status != "reported"
            if action == "not_reportable":
                return status == "open"
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_edit(self) -> None:
        from plusjeklas_tui.tui.screens.breach_forms import BreachForm

        if self.data is not None:
            form = BreachForm(self.breach_id, self.data.values, self.data.version)
            self.app.push_screen(form, self._after_form)

    def action_report(self) -> None:
        from plusjeklas_tui.tui.screens.breach_forms import ReportForm

        if self.data is not None:
            self.app.push_screen(
                ReportForm(self.breach_id, self.data.late_reason), self._after_form
            )

    def action_not_reportable(self) -> None:
        from plusjeklas_tui.tui.screens.breach_forms import NotReportableForm

        self.app.push_screen(NotReportableForm(self.breach_id), self._after_form)

    def _after_form(self, breach_id: int | None) -> None:
        if breach_id is not None:
            self.notify(t("breaches.saved", id=breach_id), markup=False)
            self.refresh_data()
