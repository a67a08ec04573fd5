"""Snapshot jobs: one per server, from queued to a final state, exactly one image each.

    queued → waiting (the server is locked) → creating (the POST is in flight)
           → running (the API's action) → succeeded | failed | skipped | cancelled
    creating → unknown (the answer was lost or unreadable) → running | succeeded | queued

A consistent snapshot (`shutdown=True`) shuts the server down first and powers it on
again after:

    queued → shutting_down (ACPI sent; until the server list says `off`) → queued ("off")
           → … the snapshot as above … → starting (poweron) → the snapshot's outcome

A job that sent a shutdown or poweroff (`turned_off`) ends only through `starting`:
whatever its outcome (succeeded, failed, skipped, cancelled), the server is powered on
again first, or the job says loudly that it could not (`power_error`). A server that
was off when the job began stays off.

The rules that keep a snapshot from being lost, doubled or stuck:

- Identity. Every job labels its image `hsnap-job=<uid>`, unique to the job. The job
  finds its image by that label only — never by description and time — with one
  `GET /images?label_selector=hsnap-job in (…)` for every job that needs a look.
- One claim per send. `create_image` is sent only from `queued`/`waiting`, after a
  compare-and-set claim to `creating`, and only while nothing says it was made.
- Unknown is not an answer. A timeout, a dropped connection, a gateway error, a 5xx,
  an error code the job does not know, an unreadable 201 or any unexpected exception
  after the claim makes the outcome *unknown*: the job looks for its image, adopts it
  if it is there, and sends again only when it is not and a request sent then can no
  longer land (`late_window` after a lost answer).
- Its own lock. A job whose earlier request may still land checks a `create_image`
  lock on its server against its label before it waits behind it; if it is its own, it
  adopts it.
- One stepper. `step()` runs on one thread at a time (a second caller returns at once)
  and every state change is compare-and-set on the job revision it was decided from,
  so an operator's cancel and a step can never both win.
- Every job ends. No exception escapes a job's step or stops the other jobs; a job that
  cannot reach the API for `give_up_after` seconds ends as failed, saying how to find
  its image. Time the session chose not to ask (its budget in debt) does not count.
- Beyond the late window. A job whose earlier request may land looks for its image
  right before every resend and before it gives up by skipping; when it ends without
  its image (skipped, cancelled) it keeps looking for another late window; and when its
  snapshot is done it looks once more, to report a second image a late request made.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum

import requests
from hcloud import APIException

from .api import MAX_IDS_PER_CALL, HetznerApi, ReadOnlyError, UnreadableAnswer
from .audit import AuditLog
from .budget import RequestBudget
from .errors import explain_error
from .fleet import FleetState
from .models import Action, Server, Snapshot
from .naming import JOB_LABEL, check_template, new_job_uid, render_description

log = logging.getLogger(__name__)

LATE_WINDOW = 120.0  # seconds after a lost answer during which the request may still land
RECHECK_EVERY = 15.0  # how often an unknown job looks for its image meanwhile
LOCK_BACKOFF = (10.0, 60.0)  # first and longest wait after a lock nothing explains
GIVE_UP_AFTER = 1800.0  # seconds without word from the API before a job ends as failed
MISSED_POLLS = 2  # a running job's action missing this often: look for the image instead
MAX_RESEND_BACKOFF = 60.0  # longest wait between sends that keep failing
UIDS_PER_LOOKUP = 40  # label values per `hsnap-job in (…)`: keeps the URL short
SHUTDOWN_TIMEOUT = 300.0  # default: from the ACPI signal until the server must be off
POWEROFF_TIMEOUT = 120.0  # from a hard power-off until the server must be off
POWER_RETRY = 15.0  # between power requests that met no answer, a lock or a 5xx
LATE_SIGNAL_MARGIN = 30.0  # a late shutdown's action ends, and the list shows it, within

# API refusals (4xx), which the API sends before it processes a request, and what the
# job does about them. 429 is also looked into: a proxy in front may send it late.
WAIT_CODES = frozenset({"locked"})
LATER_CODES = frozenset({"rate_limit_exceeded"})
FINAL_CODES = frozenset(
    {
        "invalid_input",
        "json_error",
        "forbidden",
        "unauthorized",
        "token_readonly",
        "not_found",
        "protected",
        "resource_limit_exceeded",
        "resource_unavailable",
        "uniqueness_error",
        "unsupported_error",
        "deprecated_api_endpoint",
        "method_not_allowed",
    }
)
# Answered by something in front of the API, or "too slow": the API may still be at it.
GATEWAY_CODES = frozenset({"timeout", "bad_gateway", "gateway_timeout"})


class JobState(str, Enum):
    QUEUED = "queued"
    WAITING = "waiting"
    CREATING = "creating"
    UNKNOWN = "unknown"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"  # consistent: ACPI shutdown, until the server is off
    STARTING = "starting"  # consistent: powering the server on again before ending
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES


ACTIVE_STATES = frozenset(
    {
        JobState.QUEUED,
        JobState.WAITING,
        JobState.CREATING,
        JobState.UNKNOWN,
        JobState.RUNNING,
        JobState.SHUTTING_DOWN,
        JobState.STARTING,
    }
)
POWER_STATES = frozenset({JobState.SHUTTING_DOWN, JobState.STARTING})
CANCELLABLE = frozenset({JobState.QUEUED, JobState.WAITING})


class LockPolicy(str, Enum):
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class Job:
    """A snapshot job as everyone else sees it: an immutable copy. `rev` counts its
    changes; a change decided from an older revision is dropped."""

    id: int
    uid: str  # the value of its `hsnap-job` label
    server_id: int
    server_name: str
    description: str
    labels: dict[str, str]  # what is sent: the operator's labels and the job label
    policy: LockPolicy
    context: str = ""
    wait_limit: float | None = None  # WAIT: skip after this many seconds locked
    state: JobState = JobState.QUEUED
    rev: int = 0
    queued_at: float = 0.0  # wall clock
    started_at: float | None = None  # when the image started (wall clock, like now())
    finished_at: float | None = None
    action_id: int | None = None
    image_id: int | None = None
    progress: int = 0
    progress_at: float | None = None  # when `progress` was read (wall clock)
    image_size_gb: float | None = None
    blocking: str | None = None  # `#123 rebuild 40%`, or `locked (no visible action)`
    blocking_action_id: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None  # of its create_image, or of the last one refused
    note: str | None = None  # what happened last, in words
    posts: int = 0  # create_image requests sent
    maybe_landed: bool = False  # a request whose answer was lost may have made the image
    landed: bool = False  # the API said it made the image (or the job found it)
    duplicates: tuple[int, ...] = ()  # images with its label beyond the first
    # engine bookkeeping, on the engine's clock
    unknown_since: float | None = None
    resend_after: float | None = None
    next_check: float | None = None
    not_before: float | None = None
    lock_backoff: float = 0.0
    checked_actions: frozenset[int] = field(default=frozenset(), repr=False)
    missed_polls: int = 0
    failing_since: float | None = None  # first failed contact since the last good one
    looked_step: int = -1  # the step whose lookup last found none of its images
    send_trouble_since: float | None = None  # first send whose outcome was not an answer
    send_trouble: str | None = None  # what the last such send met
    watch_until: float | None = None  # ended, but its request may still land: keep looking
    # a consistent snapshot: shutdown → snapshot → poweron
    shutdown: bool = False
    force_poweroff: bool = False  # power off hard when ACPI did not take it off in time
    shutdown_timeout: float = SHUTDOWN_TIMEOUT
    turned_off: bool = False  # it sent a shutdown/poweroff: it powers the server on again
    stayed_off: bool = False  # the server was off when the job began: it stays off
    forced: bool = False  # the hard poweroff went out
    went_down: bool = False  # the server list showed it `stopping` or `off`
    powered_on: bool = False  # it turned the server off and on again
    power_error: str | None = None  # it could not power the server on again: loud
    outcome: JobState | None = None  # `starting`: how the job ends once the server is on
    outcome_note: str | None = None
    power_since: float | None = None  # when the current power step began (engine clock)
    power_sent_at: float | None = None  # the last power request (engine clock)
    power_sends: int = 0
    power_action_id: int | None = None  # the power action being followed
    power_acked: bool = False  # the API accepted the current power request
    # the last shutdown/poweroff whose answer was lost: it may still land after poweron
    power_unknown_at: float | None = None
    queued_clock: float | None = None  # when it was queued, on the engine's clock

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def on_again(self) -> bool:
        """Starting, and its poweron succeeded (it may still watch for a late shutdown):
        the API took the poweron and its action is no longer followed."""
        return self.state == JobState.STARTING and self.power_acked and self.power_action_id is None

    @property
    def step_text(self) -> str:
        """The step in words: a consistent snapshot's `shutting down`, `off`,
        `snapshotting`, `starting`; else the state."""
        if self.state == JobState.SHUTTING_DOWN:
            return "powering off" if self.forced else "shutting down"
        if self.state == JobState.STARTING:
            return "starting"
        if self.turned_off and self.state in (JobState.QUEUED, JobState.WAITING):
            return "off"
        if self.shutdown and self.state == JobState.RUNNING:
            return "snapshotting"
        return self.state.value

    @property
    def resent(self) -> bool:
        """Sent again after an answer was lost: the first request may still land."""
        return self.maybe_landed and self.posts > 1

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return max(0.0, (self.finished_at or now) - self.started_at)

    def eta(self, now: float) -> float | None:
        """Seconds left, from the progress when it was last read (None until there is
        some), counting down between reads."""
        if self.state != JobState.RUNNING or self.progress <= 0 or self.started_at is None:
            return None
        seen = self.progress_at if self.progress_at is not None else now
        elapsed = max(0.0, seen - self.started_at)
        if not elapsed:
            return None
        return max(0.0, elapsed * (100 - self.progress) / self.progress - (now - seen))


@dataclass(frozen=True)
class JobEvent:
    """Something the operator should hear about (a job ended)."""

    job: Job
    message: str


@dataclass
class StepResult:
    events: list[JobEvent] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)  # made or finished: for the fleet
    gone: set[int] = field(default_factory=set)  # images that no longer exist
    watched: dict[int, Action] = field(default_factory=dict)  # followed actions, fresh
    want_slow: bool = False  # a lock nothing listed explains: re-read `server.locked`
    statuses: dict[int, str] = field(default_factory=dict)  # servers' power, read just now
    ran: bool = True  # False when another thread was stepping


class JobEngine:
    def __init__(
        self,
        api: HetznerApi,
        audit: AuditLog | None = None,
        *,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
        ids: Iterator[int] | None = None,
        context: str = "",
        budget: RequestBudget | None = None,
        late_window: float = LATE_WINDOW,
        give_up_after: float = GIVE_UP_AFTER,
    ) -> None:
        self.api = api
        self.audit = audit
        self.now = now
        self.clock = clock or time.monotonic
        self.context = context
        self.budget = budget
        self.late_window = late_window
        self.give_up_after = give_up_after
        self._jobs: dict[int, Job] = {}
        # shared by the engines of one app (one per context), so job numbers stay unique
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.RLock()
        self._stepping = threading.Lock()
        self._step_no = 0
        self.holding = False  # stop_sending(): no new snapshot or shutdown goes out
        self._power: PowerView | None = None  # this step's read of the servers' power

    # ---- what everyone reads ------------------------------------------------------

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

    def running_action_ids(self) -> list[int]:
        return [
            j.action_id
            for j in self.active_jobs()
            if j.state == JobState.RUNNING and j.action_id is not None
        ]

    def power_action_ids(self) -> list[int]:
        return [
            j.power_action_id
            for j in self.active_jobs()
            if j.state in POWER_STATES and j.power_action_id is not None
        ]

    def tick_cost(self, watch: int = 0) -> int:
        """Requests the next step makes besides sending (for the refresh pacing)."""
        polled = len(self.running_action_ids()) + len(self.power_action_ids()) + watch
        checking = any(j.state == JobState.UNKNOWN for j in self.active_jobs())
        power = any(_needs_power_view(j) for j in self.active_jobs())
        return math.ceil(polled / MAX_IDS_PER_CALL) + int(checking) + int(power)

    # ---- what the operator asks (no network) ----------------------------------------

    def submit(
        self,
        servers: Iterable[Server],
        template: str,
        labels: dict[str, str],
        policy: LockPolicy = LockPolicy.WAIT,
        wait_limit: float | None = None,
        *,
        shutdown: bool = False,
        force_poweroff: bool = False,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    ) -> tuple[list[Job], list[tuple[Server, str]]]:
        """Queue a job per server. Returns (queued, refused with the reason).
        `wait_limit`: with WAIT, a server still locked this many seconds after the job
        was queued is skipped (None: wait as long as it takes). `shutdown`: a
        consistent snapshot (shut down, snapshot, power on again)."""
        check_template(template)
        queued, refused = [], []
        when = self.now()
        with self._lock:
            for server in servers:
                if self.active_for(server.id) is not None:
                    refused.append((server, "already has an active snapshot job"))
                    continue
                uid = new_job_uid()
                job = Job(
                    id=next(self._ids),
                    uid=uid,
                    server_id=server.id,
                    server_name=server.name,
                    description=render_description(template, server, when),
                    labels={**labels, JOB_LABEL: uid},
                    policy=policy,
                    context=self.context,
                    wait_limit=wait_limit,
                    queued_at=when,
                    shutdown=shutdown,
                    force_poweroff=force_poweroff,
                    shutdown_timeout=shutdown_timeout,
                    queued_clock=self.clock(),
                )
                self._jobs[job.id] = job
                queued.append(job)
        return queued, refused

    def stop_sending(self) -> None:
        """From now on no create_image or shutdown goes out (a headless run stopping):
        queued and waiting jobs end cancelled at their next step — a job whose earlier
        request turns out to have made nothing too — and servers a job shut down are
        powered on again."""
        self.holding = True

    def cancel(self, job_id: int) -> str | None:
        """Cancel a queued or waiting job; returns why not, or None when done."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return "no such job"
            if job.state == JobState.SHUTTING_DOWN or (job.state in CANCELLABLE and job.turned_off):
                # it shut the server down: power it on again before it ends
                self._start_again(
                    job, JobState.CANCELLED, note="cancelled by the operator", finished_at=None
                )
                return None
            if job.state not in CANCELLABLE:
                if job.state == JobState.UNKNOWN:
                    return "its request may have made a snapshot; it is being checked"
                if job.turned_off and job.state == JobState.RUNNING:
                    return (
                        "its snapshot is being made (Hetzner finishes it either way); "
                        "the server is powered on again right after"
                    )
                return f"a {job.state.value} job cannot be cancelled"
            self._update(
                job,
                state=JobState.CANCELLED,
                finished_at=self.now(),
                note="cancelled by the operator",
                **self._afterlife(job),
            )
            return None

    # ---- the worker's tick ----------------------------------------------------------

    def step(self, fleet: FleetState, watch: Iterable[int] = ()) -> StepResult:
        """Advance every active job once. Blocking (network); call from a worker, after
        a fast-lane poll (`fleet.running` is fresh). One thread at a time: a call made
        while another runs returns at once with `ran=False`.

        `watch`: more action IDs to fetch in the same `GET /actions?id=…` (an open action
        inspector follows its action this way)."""
        if not self._stepping.acquire(blocking=False):
            return StepResult(ran=False)
        result = StepResult()
        self._step_no += 1
        try:
            for job in self.active_jobs():
                # (a job following a power action hears from that poll instead)
                answered = job.state in CANCELLABLE or (
                    job.state in POWER_STATES and job.power_action_id is None
                )
                if answered and job.failing_since is not None:
                    self._update(job, failing_since=None)  # the fast lane just answered
            self._guarded(self._poll_running, set(watch), result)
            self._guarded(self._look_for_images, fleet, result)
            self._power = None
            self._guarded(self._read_power, fleet, result)
            for job in sorted(self.active_jobs(), key=lambda j: j.id):
                if job.state in CANCELLABLE:
                    self._guarded(self._try_start, job, fleet, result)
                elif job.state == JobState.SHUTTING_DOWN:
                    self._guarded(self._await_off, job, fleet, result)
                elif job.state == JobState.STARTING:
                    self._guarded(self._power_on, job, fleet, result)
            self._end_the_lost(result)
        finally:
            self._stepping.release()
        return result

    def _guarded(self, part: Callable[..., None], *args) -> None:
        """Run one part of a step; a bug in it makes the jobs it touched unknown (their
        images are then looked up) instead of stopping the other jobs or the loop."""
        try:
            part(*args)
        except Exception as exc:  # nothing may escape a step
            log.exception("snapshot job step failed: %s", type(exc).__name__)
            for job in self.active_jobs():
                if job.state == JobState.CREATING:
                    self._unknown(job, exc, window=self.late_window)

    # ---- changes: compare-and-set on the revision they were decided from -------------

    def _update(self, job: Job, **changes) -> Job | None:
        with self._lock:
            current = self._jobs.get(job.id)
            if current is None or current.rev != job.rev:
                log.info("job %d changed meanwhile; dropping a stale decision", job.id)
                return None
            updated = replace(current, rev=current.rev + 1, **changes)
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

    def _end(self, job: Job, state: JobState, result: StepResult, **changes) -> Job | None:
        if job.turned_off and job.state != JobState.STARTING:
            return self._start_again(job, state, **changes)
        if state != JobState.SUCCEEDED and "landed" not in changes:
            changes = {**self._afterlife(job), **changes}
        ended = self._update(job, state=state, **{"finished_at": self.now(), **changes})
        if ended is not None:
            result.events.append(JobEvent(ended, event_text(ended)))
        return ended

    def _local(self, api_time: float | None) -> float:
        """An API timestamp on this engine's wall clock (`now`), by the Date of the last
        answer: durations stay right when the two clocks differ."""
        if api_time is None:
            return self.now()
        rate = self.api.monitor.rate_limit
        if rate is None or rate.server_time is None:
            return api_time
        return min(self.now(), api_time + (self.now() - rate.server_time))

    def _afterlife(self, job: Job) -> dict:
        """A job that ends without its image while its request may still land keeps
        looking for it for another late window."""
        if job.maybe_landed and not job.landed:
            now = self.clock()
            return {"watch_until": now + self.late_window, "next_check": now + RECHECK_EVERY}
        return {}

    def _current(self, job: Job) -> Job:
        with self._lock:
            return self._jobs[job.id]

    # ---- following running jobs -----------------------------------------------------

    def _poll_running(self, watch: set[int], result: StepResult) -> None:
        running = {
            j.action_id: j
            for j in self.active_jobs()
            if j.state == JobState.RUNNING and j.action_id is not None
        }
        powering = {
            j.power_action_id: j
            for j in self.active_jobs()
            if j.state in POWER_STATES and j.power_action_id is not None
        }
        ids = list(running) + list(powering)
        ids += sorted(watch - set(ids))
        if not ids:
            return
        try:
            actions = {a.id: a for a in self.api.actions_by_id(ids)}
        except (APIException, requests.RequestException, ValueError, KeyError, TypeError):
            # the refresh loop shows it; next tick again
            self._failing([*running.values(), *powering.values()])
            return
        result.watched = {i: a for i, a in actions.items() if i in watch}
        for action_id, job in powering.items():
            self._power_polled(job, actions.get(action_id), result)
        now = self.clock()
        finished: list[tuple[Job, Action]] = []
        for action_id, job in running.items():
            action = actions.get(action_id)
            if action is None:
                # Not returned: deleted with its image, or a proxy lost it. Look for the
                # image by label rather than wait forever.
                if job.missed_polls + 1 >= MISSED_POLLS:
                    self._update(
                        job,
                        state=JobState.UNKNOWN,
                        unknown_since=now,
                        resend_after=now,
                        next_check=now,
                        note="its action is no longer listed; looking for the image",
                    )
                else:
                    self._update(job, missed_polls=job.missed_polls + 1)
            elif action.status == "running":
                self._update(
                    job,
                    progress=action.progress,
                    progress_at=self.now(),
                    missed_polls=0,
                    failing_since=None,
                )
            elif action.status == "success":
                finished.append((job, action))
            else:
                self._end(
                    job,
                    JobState.FAILED,
                    result,
                    error_code=action.error_code or "action_failed",
                    error_message=action.error_message or "the snapshot action failed",
                    progress=action.progress,
                    failing_since=None,
                    note="the snapshot action failed; Hetzner removes its image",
                )
                if job.image_id is not None:
                    result.gone.add(job.image_id)
        if finished:
            self._finished(finished, result)

    def _finished(self, done: list[tuple[Job, Action]], result: StepResult) -> None:
        """Jobs whose action succeeded: their images (for the size), read by label in
        one batched lookup — which also finds a second image an earlier request of a
        job made after all, to report it. They end when the action did, not when the
        poll noticed (a poll paced by the budget may come a minute later)."""
        try:
            found: dict[str, list[Snapshot]] | None = self._images_of([j for j, _ in done])
        except (APIException, requests.RequestException, ValueError, KeyError, TypeError):
            found = None  # the size shows after the next full refresh
        for job, action in done:
            mine = (found or {}).get(job.uid, [])
            image = next((i for i in mine if i.id == job.image_id), None)
            changes: dict = {
                "duplicates": tuple(sorted(i.id for i in mine if i.id != job.image_id))
            }
            if not changes["duplicates"]:
                del changes["duplicates"]
            if action.finished is not None and action.started is not None and job.started_at:
                # Hetzner's own duration, whatever the two clocks (or a sped-up
                # simulator) say about each other
                changes["finished_at"] = job.started_at + (action.finished - action.started)
            elif action.finished is not None:
                changes["finished_at"] = self._local(action.finished)
            self._succeed(job, image, result, **changes)

    def _succeed(self, job: Job, image: Snapshot | None, result: StepResult, **changes) -> None:
        values = {
            "progress": 100,
            "image_size_gb": image.image_size_gb if image else None,
            "failing_since": None,
            "note": "done",
            # an earlier request may still land: watch for a second image to report it
            "watch_until": self.clock() + self.late_window if job.resent else None,
            "next_check": self.clock() + RECHECK_EVERY,
            **changes,
        }
        ended = self._end(job, JobState.SUCCEEDED, result, **values)
        if ended is not None and image is not None:
            result.snapshots.append(image)

    # ---- finding a job's own image --------------------------------------------------

    def _needs_look(self, job: Job, fleet: FleetState, now: float) -> bool:
        due = job.next_check is None or now >= job.next_check
        if job.state == JobState.UNKNOWN and due:
            return True
        if not job.active:
            return job.watch_until is not None and now < job.watch_until and due
        if not job.maybe_landed or job.state not in (JobState.UNKNOWN, *CANCELLABLE):
            return False
        # its request may land late: is this create_image on its server its own?
        if any(a.id not in job.checked_actions for a in _create_images(fleet, job)):
            return True
        # about to send again, or to give up by skipping: look first
        return job.state in CANCELLABLE and self._about_to_act(job, fleet, now)

    def _about_to_act(self, job: Job, fleet: FleetState, now: float) -> bool:
        if job.not_before is not None and now < job.not_before:
            return False
        return not fleet.lock(job.server_id).held or self._skips(job)

    def _skips(self, job: Job) -> bool:
        """A lock ends this job as skipped: its policy, or it has waited long enough."""
        if job.policy == LockPolicy.SKIP:
            return True
        return job.wait_limit is not None and self.now() - job.queued_at >= job.wait_limit

    def _look_for_images(self, fleet: FleetState, result: StepResult) -> None:
        now = self.clock()
        jobs = [j for j in self.jobs() if self._needs_look(j, fleet, now)]
        if not jobs:
            return
        try:
            found = self._images_of(jobs)
        except (APIException, requests.RequestException, ValueError, KeyError, TypeError) as exc:
            summary = explain_error(exc).summary
            for job in jobs:
                if job.state == JobState.UNKNOWN:
                    job = self._update(job, note=f"still checking for its image ({summary})")
                    if job is not None:
                        self._failing([job])
            return
        now = self.clock()
        for job in jobs:
            images = sorted(found.get(job.uid, ()), key=lambda s: (s.created or 0.0, s.id))
            if images:
                # Decided from the job as it is now: an operator's cancel that raced the
                # lookup does not hide an image its earlier request made.
                current = self._current(job)
                if current.state == JobState.SUCCEEDED:
                    self._late_duplicates(current, images, result, now)
                elif current.active or current.watch_until is not None:
                    self._adopt(current, images, fleet, result, now)
            else:
                # a create_image locking its server is not its own: another job's
                seen = frozenset(a.id for a in _create_images(fleet, job))
                if not job.active:
                    watching = job.watch_until is not None and now < job.watch_until
                    self._update(
                        job,
                        next_check=now + RECHECK_EVERY,
                        watch_until=job.watch_until if watching else None,
                    )
                    continue
                checked = self._update(
                    job,
                    checked_actions=job.checked_actions | seen,
                    looked_step=self._step_no,
                    failing_since=None,
                )
                if checked is not None and checked.state == JobState.UNKNOWN:
                    self._not_found(checked, result, now)

    def _late_duplicates(
        self, job: Job, images: list[Snapshot], result: StepResult, now: float
    ) -> None:
        """Done, and a late request of this job made another image: say so (once)."""
        extra = tuple(sorted(i.id for i in images if i.id != job.image_id))
        watching = job.watch_until is not None and now < job.watch_until
        changes: dict = {
            "next_check": now + RECHECK_EVERY,
            "watch_until": job.watch_until if watching else None,
        }
        new = [i for i in extra if i not in job.duplicates]
        if new:
            changes["duplicates"] = extra
        updated = self._update(job, **changes)
        if updated is not None and new:
            result.events.append(JobEvent(updated, event_text(updated)))

    def _images_of(self, jobs: list[Job]) -> dict[str, list[Snapshot]]:
        """Every image carrying one of these jobs' labels, by job uid: one
        `GET /images?label_selector=hsnap-job in (…)` per UIDS_PER_LOOKUP jobs."""
        found: dict[str, list[Snapshot]] = {}
        for start in range(0, len(jobs), UIDS_PER_LOOKUP):
            chunk = jobs[start : start + UIDS_PER_LOOKUP]
            selector = f"{JOB_LABEL} in ({','.join(j.uid for j in chunk)})"
            for image in self.api.snapshots(label_selector=selector):
                uid = image.labels.get(JOB_LABEL)
                if uid is not None:
                    found.setdefault(uid, []).append(image)
        return found

    def only_running(self) -> bool:
        """Every job still to step is running: polling its action is all a step needs
        (no lock picture, no lookups)."""
        now = self.clock()
        pending = [
            j
            for j in self.jobs()
            if j.active or (j.watch_until is not None and now < j.watch_until)
        ]
        return bool(pending) and all(j.state == JobState.RUNNING for j in pending)

    def needs_step(self) -> bool:
        """Active jobs, or ended ones still watching for a late image of theirs."""
        now = self.clock()
        return any(
            j.active or (j.watch_until is not None and now < j.watch_until) for j in self.jobs()
        )

    def _adopt(
        self,
        job: Job,
        images: list[Snapshot],
        fleet: FleetState,
        result: StepResult,
        now: float,
    ) -> None:
        image, extra = images[0], tuple(i.id for i in images[1:])
        if not job.landed:
            # the audit log said "unknown" for its request: now it is known
            self._audit(job, f"resolved: its request made image {image.id}", job.request_id)
        if not job.active:
            # ended (skipped, cancelled) while its request was on its way: it did land
            note = f"{job.state.value}, but its earlier request made image {image.id}"
            result.events.append(JobEvent(job, f"{job.server_name}: {note}"))
            job = self._update(job, note=note, finished_at=None, watch_until=None)
            if job is None:
                return
        common = {
            "image_id": image.id,
            "landed": True,
            "duplicates": extra,
            "failing_since": None,
            "started_at": job.started_at or self._local(image.created),
            "blocking": None,
            "blocking_action_id": None,
        }
        if image.status == "available":
            self._succeed(job, image, result, note="found its image: done", **common)
            return
        if image.status != "creating":
            self._end(
                job,
                JobState.FAILED,
                result,
                error_code="image_" + image.status,
                error_message=f"its image {image.id} is {image.status}",
                **common,
            )
            return
        action = next((a for a in fleet.running if ("image", image.id) in a.resources), None)
        result.snapshots.append(image)
        if action is not None:
            self._update(
                job,
                state=JobState.RUNNING,
                action_id=action.id,
                progress=action.progress,
                started_at=self._local(action.started or image.created),
                missed_polls=0,
                note="its request was made after all; following its image",
                **{k: v for k, v in common.items() if k != "started_at"},
            )
        else:
            # Its action is not in this tick's list (it just started, or just ended):
            # keep looking; the image's own status says how it ends.
            self._update(
                job,
                state=JobState.UNKNOWN,
                unknown_since=job.unknown_since or now,
                next_check=now,
                note=f"found its image {image.id}; looking for its progress",
                **common,
            )

    def _not_found(self, job: Job, result: StepResult, now: float) -> None:
        if job.landed:
            # The API made it (201, or the job saw it), and now it is gone: its action
            # failed or someone deleted it. Sending again would be a second snapshot.
            self._end(
                job,
                JobState.FAILED,
                result,
                error_code="image_gone",
                error_message="its image was removed before it was finished",
                failing_since=None,
            )
            if job.image_id is not None:
                result.gone.add(job.image_id)
            return
        if job.resend_after is not None and now < job.resend_after:
            wait = job.resend_after - now
            self._update(
                job,
                next_check=min(now + RECHECK_EVERY, job.resend_after),
                failing_since=None,
                note=f"no image yet; its request may still land — sending again in {wait:.0f}s"
                " if none appears",
            )
            return
        # Nothing was made, and the request can no longer land: sending again cannot
        # double it.
        updated = self._update(
            job,
            state=JobState.QUEUED,
            failing_since=None,
            note="no image was made; sending again",
        )
        if updated is not None:
            self._audit(job, "resolved: its request made nothing", job.request_id)

    # ---- starting jobs --------------------------------------------------------------

    def _try_start(self, job: Job, fleet: FleetState, result: StepResult) -> None:
        job = self._current(job)
        if job.state not in CANCELLABLE:
            return
        if self.holding:
            self._end(job, JobState.CANCELLED, result, note="cancelled: the run was stopped")
            return
        # (A server missing from the last list is not taken for deleted: a list read while
        # it changed can miss one. The API's 404 says so for sure.)
        lock = fleet.lock(job.server_id)
        # its earlier request may land: only after this step's look found nothing of it
        must_look = job.maybe_landed and not job.landed and job.looked_step != self._step_no
        if lock.held:
            if self._skips(job) and must_look:
                return  # no look this time (it failed): skip only once it has looked
            # a lock the picture now explains ends the backoff of an unexplained one
            reset = {"not_before": None, "lock_backoff": 0.0} if lock.actions else {}
            self._blocked(job, fleet, result, skip_note="skipped: the server is locked", **reset)
            return
        if job.not_before is not None and self.clock() < job.not_before:
            return  # backing off after a refusal (an unexplained lock, 429)
        if must_look:
            return  # the look failed: no send without it
        if job.shutdown and not (job.turned_off or job.stayed_off):
            job = self._shut_down(job, fleet, result)
            if job is None:
                return  # shutting down (or waiting to): the snapshot comes once it is off
        # A send the operator confirmed goes out at once (it is charged like any other
        # request; the polling lanes pay the debt back), never queued behind them.
        self.api.monitor.forget()  # what follows is about this request only
        claimed = self._update(
            job,
            state=JobState.CREATING,
            blocking=None,
            blocking_action_id=None,
            posts=job.posts + 1,
            not_before=None,
            note="sending create_image",
        )
        if claimed is None:
            return  # cancelled meanwhile: nothing sent
        try:
            image, action = self.api.create_image(
                claimed.server_id, claimed.description, claimed.labels
            )
        except ReadOnlyError as exc:
            self._end(
                claimed,
                JobState.FAILED,
                result,
                error_code="read_only",
                error_message=str(exc),
                note="not sent: the session is read-only",
            )
            return
        except APIException as exc:
            self._answered(claimed, exc, fleet, result)
            return
        except requests.RequestException as exc:
            self._audit(claimed, f"unknown: {explain_error(exc).summary}", None)
            self._unknown(claimed, exc, window=self.late_window)
            return
        except Exception as exc:  # a 201 we cannot read, or a bug: look before resending
            request_id, status = self.api.last_request_id(), self.api.last_status()
            self._audit(claimed, f"unknown: {status or 'no answer'} unreadable", request_id)
            self._unreadable(claimed, exc, status, request_id)
            return
        request_id = self.api.last_request_id()
        self._audit(claimed, f"201 created image {image.id}", request_id)
        result.snapshots.append(image)
        self._update(
            claimed,
            state=JobState.RUNNING,
            request_id=request_id,
            action_id=action.id,
            image_id=image.id,
            started_at=self._local(action.started),
            progress=action.progress,
            landed=True,
            lock_backoff=0.0,
            missed_polls=0,
            failing_since=None,
            note="creating the image",
        )

    def _answered(self, job: Job, exc: APIException, fleet: FleetState, result: StepResult) -> None:
        code, request_id = exc.code, exc.correlation_id
        http = self.api.last_status()
        status = f"{code}" if isinstance(code, int) else f"{http or '?'} {code}"
        if isinstance(code, int) and 200 <= code < 300:
            self._audit(job, f"unknown: {code} unreadable", request_id)
            self._unreadable(job, exc, code, request_id)
            return
        if code in WAIT_CODES:
            self._audit(job, f"refused: {status}", request_id)
            self._refused_locked(job, exc, fleet, result)
            return
        if code in LATER_CODES:
            # The API answers 429 before it processes a request; something in front of
            # it might not. Looking costs one request, after the wait it needs anyway.
            self._audit(job, f"refused: {status}", request_id)
            wait = min(60.0, max(1.0, self.api.monitor.reset_wait() or 0.0))
            self._unknown(
                job,
                exc,
                window=wait,
                request_id=request_id,
                check_in=wait,
                note=f"rate limited; looking for its image in {wait:.0f}s",
            )
            return
        if code in FINAL_CODES:
            self._audit(job, f"refused: {status}", request_id)
            explanation = explain_error(exc)
            self._end(
                job,
                JobState.FAILED,
                result,
                error_code=str(code),
                error_message=explanation.summary,
                request_id=request_id,
                note=str(explanation),
            )
            return
        # 5xx, gateways, codes we do not know: the request may have been processed.
        gateway = isinstance(code, int) or code in GATEWAY_CODES
        self._audit(job, f"unknown: {status}", request_id)
        self._unknown(job, exc, window=self.late_window if gateway else 0.0, request_id=request_id)

    def _unreadable(
        self, job: Job, exc: BaseException, status: int | None, request_id: str | None
    ) -> None:
        """An answer that cannot be read. Only the API's own 201 says the image was made;
        any other status (a proxy's 200, no answer at all) says nothing for sure."""
        if status == 201:
            self._unknown(
                job, UnreadableAnswer(status), window=0.0, landed=True, request_id=request_id
            )
        elif status is not None and 200 <= status < 300:
            self._unknown(
                job, UnreadableAnswer(status), window=self.late_window, request_id=request_id
            )
        else:
            self._unknown(job, exc, window=self.late_window, request_id=request_id)

    def _refused_locked(
        self, job: Job, exc: APIException, fleet: FleetState, result: StepResult
    ) -> None:
        changes: dict = {
            "request_id": exc.correlation_id,
            "error_code": "locked",
            "error_message": exc.message,
            "failing_since": None,
        }
        if not fleet.lock(job.server_id).held:
            # A lock this tick's picture does not show (no listed action): back off and
            # have the server list re-read, instead of asking again every tick.
            low, high = LOCK_BACKOFF
            backoff = min(high, max(low, job.lock_backoff * 2))
            changes.update(lock_backoff=backoff, not_before=self.clock() + backoff)
            result.want_slow = True
        self._blocked(
            job,
            fleet,
            result,
            skip_note="skipped: the server became locked",
            wait_note="the server became locked; waiting",
            **changes,
        )

    def _blocked(
        self,
        job: Job,
        fleet: FleetState,
        result: StepResult,
        *,
        skip_note: str,
        wait_note: str | None = None,
        **changes,
    ) -> None:
        """The server is locked: skip the job or let it wait, naming the blocker."""
        blocking, blocking_id = describe_lock(fleet, job.server_id)
        changes.update(blocking=blocking, blocking_action_id=blocking_id)
        if self._skips(job):
            if job.policy != LockPolicy.SKIP:
                skip_note = f"skipped: still locked after {job.wait_limit / 60:.0f} min"
            self._end(job, JobState.SKIPPED, result, note=f"{skip_note} ({blocking})", **changes)
            return
        note = wait_note or job.note
        if (
            job.state == JobState.WAITING
            and all(getattr(job, k) == v for k, v in changes.items())
            and note == job.note
        ):
            return  # nothing new to say
        self._update(job, state=JobState.WAITING, note=note, **changes)

    def _unknown(
        self,
        job: Job,
        exc: BaseException,
        *,
        window: float,
        landed: bool = False,
        request_id: str | None = None,
        check_in: float = 0.0,
        note: str | None = None,
    ) -> None:
        """The request may or may not have made the image: look before anything else."""
        now = self.clock()
        summary = explain_error(exc).summary
        trouble = job.send_trouble_since
        if trouble is not None:
            # sends keep failing: back off (up to a minute) rather than send every tick
            window = max(window, min(MAX_RESEND_BACKOFF, (now - trouble) / 2))
        self._update(
            job,
            state=JobState.UNKNOWN,
            send_trouble_since=now if trouble is None else trouble,
            send_trouble=summary,
            maybe_landed=True,
            landed=job.landed or landed,
            unknown_since=now,
            resend_after=now + window,
            next_check=now + check_in,
            request_id=request_id or getattr(exc, "correlation_id", None) or job.request_id,
            note=note or f"outcome unknown ({summary}); looking for its image",
        )

    # ---- consistent snapshots: shut down, snapshot, power on again ----------------

    def _read_power(self, fleet: FleetState, result: StepResult) -> None:
        """While a job waits on a server's power (before its shutdown, for `off`,
        after its poweron), one `GET /servers?status=off,stopping` a step says which
        servers are down — for all of them at once, without waiting for the slow
        lane's full list. A failed read: the jobs use the fleet's list."""
        waiting = [j for j in self.active_jobs() if _needs_power_view(j)]
        if not waiting:
            return
        asked_at = self.clock()
        try:
            down = self.api.servers_in_status(list(DOWN))
        except (APIException, requests.RequestException, ValueError, KeyError, TypeError):
            return
        self._power = PowerView(asked_at, {s.id: s.status for s in down})
        # for the fleet (the console shows it at once): the servers these jobs are about
        for job in waiting:
            status, _ = self._status(job, fleet)
            if status is not None:
                result.statuses[job.server_id] = status

    def _status(self, job: Job, fleet: FleetState) -> tuple[str | None, float | None]:
        """(the server's status, when it was asked for): this step's power read (a
        server not in it is up), else the fleet's list."""
        server = fleet.servers.get(job.server_id)
        listed = server.status if server is not None else None
        view = self._power
        if view is not None:
            # not down: up — as the fleet's list says (`starting`, `rebuilding`…) unless
            # that says down, which this newer read overrules
            up = listed if listed is not None and listed not in DOWN else "running"
            return view.down.get(job.server_id, up), view.read_at
        return listed, fleet.servers_read_at

    def _shut_down(self, job: Job, fleet: FleetState, result: StepResult) -> Job | None:
        """Before the first create_image of a consistent snapshot (the server unlocked).
        Returns the job when the snapshot can go out now (the server was off already),
        else None (a shutdown went out, or the server's status has to settle first)."""
        status, read_at = self._status(job, fleet)
        if job.queued_clock is not None and (read_at is None or read_at <= job.queued_clock):
            # Whether it is off decides whether it is powered on after: ask a read
            # after the job was queued, not an older one.
            result.want_slow = self._power is None
            if job.note != "checking the server's status":
                self._update(job, note="checking the server's status")
            return None
        status = status or "running"
        if status == "off":
            return self._update(
                job, stayed_off=True, note="the server is off: it is snapshotted and stays off"
            )
        if status != "running":
            # starting, stopping, rebuilding…: what it will be is not known yet
            result.want_slow = self._power is None
            blocking = f"the server is {status}"
            if self._skips(job):
                note = f"skipped: {blocking}"
                self._end(job, JobState.SKIPPED, result, blocking=blocking, note=note)
            elif job.blocking != blocking or job.state != JobState.WAITING:
                self._update(
                    job,
                    state=JobState.WAITING,
                    blocking=blocking,
                    blocking_action_id=None,
                    note=f"waiting: {blocking}",
                )
            return None
        now = self.clock()
        claimed = self._update(
            job,
            state=JobState.SHUTTING_DOWN,
            turned_off=True,  # from now on the job powers it on again, whatever happens
            power_since=now,
            power_sent_at=now,
            power_sends=1,
            power_acked=False,
            power_action_id=None,
            blocking=None,
            blocking_action_id=None,
            note="shutting down (ACPI)",
        )
        if claimed is not None:
            self._send_power(claimed, "shutdown", fleet, result)
        return None

    def _send_power(self, job: Job, command: str, fleet: FleetState, result: StepResult) -> None:
        """Send a power request. A power request is safe to repeat, so a lost answer
        is simply asked again later (POWER_RETRY); only refusals need care."""
        self.api.monitor.forget()
        try:
            action = self.api.power(job.server_id, command)
        except ReadOnlyError as exc:
            self._power_refused(job, command, "read_only", str(exc), None, fleet, result)
            return
        except APIException as exc:
            code, request_id = exc.code, exc.correlation_id
            http = self.api.last_status() or "?"
            status = f"{code}" if isinstance(code, int) else f"{http} {code}"
            if code in FINAL_CODES:
                self._audit(job, f"refused: {status}", request_id, command)
                summary = explain_error(exc).summary
                self._power_refused(job, command, str(code), summary, request_id, fleet, result)
                return
            if code in WAIT_CODES or code in LATER_CODES:
                self._audit(job, f"refused: {status}", request_id, command)
                first = job.power_sends == 1 and not job.forced
                if code in WAIT_CODES and job.state == JobState.SHUTTING_DOWN and first:
                    # refused before anything happened: the server is as it was
                    self._update(
                        job,
                        state=JobState.WAITING,
                        turned_off=False,
                        power_since=None,
                        not_before=self.clock() + LOCK_BACKOFF[0],
                        request_id=request_id,
                        note="the server became locked; waiting",
                    )
                    result.want_slow = True
                    return
                self._update(job, note=f"{command}: {code}; asking again in {POWER_RETRY:.0f}s")
                return
            self._audit(job, f"unknown: {status}", request_id, command)
            self._power_unknown(job, command, exc)
            return
        except Exception as exc:  # no answer, or one we cannot read: ask again later
            summary = explain_error(exc).summary
            self._audit(job, f"unknown: {summary}", self.api.last_request_id(), command)
            self._power_unknown(job, command, exc)
            return
        request_id = self.api.last_request_id()
        self._audit(job, f"201 action {action.id}", request_id, command)
        accepted: dict = {"power_action_id": action.id, "power_acked": True}
        if command == "poweroff":
            accepted["power_since"] = self.clock()  # its time to take effect starts now
        updated = self._update(job, **accepted)
        if updated is None and command != "poweron":
            self._late_signal_possible(job)  # it went through; the job moved on

    def _power_unknown(self, job: Job, command: str, exc: BaseException) -> None:
        """No answer we can trust: ask again later. A shutdown or poweroff sent so may
        still land after the server is on again: the job watches for that."""
        changes: dict = {"note": f"{command}: {explain_error(exc).summary}; asking again soon"}
        if command != "poweron":
            changes["power_unknown_at"] = self.clock()
        if self._update(job, **changes) is None and command != "poweron":
            self._late_signal_possible(job)

    def _late_signal_possible(self, job: Job) -> None:
        """A shutdown/poweroff went out while the job moved on (an operator's cancel
        raced it): whatever the job does now, it must watch for that request's effect
        after it powers the server on. A fact, recorded whatever the job's revision."""
        with self._lock:
            current = self._jobs.get(job.id)
            if current is None:
                return
            self._jobs[job.id] = replace(
                current, rev=current.rev + 1, power_unknown_at=self.clock()
            )

    def _power_refused(
        self,
        job: Job,
        command: str,
        code: str,
        message: str,
        request_id: str | None,
        fleet: FleetState,
        result: StepResult,
    ) -> None:
        """The API will not do it (read-only, forbidden, not found…)."""
        if command == "poweron":
            if code == "not_found":
                self._restored(job, result, note="the server no longer exists")
            else:
                self._restored(job, result, power_error=f"poweron refused: {code}: {message}")
            return
        # a shutdown/poweroff refused: if nothing earlier of the job went through, the
        # server is as it was and nothing has to be powered on
        untouched = job.power_sends == 1 and not job.forced and not job.power_acked
        self._end(
            replace(job, turned_off=False) if untouched else job,
            JobState.FAILED,
            result,
            error_code=code,
            error_message=f"{command} refused: {message}",
            request_id=request_id or job.request_id,
            turned_off=job.turned_off and not untouched,
            note=f"not snapshotted: {command} refused",
        )

    def _await_off(self, job: Job, fleet: FleetState, result: StepResult) -> None:
        """Shutting down: snapshot once the server list says `off`; past the timeout,
        power off hard (only when asked to) or fail — and power on again."""
        now = self.clock()
        status, read_at = self._status(job, fleet)
        if status == "stopping" and not job.went_down:
            job = self._update(job, went_down=True) or job
        if status == "off":
            ready = self._update(
                job,
                went_down=True,
                state=JobState.QUEUED,
                power_action_id=None,
                note="off: snapshotting",
            )
            if ready is not None:
                self._try_start(ready, fleet, result)
            return
        limit = POWEROFF_TIMEOUT if job.forced else job.shutdown_timeout
        since = job.power_since if job.power_since is not None else now
        # "not off in time" needs a read asked for after the time was up (a read that
        # failed proves nothing), or a long while without one
        # a hard power-off counts from when the API took it (another tool's lock may
        # hold it back a while)
        counting = not job.forced or job.power_acked
        if (counting and read_at is not None and read_at - since >= limit) or (
            now - since >= limit + self.give_up_after
        ):
            minutes = _minutes(limit)
            if job.forced:
                self._end(
                    job,
                    JobState.FAILED,
                    result,
                    error_code="poweroff_timeout",
                    error_message=f"{job.server_name} was not off {minutes} after a hard "
                    "power-off; not snapshotted",
                )
            elif job.force_poweroff:
                forced = self._update(
                    job,
                    forced=True,
                    power_since=now,
                    power_sent_at=now,
                    power_sends=job.power_sends + 1,
                    power_action_id=None,
                    power_acked=False,
                    note=f"not off after {minutes}: powering off (hard)",
                )
                if forced is not None:
                    self._send_power(forced, "poweroff", fleet, result)
            else:
                # Most likely its OS ignored the signal and it kept running; it may also
                # be on its way down: poweron either way (harmless on a running server)
                self._end(
                    job,
                    JobState.FAILED,
                    result,
                    error_code="shutdown_timeout",
                    error_message=f"{job.server_name} did not shut down within {minutes} "
                    "(does its OS take the ACPI signal?); not snapshotted, not powered off "
                    "(--force-poweroff does)",
                )
            return
        result.want_slow = self._power is None  # then the fleet's list says when it is off
        retry_due = job.power_sent_at is None or now - job.power_sent_at >= POWER_RETRY
        still_up = status in (None, "running")
        if job.power_action_id is None and not job.power_acked and retry_due and still_up:
            again = self._update(job, power_sent_at=now, power_sends=job.power_sends + 1)
            if again is not None:
                self._send_power(again, "poweroff" if job.forced else "shutdown", fleet, result)

    def _power_on(self, job: Job, fleet: FleetState, result: StepResult) -> None:
        """Starting: send poweron (again after a lost answer or a lock) until its action
        succeeds; after `give_up_after` the job ends saying the server is still off."""
        now = self.clock()
        since = job.power_since if job.power_since is not None else now
        if job.power_action_id is not None:
            # followed in the batched action poll; a server list read after the poweron
            # went out that says `running` is as good (the action poll may be failing)
            status, read_at = self._status(job, fleet)
            sent = job.power_sent_at if job.power_sent_at is not None else now
            if status == "running" and (read_at or -1) >= sent + POWER_RETRY:
                self._powered_on(job, result)
            elif now - since >= self.give_up_after:
                self._restored(
                    job,
                    result,
                    power_error=f"its poweron was accepted, but it was not seen running for "
                    f"{_minutes(self.give_up_after)}",
                )
            else:
                result.want_slow = self._power is None
            return
        if job.power_acked:  # on again
            if job.power_unknown_at is None:
                self._restored(job, result)
            else:
                self._watch_late_signal(job, fleet, result, now)
            return
        if job.power_sent_at is not None and now - job.power_sent_at < POWER_RETRY:
            return
        if now - since >= self.give_up_after:
            self._restored(
                job,
                result,
                power_error=f"could not power it on for {_minutes(self.give_up_after)} "
                f"(last: {job.note})",
            )
            return
        others = [a for a in fleet.lock(job.server_id).actions if a.id != job.action_id]
        if others:
            note = f"waiting to power on: #{others[0].id} {others[0].short_command}"
            if job.note != note:
                self._update(job, note=note)
            return
        sending = self._update(
            job,
            power_sent_at=now,
            power_sends=job.power_sends + 1,
            power_acked=False,
            note="powering on",
        )
        if sending is not None:
            self._send_power(sending, "poweron", fleet, result)

    def _power_polled(self, job: Job, action: Action | None, result: StepResult) -> None:
        if job.failing_since is not None:
            job = self._update(job, failing_since=None) or self._current(job)
        if action is None:
            # not listed: ask again (a power request is safe to repeat)
            self._update(job, power_action_id=None, power_acked=False)
            return
        if action.status == "running":
            return
        if job.state == JobState.STARTING:
            if action.status == "success":
                self._powered_on(job, result)
            else:
                # tried again after POWER_RETRY, until `give_up_after` (then: STILL OFF)
                self._update(
                    job,
                    power_action_id=None,
                    power_acked=False,
                    note=f"poweron failed ({action.error_code}: {action.error_message}); "
                    "trying again",
                )
            return
        if action.status == "success":
            what = "powered off" if job.forced else "ACPI signal sent"
            self._update(job, power_action_id=None, note=f"{what}; waiting for it to be off")
            return
        self._end(
            job,
            JobState.FAILED,
            result,
            error_code=action.error_code or "action_failed",
            error_message=f"the {action.command} action failed: "
            f"{action.error_message or 'no reason given'}; not snapshotted",
        )

    def _powered_on(self, job: Job, result: StepResult) -> None:
        result.statuses[job.server_id] = "running"  # its poweron succeeded
        on = self._update(
            job,
            power_action_id=None,
            power_acked=True,
            power_since=self.clock(),
            failing_since=None,
        )
        if on is not None and on.power_unknown_at is None:
            self._restored(on, result)

    def _watch_late_signal(
        self, job: Job, fleet: FleetState, result: StepResult, now: float
    ) -> None:
        """On again, but a shutdown of this job whose answer was lost may still land:
        until a server list asked for after it can no longer have (and its effect shows)
        says the server is up, watch; if it goes down, power it on again."""
        since = job.power_since if job.power_since is not None else now
        watch_end = (job.power_unknown_at or now) + self.late_window + LATE_SIGNAL_MARGIN
        status, read_at = self._status(job, fleet)
        fresh = read_at is not None and read_at >= since
        if fresh and status in DOWN:
            self._update(
                job,
                went_down=True,
                power_acked=False,
                power_sent_at=None,
                power_since=now,
                note="a late shutdown request landed: powering on again",
            )
            return
        if (fresh and read_at >= watch_end) or now >= watch_end + self.give_up_after:
            self._restored(job, result)
            return
        result.want_slow = self._power is None
        note = "on again; watching for a late shutdown request"
        if job.note != note:
            self._update(job, note=note)

    def _start_again(self, job: Job, outcome: JobState, **changes) -> Job | None:
        """The job is over, but it turned its server off: power it on first."""
        if outcome != JobState.SUCCEEDED and "landed" not in changes:
            changes = {**self._afterlife(job), **changes}
        finished_at = changes.pop("finished_at", None)
        note = changes.pop("note", None)
        return self._update(
            job,
            **{
                **changes,
                "state": JobState.STARTING,
                "outcome": outcome,
                "outcome_note": note,
                "finished_at": finished_at if finished_at is not None else self.now(),
                "power_since": self.clock(),
                "power_sent_at": None,
                "power_sends": 0,
                "power_action_id": None,
                "power_acked": False,
                "failing_since": None,
                "note": "powering on again",
            },
        )

    def _restored(
        self,
        job: Job,
        result: StepResult,
        *,
        power_error: str | None = None,
        note: str | None = None,
    ) -> None:
        """Power-on done (or impossible): the job ends as its snapshot did."""
        outcome = job.outcome or JobState.FAILED
        if power_error is not None:
            words = "STILL OFF"
        else:
            words = note or ("powered on again" if job.went_down else "it keeps running")
        self._end(
            job,
            outcome,
            result,
            turned_off=False,
            # "powered on again" when it was seen going down; else poweron was a safeguard
            powered_on=power_error is None and job.went_down,
            power_error=power_error,
            power_action_id=None,
            finished_at=job.finished_at or self.now(),
            note=f"{job.outcome_note or outcome.value}; {words}",
        )

    def expire(self, *, unreachable: bool = False) -> list[JobEvent]:
        """On a tick that could not step the jobs: `unreachable` when the API did not
        answer (that counts toward giving up), else the session chose not to ask (its
        budget; that does not). Ends the jobs past `give_up_after`. No network."""
        if not self._stepping.acquire(blocking=False):
            return []
        try:
            if unreachable:
                self._failing(self.active_jobs())
            result = StepResult()
            self._end_the_lost(result)
            return result.events
        finally:
            self._stepping.release()

    def _failing(self, jobs: Iterable[Job]) -> None:
        now = self.clock()
        for job in jobs:
            if job.failing_since is None:
                self._update(self._current(job), failing_since=now)

    def _end_the_lost(self, result: StepResult) -> None:
        """A job that has not reached the API for `give_up_after` seconds ends; so does
        one whose create_image has not gone through for as long (every send answered by
        an error, a gateway, a 429 or nothing, while reads work)."""
        now = self.clock()
        minutes = f"{self.give_up_after / 60:.0f} minutes"
        for job in self.active_jobs():
            if job.state == JobState.STARTING:
                if job.failing_since is not None and now - job.failing_since >= self.give_up_after:
                    self._restored(
                        job,
                        result,
                        power_error=f"could not reach the API for {minutes} to power it on",
                    )
                continue
            trouble = job.send_trouble_since
            if (
                not job.landed
                and trouble is not None
                and now - trouble >= self.give_up_after
                and job.state in (*CANCELLABLE, JobState.UNKNOWN)
            ):
                message = (
                    f"create_image has not gone through for {minutes} (last: "
                    f"{job.send_trouble}); a snapshot may still appear: look for the label "
                    f"{JOB_LABEL}={job.uid}"
                )
                self._end(job, JobState.FAILED, result, error_code="unknown", error_message=message)
                continue
            if job.failing_since is None or now - job.failing_since < self.give_up_after:
                continue
            if job.state == JobState.SHUTTING_DOWN:
                message = f"could not reach the API for {minutes} while shutting down"
            elif job.state in CANCELLABLE and not job.maybe_landed:
                message = f"could not reach the API for {minutes}; nothing was sent"
            else:
                message = (
                    f"no word from the API for {minutes}; the snapshot may exist: look for "
                    f"the label {JOB_LABEL}={job.uid}"
                )
            self._end(job, JobState.FAILED, result, error_code="unknown", error_message=message)

    def _audit(
        self, job: Job, outcome: str, request_id: str | None, command: str = "create_image"
    ) -> None:
        """A mutating request of the job in the audit log (create_image, or a power one)."""
        if self.audit is not None:
            self.audit.record(
                "POST",
                f"/servers/{job.server_id}/actions/{command}",
                server=job.server_name,
                outcome=outcome,
                request_id=request_id,
            )


