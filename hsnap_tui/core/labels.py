"""Hetzner label rules and label selectors.

Shared by the simulator (which must answer `label_selector` like the API) and the app
(which filters its table with the same grammar and checks labels before sending them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# A label name or value: up to 63 characters, alphanumeric at both ends, and `-_.`
# inside. Values may also be empty.
_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED_PREFIX = "hetzner.cloud"


class LabelError(ValueError):
    """A label or label selector that the API would refuse."""


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid label key, or None when it is."""
    if not isinstance(key, str) or key == "":
        return "a label key must not be empty"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if prefix == "":
            return f"label key {key!r}: the prefix before '/' is empty"
        if len(prefix) > 253 or not all(_DNS_LABEL.match(part) for part in prefix.split(".")):
            return (
                f"label key {key!r}: the prefix must be a DNS subdomain "
                "(lowercase letters, digits, '-' and '.')"
            )
        if prefix == RESERVED_PREFIX or prefix.endswith("." + RESERVED_PREFIX):
            return f"label key {key!r}: the prefix {RESERVED_PREFIX!r} is reserved"
    if not _NAME.match(name):
        return (
            f"label key {key!r}: the name must be 1-63 characters, start and end with a "
            "letter or digit, with only '-', '_', '.' between"
        )
    return None


def label_value_problem(key: str, value: str) -> str | None:
    """Why `value` is not a valid value for `key`, or None when it is."""
    if not isinstance(value, str):
        return f"label {key!r}: the value must be a string"
    if value == "" or _NAME.match(value):
        return None
    return (
        f"label {key!r}: the value {value!r} must be at most 63 characters, start and end "
        "with a letter or digit, with only '-', '_', '.' between (or be empty)"
    )


def label_problems(labels: object) -> list[str]:
    """Every reason why `labels` would be refused by the API (empty when valid)."""
    if not isinstance(labels, Mapping):
        return ["labels must be an object of string keys to string values"]
    problems = []
    for key, value in labels.items():
        problem = label_key_problem(key) or label_value_problem(key, value)
        if problem:
            problems.append(problem)
    return problems


def parse_labels(text: str) -> dict[str, str]:
    """Parse `k=v, k2=v2` (commas or spaces between) into a label dict.

    Raises LabelError with an operator-readable message for anything the API would refuse.
    """
    labels: dict[str, str] = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq:
            raise LabelError(
                f"{item!r} is not key=value: labels are key=value, separated by commas "
                "(a key has no spaces)"
            )
        if key in labels:
            raise LabelError(f"label {key!r} is given twice")
        labels[key] = value
    problems = label_problems(labels)
    if problems:
        raise LabelError(problems[0])
    return labels


@dataclass(frozen=True)
class Requirement:
    """One expression of a label selector."""

    key: str
    op: str  # "=", "!=", "exists", "!exists", "in", "notin"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        raise AssertionError(self.op)


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: every requirement must match."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(req.matches(labels or {}) for req in self.requirements)


_SET_EXPR = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_EXPR = re.compile(r"^(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")
_KEY_EXPR = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)$")


def _split_expressions(selector: str) -> list[str]:
    """Split on commas that are not inside `( … )`."""
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise LabelError(f"unbalanced ')' in label selector {selector!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise LabelError(f"unbalanced '(' in label selector {selector!r}")
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _checked_key(key: str) -> str:
    problem = label_key_problem(key)
    if problem:
        raise LabelError(problem)
    return key


def _checked_value(key: str, value: str) -> str:
    problem = label_value_problem(key, value)
    if problem:
        raise LabelError(problem)
    return value


def parse_selector(selector: str) -> LabelSelector:
    """Parse a Hetzner label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`,
    `k notin (a,b)`, joined by commas. Raises LabelError when it is malformed."""
    if not isinstance(selector, str) or not selector.strip():
        raise LabelError("the label selector is empty")
    requirements = []
    for expr in _split_expressions(selector):
        if not expr:
            raise LabelError(f"empty expression in label selector {selector!r}")
        if match := _SET_EXPR.match(expr):
            key = _checked_key(match["key"])
            values = tuple(v.strip() for v in match["values"].split(","))
            if values == ("",):
                raise LabelError(f"{expr!r}: the value list is empty")
            for value in values:
                _checked_value(key, value)
            requirements.append(Requirement(key, match["op"], values))
        elif match := _EQ_EXPR.match(expr):
            key = _checked_key(match["key"])
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(key, op, (_checked_value(key, match["value"]),)))
        elif match := _KEY_EXPR.match(expr):
            key = _checked_key(match["key"])
            requirements.append(Requirement(key, "!exists" if match["neg"] else "exists"))
        else:
            raise LabelError(f"cannot read {expr!r} in label selector {selector!r}")
    return LabelSelector(tuple(requirements))


# A filter text with one of these is a label selector; without, a text to search for.
SELECTOR_CHARS = "=!()"


def is_selector(text: str) -> bool:
    """The one rule of every filter bar: a text is a label selector iff it contains `=`,
    `!`, `(` or `)`. Server names are hostnames and descriptions rarely hold these,
    while every useful selector does (`env=prod`, `!team`, `role in (db,web)`) — only
    the bare `key` form (has the label) reads as text."""
    return any(char in text for char in SELECTOR_CHARS)


class RowFilter:
    """What the operator typed in a view's filter bar: a label selector (see
    `is_selector`) or a text searched, case-insensitively, in the texts the view names
    (a server's name; a snapshot's description and server). Build with `parse`."""

    __slots__ = ("_needle", "selector", "text")

    def __init__(self, text: str = "", selector: LabelSelector | None = None) -> None:
        self.text = text
        self.selector = selector
        self._needle = text.lower()

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        """LabelError, with a one-line reason, for a selector that does not parse."""
        text = text.strip()
        if text and is_selector(text):
            return cls(text, parse_selector(text))
        return cls(text)

    def __bool__(self) -> bool:
        return bool(self.text)

    def __repr__(self) -> str:
        return f"RowFilter({self.text!r})"

    def matches(self, labels: Mapping[str, str] | None, *texts: str | None) -> bool:
        if not self.text:
            return True
        if self.selector is not None:
            return self.selector.matches(labels)
        needle = self._needle
        return any(needle in text.lower() for text in texts if text)
