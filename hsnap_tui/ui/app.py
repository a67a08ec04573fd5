"""The Textual app: owns the refresh loop and hands each new fleet to the screens."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from hsnap_tui.config import ConfigError, Context
from hsnap_tui.core.api import DEFAULT_ENDPOINT, HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.errors import explain
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import Job, JobEngine, JobEvent, JobState
from hsnap_tui.core.models import Action, Snapshot
from hsnap_tui.core.refresh import Refresher, pages
from hsnap_tui.ui.messages import FleetRefreshed
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.help import HelpScreen
from hsnap_tui.ui.screens.servers import ServersScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotRequest
from hsnap_tui.ui.screens.snapshots import DeletionProgress, SnapshotsScreen, delete_in_worker

log = logging.getLogger(__name__)


@dataclass
class Session:
    """One project connection: its API, refresh engine and snapshot jobs."""

    name: str
    api: HetznerApi
    refresher: Refresher
    jobs: JobEngine


class HsnapApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "hsnap-tui"
    MODES = {"servers": ServersScreen, "snapshots": SnapshotsScreen, "activity": ActivityScreen}
    DEFAULT_MODE = "servers"

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
    ) -> None:
        super().__init__()
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
        self._job_ids = itertools.count(1)
        self.audit = audit or AuditLog(None, context=context or "", endpoint=api.endpoint, now=now)
        self.background: list[Session] = []  # other contexts whose jobs are still followed
        self.generation = 0
        self._use(api, context or "", self.audit)
        self._read_only_seen = api.read_only
        self.views: set = set()  # mounted screens that show the fleet or the jobs
        self.watched_actions: set[int] = set()  # followed by open inspectors
        self.last_error: str | None = None
        self._polling = False
        self._poll_again = False
        self._poll_timer = None

    def _use(self, api: HetznerApi, context: str, audit: AuditLog) -> None:
        """Make `api` the current session: a fresh refresh engine and job engine."""
        self.api = api
        self.audit = audit
        self.jobs = JobEngine(api, audit, now=self.now, ids=self._job_ids, context=context)
        jobs = self.jobs
        self.refresher = Refresher(
            api,
            refresh=self._refresh_every,
            budget=self._budget,
            clock=self._clock,
            extra_fast_cost=lambda: pages(len(ids)) if (ids := jobs.running_action_ids()) else 0,
        )

    @property
    def fleet(self) -> FleetState:
        return self.refresher.fleet

    @property
    def read_only(self) -> bool:
        return self.api.read_only

    def all_jobs(self) -> list[Job]:
        jobs = [j for session in self.background for j in session.jobs.jobs()]
        return jobs + self.jobs.jobs()

    def engine_of(self, job_id: int) -> JobEngine | None:
        for engine in [self.jobs, *(s.jobs for s in self.background)]:
            if engine.get(job_id) is not None:
                return engine
        return None

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
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
        """Run one poll in a worker; the next is scheduled when it reports back."""
        if self._polling:
            self._poll_again = True
            return None
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._polling = True
        return self._poll_worker()

    @work(thread=True, exit_on_error=False, group="refresh")
    def _poll_worker(self) -> None:
        generation = self.generation
        result = self.refresher.poll()
        events: list[JobEvent] = []
        watched: dict[int, Action] = {}
        watch = set(self.watched_actions)
        if "fast" in result.lanes and result.error is None and (self.jobs.active_jobs() or watch):
            # Jobs step right after a good fast-lane poll: their lock picture is fresh.
            # Inspected actions ride along in the jobs' one `GET /actions?id=…`.
            sent = self.api.monitor.requests_sent
            events, snapshots = self.jobs.step(self.refresher.fleet, watch)
            watched = dict(self.jobs.watched)
            self.refresher.charge(self.api.monitor.requests_sent - sent)
            if snapshots:
                fleet = self.refresher.add_snapshots(snapshots)
                result = replace(result, fleet=fleet)
        for session in list(self.background):
            # jobs of contexts switched away from: followed with their own token
            session.refresher.poll()
            more, _ = session.jobs.step(session.refresher.fleet)
            events += more
        self.post_message(FleetRefreshed(result, events, watched, generation))

    def on_fleet_refreshed(self, message: FleetRefreshed) -> None:
        self._polling = False
        self.background = [s for s in self.background if s.jobs.active_jobs()]
        if message.generation != self.generation:
            self.start_poll()  # a poll of the context we just left: poll the new one
            return
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
        result = message.result
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
        if result.fleet is not None:
            self._show_fleet(result.fleet)
        self._show_jobs()
        for action in message.watched.values():
            for view in list(self.views):
                if hasattr(view, "action_changed"):
                    view.action_changed(action)
        for event in message.events:
            failed = event.job.state == JobState.FAILED
            self.notify(
                event.message,
                title="Snapshot job",
                severity="error" if failed else "information",
                timeout=10 if failed else 6,
            )
        self._refresh_status()
        if self._poll_again:
            self._poll_again = False
            self.start_poll()
        elif self.poll_live:
            self._poll_timer = self.set_timer(max(0.2, result.next_delay), self.start_poll)

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
        # follow it from the next tick on, within the usual budget
        self.refresher.request_fast()
        self.start_poll()

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
        self._delete_worker(snapshots)

    @work(thread=True, exit_on_error=False, group="delete")
    def _delete_worker(self, snapshots: list[Snapshot]) -> None:
        delete_in_worker(self, snapshots, self.post_message)

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
        self._show_jobs()  # the Activity view's audit log

    def snapshots_deleted(self, ids: set[int]) -> None:
        if ids:
            self._show_fleet(self.refresher.remove_snapshots(ids))

    # ---- snapshot jobs --------------------------------------------------------------

    def submit_snapshots(self, request: SnapshotRequest) -> None:
        queued, refused = self.jobs.submit(
            request.servers, request.template, request.labels, request.policy
        )
        for server, reason in refused:
            self.notify(f"{server.name} {reason}; nothing sent", severity="warning")
        if queued:
            names = ", ".join(j.server_name for j in queued[:3])
            more = f" and {len(queued) - 3} more" if len(queued) > 3 else ""
            self.notify(f"Queued: {names}{more}", title="Snapshot jobs", timeout=4)
            self.refresher.request_fast()
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
        running = sum(j.state in (JobState.RUNNING, JobState.CREATING) for j in active)
        waiting = len(active) - running
        message = (
            f"{len(active)} snapshot job{'s are' if len(active) != 1 else ' is'} still active."
            f"\n\nHetzner finishes the {running} snapshot{'s' if running != 1 else ''} already "
            "started even if you quit; hsnap-tui just stops watching them."
        )
        if waiting:
            message += (
                f" The {waiting} queued or waiting job{'s' if waiting != 1 else ''} "
                "will not be sent."
            )

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                self.exit()

        self.push_screen(
            ConfirmScreen("Quit hsnap-tui?", message + "\n\nQuit anyway?", yes="Quit", no="Stay"),
            answered,
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
        if self.background:
            count = sum(len(s.jobs.active_jobs()) for s in self.background)
            text.append(f"  +{count} job{'s' if count != 1 else ''} in other contexts", style="dim")
        if self.api.endpoint != DEFAULT_ENDPOINT and not self.demo:
            text.append(f"  {self.api.endpoint}", style="dim")
        refresher = self.refresher
        text.append("  ")
        stale = refresher.stale_for()
        if stale is not None:
            retry = refresher.retry_in()
            text.append(f"STALE {stale:.0f}s", style="bold white on red")
            if retry is not None:
                text.append(f" — retrying in {retry:.0f}s", style="red")
        elif refresher.last_success is None:
            if self.last_error:
                retry = refresher.retry_in()
                text.append("no data yet", style="bold red")
                if retry is not None:
                    text.append(f" — retrying in {retry:.0f}s", style="red")
            else:
                text.append("loading…", style="italic")
        else:
            text.append(f"updated {refresher.updated_ago():.0f}s ago", style="green")
        rate = self.api.monitor.rate_limit
        if rate is not None:
            style = "bold red" if rate.fraction_left < 0.10 else ""
            text.append(f"  API {rate.remaining}/{rate.limit}", style=style)
        if refresher.throttled:
            text.append("  throttling", style="bold yellow")
        text.append("  ? keys", style="dim")
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
        try:
            api = self._connect(context) if self._connect else None
        except ConfigError as exc:
            self.notify(str(exc), title="Cannot switch", severity="error", timeout=10)
            return
        if api is None:
            return
        if self.jobs.active_jobs():
            self.background.append(Session(self.context or "", self.api, self.refresher, self.jobs))
        self.generation += 1
        self.context = context.name
        self._use(api, context.name, self.audit.for_context(context.name, api.endpoint))
        self._read_only_seen = api.read_only
        self.last_error = None
        log.info("switched to context %s (%s)", context.name, api.endpoint)
        for view in list(self.views):
            if hasattr(view, "context_changed"):
                view.context_changed()
        self._show_fleet(self.fleet)
        self._show_jobs()
        self._refresh_status()
        self.notify(f"Switched to {context.name}.", timeout=3)
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._polling = False
        self.start_poll()

    # ---- actions --------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.refresher.request_full()
        self.start_poll()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.description:
                continue
            rows.append(
                (
                    self.get_key_display(binding),
                    binding.description,
                    binding.tooltip,
                    binding.id or "",
                )
            )
        name = self.screen.sub_title or type(self.screen).__name__.removesuffix("Screen")
        self.push_screen(HelpScreen(name, rows))
