"""`hsnap-tui run POLICY.toml`: per policy, snapshot the servers its selector picks
(through the job engine, as `snapshot` does), then prune the snapshots its labels mark
by its keep rules (as `prune --apply` does). `--dry-run` sends nothing that changes
anything and prints what it would do.

A server whose snapshot did not succeed in this run is not pruned: its old snapshots
are all it has."""

from __future__ import annotations

from hsnap_tui.core.jobs import JobState
from hsnap_tui.core.labels import parse_selector
from hsnap_tui.core.models import Server, Snapshot
from hsnap_tui.core.naming import render_description
from hsnap_tui.core.policy import Policy
from hsnap_tui.core.session import Session

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
    Runtime,
    load_fleet,
    wrapped,
)
from .prune import run_prune
from .snapshot import SnapshotRequest, take_snapshots


def run_policies(
    session: Session,
    runtime: Runtime,
    policies: list[Policy],
    *,
    dry_run: bool,
    as_json: bool,
) -> int:
    if session.read_only and not dry_run:
        raise CommandError(
            f"read-only ({session.api.read_only_reason}): run would change the project; "
            "nothing was sent (--dry-run shows what it would do)"
        )
    fleet = load_fleet(session, runtime)
    started = runtime.clock()
    code = EXIT_OK
    for number, policy in enumerate(policies):
        if runtime.stopped:
            break
        tagged = runtime.tagged(policy=policy.name)
        wanted = parse_selector(policy.selector)
        servers = sorted(
            (s for s in fleet.servers.values() if wanted.matches(s.labels)),
            key=lambda s: (s.name, s.id),
        )
        if not as_json:
            if number:
                runtime.print()
            runtime.print(_header(policy, servers))
        if not servers:
            tagged.note(f"hsnap-tui: policy {policy.name!r}: no server matches {policy.selector}")
            if as_json:
                tagged.json({"type": "no_servers", "selector": policy.selector})
            code = max(code, EXIT_FAILED)
            continue
        coming: list[Snapshot] = []
        if dry_run:
            _would_snapshot(tagged, policy, servers, as_json)
            pruned: set[int] = {s.id for s in servers}
            # plan as the real run will: with the snapshot it makes first
            coming = _to_be_made(policy, servers, runtime.now())
        else:
            request = SnapshotRequest(
                names=(),
                selector=policy.selector,
                everything=False,
                template=policy.description,
                labels=dict(policy.labels),
                policy=policy.if_locked,
                wait=True,
                lock_timeout=policy.lock_timeout,
                shutdown=policy.shutdown,
                force_poweroff=policy.force_poweroff,
                shutdown_timeout=policy.shutdown_timeout,
            )
            snapped = take_snapshots(
                session, tagged, servers, request, as_json, whole_session=False
            )
            if snapped.interrupted:
                return EXIT_INTERRUPTED
            code = max(code, snapped.code)
            pruned = {j.server_id for j in snapped.jobs if j.state == JobState.SUCCEEDED}
            spared = sorted(j.server_name for j in snapped.jobs if j.server_id not in pruned)
            if policy.keep and spared:
                tagged.note(
                    wrapped(
                        "hsnap-tui: not pruned (no new snapshot in this run): ",
                        ", ".join(spared),
                        11,
                    )
                )
        if policy.keep is None:
            continue
        if not pruned:
            continue
        pruned_code = run_prune(
            session,
            tagged,
            selector=policy.prune_selector,
            rules=policy.keep,
            apply=not dry_run,
            as_json=as_json,
            servers=pruned,
            hint=None,
            coming=coming,
            empty=" (none made by this policy yet: its snapshots carry its labels.)",
        )
        if pruned_code == EXIT_INTERRUPTED:
            return EXIT_INTERRUPTED
        code = max(code, pruned_code)
    if runtime.stopped:
        return EXIT_INTERRUPTED
    elapsed = runtime.clock() - started
    if as_json:
        runtime.json(
            {
                "type": "run_summary",
                "policies": len(policies),
                "dry_run": dry_run,
                "requests": session.budget.sent,
                "seconds": round(elapsed, 1),
                "exit_code": code,
            }
        )
    elif dry_run:
        runtime.print()
        runtime.print("Dry run: nothing was changed. Without --dry-run, this is what happens.")
    return code


def _to_be_made(policy: Policy, servers: list[Server], now: float) -> list[Snapshot]:
    """The snapshots the run would make, as a plan sees them (IDs below zero)."""
    return [
        Snapshot(
            id=-index,
            description=render_description(policy.description, server, now),
            status="available",
            image_type="snapshot",
            created=now,
            server_id=server.id,
            server_name=server.name,
            image_size_gb=None,
            disk_size_gb=None,
            protected=False,
            labels=dict(policy.labels),
        )
        for index, server in enumerate(servers, 1)
    ]


def _header(policy: Policy, servers: list[Server]) -> str:
    what = f"{len(servers)} server{'s' if len(servers) != 1 else ''} ({policy.selector})"
    extras = []
    if policy.shutdown:
        extras.append("consistent: shut down first")
    if policy.keep:
        extras.append(f"keep {policy.keep.describe()}")
    tail = f" · {' · '.join(extras)}" if extras else ""
    return wrapped(f"Policy {policy.name}: ", what + tail, 2)


def _would_snapshot(runtime: Runtime, policy: Policy, servers: list[Server], as_json: bool) -> None:
    width = min(30, max(len(s.name) for s in servers))
    for server in servers:
        power = ""
        if policy.shutdown:
            power = "shut down, snapshot, power on" if server.status == "running" else "stays off"
        if as_json:
            runtime.json(
                {
                    "type": "would_snapshot",
                    "server": server.name,
                    "server_id": server.id,
                    "shutdown": policy.shutdown and server.status == "running",
                    "labels": dict(policy.labels),
                }
            )
        else:
            runtime.print(f"  would snapshot {server.name.ljust(width)}  {power}".rstrip())


__all__ = ["run_policies"]
