"""One school: its data, people, consent, subscriptions, provider links and audit trail.

Six tabs, switched with ``1``-``6`` (or the arrow keys on the tab strip), each a plain list
(:class:`VirtualTable`) or the school's details. Everything is read by
:func:`~plusjeklas_tui.services.record_view.load_record` in a worker thread; an unchanged
record is not redrawn when it is reloaded (every 5 seconds, and on ``Ctrl+R``), so an idle
screen sends nothing.

Editing opens a form over the record (``e`` school, ``n``/``E`` a person, ``c`` consent).
Viewers see no edit keys, and a form opened anyway would be refused by the services. The IBAN
is shown masked; ``r`` (admins only) shows it in full for :attr:`RecordScreen.reveal_seconds`
and writes an audit event first.

The school tab also lists the data-subject requests about the school and its people (kind,
status, deadline and days left; hidden when there are none), and a line under the title marks
a restriction of processing (GDPR art. 18) in force. Both come with the same load and reload:
no timer of their own.

The retention deadline is shown with its legal hold (who set it, when; the reason to admins).
Admins set a hold with ``h`` (a reason is required) and lift it with ``H``, and erase the
school on request with ``X`` (a GDPR ground, and the BRIN typed to confirm); the services
check the role and audit each. After an erasure the record closes and its deletion tasks are
delivered to the providers.

Every value from the database is shown as plain text with control characters escaped: a
school called ``[@click=app.quit]x[/]`` is just a name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Label, TabbedContent, TabPane
from textual.worker import get_current_worker

from plusjeklas_tui.errors import NotFound, PermissionDenied
from plusjeklas_tui.services.erasure import RequestReason
from plusjeklas_tui.services.legal_hold import HoldInfo
from plusjeklas_tui.services.record_view import (
    AdministratorView,
    RecordView,
    RequestView,
    load_record,
    reveal_iban,
)
from plusjeklas_tui.services.records import LOCAL_TZ
from plusjeklas_tui.staff import Permission
from plusjeklas_tui.tui.database import (
    check_database,
    database_message,
    database_problem,
    forget_connections,
)
from plusjeklas_tui.tui.i18n import CATALOGUE, t, translate_bindings
from plusjeklas_tui.tui.screens.administrator_form import AdministratorForm
from plusjeklas_tui.tui.screens.confirm import ConfirmScreen
from plusjeklas_tui.tui.screens.consent_form import ConsentForm, consent_label, purpose_label
from plusjeklas_tui.tui.screens.form import deliver
from plusjeklas_tui.tui.screens.organisation_form import OrganisationForm
from plusjeklas_tui.tui.screens.retention_modals import EraseRequestScreen, HoldForm
from plusjeklas_tui.tui.widgets.quiet_footer import QuietFooter
from plusjeklas_tui.tui.widgets.virtual_table import Cell, Column, Row, VirtualTable, plain_text
from plusjeklas_tui.validation import format_iban, format_phone

TABS = ("school", "people", "consent", "subscriptions", "providers", "audit")
SCHOOL_FIELDS = ("name", "street", "postcode", "city", "brin", "phone", "email", "iban", "notes")
EDIT_ACTIONS = frozenset({"edit_school", "add_person", "edit_person", "record_consent"})
HOLD_ACTIONS = frozenset({"set_hold", "lift_hold", "erase_request"})
CONSENT_STYLE = {"granted": "green", "withdrawn": "red"}


class Rows:
    """A loaded record's list as a :class:`RowSource` (records have tens of rows, not 100k)."""

    def __init__(self, rows: Sequence[Row] = ()) -> None:
        self.rows = tuple(rows)

    def count(self) -> int:
        return len(self.rows)

    def fetch(self, offset: int, limit: int) -> Sequence[Row]:
        return self.rows[offset : offset + limit]


# --- formatting (plain strings; the widgets never parse them) ------------------------------


def _text(value: object) -> str:
    """A value for a table cell or a label: escaped, and a dash for nothing."""
    if value is None or value == "":
        return t("record.empty")
    return plain_text(str(value))


def _multiline(value: str | None) -> str:
    """Free text keeps its line breaks; every other control character is escaped."""
    if not value:
        return t("record.empty")
    return "\n".join(plain_text(line) for line in value.split("\n"))


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return t("record.never")
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _date(day: dt.date | None) -> str:
    return t("record.empty") if day is None else day.isoformat()


