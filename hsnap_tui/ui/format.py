"""How servers, locks and times read on screen (Rich text, no widgets)."""

from __future__ import annotations

from datetime import timedelta

import humanize
from rich.text import Text

from hsnap_tui.core.fleet import LockState

LOCK_GLYPH = "🔒"


def literal(value: object) -> object:
    """Text as it is: API and operator strings (`[/var/lib/mysql] pre-upgrade`) are never
    read as Rich markup by the widgets that show them."""
    return Text(value) if isinstance(value, str) else value


STATUS_STYLES = {
    "running": "green",
    "off": "red",
    "starting": "yellow",
    "stopping": "yellow",
    "initializing": "yellow",
    "rebuilding": "magenta",
    "migrating": "magenta",
    "deleting": "bold red",
    "unknown": "dim",
}

ACTION_STATUS_STYLES = {"running": "yellow", "success": "green", "error": "bold red"}


def ago(timestamp: float | None, now: float, never: str = "never") -> str:
    """`3 days ago`, `a minute ago`, `now`; `never` for no timestamp."""
    if timestamp is None:
        return never
    return humanize.naturaltime(timedelta(seconds=max(0.0, now - timestamp)))


def duration(seconds: float | None) -> str:
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


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def lock_text(lock: LockState) -> Text:
    if not lock.held:
        return Text("")
    style = "bold red" if lock.unexplained else "bold yellow"
    return Text(f"{LOCK_GLYPH} {lock.label()}", style=style)


def size_gb(value: float | None) -> str:
    if value is None:
        return "-"
    return humanize.naturalsize(value * 1024**3, binary=True, format="%.1f")
