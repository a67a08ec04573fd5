"""How a headless snapshot run shows its jobs: a Rich progress bar per job on stderr
when stderr is a terminal (one timestamped line per state change otherwise), one result
line (or JSON object) per job on stdout as it ends, then a summary."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from datetime import datetime, timezone

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hsnap_tui.core.jobs import JOB_LABEL, Job, JobState, LockPolicy
from hsnap_tui.core.units import duration, iso, size_gb

from .common import WIDTH, Runtime, wrapped

MAX_BARS = 12  # more jobs than this: bars for the active ones only, and a total
SLOW_CHECK = 15.0  # a next check further away than this is said, so a wait is not a hang


def job_state_text(job: Job) -> str:
    """What a job is doing, in a few words: `waiting: #1930144893 rebuild 40%`."""
    if job.state == JobState.SHUTTING_DOWN:
        return "powering off (hard)" if job.forced else "shutting down (ACPI)"
    if job.state == JobState.STARTING:
        return "starting: powering the server on again"
    if job.turned_off and job.state == JobState.WAITING:
        return f"off, waiting: {job.blocking or 'locked'}"
    if job.turned_off and job.state == JobState.QUEUED:
        return "off"
    if job.state == JobState.WAITING:
        return f"waiting: {job.blocking or 'locked'}"
    if job.state == JobState.RUNNING:
        return f"snapshotting {job.progress}%"
    if job.state == JobState.UNKNOWN:
        return "checking: the answer was lost, looking for its image"
    if job.state == JobState.CREATING:
        return "sending create_image"
    if job.state == JobState.SUCCEEDED:
        return f"succeeded: image {job.image_id}"
    if job.state == JobState.FAILED:
        return f"failed: {job.error_code}"
    return job.state.value


def result_line(job: Job, name_width: int, now: float) -> str:
    """`web-prod-01  succeeded  image 240608342   4.2 GB  2m 11s`"""
    name = job.server_name.ljust(name_width)
    state = "accepted" if job.state == JobState.RUNNING else job.state.value
    head = f"{name}  {state:<9}  "
    indent = min(len(head), 24)
    if job.state == JobState.SUCCEEDED:
        size = size_gb(job.image_size_gb)
        text = f"image {job.image_id}  {size:>7}  {duration(job.elapsed(now))}"
        if job.duplicates:
            extra = ", ".join(str(i) for i in job.duplicates)
            text += f"  (a late request also made {extra}: delete it)"
        return _with_power(head, text, job, indent)
    if job.state == JobState.SKIPPED:
        held = "locked"
        if job.policy == LockPolicy.WAIT and job.wait_limit is not None:
            held = f"locked for {duration(job.wait_limit)}"  # --lock-timeout ran out
        return _with_power(head, f"{held}: {job.blocking or 'locked'}", job, indent)
    if job.state == JobState.FAILED:
        ids = [f"action {job.action_id}"] if job.action_id else []
        ids += [f"request ID {job.request_id}"] if job.request_id else []
        where = f" ({', '.join(ids)})" if ids else ""
        return _with_power(head, f"{job.error_code}: {job.error_message}{where}", job, indent)
    if job.state == JobState.CANCELLED:
        if may_still_land(job):
            return wrapped(
                head,
                f"an earlier request may still make a snapshot ({JOB_LABEL}={job.uid})",
                indent,
            )
        if job.shutdown and job.power_sends:
            return _with_power(head, "not snapshotted", job, indent)
        return wrapped(head, "nothing was sent", indent)
    if job.state == JobState.RUNNING:
        return f"{head}action {job.action_id}  image {job.image_id}  {job.progress}%"
    return wrapped(head, job.note or "", indent).rstrip()


def _power_words(job: Job) -> str:
    """What a consistent snapshot did to the server's power, after its result."""
    if job.power_error:
        return f"  — {job.server_name} IS STILL OFF: {job.power_error}"
    words = ""
    if job.forced:
        words = "  · powered off hard (ACPI not taken)"
    if job.powered_on:
        words += "  · powered on again"
    elif job.stayed_off:
        words += "  · was off, stays off"
    return words


