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


def short_ago(timestamp: float | None, now: float, never: str = "never") -> str:
    """`12s ago`, `5m ago`, `3h ago`, `9d ago`, `4mo ago`, `2y ago`: one unit, for table
    columns that must fit 80 columns (`1 year, 5 months ago` would not)."""
    if timestamp is None:
        return never
    return _short_ago(int(max(0.0, now - timestamp)))


@lru_cache(maxsize=4096)
def _short_ago(seconds: int) -> str:
    return "now" if seconds < 1 else f"{short_age(seconds)} ago"


def short_age(seconds: float) -> str:
    """`12s`, `5m`, `3h`, `9d`, `4mo`, `2y`: an age in one unit (the header's, and
    `short_ago`'s)."""
    seconds = int(max(0.0, seconds))
    for limit, unit, name in _SHORT_UNITS:
        if seconds < limit:
            return f"{seconds // unit}{name}"
    return f"{seconds // (365 * DAY)}y"


# (below this many seconds, count in this unit, named so): days up to 60 and months up
# to 24, where one unit more would round a lot away ("1mo" for 59 days)
_SHORT_UNITS = (
    (60, 1, "s"),
    (3600, 60, "m"),
    (DAY, 3600, "h"),
    (60 * DAY, DAY, "d"),
    (730 * DAY, 30 * DAY, "mo"),
)


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
