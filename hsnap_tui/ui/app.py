"""The Textual app: owns the refresh loop and hands each new fleet to the screens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from hsnap_tui.core.api import DEFAULT_ENDPOINT, HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.errors import explain
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import JobEngine, JobEvent, JobState
from hsnap_tui.core.models import Action, Snapshot
from hsnap_tui.core.refresh import Refresher, pages
from hsnap_tui.ui.messages import FleetRefreshed
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.help import HelpScreen
from hsnap_tui.ui.screens.servers import ServersScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotRequest
from hsnap_tui.ui.screens.snapshots import DeletionProgress, SnapshotsScreen, delete_in_worker


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
    ) -> None:
        super().__init__()
        self.api = api
        self.context = context
        self.demo = demo
        self.now = now
        self.poll_live = poll_live
        self.audit = audit or AuditLog(None, context=context or "", endpoint=api.endpoint, now=now)
        self.jobs = JobEngine(api, self.audit, now=now)
        self.refresher = Refresher(
            api,
            refresh=refresh,
            budget=budget,
            clock=clock,
            extra_fast_cost=lambda: (
                pages(len(ids)) if (ids := self.jobs.running_action_ids()) else 0
            ),
        )
        self.views: set = set()  # mounted screens that show the fleet or the jobs
        self.watched_actions: set[int] = set()  # followed by open inspectors
        self.last_error: str | None = None
        self._polling = False
        self._poll_again = False
        self._poll_timer = None

    @property
    def fleet(self) -> FleetState:
        return self.refresher.fleet

    def on_mount(self) -> None:
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
        self.post_message(FleetRefreshed(result, events, watched))

    def on_fleet_refreshed(self, message: FleetRefreshed) -> None:
        self._polling = False
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
        jobs, now = self.jobs.jobs(), self.now()
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
        problem = self.jobs.cancel(job_id)
        if problem:
            self.notify(f"Job {job_id}: {problem}", severity="warning")
        else:
            job = self.jobs.get(job_id)
            self.notify(f"Cancelled the snapshot of {job.server_name if job else job_id}")
        self._show_jobs()

    async def action_quit(self) -> None:
        active = self.jobs.active_jobs()
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
        return text

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
