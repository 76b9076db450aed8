"""The Feedback screen: schools to ask how they look back on the lessons.

It shows what ``plusjeklas feedback list`` lists (:func:`services.feedback.feedback_list`): the
schools whose last subscription ended and whose retention deadline has not passed, not asked
yet or asked and awaiting an answer (``t`` adds the answered ones), with the day the
subscription ended, the last day the data is kept, how many administrators may be asked (the
others objected) and who marked it when. The list is paged in SQL (``[`` and ``]``).

Editors mark the highlighted school asked (``m``) or answered (``r``) in a small form that
requires a note; the form names who may be asked. Viewers do not see those keys, and the
service refuses them anyway. ``enter`` opens the school's record.

School and people's names come from the database: plain text, control characters escaped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label

from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import check_database
from plusjeklas_tui.tui.i18n import t, translate_bindings
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text

if TYPE_CHECKING:  # the service is imported when the screen first loads, not at start-up
    from plusjeklas_tui.services.feedback import FeedbackEntry, FeedbackState, FeedbackSummary

PAGE_SIZE = 200
COLUMNS = ("brin", "school", "state", "ended", "keep_until", "may_ask", "marked")
MARKING = {"ask", "answer"}

FeedbackRow = tuple[str, tuple[str, ...]]
"""A row key (the organisation id) and its cells, all plain strings."""


def feedback_row(entry: FeedbackEntry) -> FeedbackRow:
    """One school as the table shows it: every word from the catalogue, data escaped."""
    if entry.administrators:
        may_ask = t("feedback.may_ask.count", may=entry.may_ask, of=entry.administrators)
    else:
        may_ask = t("feedback.may_ask.school")
    if entry.answered_at is not None:
        marked = t("feedback.marked", day=f"{entry.answered_at:%Y-%m-%d}", who=entry.answered_by)
    elif entry.asked_at is not None:
        marked = t("feedback.marked", day=f"{entry.asked_at:%Y-%m-%d}", who=entry.asked_by)
    else:
        marked = t("feedback.none")
    cells = (
        entry.brin,
        entry.name,
        t(f"feedback.state.{entry.state.value}"),
        entry.ended_on.isoformat(),
        entry.keep_until.isoformat(),
        may_ask,
        marked,
    )
    return str(entry.organisation_id), tuple(plain_text(cell) for cell in cells)


class FeedbackScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "feedback.open", id="feedback.open", show=False),
        Binding("m", "ask", "feedback.ask", id="feedback.ask"),
        Binding("r", "answer", "feedback.answer", id="feedback.answer"),
        Binding("t", "toggle_all", "feedback.toggle_all", id="feedback.toggle_all"),
        # paging is rare (two years of ended subscriptions): listed by `?`, not in the footer,
        # which must fit 80 columns with the navigation keys
        Binding(
            "right_square_bracket",
            "page(1)",
            "feedback.next_page",
            id="feedback.next_page",
            show=False,
        ),
        Binding(
            "left_square_bracket",
            "page(-1)",
            "feedback.previous_page",
            id="feedback.previous_page",
            show=False,
        ),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    FeedbackScreen #feedback-table {
        height: 1fr;
    }
    FeedbackScreen #feedback-notes {
        width: 100%;
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $panel;
    }
    """

    page_size: int = PAGE_SIZE

    def __init__(self) -> None:
        super().__init__(id="feedback")
        translate_bindings(self)
        self.show_all = False
        self.page_number = 0
        self.entries: list[FeedbackEntry] = []
        self.has_more = False
        self.summary: FeedbackSummary | None = None
        self.rows: list[FeedbackRow] | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("feedback.title.open")), id="feedback-title", classes="screen-title")
        yield Label(Content(t("feedback.loading")), id="feedback-summary", classes="screen-summary")
        yield DataTable(id="feedback-table", cursor_type="row")
        yield Label("", id="feedback-notes", markup=False)
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#feedback-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(t(f"feedback.col.{key}") for key in COLUMNS))
        self.table.focus()
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def _reload_if_shown(self) -> None:
        if self.app.screen is self and not self.busy:
            self.refresh_data()

    # --- keys ----------------------------------------------------------------------------

    def highlighted(self) -> FeedbackEntry | None:
        row = self.table.cursor_row
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def _may_mark(self) -> bool:
        return self.app.context.staff.can(Permission.EDIT)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MARKING:
            if not self._may_mark():
                return False  # hidden from the footer and help
            entry = self.highlighted()
            wanted = "due" if action == "ask" else "asked"  # FeedbackState values
            if self.busy or entry is None or entry.state != wanted:
                return None
            return True
        if action == "page":
            step = parameters[0] if parameters else 0
            if step == 1:
                return True if self.has_more else None
            return True if self.page_number > 0 else None
        return True

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()
        self.show_notes()

    def show_notes(self) -> None:
        """The highlighted school's notes under the list (loaded when it was asked)."""
        entry = self.highlighted()
        if entry is None or entry.state == "due":
            self.notes_shown(None, "", "")
            return
        app: Any = self.app
        self.load_notes(app, entry)

    @work(thread=True, exclusive=True, group="feedback-notes")
    def load_notes(self, app: Any, entry: FeedbackEntry) -> None:
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import feedback

        try:
            with session_scope(app.context.engine) as session:
                asked, answered = feedback.notes(
                    session, app.context.staff, entry.organisation_id, entry.ended_on
                )
        except Exception as error:
            self._deliver(app, self.load_failed, error)
            return
        self._deliver(app, self.notes_shown, entry.organisation_id, asked or "", answered or "")

    def notes_shown(self, organisation_id: int | None, asked: str, answered: str) -> None:
        if not self.is_attached:
            return
        entry = self.highlighted()
        if organisation_id is not None and (
            entry is None or entry.organisation_id != organisation_id
        ):
            return  # the cursor moved on meanwhile
        lines = []
        if asked:
            lines.append(t("feedback.note.asked", note=asked))
        if answered:
            lines.append(t("feedback.note.answered", note=answered))
        self.query_one("#feedback-notes", Label).update(
            Content("\n".join(plain_text(line) for line in lines))
        )

    async def action_open(self) -> None:
        entry = self.highlighted()
        if entry is not None:
            await self.app.open_organisation(entry.organisation_id)  # type: ignore[attr-defined]

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.page_number = 0
        key = "feedback.title.all" if self.show_all else "feedback.title.open"
        self.query_one("#feedback-title", Label).update(Content(t(key)))
        self.refresh_data()

    def action_page(self, step: int) -> None:
        if step > 0 and not self.has_more:
            return
        self.page_number = max(0, self.page_number + step)
        self.refresh_data()

    def action_ask(self) -> None:
        self._start_marking("ask")

    def action_answer(self) -> None:
        self._start_marking("answer")

    def _start_marking(self, kind: str) -> None:
        app: Any = self.app
        staff = app.context.staff
        if not staff.can(Permission.EDIT):  # the key is hidden; refuse a call anyway
            from plusjeklas_tui.errors import PermissionDenied

            try:
                staff.require(Permission.EDIT, "mark a school's feedback")
            except PermissionDenied as error:
                app.report_error(error)
            return
        entry = self.highlighted()
        if entry is None or self.busy:
            return
        self.open_form(app, kind, entry, app.today())

    @work(thread=True, exclusive=True, group="feedback-form")
    def open_form(self, app: Any, kind: str, entry: FeedbackEntry, today: dt.date) -> None:
        """Find who may be asked (a query: not on the interface thread), then show the form."""
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import feedback

        people: list[str] = []
        try:
            if kind == "ask":
                with session_scope(app.context.engine) as session:
                    askable = feedback.askable_people(session, entry.organisation_id, today)
                people = [f"{person.name} <{person.email}>" for person in askable]
        except Exception as error:
            self._deliver(app, app.report_error, error)
            return
        self._deliver(app, self.show_form, kind, entry, people)

    def show_form(self, kind: str, entry: FeedbackEntry, people: list[str]) -> None:
        from plusjeklas_tui.tui.screens.feedback_form import FeedbackNoteForm

        if not self.is_attached:
            return

        def answered(note: str | None) -> None:
            if note is None:
                self.notify(t("feedback.cancelled"), markup=False)
                return
            self.busy = True
            self.refresh_bindings()
            app: Any = self.app
            self.save_mark(app, kind, entry, note, app.today())

        self.app.push_screen(FeedbackNoteForm(kind, entry, people), answered)

    @work(thread=True, group="feedback-save")
    def save_mark(
        self, app: Any, kind: str, entry: FeedbackEntry, note: str, today: dt.date
    ) -> None:
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import feedback

        context = app.context
        mark = feedback.mark_asked if kind == "ask" else feedback.mark_answered
        try:
            with session_scope(context.engine) as session:
                mark(
                    session,
                    context.staff,
                    entry.organisation_id,
                    note,
                    today,
                    context.settings.retention,
                )
        except Exception as error:
            self._deliver(app, self.marked, kind, entry, error)
            return
        self._deliver(app, self.marked, kind, entry, None)

    def marked(self, kind: str, entry: FeedbackEntry, error: BaseException | None) -> None:
        self.busy = False
        if error is not None:
            self.app.report_error(error)  # type: ignore[attr-defined]
        elif self.is_attached:
            key = "feedback.asked_done" if kind == "ask" else "feedback.answered_done"
            self.notify(Text(t(key, brin=entry.brin)), markup=False)  # type: ignore[arg-type]
        if self.is_attached:
            self.refresh_data()

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
        from plusjeklas_tui.services.feedback import OPEN_STATES, FeedbackState

        app: Any = self.app
        states = set(FeedbackState) if self.show_all else OPEN_STATES
        self.load(app, app.today(), frozenset(states), self.page_number)

    @work(thread=True, exclusive=True, group="feedback-load")
    def load(self, app: Any, today: dt.date, states: frozenset[FeedbackState], page: int) -> None:
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import feedback

        size = self.page_size
        try:
            context = app.context
            check_database(context.engine)  # never open (and so create) a missing file
            with session_scope(context.engine) as session:
                entries = feedback.feedback_list(
                    session,
                    today,
                    context.settings.retention,
                    states=states,
                    limit=size + 1,  # one more says whether there is a next page
                    offset=page * size,
                )
                summary = feedback.feedback_summary(session, today, context.settings.retention)
        except Exception as error:
            self._deliver(app, self.load_failed, error)
            return
        self._deliver(app, self.show_list, entries[:size], len(entries) > size, summary, page)

    def show_list(
        self,
        entries: list[FeedbackEntry],
        has_more: bool,
        summary: FeedbackSummary,
        page: int,
    ) -> None:
        """Show one page; the table is rebuilt only when its rows changed (an idle screen
        sends nothing at the automatic refresh)."""
        self._load_failing = False
        if not self.is_attached:
            return
        if not entries and page > 0:  # the last page emptied (marked, or the day moved on)
            self.page_number = page - 1
            self.refresh_data()
            return
        self.entries = entries
        self.has_more = has_more
        self.summary = summary
        total = summary.open + (summary.answered if self.show_all else 0)
        text = t(
            "feedback.summary",
            due=summary.due,
            asked=summary.asked,
            answered=summary.answered,
            objected=summary.objected,
        )
        if not entries:
            text = t("feedback.empty") + " " + text
        elif has_more or page > 0:
            first = page * self.page_size + 1
            text += " · " + t(
                "feedback.page", first=first, last=first + len(entries) - 1, total=total
            )
        self.query_one("#feedback-summary", Label).update(Content(text))
        rows = [feedback_row(entry) for entry in entries]
        if rows != self.rows:
            self.rows = rows
            table = self.table
            cursor = table.cursor_row
            table.clear()
            for key, cells in rows:
                table.add_row(*(Text(cell) for cell in cells), key=key)
            if rows:
                table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
            self.show_notes()
        self.refresh_bindings()
