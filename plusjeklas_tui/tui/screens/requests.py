"""The Requests screen: data-subject requests with their deadlines, and the work per kind.

One row per request (:func:`services.requests.list_requests`): number, kind, status, whom it is
about (by internal id), received, due, days left, and what needs attention (overdue, the
extension still to be told to the person, restricted). The highlighted request's requester is
shown under the list. Keys: ``n`` records a request (editors), ``x`` extends it once with a
reason, ``t`` records that the person was told of the extension, ``c`` completes it doing its
kind's work (erasure: admins, after a confirmation; objection: withdraws the consent and pushes
it to the providers), ``e`` exports an access or portability request (JSON and a summary in the
app's language, into ``exports/`` beside the database), Enter opens the subject's record
(for a rectification). Everything runs in worker threads; the list reloads every few seconds.

Every value from the database is shown as plain text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Select

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import RequestKind, RequestStatus
from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import check_database
from plusjeklas_tui.tui.i18n import language, t, translate_bindings
from plusjeklas_tui.tui.screens.confirm import ConfirmScreen
from plusjeklas_tui.tui.screens.form import FormProblem, FormScreen
from plusjeklas_tui.tui.widgets.form_field import FormField
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import plain_text
from plusjeklas_tui.validation import FieldError, ValidationErrors

COLUMNS = ("id", "kind", "status", "subject", "received", "due", "days", "flags")
KINDS = tuple(kind.value for kind in RequestKind)


def _subject(row: Any) -> str:
    ident = row.administrator_id if row.subject_type == "administrator" else row.organisation_id
    if ident is None:
        return t(f"requests.subject.{row.subject_type}.gone")
    return t(f"requests.subject.{row.subject_type}", id=ident)


def request_cells(row: Any) -> tuple[str, ...]:
    """The cells of one request's row (the list and the tests use them)."""
    flags = []
    if row.overdue:
        flags.append(t("requests.flag.overdue"))
    if row.tell_person and row.tell_by is not None:
        flags.append(t("requests.flag.tell", date=row.tell_by.isoformat()))
    elif row.extended and row.status == RequestStatus.OPEN:
        flags.append(t("requests.flag.extended"))
    if row.restricted:
        flags.append(t("requests.flag.restricted"))
    status = t(f"requests.status.{row.status}")
    if row.outcome and row.status == RequestStatus.COMPLETED:
        status = f"{status} ({row.outcome})"
    cells = (
        str(row.id),
        t(f"requests.kind.{row.kind}"),
        status,
        _subject(row),
        row.received_on.isoformat(),
        row.due_on.isoformat(),
        "" if row.days_left is None else str(row.days_left),
        ", ".join(flags),
    )
    return tuple(plain_text(cell) for cell in cells)


