"""The active snapshot jobs, one line each, under the server table."""

from __future__ import annotations

import time

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from hsnap_tui.core.jobs import Job, JobState
from hsnap_tui.core.units import size_gb
from hsnap_tui.ui.format import blocker_text, duration

STATE_STYLES = {
    JobState.QUEUED: "dim",
    JobState.WAITING: "yellow",
    JobState.CREATING: "cyan",
    JobState.UNKNOWN: "bold magenta",
    JobState.RUNNING: "bold cyan",
    JobState.SHUTTING_DOWN: "bold yellow",
    JobState.STARTING: "bold green",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "bold red",
    JobState.SKIPPED: "yellow",
    JobState.CANCELLED: "dim",
}


def job_line_parts(job: Job, now: float) -> tuple[Text, object, Text]:
    """(state, progress bar or blocking text, times) for one job."""
    state = Text(job.step_text, style=STATE_STYLES[job.state])
    if job.power_error:
        detail: object = Text(f"STILL OFF: {job.power_error}", style="bold red")
    elif job.state == JobState.WAITING:
        detail = Text(
            f"waiting: {blocker_text(job.blocking, job.blocking_action_id)}", style="yellow"
        )
    elif job.state in (JobState.RUNNING, JobState.SUCCEEDED):
        detail = ProgressBar(total=100, completed=job.progress, width=24)
    elif job.state in (JobState.CREATING, JobState.UNKNOWN):
        detail = Text(job.note or "sending create_image", style=STATE_STYLES[job.state])
    else:
        detail = Text(job.note or "", style="dim")
    times = Text()
    if job.state in (JobState.RUNNING, JobState.SUCCEEDED):
        times.append(f"{job.progress:>3}%  ")
        times.append(f"{duration(job.elapsed(now))}")
        eta = job.eta(now)
        if eta is not None:
            times.append(f"  ~{duration(eta)} left", style="dim")
    return state, detail, times


LINGER = 60.0  # seconds an ended job stays in the panel


def ended_line_parts(job: Job, now: float) -> tuple[Text, Text, Text]:
    """(outcome, what came of it, how long) for a job that ended: dimmed."""
    state = Text(job.state.value, style=f"dim {STATE_STYLES[job.state]}")
    if job.state == JobState.SUCCEEDED:
        detail = f"image {job.image_id}"
        if job.image_size_gb:
            detail += f" · {size_gb(job.image_size_gb)}"
    elif job.state == JobState.FAILED:
        detail = f"{job.error_code}: {job.error_message}"
    elif job.state == JobState.SKIPPED:
        detail = f"skipped: {job.blocking or 'locked'}"
    else:
        detail = job.note or ""
    if job.power_error:
        detail += f" — STILL OFF: {job.power_error}"
    times = Text(duration(job.elapsed(now)) if job.started_at else "", style="dim")
    return state, Text(detail, style="dim"), times


DISMISS_BINDING = "app.dismiss_ended"


class JobsPanel(Static):
    """Hidden while no job is active or just ended."""

    DEFAULT_CSS = """
    JobsPanel {
        height: auto;
        max-height: 12;
        padding: 0 1;
        border: round $accent 50%;
        display: none;
    }
    JobsPanel.-active {
        display: block;
    }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._jobs: list[Job] = []
        self._clock = None
        self._seen_active: set[int] = set()  # jobs this panel showed running
        self._ended_at: dict[int, float] = {}  # when it saw each of them end
        self.ended_shown = False  # ended jobs on show: the app's dismiss key works

    def on_mount(self) -> None:
        # elapsed and "left" move every second between polls, not only when one lands
        self._clock = self.set_interval(1.0, self._tick, pause=True)

    def _tick(self) -> None:
        if self._jobs:
            self.show_jobs(self._jobs, self.app.now())

    def _dismiss_hint(self) -> str:
        """`z dismisses ended`, with the key as bound now (keymap.toml may move it)."""
        for active in self.screen.active_bindings.values():
            if active.binding.id == DISMISS_BINDING:
                return f"{self.app.get_key_display(active.binding)} dismisses ended"
        return ""

    def dismiss_ended(self) -> None:
        """Take the ended jobs off now, instead of a minute after they ended."""
        self._seen_active.difference_update(self._ended_at)
        self._ended_at.clear()
        self.show_jobs(self._jobs, self.app.now())

    def show_jobs(self, jobs: list[Job], now: float) -> None:
        """The active jobs, then those that ended less than LINGER seconds ago (dimmed,
        with their outcome): a finished job is seen, not gone before a glance."""
        seen, ended_at = self._seen_active, self._ended_at
        # a minute of the operator's time (the demo's `now` may run faster)
        clock = getattr(self.app, "monotonic", time.monotonic)()
        shown: list[Job] = []
        for job in jobs:
            if job.active:
                seen.add(job.id)
                shown.append(job)
            elif job.id in seen:
                ended = ended_at.setdefault(job.id, clock)
                if clock - ended < LINGER:
                    shown.append(job)
        self._jobs = jobs if shown else []
        active = sum(1 for j in shown if j.active)
        ended = len(shown) - active
        if bool(ended) != self.ended_shown:
            self.ended_shown = bool(ended)
            self.app.refresh_bindings()  # the dismiss key is offered only now
        if self._clock is not None:
            (self._clock.resume if shown else self._clock.pause)()
        self.set_class(bool(shown), "-active")
        if not shown:
            self.update("")
            return
        title = f"Snapshot jobs · {active} active"
        if ended:
            title += f" · {ended} ended"
        self.border_title = title
        self.border_subtitle = self._dismiss_hint() if ended else ""
        table = Table.grid(padding=(0, 2), expand=True)
        # names and times as wide as they are; what a job waits for takes the rest and
        # wraps between words rather than being cut (`waiting: #1930144893 rebuild`)
        table.add_column("server", no_wrap=True)
        table.add_column("state", no_wrap=True, width=13)  # "shutting down"
        table.add_column("detail", ratio=1)
        table.add_column("times", no_wrap=True)
        for job in sorted(shown, key=lambda j: not j.active):  # active ones first
            if job.active:
                state, detail, times = job_line_parts(job, now)
                table.add_row(Text(job.server_name, style="bold"), state, detail, times)
            else:
                state, detail, times = ended_line_parts(job, now)
                table.add_row(Text(job.server_name, style="dim"), state, detail, times)
        self.update(table)
