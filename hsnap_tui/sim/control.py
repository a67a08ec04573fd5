"""The simulator's own endpoints under `/__sim/` (not part of the Hetzner API; no auth).
Tests use the same controls in-process as `Simulator` methods.

`GET /__sim/requests`
    The request log, oldest first: `[{"method", "path", "query", "status", "time",
    "arrived", "correlation_id", "fault"}]`. `time` is when the request was processed
    (for a `latency` fault: when it landed), `arrived` when it reached the simulator;
    `status` is null for a dropped connection, `correlation_id` null for a `gateway`
    answer.
`DELETE /__sim/requests`
    Clears the log.
`POST /__sim/actions` `{"server_id", "command", "seconds", "visible"?, "fail"?}`
    Starts a running action on a server as another tool would (`"visible": false`:
    the server is locked with no listed action; `"fail": {"code", "message"}`: the
    action ends in error).
`POST /__sim/servers/{id}` `{"acpi"?: bool, "shutdown_seconds"?: seconds}`
    How the server's OS takes an ACPI shutdown: `"acpi": false` ignores it (the
    server keeps running); `shutdown_seconds` from the signal to `off` (default 20).
    Answers `{"server": {"id", "acpi", "shutdown_seconds"}}`.
`POST /__sim/faults`
    Injects a fault; 201 `{"fault": {...}}` with the defaults filled in, 400 for an
    unknown kind or field. JSON fields:

    - `kind` (required): `http_500`, `http_503`, `rate_limit`, `latency`, `drop`,
      `malformed_json`, `error`, `gateway`, `strip`, `action_failed`
      (see `hsnap_tui.sim.faults`)
    - `count` (default 1): how many matching requests it hits
    - `path_prefix` (default ""): matches paths that start with it (`/v1/servers`)
    - `method` (default any): `GET`, `POST`, `PUT`, `DELETE`
    - `after` (default false): process the request, then answer with the fault
      (`http_500`, `http_503`, `rate_limit`, `drop`, `malformed_json`, `error`,
      `gateway`)
    - `seconds` (`latency`): how much simulated time later the request lands
    - `status` (`error`: 400-599, default 502; `gateway`: 502, 503 or 504, default 502)
    - `code`, `message` (`error`: default `bad_gateway`/"bad gateway";
      `action_failed`: default `action_failed`/"action failed")
    - `field` (`strip`, required): the top-level JSON key left out of the answer
`DELETE /__sim/faults`
    Clears pending faults.
`GET|POST /__sim/clock` `{"advance": seconds}` and/or `{"speed": x}`
    Moves the simulated clock forward (late requests land on the way) or sets its
    speed; answers `{"now", "timestamp", "speed"}`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from .faults import Fault
from .routes import Response, error_body, json_bytes
from .world import ApiError, iso

if TYPE_CHECKING:
    from .http import Simulator

FAULT_FIELDS = {f.name for f in fields(Fault)}


def handle_control(sim: Simulator, method: str, path: str, body: bytes) -> Response:
    try:
        data = json.loads(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        if path == "/__sim/requests" and method == "GET":
            return Response(200, json_bytes(sim.requests()))
        if path == "/__sim/requests" and method == "DELETE":
            sim.clear_requests()
            return Response(204)
        if path == "/__sim/actions" and method == "POST":
            action = sim.start_action(
                int(data["server_id"]),
                str(data["command"]),
                float(data["seconds"]),
                visible=bool(data.get("visible", True)),
                fail=data.get("fail"),
            )
            return Response(201, json_bytes({"action": action}))
        if path.startswith("/__sim/servers/") and method == "POST":
            unknown = sorted(set(data) - {"acpi", "shutdown_seconds"})
            if unknown:
                raise ValueError(f"unknown server field(s): {', '.join(unknown)}")
            acpi = data.get("acpi")
            seconds = data.get("shutdown_seconds")
            server = sim.set_server(
                int(path.rsplit("/", 1)[1]),
                acpi=None if acpi is None else _bool(acpi, "acpi"),
                shutdown_seconds=None if seconds is None else float(seconds),
            )
            return Response(200, json_bytes({"server": server}))
        if path == "/__sim/faults" and method == "POST":
            fault = sim.add_fault(**_fault_options(data))
            return Response(201, json_bytes({"fault": asdict(fault)}))
        if path == "/__sim/faults" and method == "DELETE":
            sim.clear_faults()
            return Response(204)
        if path == "/__sim/clock" and method in ("GET", "POST"):
            if "speed" in data:
                sim.clock.set_speed(float(data["speed"]))
            if "advance" in data:
                sim.advance(float(data["advance"]))
            now = sim.clock.now()
            return Response(
                200, json_bytes({"now": iso(now), "timestamp": now, "speed": sim.clock.speed})
            )
        return _control_error(404, "not_found", f"no control {method} {path}")
    except ApiError as error:
        return Response(error.status, error_body(error))
    except (KeyError, ValueError, TypeError) as exc:
        return _control_error(400, "invalid_input", f"bad control request: {exc}")


def _fault_options(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - FAULT_FIELDS)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    options: dict[str, Any] = {
        "kind": str(data["kind"]),
        "count": _int(data.get("count", 1), "count"),
        "path_prefix": str(data.get("path_prefix", "")),
        "method": None if data.get("method") is None else str(data["method"]),
        "seconds": float(data.get("seconds", 0)),
        "after": _bool(data.get("after", False), "after"),
    }
    if data.get("status") is not None:
        options["status"] = _int(data["status"], "status")
    for name in ("code", "message", "field"):
        if data.get(name) is not None:
            options[name] = str(data[name])
    return options


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be an integer")
    return int(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _control_error(status: int, code: str, message: str) -> Response:
    return Response(
        status, json_bytes({"error": {"code": code, "message": message, "details": {}}})
    )
