"""The Textual app: owns the refresh loop and hands each new fleet to the screens."""

from __future__ import annotations

import difflib
import importlib
import itertools
import logging
import pkgutil
import time
from collections.abc import Callable

from rich.text import Text
from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from hsnap_tui.config import ConfigError, Context
from hsnap_tui.core.api import DEFAULT_ENDPOINT, HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.errors import explain
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import Job, JobEngine, JobState
from hsnap_tui.core.models import Action, Snapshot
from hsnap_tui.core.policy import Policy
from hsnap_tui.core.refresh import Refresher
from hsnap_tui.core.session import Session, TickResult, Workspace
from hsnap_tui.core.units import short_age
from hsnap_tui.ui.commands import KeyCommandsProvider, disabled_reason, key_commands
from hsnap_tui.ui.messages import DeletionProgress, SessionsTicked
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.help import HelpScreen
from hsnap_tui.ui.screens.servers import ServersScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotRequest
from hsnap_tui.ui.screens.snapshots import SnapshotsScreen
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel

log = logging.getLogger(__name__)


def known_binding_ids() -> set[str]:
    """Every binding ID of the app's screens and widgets (keymap.toml names these)."""
    for package in ("hsnap_tui.ui.screens", "hsnap_tui.ui.widgets"):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"{package}.{info.name}")  # screens opened lazily too
    ids: set[str] = set()
    classes: list[type] = [DOMNode]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if cls.__module__.startswith("hsnap_tui."):
            for binding in cls.__dict__.get("BINDINGS", []):
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    return ids


class HsnapApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "hsnap-tui"
    MODES = {"servers": ServersScreen, "snapshots": SnapshotsScreen, "activity": ActivityScreen}
    DEFAULT_MODE = "servers"
    # ctrl+p: the keys of the current view, then Textual's theme and screenshot commands
    COMMANDS = {KeyCommandsProvider}

    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit hsnap-tui"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Every key of this view"),
        Binding(
            "r",
            "refresh",
            "Refresh",
            id="app.refresh",
            tooltip="Refresh servers, locks and snapshots now",
        ),
        Binding(
            "1",
            "switch_mode('servers')",
            "Servers",
            id="app.view.servers",
            show=False,
            tooltip="View 1: the servers",
        ),
        Binding(
            "2",
            "switch_mode('snapshots')",
            "Snapshots",
            id="app.view.snapshots",
            show=False,
            tooltip="View 2: every snapshot; delete and retention",
        ),
        Binding(
            "3",
            "switch_mode('activity')",
            "Activity",
            id="app.view.activity",
            show=False,
            tooltip="View 3: snapshot jobs and the audit log",
        ),
        Binding(
            "a",
            "inspect_action_id",
            "Action ID",
            id="app.action_id",
            tooltip="Inspect an action by its ID",
        ),
        Binding(
            "c",
            "switch_context",
            "Context",
            id="app.context",
            tooltip="Switch to another context of the hcloud CLI config",
        ),
        Binding(
            "z",
            "dismiss_ended",
            "Dismiss ended",
            id="app.dismiss_ended",
            show=False,  # the jobs panel names it while it shows ended jobs
            tooltip="Take the ended jobs off the jobs panel now (else after a minute)",
        ),
    ]

    def __init__(
        self,
        api: HetznerApi,
        *,
        context: str | None = None,
        demo: bool = False,
        refresh: float = 5.0,
        budget: float = 0.25,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        poll_live: bool = True,
        audit: AuditLog | None = None,
        contexts: Callable[[], list[Context]] | None = None,
        connect: Callable[[Context], HetznerApi] | None = None,
        warnings: list[str] | None = None,
        keymap: dict[str, str] | None = None,
        policies: list[Policy] | None = None,
    ) -> None:
        super().__init__()
        self.policies = list(policies or [])  # what the retention plan (p) previews
        self.context = context
        self.demo = demo
        self.now = now
        self.poll_live = poll_live
        self._clock = clock
        self._refresh_every = refresh
        self._budget = budget
        self._contexts = contexts
        self._connect = connect
        self.startup_warnings = list(warnings or [])
        self.user_keymap = dict(keymap or {})
        self._job_ids = itertools.count(1)  # job numbers unique across contexts
        audit = audit or AuditLog(None, context=context or "", endpoint=api.endpoint, now=now)
        self.workspace = Workspace(self._new_session(api, context or "", audit))
        self._read_only_seen = api.read_only
        self.views: set = set()  # mounted screens that show the fleet or the jobs
        self.last_error: str | None = None
        self.last_slow_error: str | None = None
        self._polling = False
        self._poll_again = False
        self._poll_timer = None
        # a session whose token the API rejected: not polled again until `r` or a switch
        self._rejected: Session | None = None

    def _new_session(self, api: HetznerApi, context: str, audit: AuditLog) -> Session:
        return Session(
            api,
            name=context,
            audit=audit,
            refresh=self._refresh_every,
            budget=self._budget,
            clock=self._clock,
            now=self.now,
            job_ids=self._job_ids,
        )

    # The live session's parts, for the screens.

    @property
    def session(self) -> Session:
        return self.workspace.live

    @property
    def api(self) -> HetznerApi:
        return self.session.api

    @property
    def audit(self) -> AuditLog:
        return self.session.audit

    @property
    def jobs(self) -> JobEngine:
        return self.session.jobs

    @property
    def refresher(self) -> Refresher:
        return self.session.refresher

    @property
    def background(self) -> list[Session]:
        return self.workspace.background

    @property
    def fleet(self) -> FleetState:
        return self.session.fleet

    @property
    def read_only(self) -> bool:
        return self.api.read_only

    def all_jobs(self) -> list[Job]:
        return self.workspace.all_jobs()

    def engine_of(self, job_id: int) -> JobEngine | None:
        session = self.workspace.session_of(job_id)
        return session.jobs if session is not None else None

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification carries API or operator text: shown as it is, never as
        markup (a description like `[/var/lib/mysql]` must not crash the app)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def action_help_quit(self) -> None:
        """ctrl+c: Textual's hint says how to quit, in markup our notify shows as text."""
        keys = [k for k, b in self.active_bindings.items() if b.binding.action == "quit"]
        self.notify(f"Press {' or '.join(keys) or 'q'} to quit.", title="Do you want to quit?")

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
            known = known_binding_ids()
            for binding_id in sorted(set(self.user_keymap) - known):
                close = difflib.get_close_matches(binding_id, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.startup_warnings.append(
                    f"keymap.toml: no binding has the ID {binding_id!r}{hint}; it is "
                    "ignored (? lists the IDs)"
                )
        for warning in self.startup_warnings:
            self.notify(warning, title="Warning", severity="warning", timeout=15)
        if self.read_only:
            self.notify(
                f"Read-only ({self.api.read_only_reason}): nothing will be changed.", timeout=5
            )
        if self.poll_live:
            self.start_poll()

    # ---- the refresh loop -----------------------------------------------------------

    def start_poll(self) -> Worker | None:
        """Tick the sessions in a worker; the next tick is scheduled when it reports
        back. Never two at once: a request made meanwhile runs right after."""
        if self._polling:
            self._poll_again = True
            return None
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        # The sessions are chosen here, on the app thread, once: a context switch while
        # the worker runs changes the next tick, not this one.
        sessions = [s for s in self.workspace.to_tick() if s is not self._rejected]
        if not sessions:
            return None
        self._polling = True
        return self._poll_worker(sessions)

    @work(thread=True, exit_on_error=False, group="refresh")
    def _poll_worker(self, sessions: list[Session]) -> None:
        results = [session.tick() for session in sessions]
        self.post_message(SessionsTicked(results))

    def on_sessions_ticked(self, message: SessionsTicked) -> None:
        self._polling = False
        live = next((r for r in message.results if r.session is self.session), None)
        if live is not None:
            self._show_live(live)
        for result in message.results:
            self._announce(result)
        self._show_jobs()
        self._refresh_status()
        if self._poll_again:
            self._poll_again = False
            self.start_poll()
        elif self.poll_live:
            ticked = self.workspace.to_tick()
            delays = [r.next_delay for r in message.results if r.session in ticked]
            if live is None and self.session is not self._rejected:
                delays.append(0.0)  # a poll of the context just left: tick the new one now
            self._poll_timer = self.set_timer(max(0.2, min(delays, default=1.0)), self.start_poll)

    def _show_live(self, result: TickResult) -> None:
        if self.read_only and not self._read_only_seen:
            self._read_only_seen = True
            self.notify(
                f"Switched to read-only: {self.api.read_only_reason}. The token may "
                "read but not change anything; snapshots and deletions are off.",
                title="Read-only",
                severity="warning",
                timeout=12,
            )
            self.refresh_bindings()
        if result.error_code == "unauthorized":
            self._token_rejected(result)
            return
        if result.error:
            if self.last_error is None:
                self.notify(
                    result.error,
                    title="API unreachable — showing the last data",
                    severity="error",
                    timeout=8,
                )
            self.last_error = result.error
        elif result.lanes:
            if self.last_error is not None:
                self.notify(
                    "The API answers again; the data is fresh.", title="Recovered", timeout=4
                )
            self.last_error = None
        if result.slow_error and self.last_slow_error is None:
            self.notify(
                f"{result.slow_error} Locks and snapshot jobs are still followed.",
                title="The server list could not be read",
                severity="warning",
                timeout=8,
            )
        if result.slow_error or "slow" in result.lanes:
            self.last_slow_error = result.slow_error
        if result.fleet is not None:
            self._show_fleet(result.fleet)
        for action in result.watched.values():
            for view in list(self.views):
                if hasattr(view, "action_changed"):
                    view.action_changed(action)

    def _token_rejected(self, result: TickResult) -> None:
        """Said once; this context is not asked again (every ask would be refused)
        until `r` or a switch."""
        if self._rejected is self.session:
            return
        self._rejected = self.session
        self.last_error = result.error
        self.notify(
            f"{result.error or 'The API rejected the token.'} Give hsnap-tui a valid "
            "token and restart, or press c for another context. Polling stopped; r "
            "tries again.",
            title="Token rejected",
            severity="error",
            timeout=30,
        )

    def _announce(self, result: TickResult) -> None:
        where = "" if result.session is self.session else f" ({result.session.name})"
        for event in result.events:
            failed = event.job.state == JobState.FAILED or bool(event.job.power_error)
            self.notify(
                event.message,
                title=f"Snapshot job{where}",
                severity="error" if failed else "information",
                # a server left off stays on screen until dismissed
                timeout=float("inf") if event.job.power_error else 10 if failed else 6,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in a poll must not stop the loop: say so and try again later.
        if event.worker.group == "refresh" and event.state == WorkerState.ERROR:
            self._polling = False
            self.notify(f"Refresh failed: {explain(event.worker.error)}", severity="error")
            if self.poll_live:
                self._poll_timer = self.set_timer(10, self.start_poll)

    def _show_fleet(self, fleet: FleetState) -> None:
        now = self.now()
        for view in list(self.views):
            if hasattr(view, "fleet_changed"):
                view.fleet_changed(fleet, now)

    def _show_jobs(self) -> None:
        jobs, now = self.all_jobs(), self.now()
        for view in list(self.views):
            if hasattr(view, "jobs_changed"):
                view.jobs_changed(jobs, now)

    # ---- lock investigation ---------------------------------------------------------

    def inspect(self, action: Action, note: str | None = None) -> None:
        from hsnap_tui.ui.screens.inspector import ActionInspectorScreen

        self.push_screen(ActionInspectorScreen(action, note=note))
        self.start_poll()  # the inspector follows it from the next tick on

    def action_inspect_action_id(self) -> None:
        from hsnap_tui.ui.screens.inspector import ActionIdDialog

        def looked_up(action: Action | None) -> None:
            if action is not None:
                self.inspect(action)

        self.push_screen(ActionIdDialog(), looked_up)

    def inspect_action_id(self, action_id: int, note: str | None = None) -> None:
        """Open an action known only by ID (e.g. from a job): from the fleet if it is
        running, else one `GET /actions/{id}`."""
        running = next((a for a in self.fleet.running if a.id == action_id), None)
        if running is not None:
            self.inspect(running, note)
        else:
            self._fetch_and_inspect(action_id, note)

    @work(thread=True, exit_on_error=False, group="inspect")
    def _fetch_and_inspect(self, action_id: int, note: str | None) -> None:
        try:
            action = self.api.action(action_id)
        except Exception as exc:  # shown, never raised
            self.call_from_thread(self.notify, explain(exc), severity="error")
            return
        self.call_from_thread(self.inspect, action, note)

    # ---- deleting snapshots ---------------------------------------------------------

    def delete_snapshots(self, snapshots: list[Snapshot]) -> None:
        self._delete_worker(self.session, snapshots)

    @work(thread=True, exit_on_error=False, group="delete")
    def _delete_worker(self, session: Session, snapshots: list[Snapshot]) -> None:
        session.delete_snapshots(
            snapshots, lambda report: self.post_message(DeletionProgress(report))
        )

    def on_deletion_progress(self, message: DeletionProgress) -> None:
        self.snapshots_deleted(set(message.deleted))
        if message.finished:
            for failure in message.failures:
                self.notify(failure, title="Not deleted", severity="error", timeout=10)
            if message.deleted:
                self.notify(
                    f"Deleted {len(message.deleted)} snapshot"
                    f"{'s' if len(message.deleted) != 1 else ''}.",
                    timeout=4,
                )

    def snapshots_deleted(self, ids: set[int]) -> None:
        """The session already forgot them; show the fleet without them (and the
        Activity view's audit log with the DELETEs)."""
        if ids:
            self._show_fleet(self.fleet)
        self._show_jobs()

    # ---- snapshot jobs --------------------------------------------------------------

    def submit_snapshots(self, request: SnapshotRequest) -> None:
        queued, refused = self.session.submit(
            request.servers,
            request.template,
            request.labels,
            request.policy,
            shutdown=request.shutdown,
        )
        for server, reason in refused:
            self.notify(f"{server.name} {reason}; nothing sent", severity="warning")
        if queued:
            names = ", ".join(j.server_name for j in queued[:3])
            more = f" and {len(queued) - 3} more" if len(queued) > 3 else ""
            self.notify(f"Queued: {names}{more}", title="Snapshot jobs", timeout=4)
            self.start_poll()
        self._show_jobs()

    def cancel_job(self, job_id: int) -> None:
        engine = self.engine_of(job_id) or self.jobs
        problem = engine.cancel(job_id)
        if problem:
            self.notify(f"Job {job_id}: {problem}", severity="warning")
        else:
            job = engine.get(job_id)
            self.notify(f"Cancelled the snapshot of {job.server_name if job else job_id}")
        self._show_jobs()

    async def action_quit(self) -> None:
        active = [j for j in self.all_jobs() if j.active]
        if not active:
            self.exit()
            return
        running = sum(
            j.state in (JobState.RUNNING, JobState.CREATING, JobState.UNKNOWN) for j in active
        )
        waiting = len(active) - running
        message = (
            f"{len(active)} snapshot job{'s are' if len(active) != 1 else ' is'} still active.\n"
        )
        off = [j.server_name for j in active if j.turned_off]
        if off:
            it = "it" if len(off) == 1 else "them"
            message += (
                f"\nSTILL OFF: {', '.join(off)} — shut down for a consistent snapshot; "
                f"quitting leaves {it} off (the jobs power {it} on again if you stay).\n"
            )
        if running:
            message += (
                f"\nHetzner finishes the {running} snapshot{'s' if running != 1 else ''} "
                "already started even if you quit; hsnap-tui just stops watching them."
            )
        if waiting:
            message += (
                f"\nThe {waiting} queued or waiting job{'s' if waiting != 1 else ''} "
                "will not be sent."
            )

        def answered(quit_now: bool | None) -> None:
            if not quit_now:
                return
            left = [j.server_name for j in self.all_jobs() if j.active and j.turned_off]
            if left:  # said once more where it stays: the terminal after the console
                commands = "; ".join(f"hcloud server poweron {name}" for name in left)
                self.exit(
                    message=f"hsnap-tui: STILL OFF (shut down for a snapshot): "
                    f"{', '.join(left)} — power on: {commands}"
                )
            else:
                self.exit()

        self.push_screen(
            ConfirmScreen("Quit hsnap-tui?", message + "\n\nQuit anyway?", yes="Quit", no="Stay"),
            answered,
        )

    def monotonic(self) -> float:
        """The session clock (monotonic; the simulator's in tests)."""
        return self._clock()

    def on_key(self, event: events.Key) -> None:
        """A greyed-out key says why, in one line (Textual would ignore it silently)."""
        active = self.screen.active_bindings.get(event.key)
        if active is None or active.enabled or not active.binding.id:
            return
        self.notify(
            f"{active.binding.description} is disabled: {disabled_reason(self)}.",
            severity="warning",
            timeout=4,
        )

    def _refresh_status(self) -> None:
        for status in self.screen.query("StatusBar"):
            status.refresh_status()

    # ---- the header -----------------------------------------------------------------

    def status_text(self) -> Text:
        text = Text()
        text.append(" hsnap-tui ", style="bold reverse")
        text.append(" ")
        if self.demo:
            text.append(" DEMO ", style="bold black on yellow")
        elif self.context:
            text.append(self.context, style="bold")
        if self.read_only:
            text.append(" ")
            text.append(" READ-ONLY ", style="bold white on blue")
        if self.refresher.last_error_code == "unauthorized":
            text.append(" ")
            text.append(" TOKEN REJECTED ", style="bold white on red")
        # what matters most first (how fresh, the budget); the rest only where it fits
        text.append("  ")
        text.append_text(self._freshness())
        rate = self.api.monitor.rate_limit
        if rate is not None:
            style = "bold red" if rate.fraction_left < 0.10 else ""
            text.append(f"  API {rate.remaining}/{rate.limit}", style=style)
        if self.refresher.throttled or self.refresher.waiting_for_budget:
            text.append("  throttling", style="bold yellow")
        room = self.size.width - 2
        if self.background:
            count = sum(len(s.jobs.active_jobs()) for s in self.background)
            others = f"  +{count} job{'s' if count != 1 else ''} in other contexts"
            if text.cell_len + len(others) > room:
                others = f"  +{count} elsewhere"
            text.append(others, style="dim")
        endpoint = self.api.endpoint
        shown = endpoint != DEFAULT_ENDPOINT and not self.demo
        if shown and text.cell_len + 2 + len(endpoint) <= room:
            text.append(f"  {endpoint}", style="dim")
        if text.cell_len + 8 <= self.size.width - 2:  # the footer has ? too
            text.append("  ? keys", style="dim")
        return text

    def _lanes_on_screen(self) -> tuple[tuple[str, str], ...]:
        """(what it is called here, lane) for the data the current view shows."""
        from hsnap_tui.ui.screens.details import ServerDetailsScreen
        from hsnap_tui.ui.screens.inspector import ActionInspectorScreen

        for screen in reversed(self.screen_stack):  # a dialog speaks for what is under it
            if isinstance(screen, ActionInspectorScreen):
                return (("action", "locks"),)
            if isinstance(screen, ActivityScreen):
                return (("jobs", "locks"),)
            if isinstance(screen, SnapshotsScreen):
                return (("snapshots", "fleet"),)
            if isinstance(screen, (ServersScreen, ServerDetailsScreen)):
                break
        return (("locks", "locks"), ("servers", "fleet"))

    def _freshness(self) -> Text:
        """How old what is on screen is, per lane: `locks 3s ago · servers 40s ago`; a
        lane late by three of its intervals is flagged, a failing one says STALE."""
        refresher = self.refresher
        text = Text()
        if refresher.stale_for() is not None:  # nothing answers: all of it is old
            ages = refresher.lane_ages()
            oldest = max(
                (ages[lane].age or 0.0 for _, lane in self._lanes_on_screen()), default=0.0
            )
            text.append(f"STALE {short_age(oldest)}", style="bold white on red")
            retry = refresher.retry_in()
            if retry is not None:
                text.append(f" — retrying in {retry:.0f}s", style="red")
            return text
        if refresher.last_success is None:
            if self.last_error:
                retry = refresher.retry_in()
                text.append("no data yet", style="bold red")
                if retry is not None:
                    text.append(f" — retrying in {retry:.0f}s", style="red")
            else:
                text.append("loading…", style="italic")
            return text
        ages = refresher.lane_ages()
        for index, (name, lane) in enumerate(self._lanes_on_screen()):
            age = ages[lane]
            if index:
                text.append(" · ", style="dim")
            if age.age is None:
                text.append(f"{name} loading…", style="italic")
            elif age.failing:
                text.append(f"{name} STALE {short_age(age.age)}", style="bold white on red")
            elif age.overdue:
                text.append(f"{name} {short_age(age.age)} ago (late)", style="bold yellow")
            else:
                text.append(f"{name} {short_age(age.age)} ago", style="green")
        return text

    # ---- contexts -------------------------------------------------------------------

    def action_switch_context(self) -> None:
        from hsnap_tui.ui.screens.contexts import ContextScreen

        contexts = self._contexts() if self._contexts and not self.demo else []
        if not contexts:
            self.notify(
                "No contexts to switch to: create them with `hcloud context create "
                "NAME`" + (" (not in --demo)" if self.demo else "") + ".",
                severity="warning",
            )
            return

        def picked(context: Context | None) -> None:
            if context is not None and context.name != self.context:
                self._confirm_switch(context)

        self.push_screen(ContextScreen(contexts, self.context), picked)

    def _confirm_switch(self, context: Context) -> None:
        active = self.jobs.active_jobs()
        if not active:
            self.switch_context(context)
            return
        message = (
            f"{len(active)} snapshot job{'s are' if len(active) != 1 else ' is'} "
            f"active in {self.context}. hsnap-tui keeps following "
            f"{'them' if len(active) != 1 else 'it'} in the background with that "
            f"context's token; the Activity view still shows "
            f"{'them' if len(active) != 1 else 'it'}.\n\nSwitch to {context.name}?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.switch_context(context)

        self.push_screen(
            ConfirmScreen(f"Switch to {context.name}?", message, yes="Switch", no="Stay"), answered
        )

    def switch_context(self, context: Context) -> None:
        session = self.workspace.find(context.name)
        if session is None:
            try:
                api = self._connect(context) if self._connect else None
            except ConfigError as exc:
                self.notify(str(exc), title="Cannot switch", severity="error", timeout=10)
                return
            if api is None:
                return
            session = self._new_session(
                api, context.name, self.audit.for_context(context.name, api.endpoint)
            )
        self.workspace.switch(session)
        self._rejected = None
        self.context = context.name
        self._read_only_seen = self.api.read_only
        self.last_error = None
        log.info("switched to context %s (%s)", context.name, self.api.endpoint)
        for view in list(self.views):
            if hasattr(view, "context_changed"):
                view.context_changed()
        self._show_fleet(self.fleet)
        self._show_jobs()
        self._refresh_status()
        self.notify(f"Switched to {context.name}.", timeout=3)
        # A tick already running finishes first (its result goes to the session it was
        # for); the new live session is ticked right after.
        self.start_poll()

    # ---- actions --------------------------------------------------------------------

    def action_refresh(self) -> None:
        self._rejected = None  # `r` asks again, even with a token rejected before
        self.refresher.request_full()
        self.start_poll()

    def _jobs_panels(self) -> list[JobsPanel]:
        return list(self.screen.query(JobsPanel))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "dismiss_ended":
            # None: greyed out, and pressing it says why
            return True if any(p.ended_shown for p in self._jobs_panels()) else None
        return True

    def action_dismiss_ended(self) -> None:
        for panel in self._jobs_panels():
            panel.dismiss_ended()

    def action_help(self) -> None:
        """The keys of the current view, grouped as the help shows them: the view's own
        (its screen and widgets), the table's, and the app's. The same list as the
        palette's: only bindings with an ID."""
        from hsnap_tui.ui.screens.help import HelpRow

        if isinstance(self.screen, HelpScreen):
            return
        groups: dict[str, list[HelpRow]] = {"This view": [], "The table": [], "Everywhere": []}
        for command in key_commands(self.screen):
            node = command.namespace
            group = (
                "Everywhere"
                if node is self
                else "The table"
                if isinstance(node, DataTable)
                else "This view"
            )
            groups[group].append(
                HelpRow(
                    # `k ↑`, `g home`: the letter first, as the footer and README say it
                    " ".join(sorted(command.keys, key=lambda k: not (len(k) == 1 and k.isalpha()))),
                    command.name,
                    command.tooltip,
                    command.binding_id,
                    command.enabled,
                )
            )
        # a view's keys that do not apply now (escape's second meaning: clear the marks
        # when a filter is on) are still keys someone may remap: listed, greyed out
        listed = {row.binding_id for rows in groups.values() for row in rows}
        for binding in type(self.screen).BINDINGS:
            if isinstance(binding, Binding) and binding.id and binding.id not in listed:
                listed.add(binding.id)
                groups["This view"].append(
                    HelpRow(
                        self.get_key_display(binding),
                        binding.description,
                        binding.tooltip,
                        binding.id,
                        False,
                    )
                )
        name = self.screen.sub_title or type(self.screen).__name__.removesuffix("Screen")
        self.push_screen(HelpScreen(name, list(groups.items())))
