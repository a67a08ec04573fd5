"""Snapshot jobs: one per server, from queued to a final state, never creating an image
twice.

    queued → waiting (the server is locked) → creating (POST in flight or its outcome
    unknown) → running (the API's action) → succeeded | failed | skipped | cancelled

`step()` runs in a worker thread after each fast-lane poll, with the fresh lock picture.
The rules that keep snapshots from being lost or doubled:

- a server has at most one active job;
- `create_image` is sent only when the last answer for the job said definitely that no
  image was made (no answer yet, or a refusal such as `locked`);
- after an ambiguous outcome (timeout, dropped connection, 5xx, unreadable answer) the
  job first looks for its image — same server, same description, created since the job
  began — and adopts it if it is there; only a search that comes back empty lets it send
  again;
- all running jobs are polled with one `GET /actions?id=…` per tick, 50 IDs a call.
"""

from __future__ import annotations

import itertools
import logging
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum

import requests
from hcloud import APIException

from .api import HetznerApi, ReadOnlyError
from .audit import AuditLog
from .errors import explain_error
from .fleet import FleetState
from .labels import LabelError, parse_labels
from .models import Action, Server, Snapshot

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{server}-{date}-{time}"
DEFAULT_LABELS = "managed-by=hsnap"
PLACEHOLDERS = ("server", "id", "date", "time")
MAX_DESCRIPTION = 255
RECONCILE_MARGIN = 600.0  # seconds of clock skew tolerated when matching an image


class JobState(str, Enum):
    QUEUED = "queued"
    WAITING = "waiting"
    CREATING = "creating"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.WAITING, JobState.CREATING, JobState.RUNNING)


class LockPolicy(str, Enum):
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class Job:
    """A snapshot job as the UI sees it (an immutable copy)."""

    id: int
    server_id: int
    server_name: str
    description: str
    labels: dict[str, str]
    policy: LockPolicy
    state: JobState = JobState.QUEUED
    queued_at: float = 0.0  # local wall clock
    started_at: float | None = None  # when create_image was accepted
    finished_at: float | None = None
    action_id: int | None = None
    image_id: int | None = None
    progress: int = 0
    image_size_gb: float | None = None
    blocking: str | None = None  # `#123 rebuild 40%`, or `locked (no visible action)`
    blocking_action_id: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None  # of the last error, for Hetzner support
    ambiguous: bool = False  # the last create_image may have been processed
    posts: int = 0  # create_image requests sent
    server_time_at_post: float | None = None
    note: str | None = None  # what happened last, in words

    @property
    def active(self) -> bool:
        return self.state.active

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or now) - self.started_at

    def eta(self, now: float) -> float | None:
        """Seconds left, from the progress so far (None until there is some)."""
        elapsed = self.elapsed(now)
        if self.state != JobState.RUNNING or not elapsed or self.progress <= 0:
            return None
        return elapsed * (100 - self.progress) / self.progress


@dataclass(frozen=True)
class JobEvent:
    """Something the operator should hear about (a job ended)."""

    job: Job
    message: str


class TemplateError(ValueError):
    pass


def render_description(template: str, server: Server, when: float) -> str:
    """`{server}-{date}-{time}` → `web-prod-01-2026-11-26-1200` (UTC)."""
    moment = datetime.fromtimestamp(when, tz=timezone.utc)
    values = {
        "server": server.name,
        "id": str(server.id),
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H%M"),
    }
    check_template(template)
    return template.format(**values)


def check_template(template: str) -> None:
    """Raise TemplateError with an operator-readable reason for a bad template."""
    if not template.strip():
        raise TemplateError("the description must not be empty")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise TemplateError(f"unbalanced braces: {exc}") from None
    for name in fields:
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise TemplateError(f"unknown placeholder {{{name}}}: use {known}")
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is not None and (spec or conv):
            raise TemplateError(f"placeholder {{{name}}} takes no format options")
    if len(template) > MAX_DESCRIPTION:
        raise TemplateError(f"the description is longer than {MAX_DESCRIPTION} characters")


