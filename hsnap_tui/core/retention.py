"""Retention plans: keep the newest N snapshots per server, delete the rest — of the
snapshots hsnap-tui manages only. Pure: no network, no clock.

Rules, per source server:
- only images labelled `managed-by=hsnap` (or those another selector picks) are
  considered; others are never touched;
- the newest N available ones are kept;
- beyond those, protected images are kept (the API would refuse anyway) and so are
  images still being created; everything else is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .labels import parse_selector
from .models import Snapshot

MANAGED_SELECTOR = "managed-by=hsnap"  # the label every snapshot hsnap-tui makes carries
DEFAULT_KEEP = 3
MAX_KEEP = 1000


class RetentionError(ValueError):
    pass


def parse_keep(text: str) -> int:
    """How many to keep per server: a whole number from 1 to MAX_KEEP."""
    stripped = text.strip()
    if not stripped:
        raise RetentionError("enter how many snapshots to keep per server (1 or more)")
    if not stripped.isascii() or not stripped.isdigit():
        raise RetentionError(f"{stripped[:20]!r} is not a whole number")
    value = int(stripped)
    if value < 1:
        raise RetentionError("keep at least 1 per server: 0 would delete them all")
    if value > MAX_KEEP:
        raise RetentionError(f"at most {MAX_KEEP}")
    return value


@dataclass(frozen=True)
class ServerPlan:
    server_id: int
    server_name: str
    keep: tuple[Snapshot, ...]
    delete: tuple[Snapshot, ...]
    spared: tuple[tuple[Snapshot, str], ...] = ()  # beyond N but kept, with the reason


@dataclass(frozen=True)
class RetentionPlan:
    keep_newest: int
    servers: tuple[ServerPlan, ...]
    ignored: int = 0  # snapshots the selector does not pick, or without a source server
    selector: str = MANAGED_SELECTOR  # the snapshots the plan is about

    @property
    def delete(self) -> list[Snapshot]:
        return [s for plan in self.servers for s in plan.delete]

    @property
    def keep(self) -> list[Snapshot]:
        return [s for plan in self.servers for s in plan.keep] + [
            s for plan in self.servers for s, _ in plan.spared
        ]

    @property
    def freed_gb(self) -> float:
        return sum(s.image_size_gb or 0.0 for s in self.delete)


def _newest_first(snapshot: Snapshot) -> tuple[float, int]:
    return (-(snapshot.created or 0.0), -snapshot.id)


def plan_retention(
    snapshots: Iterable[Snapshot],
    keep_newest: int,
    selector: str = MANAGED_SELECTOR,
) -> RetentionPlan:
    """Plan over the snapshots `selector` picks (a label selector: LabelError when it
    is not one)."""
    if keep_newest < 1:
        raise RetentionError("keep at least 1 per server")
    picks = parse_selector(selector)
    groups: dict[int, list[Snapshot]] = {}
    names: dict[int, str] = {}
    ignored = 0
    for snapshot in snapshots:
        if not picks.matches(snapshot.labels) or snapshot.server_id is None:
            ignored += 1
            continue
        groups.setdefault(snapshot.server_id, []).append(snapshot)
        names.setdefault(snapshot.server_id, snapshot.server_name or str(snapshot.server_id))
    plans = []
    for server_id, group in groups.items():
        available = sorted((s for s in group if s.status == "available"), key=_newest_first)
        keep = available[:keep_newest]
        delete, spared = [], []
        for snapshot in available[keep_newest:]:
            if snapshot.protected:
                spared.append((snapshot, "protected"))
            else:
                delete.append(snapshot)
        for snapshot in group:
            if snapshot.status != "available":
                spared.append((snapshot, f"status {snapshot.status}"))
        plans.append(
            ServerPlan(server_id, names[server_id], tuple(keep), tuple(delete), tuple(spared))
        )
    plans.sort(key=lambda p: (p.server_name, p.server_id))
    return RetentionPlan(keep_newest, tuple(plans), ignored, selector)


@dataclass(frozen=True)
class PlanChange:
    """How a plan recomputed from fresh data differs from the one the operator saw."""

    now_deleted: tuple[Snapshot, ...]  # would be deleted now, were not before
    now_kept: tuple[Snapshot, ...]  # were to be deleted, are not any more (or are gone)

    def __bool__(self) -> bool:
        return bool(self.now_deleted or self.now_kept)

    def lines(self) -> list[str]:
        def name(s: Snapshot) -> str:
            return f"{s.description or s.id} (#{s.id}, {s.server_name or s.server_id})"

        return [f"+ delete {name(s)}" for s in self.now_deleted] + [
            f"- no longer deleted: {name(s)}" for s in self.now_kept
        ]


def plan_change(before: RetentionPlan, after: RetentionPlan) -> PlanChange:
    old = {s.id: s for s in before.delete}
    new = {s.id: s for s in after.delete}
    return PlanChange(
        tuple(s for i, s in new.items() if i not in old),
        tuple(s for i, s in old.items() if i not in new),
    )
