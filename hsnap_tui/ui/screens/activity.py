"""View 3: every snapshot job of this run, and the audit log of mutating requests."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from hsnap_tui.core.audit import AuditEntry
from hsnap_tui.core.jobs import Job, JobState
from hsnap_tui.ui.format import duration, literal, size_gb
from hsnap_tui.ui.widgets.jobs_panel import STATE_STYLES
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import fill_table

AUDIT_COLUMNS = [
    ("time", "Time (UTC)"),
    ("request", "Request"),
    ("server", "Server"),
    ("outcome", "Outcome"),
    ("request_id", "Request ID"),
]

JOB_COLUMNS = (
    "job",
    "server",
    "state",
    "progress",
    "duration",
    "image",
    "size",
    "detail",
    "description",
)


def job_cells(job: Job, now: float) -> tuple:
    if job.power_error:
        detail = Text(f"{job.server_name} IS STILL OFF: {job.power_error}", style="bold red")
    elif job.state == JobState.WAITING:
        detail = Text(f"waiting: {job.blocking or 'locked'}", style="yellow")
    elif job.state == JobState.FAILED:
        detail = Text(f"{job.error_code}: {job.error_message}", style="red")
    elif job.state == JobState.SKIPPED:
        detail = Text(f"skipped: {job.blocking or 'locked'}", style="yellow")
    else:
        detail = Text(job.note or "", style="dim")
    if job.request_id and job.state in (
        JobState.FAILED,
        JobState.WAITING,
        JobState.SKIPPED,
        JobState.CREATING,
        JobState.UNKNOWN,
    ):
        detail.append(f"  request ID {job.request_id}", style="dim")
    return (
        str(job.id),
        job.server_name,
        Text(job.step_text, style=STATE_STYLES[job.state]),
        f"{job.progress}%"
        if job.state in (JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED)
        else "",
        duration(job.elapsed(now)) if job.started_at else "",
        str(job.image_id or ""),
        size_gb(job.image_size_gb) if job.image_size_gb else "",
        detail,
        job.description,
    )


class ActivityScreen(Screen):
    BINDINGS = [
        Binding(
            "x",
            "cancel_job",
            "Cancel job",
            id="activity.cancel",
            tooltip="Cancel the highlighted queued or waiting job",
        ),
        Binding(
            "i",
            "inspect_job",
            "Inspect",
            id="activity.inspect",
            tooltip="The action the highlighted job waits for, or its own",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with Vertical(id="activity"):
            yield Static("Snapshot jobs of this run", classes="section")
            yield DataTable(id="jobs", cursor_type="row")
            yield Static(id="jobs-empty")
            yield Static("Audit log · mutating requests", classes="section")
            yield DataTable(id="audit", cursor_type="row", show_cursor=False)
        yield Footer()

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    def on_mount(self) -> None:
        self.app.views.add(self)
        jobs = self.query_one("#jobs", DataTable)
        for key in JOB_COLUMNS:
            jobs.add_column(key.capitalize() if key != "job" else "#", key=key)
        jobs.focus()
        self.jobs_changed(self.app.all_jobs(), self.app.now())

    def jobs_changed(self, jobs: list[Job], now: float) -> None:
        table = self.query_one("#jobs", DataTable)
        with self.app.batch_update():
            for job in jobs:
                cells = job_cells(job, now)
                key = str(job.id)
                if key in table.rows:
                    for column, value in zip(JOB_COLUMNS, cells, strict=True):
                        table.update_cell(key, column, literal(value), update_width=True)
                else:
                    table.add_row(*(literal(cell) for cell in cells), key=key)
            self.query_one("#jobs-empty", Static).update(
                "" if jobs else Text("No jobs yet: press s on a server in view 1.", style="italic")
            )
            self._show_audit()

    _audit_shown = -1

    def _show_audit(self) -> None:
        audit = self.app.audit
        if audit.count == self._audit_shown:
            return
        self._audit_shown = audit.count
        entries: list[AuditEntry] = audit.recent()
        rows = [
            (
                None,
                (
                    entry.time.replace("T", " ").rstrip("Z"),
                    f"{entry.method} {entry.path}",
                    entry.server or "",
                    entry.outcome,
                    entry.request_id or "",
                ),
            )
            for entry in reversed(entries)
        ]
        fill_table(self.query_one("#audit", DataTable), AUDIT_COLUMNS, rows, max_width=60)

    def _highlighted_job(self) -> Job | None:
        table = self.query_one("#jobs", DataTable)
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        engine = self.app.engine_of(int(row_key.value))
        return engine.get(int(row_key.value)) if engine else None

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
        table = self.query_one("#jobs", DataTable)
        if table.row_count == 0:
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        self.app.cancel_job(int(row_key.value))
