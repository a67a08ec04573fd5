"""Policy files: what cron should do, per policy — snapshot the servers a selector
picks, then prune the snapshots the policy's labels mark by its keep rules.

    [[policy]]
    name = "prod nightly"
    selector = "env=prod"
    description = "{server}-{date}-{time}"
    labels = { "managed-by" = "hsnap", "policy" = "prod-nightly" }
    if_locked = "wait"          # or "skip"
    shutdown = false
    [policy.keep]
    daily = 7

Parsed with tomllib; every key is checked and unknown ones are refused, each problem
with the file's line. Pure: reads nothing but the text it is given.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .jobs import SHUTDOWN_TIMEOUT, LockPolicy
from .keep import RULES, KeepRuleError, KeepRules
from .labels import LabelError, label_key_problem, label_value_problem, parse_selector
from .naming import (
    DEFAULT_LABELS,
    DEFAULT_TEMPLATE,
    JOB_LABEL,
    TemplateError,
    check_labels,
    check_template,
)

DEFAULT_LOCK_TIMEOUT = 3600.0
POLICY_KEYS = (
    "name",
    "selector",
    "description",
    "labels",
    "if_locked",
    "lock_timeout",
    "shutdown",
    "shutdown_timeout",
    "force_poweroff",
    "keep",
)


class PolicyError(ValueError):
    """A policy file that cannot be used: `path:line: what is wrong`."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class Policy:
    name: str
    selector: str  # the servers to snapshot (by their labels)
    description: str = DEFAULT_TEMPLATE
    labels: dict[str, str] = field(default_factory=dict)  # on every snapshot it makes
    if_locked: LockPolicy = LockPolicy.WAIT
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT  # None: wait as long as it takes
    shutdown: bool = False
    shutdown_timeout: float = SHUTDOWN_TIMEOUT
    force_poweroff: bool = False
    keep: KeepRules | None = None  # None: snapshot only, never prune
    line: int = 0  # where it starts in its file

    @property
    def prune_selector(self) -> str:
        """The snapshots this policy prunes: those carrying all of its labels."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


def slug(name: str) -> str:
    """A label value from a policy name: `prod nightly` → `prod-nightly` (a name with
    nothing a label value may hold: `policy-` and a digest of it)."""
    text = re.sub(r"[^a-zA-Z0-9._-]+", "-", name).strip("-._")[:63].strip("-._")
    return text or "policy-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def load_policies(path: Path | str) -> list[Policy]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(str(path), None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), None, f"cannot be read: {exc}") from None
    return parse_policies(text, str(path))


def parse_policies(text: str, path: str = "policy.toml") -> list[Policy]:
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        if not isinstance(exc, tomllib.TOMLDecodeError):
            # a number beyond Python's digit limit, or nesting beyond the stack
            raise PolicyError(path, None, f"not a usable TOML file: {exc}") from None
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise PolicyError(path, line, f"not valid TOML: {message}") from None
    lines = _Lines(text)
    unknown = sorted(set(data) - {"policy"})
    if unknown:
        key = unknown[0]
        raise PolicyError(path, lines.top_key(key), f"unknown key {key!r}{_hint(key, ['policy'])}")
    tables = data.get("policy")
    if isinstance(tables, dict):
        raise PolicyError(
            path,
            lines.top_key("policy"),
            "write [[policy]] (double brackets: each policy is one of a list), not [policy]",
        )
    if not isinstance(tables, list) or not tables:
        raise PolicyError(path, None, "no [[policy]] in the file")
    policies: list[Policy] = []
    seen: dict[str, int] = {}
    labelled: dict[str, Policy] = {}
    for index, table in enumerate(tables):
        start = lines.policy_start(index)
        if not isinstance(table, dict):
            raise PolicyError(path, start, "each policy is a [[policy]] table")
        policy = _policy(table, index, lines, path, start)
        if policy.name in seen:
            raise PolicyError(
                path,
                lines.key(index, "name"),
                f"policy {policy.name!r} is defined twice (also at line {seen[policy.name]})",
            )
        seen[policy.name] = start or 0
        # a policy prunes the snapshots carrying its labels: two with the same labels
        # would prune each other's
        other = labelled.get(policy.prune_selector)
        if other is not None:
            raise PolicyError(
                path,
                lines.key(index, "labels") if "labels" in table else start,
                f"policy {policy.name!r} has the same labels as policy {other.name!r} (line "
                f"{other.line}): {policy.prune_selector}; give each policy its own, e.g. "
                f'labels = {{ policy = "{slug(policy.name)}-2" }}',
            )
        labelled[policy.prune_selector] = policy
        policies.append(policy)
    return policies


def _policy(
    table: dict[str, Any], index: int, lines: _Lines, path: str, start: int | None
) -> Policy:
    def fail(key: str | None, message: str) -> PolicyError:
        line = lines.key(index, key) if key else start
        label = table.get("name")
        who = f"policy {label!r}" if isinstance(label, str) else f"policy #{index + 1}"
        return PolicyError(path, line or start, f"{who}: {message}")

    for key in table:
        if key not in POLICY_KEYS:
            raise fail(key, f"unknown key {key!r}{_hint(key, POLICY_KEYS)}")
    for required in ("name", "selector"):
        if required not in table:
            raise fail(None, f"{required!r} is required")
    name = _string(table, "name", fail)
    if not name.strip():
        raise fail("name", "'name' must not be empty")
    selector = _string(table, "selector", fail)
    try:
        parse_selector(selector)
    except LabelError as exc:
        raise fail("selector", f"selector {selector!r}: {exc}") from None
    description = _string(table, "description", fail, DEFAULT_TEMPLATE)
    try:
        check_template(description)
    except TemplateError as exc:
        raise fail("description", f"description: {exc}") from None
    labels = _labels(table, name, fail)
    if_locked = _string(table, "if_locked", fail, "wait")
    if if_locked not in ("wait", "skip"):
        raise fail("if_locked", f"if_locked is 'wait' or 'skip', not {if_locked!r}")
    lock_timeout = _number(table, "lock_timeout", fail, DEFAULT_LOCK_TIMEOUT, 0, 7 * 86400)
    shutdown = _bool(table, "shutdown", fail)
    force = _bool(table, "force_poweroff", fail)
    if force and not shutdown:
        raise fail("force_poweroff", "force_poweroff goes with shutdown = true")
    shutdown_timeout = _number(table, "shutdown_timeout", fail, SHUTDOWN_TIMEOUT, 10, 3600)
    keep = None
    if "keep" in table:
        keep = _keep(table["keep"], fail)
    return Policy(
        name=name,
        selector=selector,
        description=description,
        labels=labels,
        if_locked=LockPolicy(if_locked),
        lock_timeout=lock_timeout or None,
        shutdown=shutdown,
        shutdown_timeout=shutdown_timeout,
        force_poweroff=force,
        keep=keep,
        line=start or 0,
    )


def _string(table, key, fail, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise fail(key, f"{key} must be a string, not {_toml_type(value)}")
    return value


def _bool(table, key, fail) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise fail(key, f"{key} is true or false, not {value!r}")
    return value


def _number(table, key, fail, default: float, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(key, f"{key} is a number of seconds, not {value!r}")
    if not low <= value <= high:
        raise fail(key, f"{key}: from {low:g} to {high:g} seconds, not {value:g}")
    return float(value)


def _labels(table, name: str, fail) -> dict[str, str]:
    """Its labels, always with managed-by=hsnap (what every snapshot hsnap-tui makes
    carries, so that the console's plan and `prune` see them)."""
    if "labels" not in table:
        return {**check_labels(DEFAULT_LABELS), "policy": slug(name)}
    labels = table["labels"]
    if not isinstance(labels, dict) or not labels:
        raise fail("labels", 'labels is a table of key = "value", e.g. { policy = "nightly" }')
    for key, value in labels.items():
        if not isinstance(value, str):
            raise fail("labels", f"label {key!r}: the value must be a string")
        if key == JOB_LABEL:
            raise fail("labels", f"{JOB_LABEL} is set by hsnap-tui to tell each job's image apart")
        problem = label_key_problem(key) or label_value_problem(key, value)
        if problem:
            raise fail("labels", f"label {key}={value}: {problem}")
    return {**check_labels(DEFAULT_LABELS), **labels}


def _keep(value: Any, fail) -> KeepRules:
    if not isinstance(value, dict):
        raise fail("keep", "keep is a table: [policy.keep] with last/hourly/daily/… = N")
    for key in value:
        if key not in RULES:
            raise fail(key, f"keep: unknown rule {key!r}{_hint(key, RULES)}")
    for key, count in value.items():
        try:
            KeepRules(**{key: count})
        except KeepRuleError as exc:
            raise fail(key, str(exc)) from None
    rules = KeepRules(**value)
    if not rules:
        raise fail("keep", "keep: give at least one rule above 0 (all 0 would delete everything)")
    return rules


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _toml_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Lines:
    """Where things are in the file, for messages (tomllib does not say)."""

    _POLICY = re.compile(r"^\s*\[\[\s*policy\s*\]\]")
    _TABLE = re.compile(r"^\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [i for i, line in enumerate(self.lines) if self._POLICY.match(line)]

    def policy_start(self, index: int) -> int | None:
        return self.starts[index] + 1 if index < len(self.starts) else None

    def key(self, index: int, key: str) -> int | None:
        """The line of `key = …` inside policy `index` (its subtables included)."""
        if index >= len(self.starts):
            return None
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines)
        pattern = re.compile(
            rf"""^\s*["']?{re.escape(key)}["']?\s*=|[{{,]\s*["']?{re.escape(key)}["']?\s*="""
        )
        for number in range(self.starts[index], end):
            if pattern.search(self.lines[number]):
                return number + 1
        return self.starts[index] + 1

    def top_key(self, key: str) -> int | None:
        pattern = re.compile(rf"""^\s*(\[+\s*)?["']?{re.escape(key)}["']?\s*(=|\])""")
        for number, line in enumerate(self.lines):
            if pattern.search(line):
                return number + 1
        return None


__all__ = ["Policy", "PolicyError", "load_policies", "parse_policies", "slug"]
