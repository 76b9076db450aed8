"""The staff app: a keyboard-driven dashboard over the database, for use over SSH.

The ``App`` stays small: it holds the context, switches between the screens (one Textual *mode*
per top-level screen, so each keeps its own stack and state), routes tile shortcuts, and makes
sure an unexpected error never shows personal data (no traceback locals, no exception text).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from plusjeklas_tui.runtime import Providers

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.services.deadlines import RetentionRule
from plusjeklas_tui.tui.commands import JumpCommands
from plusjeklas_tui.tui.database import database_message
from plusjeklas_tui.tui.filters import OrganisationFilter
from plusjeklas_tui.tui.frame_rate import use_frame_rate
from plusjeklas_tui.tui.i18n import set_language, t, translate_bindings
from plusjeklas_tui.tui.screens.dashboard import DashboardScreen
from plusjeklas_tui.tui.screens.help import HelpScreen
from plusjeklas_tui.tui.widgets.tile import Tile


def _today_in_amsterdam() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/Amsterdam")).date()


SCREENS = Binding.Group("nav.screens")

LAZY_SCREENS: dict[str, tuple[str, str]] = {
    "organisations": ("organisations", "OrganisationsScreen"),
    "people": ("people", "PeopleScreen"),
    "audit": ("audit", "AuditScreen"),
    "providers": ("providers", "ProvidersScreen"),
    "retention": ("retention", "RetentionScreen"),
    "deletions": ("deletions", "DeletionsScreen"),
    "feedback": ("feedback", "FeedbackScreen"),
    "requests": ("requests", "RequestsScreen"),
    "breaches": ("breaches", "BreachesScreen"),
}
"""Mode -> (module in ``plusjeklas_tui.tui.screens``, screen class), imported on first use."""


def _lazy_screen(module: str, name: str) -> Callable[[], Screen]:
    def make() -> Screen:
        import importlib

        screen_class = getattr(
            importlib.import_module(f"plusjeklas_tui.tui.screens.{module}"), name
        )
        return screen_class()

    return make


use_frame_rate()


class PlusjeklasApp(App[None]):
    CSS_PATH = "app.tcss"
    COMMANDS: ClassVar = App.COMMANDS | {JumpCommands}
    BINDINGS: ClassVar = [
        Binding("question_mark", "help", "nav.help", id="help"),
        Binding("slash", "filter", "nav.filter", id="filter"),
        Binding("q", "back", "nav.back", id="back"),
        # One key per screen; a narrow footer groups them ("d o p a v b w f i u Screens").
        # (`u`, not `g` or `r`, for requests: lists use `g` for the first row, and several
        # screens bind `r` for themselves, which would hide a navigation key there.)
        Binding("d", "goto('dashboard')", "nav.dashboard", id="goto-dashboard", group=SCREENS),
        Binding(
            "o",
            "goto('organisations')",
            "nav.organisations",
            id="goto-organisations",
            group=SCREENS,
        ),
        Binding("p", "goto('people')", "nav.people", id="goto-people", group=SCREENS),
        Binding("a", "goto('audit')", "nav.audit", id="goto-audit", group=SCREENS),
        Binding("v", "goto('providers')", "nav.providers", id="goto-providers", group=SCREENS),
        Binding("b", "goto('retention')", "nav.retention", id="goto-retention", group=SCREENS),
        Binding("w", "goto('deletions')", "nav.deletions", id="goto-deletions", group=SCREENS),
        Binding("f", "goto('feedback')", "nav.feedback", id="goto-feedback", group=SCREENS),
        Binding("i", "goto('breaches')", "nav.breaches", id="goto-breaches", group=SCREENS),
        Binding("u", "goto('requests')", "nav.requests", id="goto-requests", group=SCREENS),
        Binding("ctrl+r", "refresh", "nav.refresh", id="refresh", show=False),
    ]

    auto_refresh_seconds: float = 5.0

    deliver_deletions: bool = True
    """Deliver deletion tasks in the background while the app runs (when a provider is
    enabled). Tests switch it off; the Retention and Deletions screens deliver on request."""
    deliver_after_seconds: float = 3.0
    """The background delivery starts this long after start-up, not competing with the first
    paint (in a demo it starts the provider imitations)."""

    def __init__(
        self,
        context: AppContext,
        *,
        today: Callable[[], dt.date] = _today_in_amsterdam,
    ) -> None:
        set_language(context.settings.language)
        self.context = context
        self.today = today
        self._providers: Providers | None = None
        self._providers_lock = threading.Lock()
        self.retention_rule = RetentionRule(
            months=context.settings.retention.general_after_end_months
        )
        super().__init__()
        self.title = t("app.title")
        self.sub_title = t(
            "app.subtitle", user=context.staff.username, role=t(f"role.{context.staff.role}")
        )
        translate_bindings(self)
        for mode, factory in self.screen_factories().items():
            self.add_mode(mode, factory)

    def screen_factories(self) -> dict[str, Callable[[], Screen]]:
        """Mode name -> screen factory. Only the dashboard is imported up front: each other
        screen's module (and the services it needs) loads the first time it is shown, so the
        start of the app pays for the dashboard alone."""
        factories: dict[str, Callable[[], Screen]] = {"dashboard": DashboardScreen}
        for mode, (module, name) in LAZY_SCREENS.items():
            factories[mode] = _lazy_screen(module, name)
        return factories

    def on_mount(self) -> None:
        self.switch_mode("dashboard")
        plugins = self.context.settings.plugins
        if self.deliver_deletions and any(table.enabled for table in plugins.values()):
            self.set_timer(self.deliver_after_seconds, self._deliver_in_background)

    @work(thread=True, exclusive=True, group="deletions-background", exit_on_error=False)
    def _deliver_in_background(self) -> None:
        """The deletion worker (``deletions.run_forever``) for as long as the app runs; it is
        cancelled on exit (Textual cancels every worker; :meth:`on_unmount` does too)."""
        from plusjeklas_tui.tui.delivery import run_in_background

        run_in_background(self, get_current_worker().cancelled_event)

    @work(thread=True, group="deletions-now", exit_on_error=False)
    def deliver_now(self) -> None:
        """One delivery run (after an erasure from the record), its outcome as a notification."""
        from plusjeklas_tui.tui.delivery import deliver_once, describe_run

        try:
            text, bad = describe_run(deliver_once(self))
        except Exception as error:
            with contextlib.suppress(RuntimeError):  # the app has ended
                self.call_from_thread(self.report_error, error)
            return
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(
                self.notify,
                Text(text),
                severity="warning" if bad else "information",
                markup=False,
            )

    def provider_runtime(self) -> Providers:
        """The enabled providers, built on first use (from a worker thread: in a demo this
        starts the imitations) and closed when the app ends."""
        with self._providers_lock:
            if self._providers is None:
                from plusjeklas_tui.runtime import open_providers

                self._providers = open_providers(self.context.settings)
            return self._providers

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "deletions-background")
        with self._providers_lock:
            if self._providers is not None:
                self._providers.close()
                self._providers = None

    # --- navigation ----------------------------------------------------------------------

    async def action_goto(self, mode: str, filter: OrganisationFilter | None = None) -> None:
        if self.current_mode != mode:
            await self.switch_mode(mode)
        else:
            while len(self.screen_stack) > 1:
                self.pop_screen()
        apply = getattr(self.screen, "apply_filter", None)
        if filter is not None and apply is not None:
            apply(filter)

    async def on_tile_opened(self, message: Tile.Opened) -> None:
        await self.action_goto(message.target, message.filter)

    async def action_filter(self) -> None:
        """`/`: filter the current list, or open the organisations list with the filter focused."""
        focus_filter = getattr(self.screen, "focus_filter", None)
        if focus_filter is None:
            await self.action_goto("organisations")
            focus_filter = getattr(self.screen, "focus_filter", None)
        if focus_filter is not None:
            focus_filter()

    async def open_organisation(self, organisation_id: int) -> None:
        """Open an organisation's record on top of the current screen (list, palette, audit)."""
        from plusjeklas_tui.tui.screens.record import RecordScreen

        await self.push_screen(RecordScreen(organisation_id))

    def has_unsaved_changes(self) -> bool:
        return any(
            getattr(screen, "has_unsaved_changes", lambda: False)()
            for stack in self._screen_stacks.values()
            for screen in stack
        )

    async def action_quit(self) -> None:
        """Quit; ask first only when a form holds unsaved changes."""
        if not self.has_unsaved_changes():
            self.exit()
            return
        from plusjeklas_tui.tui.screens.confirm import ConfirmScreen

        def answered(leave: bool | None) -> None:
            if leave:
                self.exit()

        self.push_screen(ConfirmScreen(t("confirm.quit_unsaved")), answered)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen(self.screen))

    def action_refresh(self) -> None:
        refresh = getattr(self.screen, "refresh_data", None)
        if refresh is not None:
            refresh()

    async def action_back(self) -> None:
        """`q`: back one screen; from the dashboard, quit (asking only if changes are unsaved)."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "dashboard":
            await self.switch_mode("dashboard")
        else:
            await self.action_quit()

    # --- errors --------------------------------------------------------------------------

    def report_error(self, error: BaseException) -> None:
        """Show an error without personal data: our own messages are safe, others are not.

        Database trouble (locked, gone, migrated by a newer version) gets its own sentence
        from the catalogue; the driver's text is never shown.
        """
        problem = database_message(error)
        if problem is not None:
            self.notify(Text(problem), severity="error", markup=False)  # type: ignore[arg-type]
        elif isinstance(error, PlusjeklasError):
            self.notify(Text(str(error)), severity="error", markup=False)  # type: ignore[arg-type]
        else:
            self.notify(
                Text(t("error.unexpected", kind=type(error).__name__)),  # type: ignore[arg-type]
                severity="error",
                markup=False,
            )

    def _fatal_error(self) -> None:
        """Exit on an unexpected error, showing where it happened but no values.

        Textual's default prints a traceback with local variables, which would put decrypted
        names and addresses on the terminal (and in any log of it).
        """
        import sys

        exc_type, _exc, tb = sys.exc_info()
        frames = traceback.extract_tb(tb)[-5:] if tb else []
        where = "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in frames)
        name = exc_type.__name__ if exc_type else "error"
        self.bell()
        self._exit_renderables.append(
            Text(
                f"plusjeklas stopped on an unexpected {name}. Its message and values are not "
                f"shown because they may hold personal data.\n{where}"
            )
        )
        self._close_messages_no_wait()