DOWN = ("off", "stopping")  # what the power read asks for


@dataclass(frozen=True)
class PowerView:
    read_at: float  # when it was asked for (engine clock)
    down: dict[int, str]  # server → `off` or `stopping`; a server not here is up


def _needs_power_view(job: Job) -> bool:
    """A job that waits on its server's power: a consistent one before its shutdown,
    one shutting down (its signal sent), one watching after its poweron."""
    if job.state == JobState.SHUTTING_DOWN:
        return job.power_acked or job.power_action_id is None
    if job.state == JobState.STARTING:
        return job.power_action_id is not None or job.on_again
    return job.state in CANCELLABLE and job.shutdown and not (job.turned_off or job.stayed_off)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f}s"


def _create_images(fleet: FleetState, job: Job) -> list[Action]:
    return [a for a in fleet.running_for(job.server_id) if a.command == "create_image"]


def describe_lock(fleet: FleetState, server_id: int) -> tuple[str, int | None]:
    lock = fleet.lock(server_id)
    if lock.actions:
        action: Action = lock.actions[0]
        return f"#{action.id} {action.short_command} {action.progress}%", action.id
    return "locked (no visible action)", None


def event_text(job: Job) -> str:
    text = _outcome_text(job)
    if job.power_error:
        text += f" — {job.server_name} IS STILL OFF: {job.power_error}"
    elif job.powered_on:
        text += " (powered on again)"
    return text


def _outcome_text(job: Job) -> str:
    if job.state == JobState.SUCCEEDED:
        size = f", {job.image_size_gb:.1f} GB" if job.image_size_gb else ""
        text = f"{job.server_name}: snapshot {job.image_id} done{size}"
        if job.duplicates:
            extra = ", ".join(str(i) for i in job.duplicates)
            text += f" (a late request also made {extra}: delete it)"
        return text
    if job.state == JobState.SKIPPED:
        return f"{job.server_name}: skipped — {job.blocking or 'locked'}"
    if job.state == JobState.FAILED:
        request = f" (request ID {job.request_id})" if job.request_id else ""
        return f"{job.server_name}: failed — {job.error_code}: {job.error_message}{request}"
    return f"{job.server_name}: {job.state.value}"


__all__ = [
    "Job",
    "JobEngine",
    "JobEvent",
    "JobState",
    "LockPolicy",
    "StepResult",
]