def _label(prefix: str, code: str) -> str:
    """Catalogue text for a code stored in the database, or the code itself."""
    key = f"{prefix}.{code}"
    return t(key) if key in CATALOGUE else plain_text(code)


def _consent_cell(action: str | None) -> Cell:
    return Cell(consent_label(action), CONSENT_STYLE.get(action or "", "dim"))


# Columns are built when a screen is composed: their labels follow the configured language.


def _column(key: str, width: int, label: str | None = None) -> Column:
    return Column(key, t(label or f"record.col.{key}"), width, sortable=False)


def people_columns() -> list[Column]:
    return [
        _column("name", 18),
        _column("email", 22),
        _column("phones", 14),
        _column("since", 10),
        _column("left", 10),
    ]


def consent_now_columns() -> list[Column]:
    return [
        _column("person", 18),
        _column("purpose", 11),
        _column("state", 14),
        _column("when", 16),
        _column("source", 12),
    ]


def consent_history_columns() -> list[Column]:
    return [
        _column("when", 16),
        _column("person", 14),
        _column("purpose", 11),
        _column("action", 11),
        _column("source", 12),
        _column("evidence", 60),
    ]


def subscription_columns() -> list[Column]:
    return [
        _column("plan", 24),
        _column("start", 10),
        _column("end", 10),
        _column("status", 12),
    ]


def provider_columns() -> list[Column]:
    return [
        _column("provider", 12),
        _column("subject", 22),
        _column("external_id", 20),
        _column("synced", 16),
    ]


def request_columns() -> list[Column]:
    return [
        _column("id", 5, "record.requests.col.id"),
        _column("kind", 14, "record.requests.col.kind"),
        _column("about", 18, "record.requests.col.about"),
        _column("status", 14, "record.requests.col.status"),
        _column("due", 10, "record.requests.col.due"),
        _column("days", 6, "record.requests.col.days"),
        _column("flags", 28, "record.requests.col.flags"),
    ]


def _whom(request: RequestView) -> str:
    if request.administrator_id is None:
        return t("record.requests.school")
    if request.subject_name is None:
        return t("requests.subject.administrator", id=request.administrator_id)
    return _text(request.subject_name)


def request_row(request: RequestView) -> Row:
    """One request on the record: what it is, where it stands, what needs attention."""
    flags: list[str] = []
    if request.overdue:
        flags.append(t("requests.flag.overdue"))
    if request.tell_by is not None:
        flags.append(t("requests.flag.tell", date=request.tell_by.isoformat()))
    elif request.extended and request.is_open:
        flags.append(t("requests.flag.extended"))
    if request.restricted:
        flags.append(t("requests.flag.restricted"))
    status = _label("requests.status", request.status)
    if request.outcome and not request.is_open:
        status = f"{status} ({plain_text(request.outcome)})"
    days = (
        ""
        if request.days_left is None
        else Cell(
            t("record.requests.days", days=request.days_left),
            "bold red" if request.overdue else ("yellow" if request.days_left <= 7 else ""),
        )
    )
    return Row(
        request.id,
        (
            str(request.id),
            _label("requests.kind", request.kind),
            _whom(request),
            status,
            _date(request.due_on),
            days,
            Cell(", ".join(flags), "bold red" if request.restricted or request.overdue else ""),
        ),
    )


def restriction_text(view: RecordView) -> str:
    """The marker line: whom a restriction in force covers (empty: none)."""
    restrictions = view.restrictions
    if not restrictions:
        return ""
    which = "; ".join(
        t("record.requests.restricted.one", whom=_whom(r), id=r.id) for r in restrictions
    )
    return t("record.requests.restricted", which=which)


def audit_columns() -> list[Column]:
    return [
        _column("when", 16),
        _column("who", 12),
        _column("action", 10),
        _column("record", 18),
        _column("detail", 48),
    ]


def _load_hold(engine: Any, staff: Any, organisation_id: int) -> tuple[HoldInfo | None, str | None]:
    """The organisation's legal hold, and its reason when this staff member may read it."""
    from plusjeklas_tui.db import session_scope
    from plusjeklas_tui.services import legal_hold

    with session_scope(engine) as session:
        hold = legal_hold.current_hold(session, organisation_id)
        reason = None
        if hold is not None and staff.can(legal_hold.HOLD_PERMISSION):
            reason = legal_hold.hold_reason(session, staff, organisation_id)
    return hold, reason


