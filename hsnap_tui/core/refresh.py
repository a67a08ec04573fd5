"""The refresh engine: a fast lane for locks and a slow lane for the fleet, paced by
the project's rate limit.

The UI calls `poll()` in a worker thread, shows the result, and schedules the next
call after `result.next_delay` — so refreshes never overlap, and a slow network only
makes the loop slower.

Pacing: the steady request rate stays under `budget` * `RateLimit-Limit` per hour. The
fast lane (`GET /servers/actions?status=running`) gets most of it, never more often than
every `refresh` seconds; the slow lane (`GET /servers` + `GET /images?type=snapshot`)
gets the rest, so it stretches as the fleet and its snapshots grow. The engine keeps its
own token bucket, refilled at the budget rate and charged for every request it sends: the
slow lane runs only when the bucket can pay for all its pages, so no mix of scheduled,
early (an action just finished) or forced refreshes exceeds the budget for long.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from hcloud import APIException

from .api import PER_PAGE, HetznerApi
from .errors import explain
from .fleet import FleetState
from .models import Action, Snapshot

DEFAULT_LIMIT = 3600  # requests per hour, until the API tells us otherwise
FAST_SHARE = 0.85  # of the budget, for the lock lane …
MIN_FAST_SHARE = 0.5  # … less on big fleets, so that …
SLOW_TARGET = 900.0  # … the fleet list is still read about every 15 minutes
SAFETY = 0.95  # keep a little under the budget: clocks and paging round up
LOW_WATER = 0.10  # below this fraction of the limit left, slow down
THROTTLE_FACTOR = 4.0
MAX_BACKOFF = 60.0
MIN_SLOW_GAP = 10.0  # a finished action pulls the slow lane forward, but not closer
BUCKET_SLACK = 10.0  # seconds of budget the engine may save up beyond one slow refresh


@dataclass(frozen=True)
class PollResult:
    fleet: FleetState | None  # None when nothing new was fetched
    lanes: tuple[str, ...]  # which lanes ran: "fast", "slow"
    error: str | None  # operator text when the poll failed
    next_delay: float  # seconds until the next poll should run
    throttled: bool  # slowing down for the rate limit


def pages(count: int) -> int:
    return max(1, math.ceil(count / PER_PAGE))


class Refresher:
    def __init__(
        self,
        api: HetznerApi,
        *,
        refresh: float = 5.0,
        budget: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        extra_fast_cost: Callable[[], int] = lambda: 0,
    ) -> None:
        if refresh <= 0:
            raise ValueError("refresh must be positive")
        if not 0 < budget <= 1:
            raise ValueError("the API budget is a fraction of the limit, in (0, 1]")
        self.api = api
        self.refresh = refresh
        self.budget = budget
        self.clock = clock
        # requests made on every fast tick besides the lane itself (job progress polls)
        self.extra_fast_cost = extra_fast_cost
        self.fleet = FleetState()
        self.last_success: float | None = None  # clock time of the last good poll
        self.failures = 0
        self.last_error_code: str | int | None = None
        self.retry_at: float | None = None
        self.throttled = False
        self._next_fast = 0.0
        self._next_slow = 0.0
        self._last_slow = -math.inf
        self._loaded = False
        self._forced = False
        self._settled = False
        self._tokens = 0.0
        self._tokens_at: float | None = None
        self._busy = threading.Lock()
        self._fleet_lock = threading.Lock()

    # ---- pacing ---------------------------------------------------------------------

    @property
    def limit(self) -> int:
        rate = self.api.monitor.rate_limit
        return rate.limit if rate else DEFAULT_LIMIT

    def requests_per_second(self) -> float:
        rate = SAFETY * self.budget * self.limit / 3600.0
        return rate / THROTTLE_FACTOR if self.throttled else rate

    def fast_cost(self) -> int:
        return pages(len(self.fleet.running)) + self.extra_fast_cost()

    def slow_cost(self) -> int:
        return pages(len(self.fleet.servers)) + pages(len(self.fleet.snapshots))

    def fast_share(self) -> float:
        """The lock lane's share of the budget: most of it, unless the fleet is so big
        that its full refresh would then come less than every SLOW_TARGET seconds."""
        wanted = 1 - self.slow_cost() / (self.requests_per_second() * SLOW_TARGET)
        return min(FAST_SHARE, max(MIN_FAST_SHARE, wanted))

    def intervals(self) -> tuple[float, float]:
        """(fast, slow) lane intervals in seconds for the current fleet."""
        rate = self.requests_per_second()
        fast = max(self.refresh, self.fast_cost() / (self.fast_share() * rate))
        slow = max(6 * self.refresh, self.slow_cost() / self._spare_rate(fast))
        return fast, slow

    def _spare_rate(self, fast: float) -> float:
        rate = self.requests_per_second()
        return max(rate - self.fast_cost() / fast, rate * (1 - self.fast_share()))

    def _refill(self, now: float) -> None:
        if self._tokens_at is not None and now > self._tokens_at:
            capacity = self.slow_cost() + BUCKET_SLACK * self.requests_per_second()
            gained = (now - self._tokens_at) * self.requests_per_second()
            self._tokens = min(capacity, self._tokens + gained)
        self._tokens_at = now

    def charge(self, requests_sent: int) -> None:
        """Count requests made outside `poll()` (job steps) against the budget."""
        self._tokens -= requests_sent

    def request_fast(self) -> None:
        """Make the fast lane due now (new jobs want fresh locks), budget permitting."""
        self._next_fast = 0.0

    def add_snapshots(self, snapshots: list[Snapshot]) -> FleetState:
        """Fold snapshots that just finished into the fleet, before the slow lane
        reads them, so that "last snapshot" is current at once."""
        with self._fleet_lock:
            known = {s.id: s for s in self.fleet.snapshots}
            known.update({s.id: s for s in snapshots})
            self.fleet = self.fleet.with_snapshots(known.values())
            return self.fleet

    def remove_snapshots(self, ids: set[int]) -> FleetState:
        """Drop deleted snapshots from the fleet at once."""
        with self._fleet_lock:
            self.fleet = self.fleet.with_snapshots(
                s for s in self.fleet.snapshots if s.id not in ids
            )
            return self.fleet

    def request_full(self) -> None:
        """Make both lanes due now (the `r` key), budget or not."""
        self._forced = True
        self._next_fast = 0.0
        self.retry_at = None

    def next_delay(self) -> float:
        now = self.clock()
        if self.retry_at is not None:
            return max(0.0, self.retry_at - now)
        return max(0.0, self._next_fast - now)

    # ---- polling --------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Run the lanes that are due. Blocking; call from a worker thread. A call made
        while another runs returns at once without touching the network."""
        if not self._busy.acquire(blocking=False):
            return PollResult(None, (), None, self.next_delay(), self.throttled)
        try:
            sent_before = self.api.monitor.requests_sent
            try:
                return self._poll()
            finally:
                self._tokens -= self.api.monitor.requests_sent - sent_before
        finally:
            self._busy.release()

    def _slow_due(self, now: float) -> bool:
        if not self._loaded or self._forced:
            return True
        if self._tokens < self.slow_cost():
            return False
        if now >= self._next_slow:
            return True
        return self._settled and now - self._last_slow >= MIN_SLOW_GAP

    def _poll(self) -> PollResult:
        now = self.clock()
        self._refill(now)
        if self.retry_at is not None and now < self.retry_at:
            return PollResult(None, (), None, self.retry_at - now, self.throttled)
        if self._loaded and not self._forced and now < self._next_fast:
            return PollResult(None, (), None, self.next_delay(), self.throttled)
        lanes: list[str] = []
        fleet: FleetState | None = None  # a new picture from the slow lane
        try:
            running = self.api.running_server_actions()
            lanes.append("fast")
            self._settled = self._settled or self._actions_settled(running)
            if self._slow_due(now):
                servers = self.api.servers()
                servers_request_id = self.api.monitor.last_correlation_id
                snapshots = self.api.snapshots()
                lanes.append("slow")
                explained = frozenset(
                    s.id for s in servers if s.locked and any(s.id in a.server_ids for a in running)
                )
                fleet = FleetState(
                    {s.id: s for s in servers},
                    tuple(running),
                    tuple(snapshots),
                    explained,
                    servers_request_id=servers_request_id,
                )
        except (APIException, requests.RequestException, ValueError, KeyError) as exc:
            return self._failed(exc, tuple(lanes))

        with self._fleet_lock:
            # Derived and stored in one step, so that a snapshot the UI thread just added
            # or removed is not overwritten by the picture taken before it.
            self.fleet = fleet if fleet is not None else self.fleet.with_running(tuple(running))
            fleet = self.fleet
        self._loaded = True
        self._forced = False
        self.failures = 0
        self.last_error_code = None
        self.retry_at = None
        now = self.clock()
        self.last_success = now
        rate = self.api.monitor.rate_limit
        self.throttled = rate is not None and rate.fraction_left < LOW_WATER
        fast, slow = self.intervals()
        self._next_fast = now + fast
        if "slow" in lanes:
            self._settled = False
            self._last_slow = now
            self._next_slow = now + slow
        return PollResult(fleet, tuple(lanes), None, self.next_delay(), self.throttled)

    def _actions_settled(self, running: list[Action]) -> bool:
        """True when an action we saw running has ended: the servers it touched have a
        new status, which only the slow lane reads."""
        now_ids = {a.id for a in running}
        return any(a.id not in now_ids for a in self.fleet.running)

    def _failed(self, exc: Exception, lanes: tuple[str, ...]) -> PollResult:
        self.failures += 1
        self.last_error_code = exc.code if isinstance(exc, APIException) else None
        now = self.clock()
        delay = min(MAX_BACKOFF, 2.0**self.failures)
        if isinstance(exc, APIException) and exc.code == "rate_limit_exceeded":
            # Wait for the bucket to refill (RateLimit-Reset, on the server's clock,
            # compared with the Date of the same response), at most MAX_BACKOFF: it
            # refills continuously, so a minute always buys some requests.
            wait = self.api.monitor.reset_wait()
            if wait is not None:
                delay = min(MAX_BACKOFF, max(delay, wait))
            self.throttled = True
        self.retry_at = now + delay
        return PollResult(None, lanes, explain(exc), delay, self.throttled)

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
