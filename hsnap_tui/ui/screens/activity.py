"""View 3: every snapshot job of this run, and the audit log of mutating requests."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from hsnap_tui.core.audit import AuditEntry
from hsnap_tui.core.jobs import Job, JobState
from hsnap_tui.ui.format import blocker_text, duration, size_gb
from hsnap_tui.ui.widgets.footer import FittedFooter
from hsnap_tui.ui.widgets.jobs_panel import STATE_STYLES
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import Column, show_fitted

# When, on which server, and what came of it stay at 80 columns; the request and its
# ID are then past the right edge (→).
AUDIT_COLUMNS = (
    Column("time", "Time (UTC)"),
    Column("request", "Request", drop_rank=2),
    Column("server", "Server"),
    Column("outcome", "Outcome", shrink=True),
    Column("request_id", "Request ID", drop_rank=1),
)
# natural direction of each sortable column: True = descending (newest, longest first)
AUDIT_SORTS = {"time": True, "server": False, "outcome": False}

# Server, state and what the job waits for (or came to) always stay; the others go
# first on a narrow terminal, the highest `drop` first.
JOB_COLUMNS = (
    Column("job", "#", drop_rank=5),
    Column("server", "Server"),
    Column("state", "State"),
    Column("progress", "Progress", drop_rank=7),
    Column("duration", "Duration", drop_rank=6),
    Column("image", "Image", drop_rank=3),
    Column("size", "Size", drop_rank=4),
    # what the job waits for or how it ended gives up width (to 20 cells, its command
    # first) before the job number, duration and progress go: a long blocker must not
    # hide every job's progress
    Column("detail", "Detail", shrink=True, shrink_rank=4.5),
    Column("description", "Description", drop_rank=2),
    Column("request_id", "Request ID", drop_rank=1),
)
JOB_SORTS = {"job": False, "server": False, "state": False, "duration": True, "size": True}
STATE_ORDER = {state: rank for rank, state in enumerate(JobState)}  # active ones first


def job_sort_key(job: Job, column: str, now: float) -> tuple:
    if column == "server":
        return (job.server_name, job.id)
    if column == "state":
        return (STATE_ORDER[job.state], job.id)
    if column == "duration":
        return (job.elapsed(now) or 0.0, job.id)
    if column == "size":
        return (job.image_size_gb or 0.0, job.id)
    return (job.id,)


def job_detail(job: Job) -> Text:
    """What the job waits for, or what came of it."""
    if job.power_error:
        return Text(f"STILL OFF: {job.power_error}", style="bold red")
    if job.state == JobState.WAITING:
        return Text(
            f"waiting: {blocker_text(job.blocking, job.blocking_action_id)}", style="yellow"
        )
    if job.state == JobState.FAILED:
        return Text(f"{job.error_code}: {job.error_message}", style="red")
    if job.state == JobState.SKIPPED:
        return Text(f"skipped: {job.blocking or 'locked'}", style="yellow")
    if job.state == JobState.SUCCEEDED and job.image_id:
        parts = [f"image {job.image_id}"]
        if job.image_size_gb:
            parts.append(size_gb(job.image_size_gb))
        if job.note and job.note not in ("done", "succeeded"):
            parts.append(job.note)
        return Text(" · ".join(parts), style="green")
    return Text(job.note or "", style="dim")


def job_cells(job: Job, now: float) -> dict[str, object]:
    with_request_id = job.state in (
        JobState.FAILED,
        JobState.WAITING,
        JobState.SKIPPED,
        JobState.CREATING,
        JobState.UNKNOWN,
    )
    return {
        "job": str(job.id),
        "server": job.server_name,
        "state": Text(job.step_text, style=STATE_STYLES[job.state]),
        "progress": f"{job.progress}%"
        if job.state in (JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED)
        else "",
        "duration": duration(job.elapsed(now)) if job.started_at else "",
        "image": str(job.image_id or ""),
        "size": size_gb(job.image_size_gb) if job.image_size_gb else "",
        "detail": job_detail(job),
        "description": job.description,
        "request_id": Text(job.request_id, style="dim")
        if job.request_id and with_request_id
        else "",
    }


class ActivityScreen(Screen):
    BINDINGS = [
        Binding(
            "x",
            "cancel_job",
            "Cancel job",
            id="activity.cancel",
            tooltip="Cancel the highlighted job before its snapshot is sent (a server shut"
            " down for it is powered on again)",
        ),
        Binding(
            "i",
            "inspect_job",
            "Inspect",
            id="activity.inspect",
            tooltip="The action the highlighted job waits for, or its own",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._jobs: list[Job] = []
        self._jobs_shown: object = None  # what the jobs table shows: redrawn on a change
        self._audit_shown = -1

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with Vertical(id="activity"):
            yield Static("Snapshot jobs of this run", classes="section")
            yield NavTable(
                id="jobs",
                sorts=JOB_SORTS,
                open_label="Open",
                open_tooltip="The job's action (the one it waits for, or its own); "
                "a finished job's image in Snapshots",
            )
            yield Static(id="jobs-empty")
            yield Static("Audit log · mutating requests", classes="section")
            yield NavTable(id="audit", sorts=AUDIT_SORTS)
        yield FittedFooter()

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    def on_mount(self) -> None:
        self.app.views.add(self)
        self.query_one("#jobs", NavTable).focus()
        # elapsed times move every second between polls, as in the jobs panel
        self.set_interval(1.0, self._tick)
        self.jobs_changed(self.app.all_jobs(), self.app.now())

    def _tick(self) -> None:
        if self.is_current and any(job.active for job in self._jobs):
            self._show_jobs(self.app.now())

    def jobs_changed(self, jobs: list[Job], now: float) -> None:
        self._jobs = jobs
        with self.app.batch_update():
            self._show_jobs(now)
            self.query_one("#jobs-empty", Static).update(
                "" if jobs else Text("No jobs yet: press s on a server in view 1.", style="italic")
            )
            self._show_audit()

    def _show_jobs(self, now: float) -> None:
        table = self.query_one("#jobs", NavTable)
        column = table.sort_column or "job"
        jobs = sorted(
            self._jobs, key=lambda j: job_sort_key(j, column, now), reverse=table.descending
        )
        rows = [(str(job.id), job_cells(job, now)) for job in jobs]
        shown = (
            table.size.width,
            column,
            table.descending,
            [(key, [str(v) for v in cells.values()]) for key, cells in rows],
        )
        if shown == self._jobs_shown:
            return
        self._jobs_shown = shown
        show_fitted(table, JOB_COLUMNS, rows)

    def _show_audit(self) -> None:
        audit = self.app.audit
        if audit.count == self._audit_shown:
            return
        self._audit_shown = audit.count
        entries: list[AuditEntry] = audit.recent()
        first = audit.count - len(entries)  # entry numbers: row keys across redraws
        table = self.query_one("#audit", NavTable)
        column = table.sort_column or "time"
        numbered = sorted(
            enumerate(entries, first),
            key=lambda e: (getattr(e[1], column) or "", e[0]),
            reverse=table.descending,
        )
        rows = [
            (
                str(number),
                {
                    "time": entry.time.replace("T", " ").rstrip("Z"),
                    "request": f"{entry.method} {entry.path}",
                    "server": entry.server or "",
                    "outcome": entry.outcome,
                    "request_id": entry.request_id or "",
                },
            )
            for number, entry in numbered
        ]
        show_fitted(table, AUDIT_COLUMNS, rows, overflow=True)

    @on(NavTable.SortChanged, "#jobs")
    def _jobs_sorted(self) -> None:
        self._show_jobs(self.app.now())

    @on(NavTable.SortChanged, "#audit")
    def _audit_sorted(self) -> None:
        self._audit_shown = -1
        self._show_audit()

    def _highlighted_job(self) -> Job | None:
        key = self.query_one("#jobs", NavTable).cursor_key
        if key is None:
            return None
        engine = self.app.engine_of(int(key))
        return engine.get(int(key)) if engine else None

    @on(DataTable.RowSelected, "#jobs")
    def _job_opened(self) -> None:
        """`enter`: a finished job's image, else the action it is about."""
        job = self._highlighted_job()
        if job is None:
            return
        if job.state == JobState.SUCCEEDED and job.image_id is not None:
            self.app.run_worker(self._open_image(job), group="open-image")
        else:
            self.action_inspect_job()

    async def _open_image(self, job: Job) -> None:
        """The Snapshots view with the cursor on the job's image (said in a notification
        if that view does not list it, e.g. under a filter)."""
        image = str(job.image_id)
        await self.app.switch_mode("snapshots")

        def put_cursor() -> None:
            tables = self.app.screen.query("#snapshots")
            table = tables.first() if tables else None
            if isinstance(table, DataTable) and image in table.rows:
                table.move_cursor(row=table.get_row_index(image), animate=False)
                return
            size = f", {size_gb(job.image_size_gb)}" if job.image_size_gb else ""
            self.app.notify(
                f"Image {image} ({job.description}{size}) of {job.server_name} is not "
                "listed here: clear the filter (escape) or refresh (r).",
                title="Snapshot not shown",
                timeout=8,
            )

        self.app.call_after_refresh(put_cursor)

    def action_inspect_job(self) -> None:
        """The action that blocks the job, else the job's own snapshot action."""
        job = self._highlighted_job()
        if job is None:
            return
        if job.blocking_action_id is not None:
            note = f"The snapshot of {job.server_name} waits for this action."
            if job.request_id:
                note += f" The locked answer had request ID {job.request_id}."
            self.app.inspect_action_id(job.blocking_action_id, note)
        elif job.action_id is not None:
            self.app.inspect_action_id(job.action_id, f"The snapshot of {job.server_name}.")
        elif job.blocking:
            # locked with no listed action: the explanation, with the request ID for support
            from hsnap_tui.ui.screens.inspector import LockExplanationScreen

            source = "the locked answer to its snapshot request"
            self.app.push_screen(LockExplanationScreen(job.server_name, job.request_id, source))
        else:
            self.notify("This job has no action yet.", timeout=3)

    def action_cancel_job(self) -> None:
        key = self.query_one("#jobs", NavTable).cursor_key
        if key is not None:
            self.app.cancel_job(int(key))
