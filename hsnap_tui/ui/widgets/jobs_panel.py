"""The active snapshot jobs, one line each, under the server table."""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from hsnap_tui.core.jobs import Job, JobState
from hsnap_tui.ui.format import duration

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
        detail = Text(f"waiting: {job.blocking or 'locked'}", style="yellow")
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


class JobsPanel(Static):
    """Hidden while no job is active."""

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

    _jobs: list[Job] = []
    _clock = None

    def on_mount(self) -> None:
        # elapsed and "left" move every second between polls, not only when one lands
        self._clock = self.set_interval(1.0, self._tick, pause=True)

    def _tick(self) -> None:
        if self._jobs:
            self.show_jobs(self._jobs, self.app.now())

    def show_jobs(self, jobs: list[Job], now: float) -> None:
        active = [j for j in jobs if j.active]
        self._jobs = active
        if self._clock is not None:
            (self._clock.resume if active else self._clock.pause)()
        self.set_class(bool(active), "-active")
        if not active:
            self.update("")
            return
        self.border_title = f"Snapshot jobs · {len(active)} active"
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column("server", no_wrap=True, ratio=2)
        table.add_column("state", no_wrap=True, width=13)  # "shutting down"
        table.add_column("detail", ratio=3, no_wrap=True)
        table.add_column("times", no_wrap=True, ratio=2)
        for job in active:
            state, detail, times = job_line_parts(job, now)
            table.add_row(Text(job.server_name, style="bold"), state, detail, times)
        self.update(table)