def _with_power(head: str, text: str, job: Job, indent: int) -> str:
    """The result, then what happened to the power: on the same line when it fits,
    else on a line of its own (never split mid-phrase)."""
    line = wrapped(head, text, indent)
    words = _power_words(job)
    if not words or job.power_error:
        return wrapped(head, text + words, indent)
    last = line.rsplit("\n", 1)[-1]
    if len(last) + len(words) <= WIDTH:
        return line + words
    return f"{line}\n{' ' * indent}{words.strip()}"


def still_off_line(job: Job) -> str:
    """The loud line for a server a job left off."""
    why = job.power_error or "the run was stopped before it powered it on"
    when = ""
    if job.active and job.state == JobState.RUNNING:
        # locked by its snapshot until that ends: poweron would be refused now
        when = f"once its snapshot (action {job.action_id}, image {job.image_id}) ends, "
    return wrapped(
        f"hsnap-tui: {job.server_name} IS STILL OFF ({why}): ",
        f"{when}power it on: hcloud server poweron {job.server_name}",
        11,
    )


def job_json(job: Job) -> dict:
    return {
        "type": "job",
        "server": job.server_name,
        "server_id": job.server_id,
        "state": job.state.value,
        "image_id": job.image_id,
        "action_id": job.action_id,
        "description": job.description,
        "request_id": job.request_id,
        "error_code": job.error_code,
        "error": job.error_message,
        "size_gb": job.image_size_gb,
        "started": iso(job.started_at),
        "finished": iso(job.finished_at),
        "seconds": _seconds(job),
        "progress": job.progress,
        "blocking": job.blocking,
        "duplicates": list(job.duplicates),
        "job_label": f"{JOB_LABEL}={job.uid}",
        "shutdown": job.shutdown,
        "powered_on": job.powered_on,
        "forced_poweroff": job.forced,
        "still_off": job.turned_off or bool(job.power_error),
        "power_error": job.power_error,
    }


def _seconds(job: Job) -> float | None:
    """How long Hetzner took, for a job that started and ended."""
    if job.finished_at is None:
        return None
    elapsed = job.elapsed(job.finished_at)
    return None if elapsed is None else round(elapsed, 1)


def may_still_land(job: Job) -> bool:
    """A request of this job whose answer was lost may still make its image."""
    return job.maybe_landed and not job.landed


def change_text(job: Job) -> str:
    """A state change as one log line says it (stderr is not a terminal)."""
    if job.state == JobState.RUNNING:
        return f"snapshotting: image {job.image_id}, action {job.action_id}"
    return job_state_text(job)


