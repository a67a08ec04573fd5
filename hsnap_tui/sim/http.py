"""The simulator on a real HTTP socket: routing, auth, rate limiting, correlation IDs,
injected faults, the request log and the `/__sim/` control endpoints."""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .clock import SimClock
from .fleet import build_world
from .world import (
    MAX_ID,
    POWER_ACTIONS,
    ApiError,
    World,
    invalid_input,
    iso,
    paginate,
    parse_sort,
)

FAULT_KINDS = ("http_500", "http_503", "rate_limit", "latency", "drop", "malformed_json")
SERVER_STATUSES = (
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
)
ACTION_STATUSES = ("running", "success", "error")
IMAGE_TYPES = ("system", "app", "snapshot", "backup")
IMAGE_STATUSES = ("available", "creating", "unavailable")


@dataclass
class Fault:
    kind: str
    count: int = 1
    path_prefix: str = ""
    method: str | None = None
    seconds: float = 0.0
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (
            self.count > 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method == method)
        )


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    drop: bool = False


class TokenBucket:
    """The project's rate limit: `limit` requests, refilled at `rate` per second."""

    def __init__(self, limit: int, rate: float, now: float) -> None:
        self.limit = limit
        self.rate = rate
        self.tokens = float(limit)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.limit, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def headers(self, now: float) -> dict[str, str]:
        self._refill(now)
        missing = self.limit - self.tokens
        reset = math.ceil(now + missing / self.rate) if self.rate > 0 else int(now)
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(int(self.tokens)),
            "RateLimit-Reset": str(int(reset)),
        }


# ---- query helpers ------------------------------------------------------------------


def _ints(query: dict[str, list[str]], name: str) -> list[int]:
    values = []
    for raw in query.get(name, []):
        try:
            value = int(raw)
        except ValueError:
            raise invalid_input(name, f"'{raw}' is not an integer") from None
        if not 1 <= value <= MAX_ID:
            raise invalid_input(name, f"'{raw}' is out of range")
        values.append(value)
    return values


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _enum(query: dict[str, list[str]], name: str, allowed: tuple[str, ...]) -> list[str]:
    values = query.get(name, [])
    for value in values:
        if value not in allowed:
            raise invalid_input(name, f"'{value}' is not one of: {', '.join(allowed)}")
    return values


def _page(query: dict[str, list[str]]) -> tuple[int, int]:
    try:
        page = int(_one(query, "page") or 1)
    except ValueError:
        raise invalid_input("page", "must be an integer") from None
    try:
        per_page = int(_one(query, "per_page") or 25)
    except ValueError:
        raise invalid_input("per_page", "must be an integer") from None
    if page < 1:
        raise invalid_input("page", "must be at least 1")
    if per_page < 1:
        raise invalid_input("per_page", "must be at least 1")
    return page, min(per_page, 50)


def _path_id(raw: str, name: str = "id") -> int:
    try:
        value = int(raw)
    except ValueError:
        raise invalid_input(name, f"'{raw}' is not an integer") from None
    if not 1 <= value <= MAX_ID:
        raise invalid_input(name, f"'{raw}' is out of range")
    return value


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


FAULT_ERRORS = {
    "http_500": ApiError(500, "server_error", "internal server error"),
    "http_503": ApiError(503, "unavailable", "service is temporarily unavailable"),
    "rate_limit": None,  # built per simulator: it names the bucket's limit
}


def _error(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(error.status, _error_body(error), headers)


def _error_body(error: ApiError) -> bytes:
    return _json(
        {"error": {"code": error.code, "message": error.message, "details": error.details}}
    )


Route = tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]


