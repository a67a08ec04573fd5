"""`hsnap-tui servers`: the Servers view as a table (or JSON lines), from one read of
the fleet: `GET /servers`, `GET /servers/actions?status=running`, the snapshots."""

from __future__ import annotations

import shutil

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import describe_lock
from hsnap_tui.core.labels import LabelError, parse_selector
from hsnap_tui.core.models import Server
from hsnap_tui.core.session import Session
from hsnap_tui.core.units import ago, iso

from .common import EXIT_OK, CommandError, Runtime, load_fleet


def lock_words(fleet: FleetState, server: Server) -> str:
    """What holds the lock, as a job waiting for it says it (`#1930144893 rebuild 40%`),
    with how many more actions hold it too."""
    lock = fleet.lock(server.id)
    if not lock.held:
        return ""
    if not lock.actions:
        return "no visible action (Hetzner's side, or one that just ended)"
    text, _ = describe_lock(fleet, server.id)
    more = len(lock.actions) - 1
    return text + (f" +{more}" if more > 0 else "")


def run_servers(session: Session, runtime: Runtime, *, selector: str | None, as_json: bool) -> int:
    wanted = None
    if selector is not None:
        try:
            wanted = parse_selector(selector)
        except LabelError as exc:
            raise CommandError(f"-l {selector!r}: {exc}") from None
    fleet = load_fleet(session, runtime)
    servers = sorted(fleet.servers.values(), key=lambda s: (s.name, s.id))
    if wanted is not None:
        servers = [s for s in servers if wanted.matches(s.labels)]
    now = runtime.now()
    if as_json:
        for server in servers:
            runtime.json(server_json(fleet, server))
        return EXIT_OK
    rows = [
        [
            server.name,
            server.status,
            server.server_type,
            server.location,
            server.address,
            _short_ago(fleet.last_snapshot(server.id), now),
        ]
        for server in servers
    ]
    # A lock gets a line of its own under its server: what holds it never has to be
    # cut to fit, and its action ID is there to copy (`hsnap-tui action ID`).
    notes = {i: f"  locked: {lock_words(fleet, s)}" for i, s in enumerate(servers)}
    notes = {i: text for i, text in notes.items() if fleet.lock(servers[i].id).held}
    if not servers:
        runtime.note(f"hsnap-tui: no server matches -l {selector!r} ({len(fleet.servers)} servers)")
        return EXIT_OK
    lines = fit_table(HEADERS, rows, _width(runtime))
    runtime.print(lines[0])
    for index, line in enumerate(lines[1:]):
        runtime.print(line)
        if index in notes:
            runtime.print(notes[index])
    locked = sum(1 for s in servers if fleet.lock(s.id).held)
    shown = f"{len(servers)} of {len(fleet.servers)}" if wanted else f"{len(servers)}"
    runtime.note(f"{shown} servers, {locked} locked")  # stderr: stdout is only the table
    return EXIT_OK


HEADERS = ("Name", "Status", "Type", "Loc", "IP", "Last snap")
# Columns that give way when the table is wider than the screen, in this order, and
# how narrow each may get: an IPv6 address, then a long name.
SHRINK = ((4, 15), (0, 14))


def fit_table(headers: tuple[str, ...], rows: list[list[str]], width: int) -> list[str]:
    """Plain columns two spaces apart, cut with `…` to fit `width`."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for column, narrowest in SHRINK:
        if excess <= 0:
            break
        give = min(excess, max(0, widths[column] - narrowest))
        widths[column] -= give
        excess -= give

    def cell(text: str, w: int) -> str:
        return text if len(text) <= w else text[: w - 1] + "…"

    lines = []
    for row in [list(headers), *rows]:
        cells = (cell(text, w).ljust(w) for text, w in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return lines


def _short_ago(timestamp: float | None, now: float) -> str:
    """`3 days`, `2 hours`, `never`: the Servers view's Last snap, without `ago`."""
    text = ago(timestamp, now)
    return text.removesuffix(" ago")


def _width(runtime: Runtime) -> int:
    """The terminal's width when stdout is one; else the design size, 80."""
    if runtime.out_is_terminal():
        return shutil.get_terminal_size((80, 24)).columns
    return 80


def server_json(fleet: FleetState, server: Server) -> dict:
    lock = fleet.lock(server.id)
    last = fleet.last_snapshot(server.id)
    return {
        "type": "server",
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "locked": lock.held,
        "lock": {
            "actions": [
                {"id": a.id, "command": a.command, "progress": a.progress} for a in lock.actions
            ],
            "unexplained": lock.unexplained,
        },
        "server_type": server.server_type,
        "location": server.location,
        "ipv4": server.ipv4,
        "ipv6": server.ipv6,
        "labels": server.labels,
        "last_snapshot": iso(last),
        "snapshots": fleet.snapshot_count(server.id),
    }
