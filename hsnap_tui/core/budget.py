"""The session's share of the project's rate limit, as a token bucket.

Every request is charged once, as it is sent, by the HTTP hook (`HetznerApi`) — from
whatever thread sends it: refresh lanes, job steps, reconciles, screen fetches,
deletions, and requests that then time out or lose their connection. The bucket
refills at `share` of the project's limit (`RateLimit-Limit` per hour, shared with every
other tool on the project), a little under it for safety, and slower when the API says
the project is running low.

Discretionary requests (the refresh lanes, job polls and sends) wait while the bucket
is empty; what the operator asks for directly (`r`, opening a screen, deleting) is sent
at once and the debt is paid back by polling less.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_LIMIT = 3600  # requests per hour, until the API tells us otherwise
SAFETY = 0.95  # stay a little under the share: clocks and paging round up
THROTTLE_FACTOR = 4.0  # slower by this much while the project runs low
BURST_SECONDS = 60.0  # how much budget may be saved up (beyond one slow refresh)


class RequestBudget:
    def __init__(
        self,
        share: float = 0.25,
        *,
        clock: Callable[[], float] = time.monotonic,
        limit: Callable[[], int | None] = lambda: None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("the API budget is a fraction of the limit, in (0, 1]")
        self.share = share
        self.clock = clock
        self._limit = limit
        self._lock = threading.Lock()
        self._tokens: float | None = None  # full at the first look
        self._at: float | None = None
        self.reserve = 0.0  # extra room for one slow refresh, set by the refresher
        self.throttled = False
        self.sent = 0  # every request charged, for the header and the tests

    @property
    def limit(self) -> int:
        """The project's hourly limit; a missing, zero or nonsense header is ignored."""
        limit = self._limit()
        return limit if isinstance(limit, int) and limit > 0 else DEFAULT_LIMIT

    def rate(self) -> float:
        """Requests per second this session may send in the long run."""
        rate = SAFETY * self.share * self.limit / 3600.0
        return rate / THROTTLE_FACTOR if self.throttled else rate

    def capacity(self) -> float:
        return self.reserve + BURST_SECONDS * self.rate()

    def _refill(self, now: float) -> float:
        capacity = self.capacity()
        if self._tokens is None:
            self._tokens = capacity
        elif self._at is not None and now > self._at:
            self._tokens = min(capacity, self._tokens + (now - self._at) * self.rate())
        self._at = now
        return self._tokens

    def charge(self, count: int = 1) -> None:
        """Count requests as they are sent (any thread)."""
        with self._lock:
            self._refill(self.clock())
            self._tokens -= count
            self.sent += count

    def available(self) -> float:
        with self._lock:
            return self._refill(self.clock())

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` requests are affordable (0 when they are now)."""
        missing = cost - self.available()
        return max(0.0, missing / self.rate()) if missing > 0 else 0.0