class Simulator:
    """A Hetzner Cloud API on 127.0.0.1. Use as a context manager or `start()`/`stop()`.

    `clock` is shared with the caller, who can stop it (speed 0) and `advance()` it.
    """

    def __init__(
        self,
        *,
        token: str = "sim-token",
        servers: int = 24,
        seed: int = 1,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        start: float | None = None,
        rate_limit: int = 3600,
        refill_per_second: float = 1.0,
        scenario: str = "default",
        read_only_token: str | None = None,
    ) -> None:
        self.clock = clock or SimClock(start=start, speed=speed)
        # a token with "Read" permission only: GETs pass, changes get 403 token_readonly
        self.read_only_token = read_only_token
        self.token = token
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.world: World = build_world(self.clock, servers=servers, seed=seed, scenario=scenario)
        self.bucket = TokenBucket(rate_limit, refill_per_second, self.clock.now())
        self.faults: list[Fault] = []
        self.request_log: list[dict[str, Any]] = []
        self._correlation_rng = random.Random(seed * 7919 + 17)
        self._correlation_ids: set[str] = set()
        # Called with (method, path, response, fault) for every API response: the test
        # suite checks each body against the OpenAPI schemas this way.
        self.response_observers: list[Callable[[str, str, Response, Fault | None], None]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()

    def __repr__(self) -> str:  # the token stays out of reprs
        return f"Simulator(url={self.url if self._httpd else None!r})"

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> Simulator:
        handler = type("Handler", (_Handler,), {"sim": self})
        self._httpd = _Server((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            name="hcloud-sim",
            daemon=True,
            kwargs={"poll_interval": 0.05},
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self.lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:  # kept-alive client connections too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def go_offline(self) -> None:
        """The API becomes unreachable: connections refused, open ones cut."""
        self.stop()

    def go_online(self) -> None:
        """Back on the same port."""
        if self._httpd is None:
            self.start()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API endpoint, as hcloud's `api_endpoint` wants it."""
        return f"{self.base_url}/v1"

    # ---- controls (also served under /__sim/) ----------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in self.request_log]

    def clear_requests(self) -> None:
        with self.lock:
            self.request_log.clear()

    def start_action(
        self,
        server_id: int,
        command: str,
        seconds: float,
        *,
        visible: bool = True,
        fail: dict[str, str] | None = None,
    ) -> dict:
        """Start a running action on a server, as another tool would."""
        with self.lock:
            self.world.tick()
            action = self.world.start_foreign_action(
                server_id, command, seconds, visible=visible, fail=fail
            )
            return action.to_json()

    def add_fault(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str = "",
        *,
        method: str | None = None,
        seconds: float = 0.0,
        after: bool = False,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, count, path_prefix, method, seconds, after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def advance(self, seconds: float) -> float:
        now = self.clock.advance(seconds)
        with self.lock:
            self.world.tick()
        return now

    # ---- request handling -----------------------------------------------------------

    def _new_correlation_id(self) -> str:
        while True:
            value = f"{self._correlation_rng.getrandbits(64):016x}"
            if value not in self._correlation_ids:
                self._correlation_ids.add(value)
                return value

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        split = urlsplit(raw_path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/__sim/"):
            return self._control(method, path, body)

        with self.lock:
            fault = self._take_fault(method, path)
        if fault and fault.kind == "latency":
            time.sleep(fault.seconds)  # a slow network: the caller's timeout decides
        with self.lock:
            now = self.clock.now()
            correlation_id = self._new_correlation_id()
            response = self._respond(method, path, query, headers, body, fault, now)
            base = {
                "Content-Type": "application/json",
                "X-Correlation-Id": correlation_id,
                **self.bucket.headers(now),
            }
            response.headers = {**base, **(response.headers or {})}
            self.request_log.append(
                {
                    "method": method,
                    "path": path,
                    "query": {k: list(v) for k, v in query.items()},
                    "status": None if response.drop else response.status,
                    "time": now,
                    "correlation_id": correlation_id,
                    "fault": fault.kind if fault else None,
                }
            )
        for observer in self.response_observers:
            observer(method, path, response, fault)
        return response

    def _respond(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        fault: Fault | None,
        now: float,
    ) -> Response:
        if fault and not fault.after:
            if fault.kind == "drop":
                return Response(0, drop=True)
            if fault.kind in FAULT_ERRORS:
                return self._fault_error(fault.kind)
            if fault.kind == "malformed_json":
                return Response(200, b'{"servers": [{"id": 1, "name": ')

        auth = headers.get("Authorization", "")
        read_only = self.read_only_token is not None and auth == f"Bearer {self.read_only_token}"
        if auth != f"Bearer {self.token}" and not read_only:
            return _error(ApiError(401, "unauthorized", "unable to authenticate"))
        if read_only and method not in ("GET", "HEAD"):
            return _error(
                ApiError(403, "token_readonly", "the token is only allowed to perform GET requests")
            )
        if not self.bucket.take(now):
            return _error(self._rate_limited())
        try:
            status, data = self._route(method, path, query, body)
            response = Response(status, b"" if data is None else _json(data))
        except ApiError as error:
            response = _error(error)
        if fault and fault.after:
            if fault.kind == "drop":
                response.drop = True
            elif fault.kind in ("http_500", "http_503"):
                response = self._fault_error(fault.kind)
            elif fault.kind == "malformed_json":
                response = Response(response.status, response.body[: len(response.body) // 2])
        return response

    def _rate_limited(self) -> ApiError:
        return ApiError(
            429, "rate_limit_exceeded", f"limit of {self.bucket.limit} requests per hour reached"
        )

    def _fault_error(self, kind: str) -> Response:
        if kind == "rate_limit":
            # As if another tool had just used up the project's budget; the bucket
            # itself is left alone so that the next request can pass.
            return _error(self._rate_limited(), {"RateLimit-Remaining": "0"})
        return _error(FAULT_ERRORS[kind])

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if not path.startswith("/v1/"):
            raise ApiError(404, "not_found", "not found")
        sub = path[3:]
        allowed = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(sub)
            if not match:
                continue
            if route_method != method:
                allowed = True
                continue
            payload: dict[str, Any] = {}
            if method in ("POST", "PUT"):
                payload = _parse_body(body)
            self.world.tick()
            return handler(query=query, body=payload, **match.groupdict())
        if allowed:
            raise ApiError(405, "method_not_allowed", "method not allowed")
        raise ApiError(404, "not_found", "not found")

    # ---- endpoints ------------------------------------------------------------------

    def _build_routes(self) -> list[Route]:
        seg = r"(?P<id>[^/]+)"
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/servers", self._list_servers),
            ("GET", r"/servers/actions", self._list_server_actions),
            ("GET", r"/servers/actions/" + seg, self._get_server_action),
            ("GET", r"/servers/" + seg, self._get_server),
            ("GET", r"/servers/" + seg + r"/actions", self._list_actions_of_server),
            (
                "GET",
                r"/servers/" + seg + r"/actions/(?P<action_id>\d+)",
                self._get_action_of_server,
            ),
            ("POST", r"/servers/" + seg + r"/actions/create_image", self._create_image),
            (
                "POST",
                r"/servers/" + seg + r"/actions/(?P<endpoint>" + "|".join(POWER_ACTIONS) + ")",
                self._power,
            ),
            ("GET", r"/actions", self._get_actions),
            ("GET", r"/actions/" + seg, self._get_action),
            ("GET", r"/images", self._list_images),
            ("GET", r"/images/" + seg, self._get_image),
            ("PUT", r"/images/" + seg, self._update_image),
            ("DELETE", r"/images/" + seg, self._delete_image),
            ("POST", r"/images/" + seg + r"/actions/change_protection", self._image_protection),
        ]
        return [(m, re.compile(p), h) for m, p, h in routes]

    def _list_servers(self, query, body) -> tuple[int, Any]:
        page, per_page = _page(query)
        servers = self.world.list_servers(
            name=_one(query, "name"),
            status=_enum(query, "status", SERVER_STATUSES),
            label_selector=_one(query, "label_selector"),
            sort=parse_sort(query.get("sort", []), "servers"),
        )
        items, meta = paginate(servers, page, per_page)
        return 200, {"servers": [self.world.server_json(s) for s in items], "meta": meta}

    def _get_server(self, query, body, id) -> tuple[int, Any]:
        return 200, {"server": self.world.server_json(self.world.get_server(_path_id(id)))}

    def _actions_page(self, query: dict[str, list[str]], **scope: Any) -> tuple[int, Any]:
        page, per_page = _page(query)
        actions = self.world.list_actions(
            ids=_ints(query, "id"),
            status=_enum(query, "status", ACTION_STATUSES),
            sort=parse_sort(query.get("sort", []), "actions"),
            **scope,
        )
        items, meta = paginate(actions, page, per_page)
        return 200, {"actions": [a.to_json() for a in items], "meta": meta}

    def _list_server_actions(self, query, body) -> tuple[int, Any]:
        return self._actions_page(query, server_scoped=True)

    def _get_server_action(self, query, body, id) -> tuple[int, Any]:
        action = self.world.get_action(_path_id(id), server_scoped=True)
        return 200, {"action": action.to_json()}

    def _list_actions_of_server(self, query, body, id) -> tuple[int, Any]:
        server = self.world.get_server(_path_id(id))
        query = {k: v for k, v in query.items() if k != "id"}
        return self._actions_page(query, server_id=server["id"])

    def _get_action_of_server(self, query, body, id, action_id) -> tuple[int, Any]:
        server = self.world.get_server(_path_id(id))
        action = self.world.get_action(_path_id(action_id, "action_id"), server_id=server["id"])
        return 200, {"action": action.to_json()}

    def _create_image(self, query, body, id) -> tuple[int, Any]:
        image, action = self.world.create_image(_path_id(id), body)
        return 201, {"image": self.world.image_json(image), "action": action.to_json()}

    def _power(self, query, body, id, endpoint) -> tuple[int, Any]:
        assert endpoint in POWER_ACTIONS
        action = self.world.power_action(_path_id(id), endpoint)
        return 201, {"action": action.to_json()}

    def _get_actions(self, query, body) -> tuple[int, Any]:
        ids = _ints(query, "id")
        if not ids:
            # Listing every action of a project was removed from the API on 2025-01-30.
            raise invalid_input("id", "missing required parameter: id")
        actions = self.world.list_actions(
            ids=ids, sort=parse_sort(query.get("sort", []), "actions")
        )
        return 200, {"actions": [a.to_json() for a in actions]}

    def _get_action(self, query, body, id) -> tuple[int, Any]:
        return 200, {"action": self.world.get_action(_path_id(id)).to_json()}

    def _list_images(self, query, body) -> tuple[int, Any]:
        page, per_page = _page(query)
        architecture = _one(query, "architecture")
        if architecture is not None and architecture not in ("x86", "arm"):
            raise invalid_input("architecture", "must be one of: x86, arm")
        include_deprecated = (_one(query, "include_deprecated") or "false").lower()
        if include_deprecated not in ("true", "false"):
            raise invalid_input("include_deprecated", "must be true or false")
        images = self.world.list_images(
            types=_enum(query, "type", IMAGE_TYPES),
            status=_enum(query, "status", IMAGE_STATUSES),
            label_selector=_one(query, "label_selector"),
            name=_one(query, "name"),
            bound_to=_ints(query, "bound_to"),
            architecture=architecture,
            include_deprecated=include_deprecated == "true",
            sort=parse_sort(query.get("sort", []), "images"),
        )
        items, meta = paginate(images, page, per_page)
        return 200, {"images": [self.world.image_json(i) for i in items], "meta": meta}

    def _get_image(self, query, body, id) -> tuple[int, Any]:
        return 200, {"image": self.world.image_json(self.world.get_image(_path_id(id)))}

    def _update_image(self, query, body, id) -> tuple[int, Any]:
        image = self.world.update_image(_path_id(id), body)
        return 200, {"image": self.world.image_json(image)}

    def _delete_image(self, query, body, id) -> tuple[int, Any]:
        self.world.delete_image(_path_id(id))
        return 204, None

    def _image_protection(self, query, body, id) -> tuple[int, Any]:
        action = self.world.change_image_protection(_path_id(id), body)
        return 201, {"action": action.to_json()}

    # ---- /__sim/ --------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            if path == "/__sim/requests" and method == "GET":
                return Response(200, _json(self.requests()))
            if path == "/__sim/requests" and method == "DELETE":
                self.clear_requests()
                return Response(204)
            if path == "/__sim/actions" and method == "POST":
                action = self.start_action(
                    int(data["server_id"]),
                    str(data["command"]),
                    float(data["seconds"]),
                    visible=bool(data.get("visible", True)),
                    fail=data.get("fail"),
                )
                return Response(201, _json({"action": action}))
            if path == "/__sim/faults" and method == "POST":
                fault = self.add_fault(
                    str(data["kind"]),
                    int(data.get("count", 1)),
                    str(data.get("path_prefix", "")),
                    method=data.get("method"),
                    seconds=float(data.get("seconds", 0)),
                    after=bool(data.get("after", False)),
                )
                return Response(201, _json({"fault": asdict(fault)}))
            if path == "/__sim/faults" and method == "DELETE":
                self.clear_faults()
                return Response(204)
            if path == "/__sim/clock" and method in ("GET", "POST"):
                if "speed" in data:
                    self.clock.set_speed(float(data["speed"]))
                if "advance" in data:
                    self.advance(float(data["advance"]))
                now = self.clock.now()
                return Response(
                    200, _json({"now": iso(now), "timestamp": now, "speed": self.clock.speed})
                )
            return Response(
                404,
                _json(
                    {
                        "error": {
                            "code": "not_found",
                            "message": f"no control {method} {path}",
                            "details": {},
                        }
                    }
                ),
            )
        except ApiError as error:
            return Response(error.status, _error_body(error))
        except (KeyError, ValueError, TypeError) as exc:
            return Response(
                400,
                _json(
                    {
                        "error": {
                            "code": "invalid_input",
                            "message": f"bad control request: {exc}",
                            "details": {},
                        }
                    }
                ),
            )


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "json_error", "invalid JSON in request body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "json_error", "the request body must be a JSON object")
    return data


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) or a connection we cut (go_offline) is part
        # of the simulation, not an error to print.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One buffered write per response and no Nagle: otherwise headers and body go out
    # in two segments and the client's delayed ACK adds ~40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = "hcloud-sim"
    sys_version = ""
    sim: Simulator

    def setup(self) -> None:
        super().setup()
        with self.sim.lock:
            self.sim._connections.add(self.connection)

    def finish(self) -> None:
        with self.sim.lock:
            self.sim._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.sim.handle(self.command, self.path, self.headers, body)
        if response.drop:
            # The ambiguous outcome: the connection ends with no answer.
            self.close_connection = True
            return
        self.send_response(
            response.status,
            HTTPStatus(response.status).phrase
            if response.status in HTTPStatus._value2member_map_
            else None,
        )
        for name, value in (response.headers or {}).items():
            self.send_header(name, value)
        if not response.headers or "Content-Type" not in response.headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the simulated clock, as the real one follows real time.
        return formatdate(self.sim.clock.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the log is /__sim/
        pass
