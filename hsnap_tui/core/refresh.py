"""The refresh engine: a fast lane for locks and a slow lane for the fleet, paced by
the session's request budget.

The session calls `poll()` from its tick (one thread at a time), and the caller
schedules the next tick after `result.next_delay` — so refreshes never overlap, and a
slow network only makes the loop slower.

Pacing: every request of the session is charged to one token bucket (`RequestBudget`)
at the HTTP hook, whoever sends it. The fast lane (`GET /servers/actions?status=running`)
gets most of the budget, never more often than every `refresh` seconds; the slow lane
(`GET /servers` + `GET /images?type=snapshot`) runs when the bucket can pay for all its
pages, so it stretches as the fleet and its snapshots grow. While the bucket is in debt
(the operator asked for a lot at once), the lanes wait until it has paid it back.

Snapshots made or deleted here (jobs, deletions) are merged into the fleet by ID and
time: a slow-lane list fetched before such a change cannot undo it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import requests
from hcloud import APIException

from .api import PER_PAGE, HetznerApi
from .budget import RequestBudget
from .errors import Explanation, explain, explain_error
from .fleet import FleetState
from .models import Action, Snapshot

log = logging.getLogger(__name__)

FAST_SHARE = 0.85  # of the budget, for the lock lane …
MIN_FAST_SHARE = 0.5  # … less on big fleets, so that …
SLOW_TARGET = 900.0  # … the fleet list is still read about every 15 minutes
LOW_WATER = 0.10  # below this fraction of the limit left, slow down
MAX_BACKOFF = 60.0
MIN_SLOW_GAP = 10.0  # an early slow lane (an action ended, a job asked) not closer than this
MAX_QUIET = 60.0  # in budget debt, the fast lane still runs this often
DEBT_TOLERANCE = 0.01  # of a request: float dust is not debt


@dataclass(frozen=True)
class PollResult:
    fleet: FleetState | None  # None when nothing new was fetched
    lanes: tuple[str, ...]  # which lanes ran: "fast", "slow"
    error: str | None  # operator text when the poll failed
    next_delay: float  # seconds until the next poll should run
    throttled: bool  # slowing down for the rate limit
    error_code: str | int | None = None
    slow_error: str | None = None  # the full list failed; locks and jobs went on


OVERDUE = 3.0  # a lane not read for this many of its intervals is flagged


@dataclass(frozen=True)
class LaneAge:
    """How old one lane's data is: `locks` (the running actions, every fast tick) or
    `fleet` (the server and snapshot lists, the slow lane)."""

    lane: str
    age: float | None  # seconds since it was last read; None: never read
    interval: float  # how often it is meant to be read now
    failing: str | None = None  # why its last read failed, while it keeps failing

    @property
    def overdue(self) -> bool:
        """Older than OVERDUE intervals: the budget, a backoff or a failure held it."""
        return self.age is not None and self.age > OVERDUE * self.interval


_FINALITY = {"creating": 1, "available": 2}  # a snapshot's status only moves forward


def pages(count: int) -> int:
    return max(1, math.ceil(count / PER_PAGE))


class _Wants:
    """Requests for an early lane from any thread, served by the poll that started
    after them: a key pressed during a poll is never swallowed by its end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = {"fast": 0, "slow": 0, "full": 0}
        self._served = dict(self._asked)

    def ask(self, *lanes: str) -> None:
        with self._lock:
            for lane in lanes:
                self._asked[lane] += 1

    def pending(self) -> dict[str, int]:
        """What is asked now: {lane: ticket} for the lanes asked and not yet served."""
        with self._lock:
            return {k: v for k, v in self._asked.items() if v > self._served[k]}

    def served(self, tickets: dict[str, int]) -> None:
        with self._lock:
            for lane, ticket in tickets.items():
                self._served[lane] = max(self._served[lane], ticket)