def _deliver(app: Any, callback: Any, *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
        app.call_from_thread(callback, *args)


class RequestsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "requests.new", id="requests.new"),
        Binding("x", "extend", "requests.extend", id="requests.extend"),
        Binding("t", "told", "requests.told", id="requests.told"),
        Binding("c", "complete", "requests.complete", id="requests.complete"),
        Binding("e", "export", "requests.export", id="requests.export"),
        Binding("enter", "open_record", "requests.open_record", id="requests.open_record"),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    RequestsScreen #requests-table {
        height: 1fr;
    }
    RequestsScreen #requests-detail {
        width: 100%;
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $panel;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="requests")
        translate_bindings(self)
        self.rows: list[Any] = []
        self.cells: list[tuple[str, ...]] | None = None
        self.details: dict[int, Any] = {}
        self._load_failing = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("requests.title")), id="requests-title", classes="screen-title")
        yield Label(Content(t("requests.loading")), id="requests-summary", classes="screen-summary")
        yield DataTable(id="requests-table", cursor_type="row")
        yield Label("", id="requests-detail", markup=False)
        yield QuietFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#requests-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(t(f"requests.col.{key}") for key in COLUMNS))
        self.table.focus()
        self.refresh_data()
        self.set_interval(self.app.auto_refresh_seconds, self._reload_if_shown)  # type: ignore[attr-defined]

    def _reload_if_shown(self) -> None:
        if self.app.screen is self:
            self.refresh_data()

    # --- data ------------------------------------------------------------------------------

    def refresh_data(self) -> None:
        self.load(self.app)

    @work(thread=True, exclusive=True, group="requests-load")
    def load(self, app: Any) -> None:
        from plusjeklas_tui.services import requests as rq

        try:
            engine = app.context.engine
            check_database(engine)
            today = app.today()
            with session_scope(engine) as session:
                rows = rq.list_requests(session, app.context.staff, today)
                summary = rq.open_requests_summary(session, today)
                details = rq.requesters(session, app.context.staff)
        except Exception as error:
            _deliver(app, self.load_failed, error)
            return
        _deliver(app, self.show_rows, rows, summary, details)

    def load_failed(self, error: BaseException) -> None:
        if self._load_failing:
            return
        self._load_failing = True
        self.app.report_error(error)  # type: ignore[attr-defined]

    def show_rows(self, rows: list[Any], summary: Any, details: dict[int, Any]) -> None:
        self._load_failing = False
        if not self.is_attached:
            return
        self.rows = rows
        self.details = details
        text = (
            t(
                "requests.summary",
                open=summary.open_count,
                overdue=summary.overdue_count,
                tell=summary.tell_person_count,
            )
            if rows
            else t("requests.empty")
        )
        self.query_one("#requests-summary", Label).update(Content(text))
        cells = [request_cells(row) for row in rows]
        if cells != self.cells:
            self.cells = cells
            table = self.table
            cursor = table.cursor_row
            table.clear()
            for row, line in zip(rows, cells, strict=True):
                table.add_row(*(Text(cell) for cell in line), key=str(row.id))
            if cells:
                table.move_cursor(row=min(max(cursor, 0), len(cells) - 1))
        self.show_detail()
        self.refresh_bindings()

    def highlighted(self) -> Any | None:
        row = self.table.cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row opens the subject's record (to rectify it, or to look)."""
        await self.run_action("open_record")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    def show_detail(self) -> None:
        row = self.highlighted()
        text = ""
        if row is not None and row.id in self.details:
            who = self.details[row.id]
            if who.scrubbed:
                text = t("requests.detail.scrubbed", id=row.id)
            else:
                text = t(
                    "requests.detail",
                    id=row.id,
                    name=who.name or "",
                    email=f"<{who.email}>" if who.email else "",
                    identity=who.identity_check or "",
                )
        self.query_one("#requests-detail", Label).update(Content(plain_text(text)))

    # --- which keys apply --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        staff = self.app.context.staff  # type: ignore[attr-defined]
        row = self.highlighted()
        is_open = row is not None and row.status == RequestStatus.OPEN
        if action == "new":
            return staff.can(Permission.EDIT)
        if action == "extend":
            if not staff.can(Permission.EDIT):
                return False
            return True if is_open and not row.extended else None
        if action == "told":
            if not staff.can(Permission.EDIT):
                return False
            return True if row is not None and row.tell_person else None
        if action == "complete":
            needed = (
                Permission.ERASE
                if row is not None and row.kind == RequestKind.ERASURE
                else Permission.EDIT
            )
            if not staff.can(needed):
                return False
            return True if is_open else None
        if action == "export":
            if not staff.can(Permission.EXPORT):
                return False
            exportable = row is not None and row.kind in (
                RequestKind.ACCESS,
                RequestKind.PORTABILITY,
            )
            return True if exportable and row.organisation_id is not None else None
        if action == "open_record":
            return True if row is not None and row.organisation_id is not None else None
        return True

    # --- actions -----------------------------------------------------------------------------

    def action_new(self) -> None:
        self.app.push_screen(RequestForm(self.app.today()), self._created)  # type: ignore[attr-defined]

    def _created(self, request_id: int | None) -> None:
        if request_id is not None:
            self.notify(t("requests.created", id=request_id), markup=False)
            self.refresh_data()

    def action_extend(self) -> None:
        row = self.highlighted()
        if row is not None:
            today = self.app.today()  # type: ignore[attr-defined]
            self.app.push_screen(ExtendForm(row.id, today), self._extended)

    def _extended(self, request_id: int | None) -> None:
        if request_id is not None:
            self.refresh_data()

    def action_told(self) -> None:
        row = self.highlighted()
        if row is not None:
            self.run_step(self.app, "told", row.id)

    def action_complete(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        kind = t(f"requests.kind.{row.kind}")
        if row.kind == RequestKind.ERASURE:
            question = t("requests.confirm.erase", id=row.id, subject=_subject(row))
        elif row.kind == RequestKind.OBJECTION:
            purpose = row.purpose or ""
            question = t("requests.confirm.object", id=row.id, purpose=purpose)
        else:
            question = t("requests.confirm.complete", id=row.id, kind=kind)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_step(self.app, "complete", row.id)

        self.app.push_screen(ConfirmScreen(question), answered)

    def action_export(self) -> None:
        row = self.highlighted()
        if row is not None:
            self.run_step(self.app, "export", row.id)

    async def action_open_record(self) -> None:
        row = self.highlighted()
        if row is not None and row.organisation_id is not None:
            await self.app.open_organisation(row.organisation_id)  # type: ignore[attr-defined]

    @work(thread=True, group="requests-step")
    def run_step(self, app: Any, step: str, request_id: int) -> None:
        try:
            message = _STEPS[step](app, request_id)
        except Exception as error:
            _deliver(app, app.report_error, error)
            _deliver(app, self.refresh_data)
            return
        _deliver(app, self.step_done, message)

    def step_done(self, message: str) -> None:
        if not self.is_attached:
            return
        self.notify(Text(message), markup=False)  # type: ignore[arg-type]
        self.refresh_data()


# --- the steps, run in worker threads ------------------------------------------------------------


def _told(app: Any, request_id: int) -> str:
    from plusjeklas_tui.services import requests as rq

    context: AppContext = app.context
    with session_scope(context.engine) as session:
        rq.mark_extension_told(session, context.staff, request_id)
    return t("requests.marked_told", id=request_id)


def _complete(app: Any, request_id: int) -> str:
    from plusjeklas_tui.services import erasure
    from plusjeklas_tui.services import requests as rq

    context: AppContext = app.context
    today = app.today()
    with session_scope(context.engine) as session:
        request = rq.get_request(session, request_id)
        kind, purpose = request.kind, request.purpose
    if kind == RequestKind.ERASURE:
        runtime = app.provider_runtime()
        targets = erasure.provider_targets(context.settings, runtime.plugin_set)
        with session_scope(context.engine) as session:
            result = rq.erase_for_request(
                session, context.staff, context.settings, targets, request_id, today
            )
        return t("requests.erased", id=request_id, tasks=len(result.tasks))
    if kind == RequestKind.OBJECTION:
        with session_scope(context.engine) as session:
            rq.withdraw_for_objection(session, context.staff, context.settings, request_id)
        runtime = app.provider_runtime()
        reports = rq.push_objection(
            context.engine,
            runtime.available.values(),
            context.staff,
            context.settings,
            purpose or "",
        )
        told = ", ".join(f"{r.provider} ({'ok' if r.ok else r.error or 'failed'})" for r in reports)
        return t("requests.objected", id=request_id, providers=told or t("requests.no_provider"))
    with session_scope(context.engine) as session:
        rq.complete_request(session, context.staff, request_id)
    return t("requests.completed", id=request_id)


def _export(app: Any, request_id: int) -> str:
    from plusjeklas_tui.services import subject_export

    context: AppContext = app.context
    runtime = app.provider_runtime()
    export = subject_export.export_for_request(
        context.engine,
        context.staff,
        request_id,
        runtime.available,
        problems=runtime.problems,
        purposes=context.settings.consent_purposes,
        retention=context.settings.retention,
    )
    folder = context.settings.base_dir / "exports"
    json_path, _summary = subject_export.write_files(export, folder, app.today(), language())
    failed = subject_export.failed_providers(export)
    if failed:
        return t(
            "requests.export_incomplete",
            id=request_id,
            path=str(json_path),
            failed=", ".join(failed),
        )
    return t("requests.exported", id=request_id, path=str(json_path))


_STEPS = {"told": _told, "complete": _complete, "export": _export}


# --- forms ----------------------------------------------------------------------------------------


class RequestForm(FormScreen):
    """Record a new request; closes with its number."""

    DEFAULT_CSS: ClassVar[str] = """
    RequestForm .form-row {
        height: auto;
    }
    RequestForm .form-row > Label {
        width: 16;
        padding-right: 1;
        color: $text-muted;
    }
    RequestForm .form-row > Select {
        width: 1fr;
    }
    """

    FIELDS = (
        "received_on",
        "brin",
        "administrator_id",
        "requester_name",
        "requester_email",
        "identity_check",
        "purpose",
        "erasure_reason",
        "note",
    )

    def __init__(self, today: dt.date) -> None:
        super().__init__(t("requests.form.title"))
        self.today = today

    def compose_fields(self) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(Content(t("requests.form.kind")))
            yield Select(
                [(Content(t(f"requests.kind.{k}")), k) for k in KINDS],
                prompt=t("requests.form.choose_kind"),
                compact=True,
                id="request-kind",
            )
        today = self.today.isoformat()
        for name in self.FIELDS:
            yield FormField(
                name,
                t(f"requests.form.{name}"),
                today if name == "received_on" else "",
                placeholder=t("requests.form.identity_hint") if name == "identity_check" else "",
            )

    @property
    def kind(self) -> str | None:
        value = self.query_one("#request-kind", Select).value
        return None if value is Select.NULL else str(value)

    def other_changes(self) -> bool:
        return self.kind is not None

    def prepare(self) -> dict[str, str]:
        if self.kind is None:
            self.query_one("#request-kind", Select).focus()
            raise FormProblem(t("requests.form.choose_kind_first"))
        raw = {name: self.form_field(name).value for name in self.FIELDS}
        raw["kind"] = self.kind
        return raw

    def write(self, context: AppContext, payload: Any) -> int:
        from plusjeklas_tui.errors import NotFound
        from plusjeklas_tui.services import legal_hold
        from plusjeklas_tui.services import requests as rq

        raw = dict(payload)
        with session_scope(context.engine) as session:
            brin = raw.pop("brin", "").strip()
            if brin:
                try:
                    raw["organisation_id"] = str(legal_hold.organisation_id_for_brin(session, brin))
                except NotFound:
                    raise ValidationErrors(
                        [FieldError("brin", brin, t("requests.form.no_brin"))]
                    ) from None
            data = rq.validate_request(
                raw, purposes=context.settings.consent_purposes, today=self.today
            )
            request = rq.create_request(session, context.staff, data)
            assert request.id is not None
            return request.id


class ExtendForm(FormScreen):
    """Extend a request once, with the reason the person is told; closes with its number."""

    def __init__(self, request_id: int, today: dt.date) -> None:
        super().__init__(t("requests.extend.title", id=request_id))
        self.request_id = request_id
        self.today = today

    def compose_fields(self) -> ComposeResult:
        yield FormField("extension_reason", t("requests.extend.reason"), multiline=True)

    def prepare(self) -> str:
        return self.form_field("extension_reason").value

    def write(self, context: AppContext, payload: Any) -> int:
        from plusjeklas_tui.services import requests as rq

        with session_scope(context.engine) as session:
            rq.extend_request(session, context.staff, self.request_id, payload, self.today)
        return self.request_id