# --- the screen ----------------------------------------------------------------------------


class RecordScreen(Screen[None]):
    """``RecordScreen(organisation_id)``: everything else comes from ``self.app``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit_school", "record.edit_school", id="record.edit_school"),
        Binding("n", "add_person", "record.add_person", id="record.add_person"),
        Binding("E", "edit_person", "record.edit_person", show=False, id="record.edit_person"),
        Binding("c", "record_consent", "record.record_consent", id="record.record_consent"),
        Binding("r", "reveal_iban", "record.reveal_iban", id="record.reveal_iban"),
        Binding("h", "set_hold", "record.set_hold", id="record.set_hold"),
        Binding("H", "lift_hold", "record.lift_hold", id="record.lift_hold"),
        Binding("X", "erase_request", "record.erase", id="record.erase"),
        Binding("escape", "back", "nav.back", show=False, id="record.back"),
        *(
            Binding(str(n), f"show_tab('{tab}')", f"record.tab.{tab}", show=False)
            for n, tab in enumerate(TABS, start=1)
        ),
    ]

    DEFAULT_CSS: ClassVar[str] = """
    RecordScreen #record-title {
        width: 100%;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    RecordScreen #record-tabs {
        height: 1fr;
    }
    RecordScreen #record-tabs > ContentSwitcher {
        height: 1fr;
    }
    RecordScreen TabPane {
        height: 1fr;
        padding: 0;
    }
    RecordScreen #school-pane {
        height: 1fr;
        padding: 0 1;
    }
    RecordScreen .record-grid {
        grid-size: 2;
        grid-columns: 16 1fr;
        grid-rows: auto;
        height: auto;
    }
    RecordScreen .record-label {
        color: $text-muted;
    }
    RecordScreen .record-section {
        text-style: bold;
        color: $text-primary;
        padding: 0 1;
    }
    RecordScreen #school-pane > .record-section {
        padding: 0;
        margin-top: 1;
    }
    RecordScreen #value-hold.-held {
        color: $text-accent;
        text-style: bold;
    }
    RecordScreen #value-iban.-revealed {
        color: $text-warning;
        text-style: bold;
    }
    RecordScreen .urgency-overdue {
        color: $text-error;
        text-style: bold;
    }
    RecordScreen .urgency-soon {
        color: $text-error;
    }
    RecordScreen .urgency-near {
        color: $text-warning;
    }
    RecordScreen .urgency-later {
        color: $text-success;
    }
    RecordScreen #consent-now-table {
        height: auto;
        max-height: 8;
    }
    RecordScreen #record-restricted {
        display: none;
        width: 100%;
        padding: 0 1;
        color: $text-error;
        text-style: bold;
    }
    RecordScreen #record-restricted.-shown {
        display: block;
    }
    RecordScreen .record-requests {
        display: none;
    }
    RecordScreen .record-requests.-shown {
        display: block;
    }
    RecordScreen #requests-table {
        height: auto;
        max-height: 8;
    }
    RecordScreen #record-problem {
        display: none;
        width: 100%;
        padding: 0 1;
        color: $text-error;
        text-style: bold;
    }
    RecordScreen #record-problem.-shown {
        display: block;
    }
    RecordScreen #audit-truncated {
        display: none;
        color: $text-muted;
        padding: 0 1;
    }
    RecordScreen #audit-truncated.-shown {
        display: block;
    }
    """

    reveal_seconds: float = 30.0
    """How long a revealed IBAN stays visible (tests shorten it)."""

    def __init__(self, organisation_id: int) -> None:
        super().__init__(classes="record-screen")
        self.organisation_id = organisation_id
        self.view: RecordView | None = None
        self.revealed_iban: str | None = None
        self._reveal_timer: Timer | None = None
        self._consent_keys: list[tuple[int, str]] = []  # consent-now row key -> (person, purpose)
        self._selected_person: int | None = None
        self._selected_purpose: str | None = None
        self._load_failed_reported = False
        self.hold: HoldInfo | None = None
        self.hold_reason: str | None = None
        """Shown to administrators only (free text: it may name people)."""
        self._hold_loaded = False
        translate_bindings(self)

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(t("record.loading")), id="record-title")
        yield Label("", id="record-problem", markup=False)
        yield Label("", id="record-restricted", markup=False)
        with TabbedContent(initial="tab-school", id="record-tabs"):
            with (
                TabPane(t("record.tab.school"), id="tab-school"),
                VerticalScroll(id="school-pane"),
            ):
                with Grid(classes="record-grid", id="school-grid"):
                    for field in SCHOOL_FIELDS:
                        yield Label(Content(t(f"record.field.{field}")), classes="record-label")
                        yield Label("", id=f"value-{field}", markup=False)
                yield Label(Content(t("record.retention")), classes="record-section")
                with Grid(classes="record-grid", id="retention-grid"):
                    yield Label(Content(t("record.retention.deadline")), classes="record-label")
                    yield Label("", id="value-deadline", markup=False)
                    yield Label(Content(t("record.retention.rule")), classes="record-label")
                    yield Label("", id="value-rule", markup=False)
                    yield Label(Content(t("record.retention.hold")), classes="record-label")
                    yield Label(Content(t("record.hold.none")), id="value-hold", markup=False)
                yield Label(
                    Content(t("record.requests")),
                    classes="record-section record-requests",
                    id="requests-section",
                )
                yield VirtualTable(
                    Rows(), request_columns(), id="requests-table", classes="record-requests"
                )
            with TabPane(t("record.tab.people"), id="tab-people"):
                yield VirtualTable(
                    Rows(), people_columns(), id="people-table", empty_text=t("record.people.empty")
                )
            with TabPane(t("record.tab.consent"), id="tab-consent"):
                yield Label(Content(t("record.consent.current")), classes="record-section")
                yield VirtualTable(
                    Rows(),
                    consent_now_columns(),
                    id="consent-now-table",
                    empty_text=t("record.people.empty"),
                )
                yield Label(Content(t("record.consent.history")), classes="record-section")
                yield VirtualTable(
                    Rows(),
                    consent_history_columns(),
                    id="consent-history-table",
                    empty_text=t("record.consent.empty"),
                )
            with TabPane(t("record.tab.subscriptions"), id="tab-subscriptions"):
                yield VirtualTable(
                    Rows(),
                    subscription_columns(),
                    id="subscriptions-table",
                    empty_text=t("record.subscriptions.empty"),
                )
            with TabPane(t("record.tab.providers"), id="tab-providers"):
                yield VirtualTable(
                    Rows(),
                    provider_columns(),
                    id="providers-table",
                    empty_text=t("record.providers.empty"),
                )
            with TabPane(t("record.tab.audit"), id="tab-audit"):
                yield VirtualTable(
                    Rows(), audit_columns(), id="audit-table", empty_text=t("record.audit.empty")
                )
                yield Label("", id="audit-truncated", markup=False)
        yield QuietFooter()

    auto_refresh_seconds: float | None = None
    """How often the record reloads while shown; ``None``: the app's setting."""

    def on_mount(self) -> None:
        self.refresh_data()
        seconds = self.auto_refresh_seconds or self.app.auto_refresh_seconds  # type: ignore[attr-defined]
        self.set_interval(seconds, self._reload_if_shown)

    # --- loading -----------------------------------------------------------------------------

    def refresh_data(self) -> None:
        """Reload the record (``Ctrl+R``, after a save, and every few seconds)."""
        app: Any = self.app
        self._load(
            app,
            app.retention_rule,
            app.today(),
            tuple(app.context.settings.consent_purposes),
        )

    def _reload_if_shown(self) -> None:
        if self.app.screen is self:
            self.refresh_data()

    @work(thread=True, exclusive=True, group="record-load")
    def _load(self, app: Any, rule: Any, today: dt.date, purposes: tuple[str, ...]) -> None:
        worker = get_current_worker()
        try:
            check_database(app.context.engine)  # not read from a database changed under us
            view = load_record(
                app.context.engine,
                self.organisation_id,
                rule=rule,
                today=today,
                purposes=purposes,
            )
            hold, reason = _load_hold(app.context.engine, app.context.staff, self.organisation_id)
        except Exception as error:
            if database_problem(error) is not None:
                forget_connections(app.context.engine)  # the next reload opens it afresh
            if not worker.is_cancelled:
                deliver(app, self._load_failed, error)
            return
        if not worker.is_cancelled:
            deliver(app, self.show_hold, hold, reason)
            deliver(app, self.show_record, view)

    def _load_failed(self, error: Exception) -> None:
        """Keep what is shown; say above it what is wrong (a database problem) and notify
        once. The next reload (automatic, or Ctrl+R) tries again."""
        if not self.is_attached:
            return
        problem = database_message(error)
        if problem is not None:
            label = self.query_one("#record-problem", Label)
            label.update(Content(problem))
            label.add_class("-shown")
        if isinstance(error, NotFound):
            self.view = None
            self.query_one("#record-title", Label).update(
                Content(t("record.gone", id=self.organisation_id))
            )
            self.refresh_bindings()
        if not self._load_failed_reported:  # the auto-refresh must not repeat it every 5 s
            self._load_failed_reported = True
            self.app.report_error(error)  # type: ignore[attr-defined]

    def show_record(self, view: RecordView) -> None:
        """Show *view*; nothing is redrawn when it equals what is shown already."""
        if not self.is_attached:  # the screen was closed while loading
            return
        self._load_failed_reported = False
        self.query_one("#record-problem", Label).remove_class("-shown")
        if view == self.view:
            return
        self.view = view
        org = view.organisation
        self.query_one("#record-title", Label).update(
            Content(plain_text(t("record.title", name=org.name, brin=org.brin, city=org.city)))
        )
        values = {
            "name": _text(org.name),
            "street": _text(org.street),
            "postcode": _text(org.postcode),
            "city": _text(org.city),
            "brin": _text(org.brin),
            "phone": _text(format_phone(org.phone)),
            "email": _text(org.email),
            "notes": _multiline(org.notes),
        }
        for field, text in values.items():
            self.query_one(f"#value-{field}", Label).update(Content(text))
        self._show_iban()
        self._show_retention(view)
        self._show_people(view)
        self._show_consent(view)
        self._show_subscriptions(view)
        self._show_providers(view)
        self._show_audit(view)
        self._show_requests(view)
        self.refresh_bindings()

    def _show_retention(self, view: RecordView) -> None:
        retention = view.retention
        deadline = self.query_one("#value-deadline", Label)
        for band in ("overdue", "soon", "near", "later"):
            deadline.remove_class(f"urgency-{band}")
        if retention.deadline is None:
            deadline.update(Content(t("record.retention.none")))
        else:
            text = f"{retention.deadline.isoformat()}  ({t(f'record.urgency.{retention.urgency}')})"
            deadline.update(Content(text))
            deadline.add_class(f"urgency-{retention.urgency}")
        start = "" if retention.clock_start is None else retention.clock_start.isoformat()
        why = t(
            f"record.retention.why.{retention.reason}",
            rule=_label("record.rule", retention.rule_name),
            months=retention.months,
            start=start,
        )
        self.query_one("#value-rule", Label).update(Content(plain_text(why)))

    def show_hold(self, hold: HoldInfo | None, reason: str | None) -> None:
        """The legal hold beside the deadline: who set it and when (and why, for admins).

        A hold pauses deletion, so the deadline is shown paused too."""
        if not self.is_attached:
            return
        if self._hold_loaded and (hold, reason) == (self.hold, self.hold_reason):
            return
        self._hold_loaded = True
        self.hold, self.hold_reason = hold, reason
        label = self.query_one("#value-hold", Label)
        if hold is None:
            label.update(Content(t("record.hold.none")))
            label.remove_class("-held")
        else:
            text = plain_text(t("record.hold.by", who=hold.set_by, when=_when(hold.set_at)))
            if reason:
                text += "\n" + t("record.hold.reason", reason=_multiline(reason))
            label.update(Content(text))
            label.add_class("-held")
        self.refresh_bindings()

    def _show_iban(self) -> None:
        label = self.query_one("#value-iban", Label)
        org = None if self.view is None else self.view.organisation
        if self.revealed_iban is not None:
            seconds = f"{self.reveal_seconds:g}"
            text = (
                f"{format_iban(self.revealed_iban)}  {t('record.iban.revealed', seconds=seconds)}"
            )
            label.update(Content(plain_text(text)))
            label.add_class("-revealed")
            return
        label.remove_class("-revealed")
        label.update(Content(_text(None if org is None else org.iban_masked)))

    def _set_rows(self, table_id: str, rows: Sequence[Row]) -> None:
        table = self.query_one(f"#{table_id}", VirtualTable)
        table.set_source(Rows(rows), keep_key=table.cursor_key)

    def _show_people(self, view: RecordView) -> None:
        self._set_rows(
            "people-table",
            [
                Row(
                    person.id,
                    (
                        _text(person.name),
                        _text(person.email),
                        _text(", ".join(format_phone(p) for p in person.phones)),
                        _date(person.started_on),
                        _date(person.left_on),
                    ),
                )
                for person in view.administrators
            ],
        )

    def _show_consent(self, view: RecordView) -> None:
        latest = {(e.administrator_id, e.purpose): e for e in view.consent_events}
        self._consent_keys = []
        now_rows = []
        for person in view.administrators:
            for purpose, action in person.consent:
                event = latest.get((person.id, purpose))
                now_rows.append(
                    Row(
                        len(self._consent_keys),
                        (
                            _text(person.name),
                            purpose_label(purpose),
                            _consent_cell(action),
                            _when(event.occurred_at) if event else t("record.empty"),
                            _text(event.source) if event else t("record.empty"),
                        ),
                    )
                )
                self._consent_keys.append((person.id, purpose))
        self._set_rows("consent-now-table", now_rows)
        self._set_rows(
            "consent-history-table",
            [
                Row(
                    event.id,
                    (
                        _when(event.occurred_at),
                        _text(event.administrator_name),
                        purpose_label(event.purpose),
                        _consent_cell(event.action),
                        _text(event.source),
                        _text(event.evidence),
                    ),
                )
                for event in view.consent_events
            ],
        )

    def _show_subscriptions(self, view: RecordView) -> None:
        self._set_rows(
            "subscriptions-table",
            [
                Row(
                    s.id,
                    (
                        _text(s.plan),
                        _date(s.start_date),
                        _date(s.end_date),
                        _label("dashboard.status", s.status),
                    ),
                )
                for s in view.subscriptions
            ],
        )

    def _show_providers(self, view: RecordView) -> None:
        self._set_rows(
            "providers-table",
            [
                Row(
                    link.id,
                    (
                        _text(link.provider),
                        _text(link.subject_name),
                        _text(link.external_id),
                        _when(link.last_synced_at),
                    ),
                )
                for link in view.provider_links
            ],
        )

    def _show_requests(self, view: RecordView) -> None:
        self._set_rows("requests-table", [request_row(r) for r in view.requests])
        for widget in self.query(".record-requests"):
            widget.set_class(bool(view.requests), "-shown")
        marker = self.query_one("#record-restricted", Label)
        text = restriction_text(view)
        marker.update(Content(text))
        marker.set_class(bool(text), "-shown")

    def _show_audit(self, view: RecordView) -> None:
        self._set_rows(
            "audit-table",
            [
                Row(
                    event.id,
                    (
                        _when(event.occurred_at),
                        _text(event.actor),
                        _text(event.action),
                        f"{_label('record.entity', event.entity)} #{event.entity_id}",
                        _text(event.detail),
                    ),
                )
                for event in view.audit
            ],
        )
        note = self.query_one("#audit-truncated", Label)
        note.update(Content(t("record.audit.truncated", count=len(view.audit))))
        note.set_class(view.audit_truncated, "-shown")

    # --- selection ---------------------------------------------------------------------------

    @on(VirtualTable.CursorMoved)
    def _cursor_moved(self, event: VirtualTable.CursorMoved) -> None:
        """Remember whom (and which purpose) the user points at, for ``E`` and ``c``.

        Only the focused list counts: the lists also move their cursors when data reloads.
        """
        if event.key is None or self.view is None or not event.table.has_focus:
            return
        self._select_from(event.table.id, event.key)

    def _select_from(self, table_id: str | None, key: int) -> None:
        if self.view is None:
            return
        if table_id == "people-table":
            self._selected_person, self._selected_purpose = key, None
        elif table_id == "consent-now-table" and key < len(self._consent_keys):
            self._selected_person, self._selected_purpose = self._consent_keys[key]
        elif table_id == "consent-history-table":
            found = next((e for e in self.view.consent_events if e.id == key), None)
            if found is not None:
                self._selected_person = found.administrator_id
                self._selected_purpose = found.purpose
        else:
            return
        self.refresh_bindings()

    @on(VirtualTable.RowSelected)
    def _row_selected(self, event: VirtualTable.RowSelected) -> None:
        table_id = event.table.id
        self._select_from(table_id, event.key)
        if table_id == "people-table":
            self.action_edit_person()
        elif table_id in ("consent-now-table", "consent-history-table"):
            self.action_record_consent()

    def selected_person(self) -> AdministratorView | None:
        """The person last pointed at in the people or consent lists (if still there), else
        the one under the people list's cursor."""
        if self.view is None:
            return None
        if self._selected_person is not None:
            person = self.view.administrator(self._selected_person)
            if person is not None:
                return person
        key = self.query_one("#people-table", VirtualTable).cursor_key
        return None if key is None else self.view.administrator(key)

    # --- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Viewers do not see edit keys (False hides them); missing data dims them (None)."""
        staff = self.app.context.staff  # type: ignore[attr-defined]
        if action in EDIT_ACTIONS:
            if not staff.can(Permission.EDIT):
                return False
            if self.view is None:
                return None
            if action == "edit_person" and self.selected_person() is None:
                return None
            if action == "record_consent" and not self.view.administrators:
                return None
            return True
        if action in HOLD_ACTIONS:
            if not staff.can(Permission.ERASE):
                return False
            if self.view is None or not self._hold_loaded:
                return None
            held = self.hold is not None
            if action == "set_hold":
                return not held  # one of the two hold keys at a time
            if action == "lift_hold":
                return held
            return None if held else True  # erase: a hold refuses it
        if action == "reveal_iban":
            if not staff.can(Permission.REVEAL):
                return False
            if self.view is None or not self.view.organisation.has_iban:
                return None
            return self.revealed_iban is None or None
        return True

    def _refused(self, what: str) -> bool:
        """Refuse (with the services' own message) what this staff member may not do."""
        try:
            self.app.context.staff.require(Permission.EDIT, what)  # type: ignore[attr-defined]
        except PermissionDenied as error:
            self.app.report_error(error)  # type: ignore[attr-defined]
            return True
        return False

    def action_edit_school(self) -> None:
        if self._refused("change organisations") or self.view is None:
            return
        self.app.push_screen(OrganisationForm(self.view.organisation), self._after_form)

    def action_add_person(self) -> None:
        if self._refused("add administrators") or self.view is None:
            return
        form = AdministratorForm(
            self.organisation_id, organisation_name=self.view.organisation.name
        )
        self.app.push_screen(form, self._after_form)

    def action_edit_person(self) -> None:
        if self._refused("change administrators") or self.view is None:
            return
        person = self.selected_person()
        if person is None:
            self.notify(t("record.no_person_selected"), severity="warning", markup=False)
            return
        self.app.push_screen(AdministratorForm(self.organisation_id, person), self._after_form)

    def action_record_consent(self) -> None:
        if self._refused("record consent") or self.view is None:
            return
        if not self.view.administrators:
            self.notify(t("record.no_people"), severity="warning", markup=False)
            return
        person = self.selected_person()
        form = ConsentForm(
            self.view.administrators,
            self.view.purposes,
            person_id=None if person is None else person.id,
            purpose=self._selected_purpose,
        )
        self.app.push_screen(form, self._after_consent)

    def _after_form(self, saved: int | None) -> None:
        # Reload even when cancelled: after a conflict the user wants to see the other save.
        if saved is not None:
            self.notify(t("record.saved"), markup=False)
        self.refresh_data()

    def _after_consent(self, saved: int | None) -> None:
        if saved is not None:
            self.notify(t("record.consent_saved"), markup=False)
        self.refresh_data()

    def action_reveal_iban(self) -> None:
        """Ask the services for the IBAN; they check the role and audit before answering."""
        app: Any = self.app
        self._reveal(app, app.context.engine, app.context.staff)

    @work(thread=True, exclusive=True, group="record-reveal")
    def _reveal(self, app: Any, engine: Any, staff: Any) -> None:
        try:
            iban = reveal_iban(engine, staff, self.organisation_id)
        except Exception as error:
            deliver(app, app.report_error, error)
            return
        deliver(app, self._show_revealed, iban)

    def _show_revealed(self, iban: str) -> None:
        if not self.is_attached:
            return
        self.revealed_iban = iban
        if self._reveal_timer is not None:
            self._reveal_timer.stop()
        self._reveal_timer = self.set_timer(self.reveal_seconds, self.mask_iban)
        self._show_iban()
        self.refresh_bindings()
        self.refresh_data()  # the trail now shows the reveal

    def mask_iban(self) -> None:
        """Hide the IBAN again (the reveal timer calls this)."""
        self.revealed_iban = None
        self._reveal_timer = None
        self._show_iban()
        self.refresh_bindings()

    # --- legal hold and erasure on request ----------------------------------------------------

    def action_set_hold(self) -> None:
        if self._refused_erase("set a legal hold") or self.view is None:
            return
        self.app.push_screen(HoldForm(self.view.organisation.name), self._hold_answered)

    def _hold_answered(self, reason: str | None) -> None:
        if reason:
            app: Any = self.app
            self._change_hold(app, reason)

    def action_lift_hold(self) -> None:
        if self._refused_erase("lift a legal hold") or self.view is None:
            return
        question = plain_text(t("record.hold.lift_question", name=self.view.organisation.name))

        def answered(lift: bool | None) -> None:
            if lift:
                app: Any = self.app
                self._change_hold(app, None)

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, exclusive=True, group="record-hold")
    def _change_hold(self, app: Any, reason: str | None) -> None:
        """Set (with *reason*) or lift (None) the hold; the service audits either."""
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import legal_hold

        try:
            with session_scope(app.context.engine) as session:
                if reason is None:
                    legal_hold.lift_hold(session, app.context.staff, self.organisation_id)
                else:
                    legal_hold.set_hold(session, app.context.staff, self.organisation_id, reason)
        except Exception as error:
            deliver(app, app.report_error, error)
            return
        deliver(app, self._hold_changed, reason is not None)

    def _hold_changed(self, is_set: bool) -> None:
        if not self.is_attached:
            return
        self.notify(t("record.hold.set" if is_set else "record.hold.lifted"), markup=False)
        self.refresh_data()

    def action_erase_request(self) -> None:
        if self._refused_erase("erase a record on request") or self.view is None:
            return
        org = self.view.organisation
        self.app.push_screen(EraseRequestScreen(org.name, org.brin), self._erase_answered)

    def _erase_answered(self, reason: RequestReason | None) -> None:
        if reason is not None:
            app: Any = self.app
            self._erase(app, reason, app.today())

    @work(thread=True, exclusive=True, group="record-erase")
    def _erase(self, app: Any, reason: RequestReason, today: dt.date) -> None:
        """Erase the school on request (the service checks the role, the hold, and audits),
        then deliver its deletion tasks to the providers."""
        from plusjeklas_tui.db import session_scope
        from plusjeklas_tui.services import erasure

        context = app.context
        try:
            runtime = app.provider_runtime()
            targets = erasure.provider_targets(context.settings, runtime.plugin_set)
            with session_scope(context.engine) as session:
                result = erasure.request_erasure(
                    session,
                    context.staff,
                    context.settings.retention,
                    targets,
                    "organisation",
                    self.organisation_id,
                    reason,
                    today,
                )
        except Exception as error:
            deliver(app, app.report_error, error)
            return
        deliver(app, self._erased, len(result.tasks))

    def _erased(self, tasks: int) -> None:
        self.notify(t("record.erase.done", tasks=tasks), markup=False)
        app: Any = self.app
        if tasks:
            app.deliver_now()
        if self.is_attached and self.app.screen is self:
            self.app.pop_screen()

    def _refused_erase(self, what: str) -> bool:
        """Refuse (with the services' own message) what only administrators may do."""
        try:
            self.app.context.staff.require(Permission.ERASE, what)  # type: ignore[attr-defined]
        except PermissionDenied as error:
            self.app.report_error(error)  # type: ignore[attr-defined]
            return True
        return False

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one("#record-tabs", TabbedContent)
        tabs.active = f"tab-{tab}"
        pane = self.query_one(f"#tab-{tab}", TabPane)
        target: Any = None
        if tab != "school":  # the school pane scrolls as a whole (its request list included)
            target = pane.query(VirtualTable).first() if pane.query(VirtualTable) else None
        if target is None:
            target = self.query_one("#school-pane", VerticalScroll)
        target.focus()

    async def action_back(self) -> None:
        await self.app.run_action("back")
