"""Retention plans: keep what the keep rules keep per server (the newest N by default;
`core.keep`), delete the rest — of the snapshots hsnap-tui manages only. Pure: no
network, no clock.

Rules, per source server:
- only images labelled `managed-by=hsnap` (or those another selector picks) are
  considered; others are never touched;
- the available ones the keep rules keep are kept (the newest N by default);
- beyond those, protected images are kept (the API would refuse anyway) and so are
  images still being created; everything else is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .keep import KeepRules, keep_reasons, newest_first
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
    spared: tuple[tuple[Snapshot, str], ...] = ()  # kept by no rule but kept: the reason
    reasons: dict[int, tuple[str, ...]] = field(default_factory=dict)  # kept: which rules


@dataclass(frozen=True)
class RetentionPlan:
    rules: KeepRules
    servers: tuple[ServerPlan, ...]
    ignored: int = 0  # snapshots the selector does not pick, or without a source server
    selector: str = MANAGED_SELECTOR  # the snapshots the plan is about
    only_servers: frozenset[int] | None = None  # of these servers only (a policy's)

    @property
    def keep_newest(self) -> int:
        return self.rules.last

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


def plan_retention(
    snapshots: Iterable[Snapshot],
    keep: int | KeepRules,
    selector: str = MANAGED_SELECTOR,
    only_servers: Iterable[int] | None = None,
) -> RetentionPlan:
    """Plan over the snapshots `selector` picks (a label selector: LabelError when it
    is not one) — of `only_servers`, when given — per source server: the keep rules
    (`keep` newest when a number) over its available snapshots; beyond them, protected
    and unfinished ones are kept too."""
    only = frozenset(only_servers) if only_servers is not None else None
    rules = KeepRules(last=keep) if isinstance(keep, int) else keep
    if not rules:
        raise RetentionError("keep at least 1 per server")
    picks = parse_selector(selector)
    groups: dict[int, list[Snapshot]] = {}
    names: dict[int, str] = {}
    ignored = 0
    for snapshot in snapshots:
        if (
            not picks.matches(snapshot.labels)
            or snapshot.server_id is None
            or (only is not None and snapshot.server_id not in only)
        ):
            ignored += 1
            continue
        groups.setdefault(snapshot.server_id, []).append(snapshot)
        names.setdefault(snapshot.server_id, snapshot.server_name or str(snapshot.server_id))
    plans = []
    for server_id, group in groups.items():
        available = newest_first(
            (s for s in group if s.status == "available"), lambda s: s.created, lambda s: s.id
        )
        reasons = keep_reasons(available, rules)
        keep_, delete, spared = [], [], []
        for snapshot in available:
            if snapshot.id in reasons:
                keep_.append(snapshot)
            elif snapshot.protected:
                spared.append((snapshot, "protected"))
            else:
                delete.append(snapshot)
        for snapshot in group:
            if snapshot.status != "available":
                spared.append((snapshot, f"status {snapshot.status}"))
        plans.append(
            ServerPlan(
                server_id,
                names[server_id],
                tuple(keep_),
                tuple(delete),
                tuple(spared),
                {i: tuple(r) for i, r in reasons.items()},
            )
        )
    plans.sort(key=lambda p: (p.server_name, p.server_id))
    return RetentionPlan(rules, tuple(plans), ignored, selector, only)


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
