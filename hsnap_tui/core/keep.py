"""Keep rules with restic's `forget` semantics: `last` keeps the N newest snapshots;
`hourly`, `daily`, `weekly` (ISO weeks), `monthly` and `yearly` each keep the newest
snapshot of each of the N most recent periods that have one (empty periods do not
count). In UTC. A snapshot kept by any rule is kept, and says which rule keeps it
(`daily 2026-11-27`, `weekly 2026-W47`). Pure: no network, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
MAX_COUNT = 100_000


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


PERIODS: dict[str, Callable[[datetime], str]] = {
    "hourly": lambda m: m.strftime("%Y-%m-%d %H:00"),
    "daily": lambda m: m.strftime("%Y-%m-%d"),
    "weekly": _week,
    "monthly": lambda m: m.strftime("%Y-%m"),
    "yearly": lambda m: m.strftime("%Y"),
}


class KeepRuleError(ValueError):
    pass


@dataclass(frozen=True)
class KeepRules:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self) -> None:
        for rule in fields(self):
            value = getattr(self, rule.name)
            if isinstance(value, bool) or not isinstance(value, int):
                shown = str(value).lower() if isinstance(value, bool) else repr(value)
                raise KeepRuleError(f"keep {rule.name}: a whole number, not {shown}")
            if not 0 <= value <= MAX_COUNT:
                raise KeepRuleError(f"keep {rule.name}: from 0 to {MAX_COUNT}, not {value}")

    def __bool__(self) -> bool:
        """At least one rule keeps something (none at all would delete everything)."""
        return any(getattr(self, name) for name in RULES)

    def describe(self) -> str:
        """`last 3, daily 7, weekly 4`"""
        return ", ".join(f"{n} {getattr(self, n)}" for n in RULES if getattr(self, n))


def parse_rules(text: str) -> KeepRules:
    """Rules as an operator types them: `last 3, daily 7, weekly 4` (or `daily=7`); a
    bare number is `last N`. KeepRuleError says what is wrong."""
    stripped = text.strip()
    if not stripped:
        raise KeepRuleError("give a rule: last 3, or daily 7, weekly 4 …")
    if stripped.isascii() and stripped.isdigit():
        stripped = f"last {stripped}"
    tokens = stripped.replace(",", " ").replace("=", " ").split()
    if len(tokens) % 2:
        raise KeepRuleError(f"{stripped!r}: give each rule a number, e.g. daily 7")
    counts: dict[str, int] = {}
    for name, count in zip(tokens[::2], tokens[1::2], strict=True):
        name = name.lower()
        if name not in RULES:
            raise KeepRuleError(f"{name!r} is not a rule: {', '.join(RULES)}")
        if name in counts:
            raise KeepRuleError(f"{name} is given twice")
        if not (count.isascii() and count.isdigit()):
            raise KeepRuleError(f"{name} {count}: a whole number from 0 to {MAX_COUNT}")
        if len(count) > len(str(MAX_COUNT)):
            raise KeepRuleError(f"{name}: from 0 to {MAX_COUNT}")
        counts[name] = int(count)
    rules = KeepRules(**counts)
    if not rules:
        raise KeepRuleError("keep at least 1: all rules 0 would delete everything")
    return rules


def newest_first(items: Iterable, created: Callable, ident: Callable) -> list:
    """Newest first; equal times by the larger ID first (the API's IDs grow)."""
    return sorted(items, key=lambda s: (-(created(s) or 0.0), -ident(s)))


def keep_reasons(
    snapshots: Sequence,
    rules: KeepRules,
    *,
    created: Callable = lambda s: s.created,
    ident: Callable = lambda s: s.id,
) -> dict[int, list[str]]:
    """Which snapshots of one server the rules keep, and why: {id: ["last 3",
    "daily 2026-11-27", …]}. Snapshots without a time are kept by no rule."""
    ordered = newest_first((s for s in snapshots if created(s) is not None), created, ident)
    reasons: dict[int, list[str]] = {}
    left = {name: getattr(rules, name) for name in RULES}
    last_period: dict[str, str | None] = {name: None for name in PERIODS}
    for snapshot in ordered:
        moment = _utc(created(snapshot))
        if left["last"] > 0:
            left["last"] -= 1
            reasons.setdefault(ident(snapshot), []).append(f"last {rules.last}")
        for name, period_of in PERIODS.items():
            if left[name] <= 0:
                continue
            period = period_of(moment)
            if period != last_period[name]:
                last_period[name] = period
                left[name] -= 1
                reasons.setdefault(ident(snapshot), []).append(f"{name} {period}")
    return reasons


__all__ = ["RULES", "KeepRuleError", "KeepRules", "keep_reasons", "newest_first"]
