"""How ages, durations, sizes and moments read — the same in the console and in the
headless commands' output (plain strings; the console adds the styles)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

import humanize

DAY = 86400


def ago(timestamp: float | None, now: float, never: str = "never") -> str:
    """`3 days ago`, `a minute ago`, `now`; `never` for no timestamp."""
    if timestamp is None:
        return never
    # humanize reads whole seconds below a day and whole days above: one text per
    # such step, computed once (a refresh asks for a thousand of them)
    seconds = int(max(0.0, now - timestamp))
    return _ago(seconds if seconds < DAY else seconds - seconds % DAY)


@lru_cache(maxsize=4096)
def _ago(seconds: int) -> str:
    return humanize.naturaltime(timedelta(seconds=seconds))


def duration(seconds: float | None) -> str:
    """`42s`, `2m 11s`, `1h 05m`; `-` when there is none."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def size_gb(value: float | None) -> str:
    """A size the API gives in GB (`image_size`, `disk_size`), in the API's unit:
    `4.2 GB`, `160.0 GB`, `1.2 TB`."""
    if value is None:
        return "-"
    if value == 0:
        return "0 GB"
    return humanize.naturalsize(value * 1000**3, format="%.1f")


def absolute(timestamp: float | None) -> str:
    """`2026-11-26 12:00:00 UTC`; `—` for none."""
    if timestamp is None:
        return "—"
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(timestamp: float | None) -> str | None:
    """`2026-11-26T12:00:00Z` (ISO 8601, UTC) for machines; None for none."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(round(timestamp), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
