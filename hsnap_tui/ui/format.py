"""How servers, locks and times read on screen (Rich text, no widgets)."""

from __future__ import annotations

from rich.text import Text

from hsnap_tui.core.fleet import LockState
from hsnap_tui.core.units import DAY, absolute, ago, duration, short_ago, size_gb

LOCK_GLYPH = "🔒"
# A server whose last snapshot is at least this old stands out in the Servers view.
OLD_SNAPSHOT_AGE = 7 * DAY
# Bold as well as coloured: they still stand out under NO_COLOR.
NEVER_SNAPSHOTTED_STYLE = "bold red"
OLD_SNAPSHOT_STYLE = "bold yellow"


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


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def lock_text(lock: LockState) -> Text:
    if not lock.held:
        return Text("")
    style = "bold red" if lock.unexplained else "bold yellow"
    return Text(f"{LOCK_GLYPH} {lock.label()}", style=style)


def blocker_text(blocking: str | None, action_id: int | None) -> str:
    """What a job waits for, the action's command first (`rebuild 11% (#123)`): when
    a narrow column shortens it, what blocks it is what stays."""
    if not blocking:
        return "locked"
    prefix = f"#{action_id} "
    if action_id is not None and blocking.startswith(prefix):
        return f"{blocking.removeprefix(prefix)} (#{action_id})"
    return blocking


def last_snapshot_cell(last: float | None, now: float) -> tuple[str, str]:
    """(text, style) of a server's last snapshot age: `never` and an old one stand out."""
    if last is None:
        return ("never", NEVER_SNAPSHOTTED_STYLE)
    return (short_ago(last, now), OLD_SNAPSHOT_STYLE if now - last >= OLD_SNAPSHOT_AGE else "")


__all__ = [
    "absolute",
    "ago",
    "blocker_text",
    "duration",
    "last_snapshot_cell",
    "literal",
    "lock_text",
    "short_ago",
    "size_gb",
    "status_text",
]