class Refresher:
    def __init__(
        self,
        api: HetznerApi,
        *,
        refresh: float = 5.0,
        budget: float | RequestBudget = 0.25,
        clock: Callable[[], float] = time.monotonic,
        extra_fast_cost: Callable[[], int] = lambda: 0,
        read_snapshots: bool = True,
    ) -> None:
        if refresh <= 0:
            raise ValueError("refresh must be positive")
        if not isinstance(budget, RequestBudget):
            budget = RequestBudget(budget, clock=clock)
        if api.budget is not budget:
            api.attach_budget(budget)
        self.api = api
        self.budget = budget
        self.refresh = refresh
        self.clock = clock
        # requests made on every fast tick besides the lane itself (job polls, lookups)
        self.extra_fast_cost = extra_fast_cost
        # the slow lane reads every snapshot too (the console shows them); a headless
        # command that only makes snapshots knows its own from its jobs
        self.read_snapshots = read_snapshots
        self.fleet = FleetState()
        self.last_success: float | None = None  # clock time of the last good poll
        self.last_slow: float | None = None  # clock time of the last full list
        self.failures = 0
        self.last_error_code: str | int | None = None
        self.last_explanation: Explanation | None = None  # of the last failure
        self.retry_at: float | None = None
        self.slow_failures = 0
        self.slow_retry_at: float | None = None
        self.slow_error: str | None = None
        self.throttled = False
        self.waiting_for_budget = False
        self._next_fast = 0.0
        self._next_slow = 0.0
        self._loaded = False
        self._settled = False
        self._wants = _Wants()
        self._busy = threading.Lock()
        self._fleet_lock = threading.Lock()
        # snapshots made or deleted here since the last full list: id → (sequence
        # number, snapshot or None for deleted); the sequence orders them against the
        # moment a list was asked for, whatever the clocks say
        self._changes: dict[int, tuple[int, Snapshot | None]] = {}
        self._sequence = itertools.count(1)
        self._failing_code: str | int | None = None

    # ---- pacing ---------------------------------------------------------------------

    def requests_per_second(self) -> float:
        return self.budget.rate()

    def fast_cost(self) -> int:
        return pages(len(self.fleet.running)) + self.extra_fast_cost()

    def slow_cost(self) -> int:
        snapshots = pages(len(self.fleet.snapshots)) if self.read_snapshots else 0
        return pages(len(self.fleet.servers)) + snapshots

    def fast_share(self) -> float:
        """The lock lane's share of the budget: most of it, unless the fleet is so big
        that its full refresh would then come less than every SLOW_TARGET seconds."""
        wanted = 1 - self.slow_cost() / (self.requests_per_second() * SLOW_TARGET)
        return min(FAST_SHARE, max(MIN_FAST_SHARE, wanted))

    def intervals(self) -> tuple[float, float]:
        """(fast, slow) lane intervals in seconds for the current fleet."""
        rate = self.requests_per_second()
        fast = max(self.refresh, self.fast_cost() / (self.fast_share() * rate))
        spare = max(rate - self.fast_cost() / fast, rate * (1 - self.fast_share()))
        slow = max(6 * self.refresh, self.slow_cost() / spare)
        return fast, slow

    # ---- what others ask (any thread) -----------------------------------------------

    def request_fast(self) -> None:
        """Make the fast lane due now (new jobs want fresh locks)."""
        self._wants.ask("fast")

    def request_slow(self) -> None:
        """Re-read the server list soon (a lock only `server.locked` shows), budget
        permitting."""
        self._wants.ask("slow")

    def request_full(self) -> None:
        """Make both lanes due now (the `r` key), budget or not."""
        self._wants.ask("full")

    def note_snapshots(self, snapshots: Iterable[Snapshot]) -> FleetState:
        """Snapshots made or finished here: in the fleet at once, and kept there until a
        full list fetched after this moment has them."""
        with self._fleet_lock:
            known = {s.id: s for s in self.fleet.snapshots}
            for snapshot in snapshots:
                known[snapshot.id] = snapshot
                self._changes[snapshot.id] = (next(self._sequence), snapshot)
            self.fleet = self.fleet.with_snapshots(known.values())
            return self.fleet

    def note_statuses(self, statuses: dict[int, str]) -> FleetState:
        """Server statuses read just now (the jobs' power read): shown at once; the
        next full list has the last word."""
        with self._fleet_lock:
            fleet = self.fleet
            servers = dict(fleet.servers)
            changed = False
            for server_id, status in statuses.items():
                server = servers.get(server_id)
                if server is not None and server.status != status:
                    servers[server_id] = replace(server, status=status)
                    changed = True
            if changed:
                self.fleet = FleetState(
                    servers,
                    fleet.running,
                    fleet.snapshots,
                    fleet.explained_at_slow,
                    servers_request_id=fleet.servers_request_id,
                    servers_read_at=fleet.servers_read_at,
                )
            return self.fleet

    def note_deleted(self, ids: Iterable[int]) -> FleetState:
        """Snapshots deleted here: gone at once, and not brought back by an older list."""
        with self._fleet_lock:
            ids = set(ids)
            for image_id in ids:
                self._changes[image_id] = (next(self._sequence), None)
            self.fleet = self.fleet.with_snapshots(
                s for s in self.fleet.snapshots if s.id not in ids
            )
            return self.fleet

    def next_delay(self) -> float:
        now = self.clock()
        if self.retry_at is not None:
            return max(0.0, self.retry_at - now)
        wanted = self._wants.pending()
        if "fast" in wanted or "full" in wanted:
            return 0.0
        delay = max(0.0, self._next_fast - now)
        if self._loaded and self._in_debt(now):
            quiet = now - self.last_success if self.last_success is not None else 0.0
            delay = max(delay, min(self.budget.wait_for(0) + 0.1, MAX_QUIET - quiet))
        return delay

    # ---- polling --------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Run the lanes that are due. Blocking; call from a worker thread. A call made
        while another runs returns at once without touching the network."""
        if not self._busy.acquire(blocking=False):
            return PollResult(None, (), None, self.next_delay(), self.throttled)
        try:
            return self._poll()
        finally:
            self._busy.release()

    def _slow_due(self, now: float, wanted: dict[str, int]) -> bool:
        if "full" in wanted:
            return True
        if self.slow_retry_at is not None and now < self.slow_retry_at:
            return False  # the full list failed: it has its own backoff
        if self.last_slow is None:
            return True
        if self.budget.available() < self.slow_cost():
            return False
        if now >= self._next_slow:
            return True
        early = self._settled or "slow" in wanted
        return early and now - self.last_slow >= MIN_SLOW_GAP

    def _in_debt(self, now: float) -> bool:
        """Paying back what the operator asked for at once — but never silent for more
        than MAX_QUIET: jobs and locks are followed at least that often."""
        quiet = now - self.last_success if self.last_success is not None else math.inf
        return self.budget.available() < -DEBT_TOLERANCE and quiet < MAX_QUIET

    def _poll(self) -> PollResult:
        now = self.clock()
        self.budget.reserve = self.slow_cost()
        wanted = self._wants.pending()
        forced = "full" in wanted
        if self.retry_at is not None and now < self.retry_at and not forced:
            return PollResult(None, (), None, self.retry_at - now, self.throttled)
        asked_fast = forced or "fast" in wanted
        if self._loaded and not asked_fast:
            if now < self._next_fast:
                return PollResult(None, (), None, self.next_delay(), self.throttled)
            if self._in_debt(now):
                self.waiting_for_budget = True
                return PollResult(None, (), None, self.next_delay(), True)
        self.waiting_for_budget = False
        fleet: FleetState | None = None  # a new picture from the slow lane
        served = {lane: wanted[lane] for lane in ("fast", "full") if lane in wanted}
        try:
            running = self.api.running_server_actions()
        except (APIException, requests.RequestException, ValueError, KeyError, TypeError) as exc:
            return self._failed(exc)
        lanes = ["fast"]
        self._settled = self._settled or self._actions_settled(running)
        slow_error: str | None = None
        if self._slow_due(now, wanted):
            if "slow" in wanted:
                served["slow"] = wanted["slow"]
            try:
                fleet, fetched_at = self._read_fleet(running)
                lanes.append("slow")
            except (
                APIException,
                requests.RequestException,
                ValueError,
                KeyError,
                TypeError,
            ) as exc:
                # The locks and the jobs go on with the fast lane; the full list backs
                # off on its own.
                slow_error = explain(exc)
                self.last_explanation = explain_error(exc)
                if not self.slow_failures:
                    log.warning("the server or snapshot list could not be read: %s", slow_error)
                self.slow_failures += 1
                self.slow_retry_at = now + min(MAX_BACKOFF * 5, 10.0 * 2**self.slow_failures)

        with self._fleet_lock:
            # Merged and stored in one step, so that a snapshot made or deleted meanwhile
            # is not overwritten by the picture taken before it.
            if fleet is not None:
                self.fleet = self._merge_changes(fleet, fetched_at)
            else:
                self.fleet = self.fleet.with_running(tuple(running))
            fleet = self.fleet
        self._wants.served(served)
        self._loaded = True
        if self.failures:
            log.info("the API answers again (after %d failed polls)", self.failures)
        self.failures = 0
        self.last_error_code = None
        self.retry_at = None
        now = self.clock()
        self.last_success = now
        rate = self.api.monitor.rate_limit
        self.throttled = self.budget.throttled = rate is not None and rate.fraction_left < LOW_WATER
        fast, slow = self.intervals()
        self._next_fast = now + fast
        if "slow" in lanes:
            if self.slow_failures:
                log.info("the server and snapshot lists are read again")
            self._settled = False
            self.last_slow = now
            self._next_slow = now + slow
            self.slow_failures = 0
            self.slow_retry_at = None
            self.slow_error = None
        elif slow_error is not None:
            self.slow_error = slow_error
        return PollResult(
            fleet, tuple(lanes), None, self.next_delay(), self.throttled, slow_error=slow_error
        )

    def _read_fleet(self, running: list[Action]) -> tuple[FleetState, int]:
        """The slow lane: every server and snapshot, and the order ticket of the read."""
        with self._fleet_lock:
            fetched_at = next(self._sequence)
        asked_at = self.clock()
        servers = self.api.servers()
        servers_request_id = self.api.last_request_id()
        snapshots = self.api.snapshots() if self.read_snapshots else self.fleet.snapshots
        explained = frozenset(
            s.id for s in servers if s.locked and any(s.id in a.server_ids for a in running)
        )
        fleet = FleetState(
            {s.id: s for s in servers},
            tuple(running),
            tuple(snapshots),
            explained,
            servers_request_id=servers_request_id,
            servers_read_at=asked_at,
        )
        return fleet, fetched_at

    def _merge_changes(self, listed: FleetState, fetched_at: int) -> FleetState:
        """A full list asked for at `fetched_at`, with the changes made here since."""
        snapshots = {s.id: s for s in listed.snapshots}
        for image_id, (when, snapshot) in list(self._changes.items()):
            if when < fetched_at:
                del self._changes[image_id]  # the list was asked for after it: it knows
            elif snapshot is None:
                snapshots.pop(image_id, None)
            else:
                seen = snapshots.get(image_id)
                if seen is None or _FINALITY.get(snapshot.status, 0) > _FINALITY.get(
                    seen.status, 0
                ):
                    snapshots[image_id] = snapshot
        if len(snapshots) == len(listed.snapshots) and all(
            snapshots.get(s.id) is s for s in listed.snapshots
        ):
            return listed
        return listed.with_snapshots(snapshots.values())

    def _actions_settled(self, running: list[Action]) -> bool:
        """True when an action we saw running has ended: the servers it touched have a
        new status, which only the slow lane reads."""
        now_ids = {a.id for a in running}
        return any(a.id not in now_ids for a in self.fleet.running)

    def _failed(self, exc: Exception) -> PollResult:
        self.failures += 1
        code = exc.code if isinstance(exc, APIException) else None
        self.last_error_code = code
        now = self.clock()
        delay = min(MAX_BACKOFF, 2.0**self.failures)
        if code == "rate_limit_exceeded":
            # Wait for the bucket to refill (RateLimit-Reset, on the server's clock,
            # compared with the Date of the same response), at most MAX_BACKOFF: it
            # refills continuously, so a minute always buys some requests.
            wait = self.api.monitor.reset_wait()
            if wait is not None:
                delay = min(MAX_BACKOFF, max(delay, wait))
            self.throttled = self.budget.throttled = True
        self.retry_at = now + delay
        self.last_explanation = explain_error(exc)
        if self.failures == 1 or code != self._failing_code:
            # once per outage (and when its cause changes), not on every retry
            level = logging.ERROR if code == "unauthorized" else logging.WARNING
            log.log(
                level,
                "poll failed%s: %s; retrying in %.0fs",
                f" ({code})" if code is not None else "",
                explain(exc),
                delay,
            )
        self._failing_code = code
        return PollResult(None, (), explain(exc), delay, self.throttled, code)

    def pending(self) -> bool:
        """Someone asked for a lane (`r`, new jobs, a lock nothing explains)."""
        return bool(self._wants.pending())

    @property
    def loaded(self) -> bool:
        """A poll has succeeded: the fleet is known."""
        return self._loaded

    # ---- what the header shows ------------------------------------------------------

    def stale_for(self) -> float | None:
        """Seconds since the last good poll while failing; None when fresh."""
        if self.failures == 0 or self.last_success is None:
            return None
        return self.clock() - self.last_success

    def retry_in(self) -> float | None:
        if self.retry_at is None:
            return None
        return max(0.0, self.retry_at - self.clock())

    def updated_ago(self) -> float | None:
        if self.last_success is None:
            return None
        return self.clock() - self.last_success

    def lane_ages(self) -> dict[str, LaneAge]:
        """The age of each lane's data, for a header that speaks for all of it."""
        now = self.clock()
        fast, slow = self.intervals()
        failing = str(self.last_explanation or "no answer") if self.failures else None
        locks = LaneAge(
            "locks",
            now - self.last_success if self.last_success is not None else None,
            fast,
            failing,
        )
        fleet = LaneAge(
            "fleet",
            now - self.last_slow if self.last_slow is not None else None,
            slow,
            failing or self.slow_error,
        )
        return {"locks": locks, "fleet": fleet}
