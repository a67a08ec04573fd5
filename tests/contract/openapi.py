"""Check simulator responses against the vendored Hetzner Cloud OpenAPI subset.

OpenAPI 3.0 schemas are JSON Schema draft 4 plus `nullable`; `nullable` is rewritten
into `anyOf [..., null]` on load.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SUBSET = Path(__file__).with_name("hcloud-openapi-subset.json")


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


@cache
def spec() -> dict[str, Any]:
    return json.loads(SUBSET.read_text())


@cache
def _components() -> dict[str, Any]:
    return {"schemas": _nullable(spec()["components"]["schemas"])}


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    # Literal segments win over `{id}`: /servers/actions before /servers/{id}.
    templates = sorted(spec()["paths"], key=lambda t: (t.count("{"), t))
    return [(re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", t) + "$"), t) for t in templates]


def template_for(path: str) -> str | None:
    path = path.removeprefix("/v1")
    for pattern, template in _templates():
        if pattern.match(path):
            return template
    return None


_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
        raise ValueError(f"not RFC 3339: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    template = template_for(path)
    if template is None:
        raise LookupError(f"{method} {path} is not an operation of the vendored spec")
    operation = spec()["paths"][template].get(method.lower())
    if operation is None:
        raise LookupError(f"{method} {template} is not in the vendored spec")
    responses = operation["responses"]
    response = next(
        (
            responses[key]
            for key in (str(status), f"{str(status)[0]}xx", "default")
            if key in responses
        ),
        None,
    )
    if response is None:
        raise LookupError(f"{method} {template} does not document status {status}")
    content = response.get("content", {}).get("application/json")
    return _nullable(content["schema"]) if content else None


def validate_response(method: str, path: str, status: int, body: bytes | str | Any) -> None:
    """Raise jsonschema.ValidationError (or LookupError) when the response breaks the spec."""
    schema = response_schema(method, path, status)
    if isinstance(body, (bytes, str)):
        if not body:
            if schema is None:
                return
            raise jsonschema.ValidationError(f"{method} {path} {status}: empty body")
        body = json.loads(body)
    if schema is None:
        raise jsonschema.ValidationError(f"{method} {path} {status}: undocumented body")
    _validator(method, template_for(path), status).validate(body)


@cache
def _validator(method: str, template: str, status: int) -> jsonschema.Draft4Validator:
    schema = response_schema(method, template, status)
    return jsonschema.Draft4Validator(
        {"allOf": [schema], "components": _components()}, format_checker=_formats
    )


_VALID: set[tuple[str, str | None, int, str]] = set()
# Injected faults whose answers break the contract on purpose: a cut-off body, a body
# with a key left out, a proxy's HTML page. (`error` answers still have to validate.)
OFF_CONTRACT_FAULTS = ("malformed_json", "strip", "gateway")


class ContractRecorder:
    """A simulator response observer that validates each response and keeps failures.

    A body already found valid for the same operation and status is not checked again
    (refresh loops fetch the same pages over and over)."""

    def __init__(self) -> None:
        self.checked = 0
        self.failures: list[str] = []

    def __call__(self, method: str, path: str, response: Any, fault: Any) -> None:
        if response.drop or (fault is not None and fault.kind in OFF_CONTRACT_FAULTS):
            return  # deliberately not an API answer
        key = (
            method,
            template_for(path),
            response.status,
            hashlib.sha256(response.body).hexdigest(),
        )
        if key in _VALID:
            self.checked += 1
            return
        try:
            validate_response(method, path, response.status, response.body)
            self.checked += 1
            _VALID.add(key)
        except (jsonschema.ValidationError, LookupError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            where = "/".join(str(p) for p in getattr(exc, "absolute_path", []))
            self.failures.append(f"{method} {path} {response.status}: {message} at {where}")
