"""The simulator's clock: simulated seconds that run at `speed` times wall time, or
stand still (speed 0) and move only when the caller advances them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    def __init__(
        self,
        start: float | None = None,
        speed: float = 1.0,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._lock = threading.Lock()
        self._wall = wall
        self._base = float(start) if start is not None else time.time()
        self._anchor = wall()
        self._speed = float(speed)

    def now(self) -> float:
        """Simulated time as a Unix timestamp."""
        with self._lock:
            return self._base + (self._wall() - self._anchor) * self._speed

    @property
    def speed(self) -> float:
        return self._speed

    def _rebase(self) -> None:
        now_wall = self._wall()
        self._base += (now_wall - self._anchor) * self._speed
        self._anchor = now_wall

    def advance(self, seconds: float) -> float:
        """Move simulated time forward; returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._rebase()
            self._base += seconds
            return self._base

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            self._rebase()
            self._speed = float(speed)
