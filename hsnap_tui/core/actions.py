"""Reading an action ID typed by a person, and explaining what is not one.

The classic mistake: `cannot perform operation because server is locked (locked,
f21b9dc9d1535310)` — the 16 hex digits are the request's X-Correlation-Id, which hcloud
appends to every API error. Action IDs are integers; the API cannot look a correlation
ID up, Hetzner support can.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hcloud import APIException

from .api import HetznerApi
from .fleet import FleetState

MAX_ACTION_ID = 2**53 - 1
MAX_INPUT = 64
_CORRELATION = re.compile(r"(?<![0-9a-fA-F])([0-9a-fA-F]{16})(?![0-9a-fA-F])")
_ASCII_DIGITS = re.compile(r"^[0-9]+$")


class ActionIdError(ValueError):
    """Input that is not an action ID; the message says why and what to do."""

    def __init__(self, message: str, *, correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id


def correlation_id_explanation(correlation_id: str) -> str:
    return (
        f"{correlation_id} is a request ID (the X-Correlation-Id that hcloud appends to "
        "every API error as `message (code, request ID)`), not an action ID. Action IDs "
        "are whole numbers. The API cannot look a request ID up; Hetzner support can trace "
        "it. To see what holds a locked server, highlight it and press i."
    )


def find_correlation_id(text: str) -> str | None:
    """A 16-lowercase-hex-digit token that is not plain digits, e.g. from a pasted
    error message."""
    for match in _CORRELATION.finditer(text):
        token = match.group(1).lower()
        if not token.isdigit():
            return token
    return None


def parse_action_id(text: str) -> int:
    """A whole number from 1 to 2^53-1, with optional surrounding spaces or a leading
    `#`. Raises ActionIdError with a specific message for anything else."""
    # A pasted error message is long but carries the request ID: explain that first.
    correlation_id = find_correlation_id(text[:1000]) if len(text) > MAX_INPUT else None
    if correlation_id is not None:
        raise ActionIdError(
            correlation_id_explanation(correlation_id), correlation_id=correlation_id
        )
    if len(text) > MAX_INPUT:
        raise ActionIdError(
            f"that is {len(text)} characters long; an action ID has at most 16 digits"
        )
    stripped = text.strip()
    if stripped.startswith("#"):
        stripped = stripped[1:].strip()
    if not stripped:
        raise ActionIdError("enter an action ID: a whole number such as 1930144902")
    correlation_id = find_correlation_id(stripped)
    if correlation_id is not None and not _ASCII_DIGITS.match(stripped):
        raise ActionIdError(
            correlation_id_explanation(correlation_id), correlation_id=correlation_id
        )
    if stripped.startswith("-") and _ASCII_DIGITS.match(stripped[1:] or "x"):
        raise ActionIdError("action IDs are positive: from 1 up")
    if not _ASCII_DIGITS.match(stripped):
        if any(ch.isdigit() for ch in stripped) and all(ch.isdigit() for ch in stripped):
            raise ActionIdError("use the digits 0-9 only (this looks like another script's digits)")
        raise ActionIdError(
            f"{stripped!r} is not a whole number: an action ID is digits only, such as 1930144902"
        )
    value = int(stripped)
    if value == 0:
        raise ActionIdError("action IDs start at 1")
    if value > MAX_ACTION_ID:
        raise ActionIdError(f"too large: action IDs go up to {MAX_ACTION_ID} (2^53−1)")
    return value


def not_found_message(action_id: int) -> str:
    text = f"There is no action {action_id} in this project."
    if len(str(action_id)) == 16:
        text += (
            " If you copied these 16 digits from an error message, they are the "
            "request ID (X-Correlation-Id), not an action ID."
        )
    return text


def unexplained_lock_message(
    server_name: str, request_id: str | None, source: str = "the server list that showed it"
) -> str:
    text = (
        f"{server_name} is locked, but none of this project's running actions names it. "
        "The lock is held by an operation the actions API does not show you (for example "
        "a migration or maintenance on Hetzner's side), or by an action that has just "
        "ended (press r to refresh). Wait a few minutes; if it stays locked, contact "
        "Hetzner support"
    )
    if request_id:
        text += f" and give them the request ID {request_id} ({source})"
    return text + "."


def names_in_fleet(
    fleet: FleetState, resources: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The names of an action's resources that the fleet knows (no network)."""
    snapshots = {s.id: s for s in fleet.snapshots}
    names: dict[tuple[str, int], str] = {}
    for kind, rid in resources:
        if kind == "server" and rid in fleet.servers:
            names[(kind, rid)] = fleet.servers[rid].name
        elif kind == "image" and rid in snapshots:
            names[(kind, rid)] = snapshots[rid].description
    return names


def fetch_names(
    api: HetznerApi, resources: Iterable[tuple[str, int]], limit: int = 5
) -> dict[tuple[str, int], str]:
    """Names the fleet does not know: one request per server or image (at most
    `limit`); `(deleted)` or `(unknown)` when it cannot be read. Blocking."""
    names: dict[tuple[str, int], str] = {}
    for kind, rid in list(resources)[:limit]:
        try:
            if kind == "server":
                names[(kind, rid)] = api.server(rid).name
            elif kind == "image":
                names[(kind, rid)] = api.image(rid).description
        except APIException as exc:
            names[(kind, rid)] = "(deleted)" if exc.code == "not_found" else "(unknown)"
        except Exception:
            names[(kind, rid)] = "(unknown)"
    return names
