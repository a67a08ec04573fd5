"""A session: one context's connection to one project — its API (with the request
budget charged at the HTTP hook), refresher, snapshot job engine, audit log and the
actions someone follows — driven by one `tick()` at a time.

The console and the headless commands both drive sessions: they call `tick()` from a
worker (or a plain loop), show the immutable `TickResult`, and call again after
`result.next_delay`. A `Workspace` holds the live session and the sessions of contexts
switched away from, which keep running their jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import requests
from hcloud import APIException

from .api import HetznerApi
from .audit import AuditLog
from .budget import RequestBudget
from .deletion import DeleteRefused, delete_snapshot
from .errors import explain, explain_error, is_transient
from .fleet import FleetState
from .jobs import (
    GIVE_UP_AFTER,
    LATE_WINDOW,
    SHUTDOWN_TIMEOUT,
    Job,
    JobEngine,
    JobEvent,
    LockPolicy,
    StepResult,
)
from .labels import parse_selector
from .models import Action, Server, Snapshot
from .refresh import DEBT_TOLERANCE, FAST_SHARE, MAX_QUIET, Refresher
from .retention import RetentionPlan, plan_retention

log = logging.getLogger(__name__)

# A paced deletion (headless) that meets a transient failure tries again, after 5, 10 s.
DELETE_ATTEMPTS = 3
RETRY_DELAY = 5.0


@dataclass(frozen=True)
class TickResult:
    """What one tick of one session saw and did."""

    session: Session
    ran: bool  # False when another thread was ticking this session: nothing was done
    fleet: FleetState | None = None  # the fleet after this tick, when anything was fetched
    lanes: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | int | None = None
    next_delay: float = 1.0
    throttled: bool = False
    events: tuple[JobEvent, ...] = ()
    watched: Mapping[int, Action] = field(default_factory=dict)
    jobs: tuple[Job, ...] = ()
    slow_error: str | None = None  # the full list could not be read; the rest went on


@dataclass(frozen=True)
class DeletionProgress:
    done: int
    total: int
    deleted: tuple[int, ...]
    failures: tuple[str, ...]
    failed: tuple[int, ...] = ()  # the IDs behind `failures`, in the same order

    @property
    def finished(self) -> bool:
        return self.done == self.total


class Session:
    def __init__(
        self,
        api: HetznerApi,
        *,
        name: str = "",
        audit: AuditLog | None = None,
        refresh: float = 5.0,
        budget: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        job_ids: Iterator[int] | None = None,
        late_window: float = LATE_WINDOW,
        give_up_after: float = GIVE_UP_AFTER,
        fleet_view: bool = True,
    ) -> None:
        self.name = name
        # True: keep the whole fleet fresh (the console shows it). False: read only
        # what the jobs need (headless commands) — no snapshot list, and while every
        # job is running, the batched action poll alone.
        self.fleet_view = fleet_view
        self._next_jobs_step = self._last_jobs_step = 0.0
        self.api = api
        self.clock = clock
        self.now = now
        self.budget = RequestBudget(budget, clock=clock)
        api.attach_budget(self.budget)
        self.audit = audit or AuditLog(None, context=name, endpoint=api.endpoint, now=now)
        self.jobs = JobEngine(
            api,
            self.audit,
            now=now,
            clock=clock,
            ids=job_ids,
            context=name,
            budget=self.budget,
            late_window=late_window,
            give_up_after=give_up_after,
        )
        self.refresher = Refresher(
            api,
            refresh=refresh,
            budget=self.budget,
            clock=clock,
            extra_fast_cost=lambda: self.jobs.tick_cost(len(self.followed())),
            read_snapshots=fleet_view,
        )
        self._followed: dict[int, int] = {}
        self._followed_lock = threading.Lock()
        self._ticking = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"Session({self.name!r}, {self.api.endpoint!r})"

    @property
    def fleet(self) -> FleetState:
        return self.refresher.fleet

    @property
    def read_only(self) -> bool:
        return self.api.read_only

    # ---- the tick -------------------------------------------------------------------

    def tick(self) -> TickResult:
        """Poll the lanes that are due, then step the jobs with the fresh lock picture.
        Blocking; one thread at a time (another caller gets `ran=False` at once)."""
        if not self._ticking.acquire(blocking=False):
            return TickResult(self, False, next_delay=self.refresher.next_delay())
        try:
            return self._tick()
        except Exception as exc:  # a bug must not stop the loop
            log.exception("tick of %s failed", self.name or "session")
            return TickResult(self, True, error=explain(exc), next_delay=10.0, jobs=self._jobs())
        finally:
            self._ticking.release()

    def _tick(self) -> TickResult:
        watch = self.followed()
        if (
            not self.fleet_view
            and not watch
            and self.refresher.loaded
            and not self.refresher.pending()
            and self.jobs.only_running()
        ):
            return self._step_running()
        poll = self.refresher.poll()
        fleet = poll.fleet
        events: tuple[JobEvent, ...] = ()
        watched: Mapping[int, Action] = {}
        if "fast" in poll.lanes and (self.jobs.needs_step() or watch):
            step = self.jobs.step(self.refresher.fleet, watch)
            folded = self._fold(step)
            fleet = folded if folded is not None else fleet
            if step.want_slow:
                self.refresher.request_slow()
            events, watched = tuple(step.events), dict(step.watched)
        elif self.jobs.active_jobs():
            # no step this tick: the API did not answer (that counts toward giving up),
            # or the session chose not to ask (that does not)
            events = tuple(self.jobs.expire(unreachable=poll.error is not None))
        return TickResult(
            self,
            True,
            fleet,
            poll.lanes,
            poll.error,
            poll.error_code,
            self.refresher.next_delay() if poll.error is None else poll.next_delay,
            poll.throttled or self.refresher.waiting_for_budget,
            events,
            watched,
            self._jobs(),
            poll.slow_error,
        )

    def _step_running(self) -> TickResult:
        """Every job is running and nobody looks at the fleet: one batched
        `GET /actions?id=…` per tick, paced like the fast lane (its share of the budget,
        waiting while the budget is in debt, but never quiet for over MAX_QUIET)."""
        now = self.clock()
        if now < self._next_jobs_step:
            return TickResult(self, True, next_delay=self._next_jobs_step - now, jobs=self._jobs())
        budget = self.budget
        quiet = now - self._last_jobs_step
        if budget.available() < -DEBT_TOLERANCE and quiet < MAX_QUIET:
            delay = min(budget.wait_for(0) + 0.1, MAX_QUIET - quiet)
            return TickResult(self, True, next_delay=delay, throttled=True, jobs=self._jobs())
        cost = max(1, self.jobs.tick_cost())
        step = self.jobs.step(self.refresher.fleet)
        fleet = self._fold(step)
        now = self._last_jobs_step = self.clock()
        interval = max(self.refresher.refresh, cost / (FAST_SHARE * budget.rate()))
        self._next_jobs_step = now + interval
        return TickResult(
            self,
            True,
            fleet,
            ("jobs",),
            next_delay=interval,
            events=tuple(step.events),
            jobs=self._jobs(),
        )

    def _fold(self, step: StepResult) -> FleetState | None:
        """The images a step made, finished or saw go, into the fleet at once."""
        fleet = None
        if step.statuses:
            fleet = self.refresher.note_statuses(step.statuses)
        if step.snapshots:
            fleet = self.refresher.note_snapshots(step.snapshots)
        if step.gone:
            fleet = self.refresher.note_deleted(step.gone)
        return fleet

    def _jobs(self) -> tuple[Job, ...]:
        return tuple(self.jobs.jobs())

    # ---- what the operator asks -----------------------------------------------------

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
        """Queue snapshot jobs (see `JobEngine.submit`); `shutdown`: consistent ones."""
        queued, refused = self.jobs.submit(
            servers,
            template,
            labels,
            policy,
            wait_limit,
            shutdown=shutdown,
            force_poweroff=force_poweroff,
            shutdown_timeout=shutdown_timeout,
        )
        if queued:
            self.refresher.request_fast()  # fresh locks for the new jobs
        return queued, refused

    def cancel(self, job_id: int) -> str | None:
        return self.jobs.cancel(job_id)

    def request_full(self) -> None:
        self.refresher.request_full()

    def follow(self, action_id: int) -> None:
        """Fetch this action on every tick (an open inspector), in the jobs' one call."""
        with self._followed_lock:
            self._followed[action_id] = self._followed.get(action_id, 0) + 1
        self.refresher.request_fast()

    def unfollow(self, action_id: int) -> None:
        with self._followed_lock:
            left = self._followed.get(action_id, 0) - 1
            if left > 0:
                self._followed[action_id] = left
            else:
                self._followed.pop(action_id, None)

    def followed(self) -> set[int]:
        with self._followed_lock:
            return set(self._followed)

    # ---- snapshots: delete, retention (blocking; worker threads) ----------------------

    def delete_snapshots(
        self,
        snapshots: list[Snapshot],
        progress: Callable[[DeletionProgress], object] | None = None,
        pace: Callable[[float], bool] | None = None,
    ) -> DeletionProgress:
        """Delete one by one, reporting after each; the fleet forgets each at once.

        `pace`: keep within the request budget — called with the seconds to wait before
        a deletion the budget cannot pay for yet; it waits and returns True to stop
        there. Without it (the operator confirmed in the console) they go out at once."""
        deleted: list[int] = []
        failures: list[str] = []
        failed: list[int] = []
        report = DeletionProgress(0, len(snapshots), (), ())
        stopped = False
        for index, snapshot in enumerate(snapshots, 1):
            if pace is not None and pace(self.budget.wait_for(1)):
                break
            for attempt in range(DELETE_ATTEMPTS if pace is not None else 1):
                if attempt and pace(RETRY_DELAY * 2 ** (attempt - 1)):
                    stopped = True
                    break
                outcome = self._delete_one(snapshot)
                if outcome is None:
                    deleted.append(snapshot.id)
                    self.refresher.note_deleted([snapshot.id])
                    break
                failure, transient = outcome
                if not transient or attempt == DELETE_ATTEMPTS - 1 or pace is None:
                    failures.append(failure)
                    failed.append(snapshot.id)
                    break
            if stopped:
                break
            report = DeletionProgress(
                index, len(snapshots), tuple(deleted), tuple(failures), tuple(failed)
            )
            if progress is not None:
                progress(report)
        return report

    def _delete_one(self, snapshot: Snapshot) -> tuple[str, bool] | None:
        """Delete one snapshot: None when it is gone, else (why not, whether trying
        again may help). A retry after a lost answer finds it gone: that is done too."""
        try:
            delete_snapshot(self.api, self.audit, snapshot)
            return None
        except DeleteRefused as exc:
            return str(exc), False
        except APIException as exc:
            if exc.code == "not_found":
                return None  # already gone (another tool, or our own lost answer)
            return self._failure(snapshot, exc), is_transient(exc)
        except Exception as exc:  # explained, never raised
            transient = isinstance(exc, requests.RequestException)
            return self._failure(snapshot, exc), transient

    @staticmethod
    def _failure(snapshot: Snapshot, exc: BaseException) -> str:
        explanation = explain_error(exc)
        request = f" (request ID {explanation.request_id})" if explanation.request_id else ""
        return f"{snapshot.description or snapshot.id}: {explanation.summary}{request}"

    def fresh_snapshots(self, label_selector: str | None = None) -> list[Snapshot]:
        """Re-read the snapshots (those the selector picks) and fold them into the fleet:
        what a plan is recomputed from right before it deletes anything."""
        fresh = self.api.snapshots(label_selector=label_selector)
        fresh_ids = {s.id for s in fresh}
        selector = parse_selector(label_selector) if label_selector else None
        gone = [
            s.id
            for s in self.fleet.snapshots
            if s.id not in fresh_ids and (selector is None or selector.matches(s.labels))
        ]
        if gone:
            self.refresher.note_deleted(gone)
        self.refresher.note_snapshots(fresh)
        return fresh

    def replan(self, plan: RetentionPlan) -> RetentionPlan:
        """The same retention rule over snapshots read just now."""
        fresh = self.fresh_snapshots(plan.selector)
        return plan_retention(fresh, plan.rules, plan.selector, plan.only_servers)


class Workspace:
    """The live session, and the sessions of contexts switched away from: those keep
    following their jobs in the background, and their finished jobs stay visible."""

    def __init__(self, live: Session) -> None:
        self.live = live
        self.background: list[Session] = []

    @property
    def sessions(self) -> list[Session]:
        return [self.live, *self.background]

    def find(self, name: str) -> Session | None:
        return next((s for s in self.background if s.name == name), None)

    def switch(self, session: Session) -> None:
        """Make `session` live; the one it replaces stays in the background while it
        has jobs (running or finished)."""
        if session is self.live:
            return
        if session in self.background:
            self.background.remove(session)
        if self.live.jobs.jobs():
            self.background.append(self.live)
        self.live = session

    def to_tick(self) -> list[Session]:
        """The live session, and background sessions with jobs still to follow."""
        return [self.live, *(s for s in self.background if s.jobs.needs_step())]

    def all_jobs(self) -> list[Job]:
        jobs = [j for s in self.background for j in s.jobs.jobs()]
        return jobs + self.live.jobs.jobs()

    def session_of(self, job_id: int) -> Session | None:
        return next((s for s in self.sessions if s.jobs.get(job_id) is not None), None)


__all__ = ["DeletionProgress", "Session", "TickResult", "Workspace"]
