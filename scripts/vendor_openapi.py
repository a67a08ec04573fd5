"""Vendor the part of the Hetzner Cloud OpenAPI description that the simulator serves.

    python scripts/vendor_openapi.py PATH/TO/hcloud-openapi.json

writes tests/contract/hcloud-openapi-subset.json: the operations below (parameters,
request bodies, responses; no prose) and every component schema they reference. The
test suite reads only that file, never the full description.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OPERATIONS = {
    "/servers": ["get"],
    "/servers/{id}": ["get"],
    "/servers/actions": ["get"],
    "/servers/actions/{id}": ["get"],
    "/servers/{id}/actions": ["get"],
    "/servers/{id}/actions/{action_id}": ["get"],
    "/servers/{id}/actions/create_image": ["post"],
    "/servers/{id}/actions/poweroff": ["post"],
    "/servers/{id}/actions/poweron": ["post"],
    "/servers/{id}/actions/reboot": ["post"],
    "/servers/{id}/actions/shutdown": ["post"],
    "/actions": ["get"],
    "/actions/{id}": ["get"],
    "/images": ["get"],
    "/images/{id}": ["get", "put", "delete"],
    "/images/{id}/actions/change_protection": ["post"],
}
PROSE = ("description", "summary", "examples", "example", "externalDocs", "x-code-samples")
OUT = Path(__file__).resolve().parent.parent / "tests" / "contract" / "hcloud-openapi-subset.json"


def strip_prose(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        return {
            key: strip_prose(value, key == "properties")
            for key, value in node.items()
            if in_properties or key not in PROSE
        }
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    return node


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def main(source: str) -> None:
    spec = json.loads(Path(source).read_text())
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        paths[path] = {m: strip_prose(spec["paths"][path][m]) for m in methods}
    schemas = spec["components"]["schemas"]
    wanted, todo = set(), refs(paths)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo |= refs(schemas[name])
    subset = {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "description": "Subset vendored by scripts/vendor_openapi.py"},
        "paths": paths,
        "components": {"schemas": {n: strip_prose(schemas[n]) for n in sorted(wanted)}},
    }
    OUT.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(paths)} paths, {len(wanted)} schemas)")


if __name__ == "__main__":
    main(sys.argv[1])
