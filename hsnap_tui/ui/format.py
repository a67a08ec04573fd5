"""How servers, locks and times read on screen (Rich text, no widgets)."""

from __future__ import annotations

from rich.text import Text

from hsnap_tui.core.fleet import LockState
from hsnap_tui.core.units import absolute, ago, duration, size_gb

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


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def lock_text(lock: LockState) -> Text:
    if not lock.held:
        return Text("")
    style = "bold red" if lock.unexplained else "bold yellow"
    return Text(f"{LOCK_GLYPH} {lock.label()}", style=style)


__all__ = ["absolute", "ago", "duration", "literal", "lock_text", "size_gb", "status_text"]
