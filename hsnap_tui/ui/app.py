"""The Textual app: owns the refresh loop and hands each new fleet to the screens."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from hsnap_tui.core.api import DEFAULT_ENDPOINT, HetznerApi
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.refresh import Refresher
from hsnap_tui.ui.messages import FleetRefreshed
from hsnap_tui.ui.screens.help import HelpScreen
from hsnap_tui.ui.screens.servers import ServersScreen


class HsnapApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "hsnap-tui"

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
            "view_servers",
            "Servers",
            id="app.view.servers",
            show=False,
            tooltip="The servers view",
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
    ) -> None:
        super().__init__()
        self.api = api
        self.context = context
        self.demo = demo
        self.now = now
        self.poll_live = poll_live
        self.refresher = Refresher(api, refresh=refresh, budget=budget, clock=clock)
        self.last_error: str | None = None
        self._polling = False
        self._poll_again = False
        self._poll_timer = None

    @property
    def fleet(self) -> FleetState:
        return self.refresher.fleet

    def on_mount(self) -> None:
        self.push_screen(ServersScreen())
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
        self.post_message(FleetRefreshed(self.refresher.poll()))

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
            self.notify(f"Refresh failed: {event.worker.error}", severity="error")
            if self.poll_live:
                self._poll_timer = self.set_timer(10, self.start_poll)

    def _show_fleet(self, fleet: FleetState) -> None:
        now = self.now()
        for screen in self.screen_stack:
            if hasattr(screen, "fleet_changed"):
                screen.fleet_changed(fleet, now)

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

    def action_view_servers(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

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