def _bars_fit(runtime: Runtime) -> bool:
    """Bars on stderr only when nothing else writes to that terminal meanwhile: stdout
    is the terminal too (results are printed above the bars), a file, or nothing. A
    pipe (`| tee`, `| head`) may write to the same terminal behind the bars' back."""
    if not runtime.err_is_terminal():
        return False
    if runtime.out_is_terminal():
        return True
    try:
        mode = os.fstat(runtime.out.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISREG(mode) or stat.S_ISCHR(mode)  # a file, or /dev/null


class JobDisplay:
    def __init__(self, runtime: Runtime, jobs: list[Job], *, as_json: bool) -> None:
        self.runtime = runtime
        self.as_json = as_json
        self.width = min(30, max((len(j.server_name) for j in jobs), default=8))
        self.total = len(jobs)
        self.reported: set[int] = set()  # jobs whose end was printed
        self.duplicates: dict[int, tuple[int, ...]] = {}
        self.seen: dict[int, tuple[str, int | None]] = {}  # job → (state, blocking action)
        self.pacing = False
        self.bars = _bars_fit(runtime)
        # the results also on the terminal, above the bars, when stdout is a file
        self.echo = self.bars and not runtime.out_is_terminal()
        self.progress: Progress | None = None
        self.tasks: dict[int, TaskID] = {}
        self.overall: TaskID | None = None
        if self.bars:
            console = Console(file=runtime.err, stderr=True, highlight=False)
            self.progress = Progress(
                TextColumn("{task.description}", style="bold"),
                BarColumn(bar_width=20),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[state]}"),
                console=console,
                # results go to stdout; when that is the same terminal, above the bars
                redirect_stdout=runtime.out_is_terminal() and runtime.stdout is None,
                redirect_stderr=False,
                transient=True,
            )
            if self.total > MAX_BARS:
                self.overall = self.progress.add_task(
                    "all jobs".ljust(self.width), total=self.total, state=""
                )
            else:
                for job in jobs:
                    self.tasks[job.id] = self.progress.add_task(
                        job.server_name[: self.width].ljust(self.width),
                        total=100,
                        state=job.state.value,
                    )

    def __enter__(self) -> JobDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    # ---- as the jobs move -----------------------------------------------------------

    def update(self, jobs: Iterable[Job], next_check: float = 0.0) -> None:
        """After a tick: the jobs as they are now, and when the next check comes (said
        when it is far: the request budget is paying back the snapshot requests)."""
        now = self.runtime.now()
        jobs = list(jobs)
        pacing = next_check > SLOW_CHECK and any(j.active for j in jobs)
        if pacing and not self.pacing and not self.bars:
            self.runtime.note(
                f"{self._stamp()}  next check in {duration(next_check)}, "
                "within the API budget (--api-budget)"
            )
        self.pacing = pacing
        for job in jobs:
            state = (job.step_text, job.blocking_action_id)
            if self.seen.get(job.id) != state:
                # a new state, or another action holding the lock: not every progress step
                self.seen[job.id] = state
                if not self.bars and job.active:
                    name = job.server_name.ljust(self.width)
                    head = f"{self._stamp()}  {name}  "
                    self.runtime.note(wrapped(head, change_text(job), min(len(head), 24)))
            if self.progress is not None:
                self._bar(job, next_check if pacing else 0.0)
            if not job.active and job.id not in self.reported:
                self.reported.add(job.id)
                self._ended(job, now)
            elif job.id in self.reported and job.duplicates != self.duplicates.get(job.id, ()):
                self._ended(job, now, late=True)
        if self.overall is not None and self.progress is not None:
            done = sum(1 for j in jobs if not j.active)
            self.progress.update(self.overall, completed=done, state=f"{done}/{self.total} done")

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.runtime.now(), tz=timezone.utc).strftime("%H:%M:%S")

    def _bar(self, job: Job, next_check: float) -> None:
        assert self.progress is not None
        task = self.tasks.get(job.id)
        if task is None and self.overall is not None and job.active and job.started_at:
            # many jobs: a bar for each one that is running, until it ends
            task = self.tasks[job.id] = self.progress.add_task(
                job.server_name[: self.width].ljust(self.width), total=100, state=""
            )
        if task is None:
            return
        if not job.active and self.overall is not None:
            self.progress.remove_task(task)
            del self.tasks[job.id]
            return
        completed = 100 if job.state == JobState.SUCCEEDED else job.progress
        # the bar shows the percentage: the words only say what the job is doing
        words = "snapshotting" if job.state == JobState.RUNNING else job_state_text(job)
        if next_check and job.active:
            words += f" · next check {duration(next_check)}"
        self.progress.update(task, completed=completed, state=words)

    def _ended(self, job: Job, now: float, late: bool = False) -> None:
        self.duplicates[job.id] = job.duplicates
        if self.as_json:
            obj = job_json(job)
            if late:
                obj["type"] = "late_duplicate"
            self.runtime.json(obj)
            return
        line = result_line(job, self.width, now)
        self.runtime.print(line)
        if self.echo and self.progress is not None:
            self.progress.console.print(line, markup=False)
        if job.power_error:
            self.runtime.note(still_off_line(job))

    # ---- the end --------------------------------------------------------------------

    def accepted(self, jobs: list[Job]) -> None:
        """--no-wait: the jobs the API accepted, with their action IDs."""
        now = self.runtime.now()
        for job in jobs:
            if job.id in self.reported:
                continue
            self.reported.add(job.id)
            self._ended(job, now)

    def interrupted(self, jobs: list[Job]) -> None:
        """Ctrl-C: what was cancelled, and what Hetzner is still finishing."""
        now = self.runtime.now()
        finishing = []
        for job in jobs:
            if job.id in self.reported:
                continue
            self.reported.add(job.id)
            if self.as_json:
                self.runtime.json(_interrupted_json(job))
                continue
            name = job.server_name.ljust(self.width)
            if job.active and job.on_again:
                # on again; it was watching for a late shutdown request of its own
                outcome = job.outcome.value if job.outcome else "ended"
                image = f"image {job.image_id}  " if job.image_id else ""
                self.runtime.print(
                    wrapped(
                        f"{name}  {outcome:<9}  ",
                        f"{image}powered on again (stopped while watching for a late "
                        "shutdown request of its own)",
                        min(len(name) + 13, 24),
                    )
                )
            elif job.active and job.turned_off:
                # a second Ctrl-C before its job powered the server on
                self.runtime.print(f"{name}  {job.step_text:<9}  STILL OFF")
                self.runtime.note(still_off_line(job))
                if job.state == JobState.RUNNING:
                    finishing.append(job)
            elif job.state == JobState.CANCELLED and may_still_land(job):
                finishing.append(job)
                self.runtime.print(
                    wrapped(
                        f"{name}  {'cancelled':<9}  ",
                        "an earlier request may still make a snapshot: look for the label "
                        f"{JOB_LABEL}={job.uid}",
                        min(len(name) + 13, 24),
                    )
                )
            elif job.state == JobState.CANCELLED:
                self.runtime.print(f"{name}  {'cancelled':<9}  nothing was sent")
            elif job.state == JobState.RUNNING:
                finishing.append(job)
                self.runtime.print(
                    f"{name}  {'running':<9}  image {job.image_id}  action {job.action_id}  "
                    f"{job.progress}%"
                )
            elif job.active:
                finishing.append(job)
                self.runtime.print(
                    wrapped(
                        f"{name}  {job.state.value:<9}  ",
                        "its request may have made a snapshot: look for the label "
                        f"{JOB_LABEL}={job.uid}",
                        min(len(name) + 13, 24),
                    )
                )
            else:
                self._ended(job, now)
        if finishing and not self.as_json:
            self.runtime.note(
                wrapped(
                    "hsnap-tui: interrupted. ",
                    f"Hetzner is still finishing {len(finishing)} "
                    f"snapshot{'s' if len(finishing) > 1 else ''}; "
                    "they complete without hsnap-tui (follow one with "
                    "`hsnap-tui action ID`).",
                    11,
                )
            )

    def summary(self, jobs: list[Job], requests: int, elapsed: float, code: int) -> None:
        counts: dict[str, int] = {}
        for job in jobs:
            state = job.state
            if state == JobState.STARTING and job.on_again and job.outcome is not None:
                state = job.outcome  # on again, only watching for a late shutdown
            counts[state.value] = counts.get(state.value, 0) + 1
        made = sum(j.image_size_gb or 0.0 for j in jobs if j.state == JobState.SUCCEEDED)
        if self.as_json:
            self.runtime.json(
                {
                    "type": "summary",
                    "jobs": len(jobs),
                    **{state.value: counts.get(state.value, 0) for state in JobState},
                    "size_gb": round(made, 3),
                    "requests": requests,
                    "seconds": round(elapsed, 1),
                    "exit_code": code,
                }
            )
            return
        order = ["succeeded", "running", "failed", "skipped", "cancelled", "unknown"]
        parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
        others = [f"{n} {s}" for s, n in counts.items() if s not in order]
        noun = "snapshot job" if len(jobs) == 1 else "snapshot jobs"
        line = f"{len(jobs)} {noun}: {', '.join(parts + others)}"
        if made:
            line += f" · {size_gb(made)}"
        line += f" · {duration(elapsed)} · {requests} API requests"
        line = wrapped("", line, 2)
        self.runtime.print(line)
        if self.echo:  # stdout went to a file: the terminal gets the end too
            self.runtime.note(line)


def _interrupted_json(job: Job) -> dict:
    obj = job_json(job)
    if job.state == JobState.RUNNING:
        obj["note"] = "interrupted: Hetzner is still finishing this snapshot"
    elif job.active or may_still_land(job):
        obj["note"] = f"interrupted: its request may have made a snapshot ({JOB_LABEL}={job.uid})"
    return obj