def check_labels(text: str) -> dict[str, str]:
    """Parse `k=v, k2=v2`; TemplateError for anything the API would refuse."""
    try:
        return parse_labels(text)
    except LabelError as exc:
        raise TemplateError(str(exc)) from None


class JobEngine:
    def __init__(
        self,
        api: HetznerApi,
        audit: AuditLog | None = None,
        *,
        now: Callable[[], float] = time.time,
        ids: Iterator[int] | None = None,
        context: str = "",
    ) -> None:
        self.api = api
        self.audit = audit
        self.now = now
        self.context = context
        self._jobs: dict[int, Job] = {}
        # shared by the engines of one app (one per context), so job numbers stay unique
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.RLock()
        self.watched: dict[int, Action] = {}

    # ---- what the UI reads ----------------------------------------------------------

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    def active_for(self, server_id: int) -> Job | None:
        return next((j for j in self.active_jobs() if j.server_id == server_id), None)

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    # ---- what the UI asks (no network) ----------------------------------------------

    def submit(
        self,
        servers: Iterable[Server],
        template: str,
        labels: dict[str, str],
        policy: LockPolicy = LockPolicy.WAIT,
    ) -> tuple[list[Job], list[tuple[Server, str]]]:
        """Queue a job per server. Returns (queued, refused with the reason)."""
        check_template(template)
        queued, refused = [], []
        when = self.now()
        with self._lock:
            for server in servers:
                if self.active_for(server.id) is not None:
                    refused.append((server, "already has an active snapshot job"))
                    continue
                job = Job(
                    id=next(self._ids),
                    server_id=server.id,
                    server_name=server.name,
                    description=render_description(template, server, when),
                    labels=dict(labels),
                    policy=policy,
                    queued_at=when,
                )
                self._jobs[job.id] = job
                queued.append(job)
        return queued, refused

    def cancel(self, job_id: int) -> str | None:
        """Cancel a queued or waiting job; returns why not, or None when done."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return "no such job"
            if job.state not in (JobState.QUEUED, JobState.WAITING):
                return f"a {job.state.value} job cannot be cancelled"
            self._set(
                job,
                state=JobState.CANCELLED,
                finished_at=self.now(),
                note="cancelled by the operator",
            )
            return None

    def running_action_ids(self) -> list[int]:
        return [
            j.action_id
            for j in self.active_jobs()
            if j.state == JobState.RUNNING and j.action_id is not None
        ]

    # ---- the worker's tick ----------------------------------------------------------

    def step(
        self, fleet: FleetState, watch: Iterable[int] = ()
    ) -> tuple[list[JobEvent], list[Snapshot]]:
        """Advance every active job once. Blocking (network); call from a worker.
        Returns the events to announce and the snapshots that just became available.

        `watch`: more action IDs to fetch in the same `GET /actions?id=…` (an open action
        inspector follows its action this way); they land in `self.watched`."""
        events: list[JobEvent] = []
        finished_snapshots: list[Snapshot] = []
        self._poll_running(events, finished_snapshots, set(watch))
        for job in self.active_jobs():
            if job.state == JobState.CREATING and job.ambiguous:
                self._reconcile(job, fleet, events, finished_snapshots)
        for job in self.active_jobs():
            if job.state in (JobState.QUEUED, JobState.WAITING):
                self._try_start(job, fleet, events)
        return events, finished_snapshots

    def _set(self, job: Job, **changes) -> Job:
        with self._lock:
            current = self._jobs[job.id]
            updated = replace(current, **changes)
            self._jobs[job.id] = updated
        if updated.state != current.state:
            log.info(
                "job %d %s: %s → %s (%s)",
                job.id,
                job.server_name,
                current.state.value,
                updated.state.value,
                updated.note or updated.error_code or "",
            )
        return updated

    def _audit(self, job: Job, outcome: str, request_id: str | None) -> None:
        if self.audit is not None:
            self.audit.record(
                "POST",
                f"/servers/{job.server_id}/actions/create_image",
                server=job.server_name,
                outcome=outcome,
                request_id=request_id,
            )

    def _try_start(self, job: Job, fleet: FleetState, events: list[JobEvent]) -> None:
        with self._lock:
            job = self._jobs[job.id]
            if job.state not in (JobState.QUEUED, JobState.WAITING):
                return  # cancelled meanwhile
            lock = fleet.lock(job.server_id)
            if job.server_id not in fleet.servers and fleet.servers:
                self._end(
                    job,
                    JobState.FAILED,
                    events,
                    error_code="not_found",
                    error_message="the server is no longer in the project",
                )
                return
            if lock.held:
                self._blocked(job, fleet, events, skip_note="skipped: the server is locked")
                return
            # Claimed under the lock: a cancel can no longer race the POST.
            job = self._set(
                job,
                state=JobState.CREATING,
                blocking=None,
                blocking_action_id=None,
                posts=job.posts + 1,
                server_time_at_post=self._server_time(),
            )
        try:
            image, action = self.api.create_image(job.server_id, job.description, job.labels)
        except APIException as exc:
            self._refused_or_ambiguous(job, exc, fleet, events)
            return
        except ReadOnlyError as exc:
            self._end(
                job,
                JobState.FAILED,
                events,
                error_code="read_only",
                error_message=str(exc),
                note="not sent: the session is read-only",
            )
            return
        except (requests.RequestException, ValueError) as exc:
            self._ambiguous(job, exc)
            return
        self._audit(job, "201 created", self.api.monitor.last_correlation_id)
        self._set(
            job,
            state=JobState.RUNNING,
            action_id=action.id,
            image_id=image.id,
            started_at=self.now(),
            progress=action.progress,
            ambiguous=False,
            note="creating the image",
        )

    def _refused_or_ambiguous(
        self, job: Job, exc: APIException, fleet: FleetState, events: list[JobEvent]
    ) -> None:
        status = exc.code
        if isinstance(status, int) or status in (
            "server_error",
            "service_error",
            "unavailable",
            "timeout",
            "maintenance",
            "conflict",
            "rate_limit_exceeded",
        ):
            if status == "rate_limit_exceeded":
                # 429 is answered before the request is processed: definitely nothing made
                self._audit(job, "429 rate_limit_exceeded", exc.correlation_id)
                self._set(
                    job,
                    state=JobState.QUEUED,
                    request_id=exc.correlation_id,
                    note="rate limited; will try again",
                )
                return
            self._ambiguous(job, exc)
            return
        self._audit(job, f"refused: {status}", exc.correlation_id)
        if status == "locked":
            # The lock appeared between our look and the request.
            self._blocked(
                job,
                fleet,
                events,
                skip_note="skipped: the server became locked",
                wait_note="the server became locked; waiting",
                request_id=exc.correlation_id,
                error_code="locked",
                error_message=exc.message,
            )
            return
        explanation = explain_error(exc)
        self._end(
            job,
            JobState.FAILED,
            events,
            error_code=str(status),
            error_message=explanation.summary,
            request_id=exc.correlation_id,
            note=str(explanation),
        )

    def _blocked(
        self,
        job: Job,
        fleet: FleetState,
        events: list[JobEvent],
        *,
        skip_note: str,
        wait_note: str | None = None,
        **changes,
    ) -> None:
        """The server is locked: skip the job or let it wait, naming the blocker."""
        blocking, blocking_id = _describe_lock(fleet, job.server_id)
        changes.update(blocking=blocking, blocking_action_id=blocking_id)
        if job.policy == LockPolicy.SKIP:
            self._end(job, JobState.SKIPPED, events, note=f"{skip_note} ({blocking})", **changes)
        else:
            self._set(job, state=JobState.WAITING, note=wait_note or job.note, **changes)

    def _ambiguous(self, job: Job, exc: BaseException) -> None:
        explanation = explain_error(exc)
        request_id = getattr(exc, "correlation_id", None)
        self._audit(job, f"ambiguous: {explanation.summary}", request_id)
        self._set(
            job,
            state=JobState.CREATING,
            ambiguous=True,
            request_id=request_id,
            note=f"outcome unknown ({explanation.summary}); checking for the image",
        )

    def _server_time(self) -> float | None:
        rate = self.api.monitor.rate_limit
        return rate.server_time if rate else None

    def _reconcile(
        self, job: Job, fleet: FleetState, events: list[JobEvent], finished: list[Snapshot]
    ) -> None:
        since = (job.server_time_at_post or job.queued_at) - RECONCILE_MARGIN
        try:
            image = self.api.find_snapshot(job.server_id, job.description, since)
        except (APIException, requests.RequestException, ValueError) as exc:
            self._set(job, note=f"still checking for the image ({explain_error(exc).summary})")
            return
        if image is None:
            # Nothing was made: sending again cannot double it.
            self._set(
                job, state=JobState.QUEUED, ambiguous=False, note="no image was made; sending again"
            )
            return
        action = next((a for a in fleet.running if ("image", image.id) in a.resources), None)
        if image.status == "available":
            self._set(
                job, image_id=image.id, started_at=job.started_at or image.created, ambiguous=False
            )
            self._succeed(self._jobs[job.id], image, events, finished)
        elif action is not None:
            self._set(
                job,
                state=JobState.RUNNING,
                image_id=image.id,
                action_id=action.id,
                started_at=action.started or self.now(),
                progress=action.progress,
                ambiguous=False,
                note="the image was made after all; following it",
            )
        else:
            # Creating, but its action is not in the last fast-lane poll yet: adopt the
            # image and find the action on the next tick.
            self._set(job, image_id=image.id, note="the image exists; looking for its action")

    def _poll_running(
        self, events: list[JobEvent], finished: list[Snapshot], watch: set[int]
    ) -> None:
        running = {
            j.action_id: j
            for j in self.active_jobs()
            if j.state == JobState.RUNNING and j.action_id is not None
        }
        ids = list(running) + sorted(watch - set(running))
        if not ids:
            return
        try:
            actions = self.api.actions_by_id(ids)
        except (APIException, requests.RequestException, ValueError):
            return  # the refresh loop shows the API trouble; try again next tick
        with self._lock:
            self.watched = {a.id: a for a in actions if a.id in watch}
        for action in actions:
            job = running.get(action.id)
            if job is None:
                continue
            if action.status == "running":
                self._set(job, progress=action.progress)
            elif action.status == "success":
                self._set(job, progress=100)
                try:
                    image = self.api.image(job.image_id) if job.image_id else None
                except (APIException, requests.RequestException, ValueError):
                    image = None
                self._succeed(self._jobs[job.id], image, events, finished)
            else:
                self._end(
                    job,
                    JobState.FAILED,
                    events,
                    error_code=action.error_code,
                    error_message=action.error_message,
                    progress=action.progress,
                    note="the snapshot action failed",
                )

    def _succeed(
        self, job: Job, image: Snapshot | None, events: list[JobEvent], finished: list[Snapshot]
    ) -> None:
        size = image.image_size_gb if image else None
        self._end(job, JobState.SUCCEEDED, events, progress=100, image_size_gb=size, note="done")
        if image is not None:
            finished.append(image)

    def _end(self, job: Job, state: JobState, events: list[JobEvent], **changes) -> None:
        job = self._set(job, state=state, finished_at=self.now(), **changes)
        events.append(JobEvent(job, _event_text(job)))


def _describe_lock(fleet: FleetState, server_id: int) -> tuple[str, int | None]:
    lock = fleet.lock(server_id)
    if lock.actions:
        action: Action = lock.actions[0]
        return f"#{action.id} {action.short_command} {action.progress}%", action.id
    return "locked (no visible action)", None


def _event_text(job: Job) -> str:
    if job.state == JobState.SUCCEEDED:
        size = f", {job.image_size_gb:.1f} GB" if job.image_size_gb else ""
        return f"{job.server_name}: snapshot {job.image_id} done{size}"
    if job.state == JobState.SKIPPED:
        return f"{job.server_name}: skipped — {job.blocking or 'locked'}"
    if job.state == JobState.FAILED:
        request = f" (request ID {job.request_id})" if job.request_id else ""
        return f"{job.server_name}: failed — {job.error_code}: {job.error_message}{request}"
    return f"{job.server_name}: {job.state.value}"


__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_TEMPLATE",
    "Job",
    "JobEngine",
    "JobEvent",
    "JobState",
    "LockPolicy",
    "TemplateError",
    "check_labels",
    "check_template",
    "render_description",
]
