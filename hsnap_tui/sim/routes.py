"""The Hetzner Cloud API endpoints: auth, the project's rate limit, the route table and
the handlers that map each request onto `World`. No sockets and no faults here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .world import (
    MAX_ID,
    POWER_ACTIONS,
    ApiError,
    World,
    invalid_input,
    paginate,
    parse_sort,
)

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
class Response:
    """One answer. `drop` closes the connection with no answer at all; `from_proxy` is
    an answer from something in front of the API, without the API's own headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    drop: bool = False
    from_proxy: bool = False


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def error_body(error: ApiError) -> bytes:
    return json_bytes(
        {"error": {"code": error.code, "message": error.message, "details": error.details}}
    )


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(error.status, error_body(error), headers)


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

    def exceeded(self) -> ApiError:
        return ApiError(
            429, "rate_limit_exceeded", f"limit of {self.limit} requests per hour reached"
        )


# ---- query helpers ------------------------------------------------------------------


def _ints(query: dict[str, list[str]], name: str) -> list[int]:
    return [_path_id(raw, name) for raw in query.get(name, [])]


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


Handler = Callable[..., tuple[int, Any]]
Route = tuple[str, re.Pattern[str], Handler]


class Api:
    """The API proper, one request at a time (the caller holds the simulator's lock):
    bearer auth, the token bucket, then the endpoint."""

    def __init__(
        self, world: World, bucket: TokenBucket, token: str, read_only_token: str | None
    ) -> None:
        self.world = world
        self.bucket = bucket
        self.token = token
        # a token with "Read" permission only: GETs pass, changes get 403 token_readonly
        self.read_only_token = read_only_token
        self.routes = self._build_routes()

    def respond(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        authorization: str,
        body: bytes,
        now: float,
    ) -> Response:
        read_only = (
            self.read_only_token is not None and authorization == f"Bearer {self.read_only_token}"
        )
        if authorization != f"Bearer {self.token}" and not read_only:
            return error_response(ApiError(401, "unauthorized", "unable to authenticate"))
        if read_only and method not in ("GET", "HEAD"):
            return error_response(
                ApiError(403, "token_readonly", "the token is only allowed to perform GET requests")
            )
        if not self.bucket.take(now):
            return error_response(self.bucket.exceeded())
        try:
            status, data = self.route(method, path, query, body)
        except ApiError as error:
            return error_response(error)
        return Response(status, b"" if data is None else json_bytes(data))

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if not path.startswith("/v1/"):
            raise ApiError(404, "not_found", "not found")
        sub = path[3:]
        allowed = False
        for route_method, pattern, handler in self.routes:
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
        routes: list[tuple[str, str, Handler]] = [
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
