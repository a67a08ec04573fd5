"""Injected faults: what each kind is, which request it hits, and how it changes that
request or its answer. The simulator takes at most one fault per request.

Kinds (`FAULT_KINDS`):

- `http_500`, `http_503`, `rate_limit`: an API error answer (`server_error`,
  `unavailable`, `rate_limit_exceeded` with `RateLimit-Remaining: 0`).
- `error`: an API error answer of any `status` (default 502) and `code` (default
  `bad_gateway`), with `message`.
- `gateway`: a proxy in front of the API answers instead: `status` (default 502; 503 or
  504 too) with an HTML body, `Content-Type: text/html`, no `RateLimit-*` headers and no
  `X-Correlation-Id`.
- `drop`: the connection closes with no answer.
- `malformed_json`: a 200 whose JSON is cut off (before), or the real answer cut in half
  (after).
- For all of the above, `after=False` answers *instead of* processing the request
  (nothing changed); `after=True` processes it first and then replaces the answer — the
  ambiguous outcome.
- `latency`: the request lands `seconds` of simulated time late (see `Simulator`).
- `strip`: processed normally, but the top-level key `field` is missing from the JSON
  answer (e.g. `image` of a create_image 201).
- `action_failed`: the next matching POST that starts an action starts it normally (201);
  that action then ends in error (`code`, default `action_failed`; `message`, default
  `action failed`). Requests that start no action (an error, a GET) leave it pending.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

from .routes import Response, TokenBucket, error_response, json_bytes
from .world import ApiError, World

FAULT_KINDS = (
    "http_500",
    "http_503",
    "rate_limit",
    "latency",
    "drop",
    "malformed_json",
    "error",
    "gateway",
    "strip",
    "action_failed",
)
# Answers that are deliberately not what the API's contract says.
OFF_CONTRACT_KINDS = ("malformed_json", "strip", "gateway")

FAULT_ERRORS = {
    "http_500": ApiError(500, "server_error", "internal server error"),
    "http_503": ApiError(503, "unavailable", "service is temporarily unavailable"),
}
# Kinds that answer instead of the API, before processing or (after=True) after it.
REPLACING_KINDS = (
    "http_500",
    "http_503",
    "rate_limit",
    "drop",
    "malformed_json",
    "error",
    "gateway",
)
DEFAULTS = {
    "error": {"status": 502, "code": "bad_gateway", "message": "bad gateway"},
    "gateway": {"status": 502},
    "action_failed": {"code": "action_failed", "message": "action failed"},
}


@dataclass
class Fault:
    kind: str
    count: int = 1
    path_prefix: str = ""
    method: str | None = None
    seconds: float = 0.0
    after: bool = False
    status: int | None = None
    code: str | None = None
    message: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")
        if self.method is not None:
            self.method = self.method.upper()
        defaults = DEFAULTS.get(self.kind, {})
        for name in ("status", "code", "message"):
            if getattr(self, name) is None:
                setattr(self, name, defaults.get(name))
            elif name not in defaults:
                raise ValueError(f"{name} does not apply to a {self.kind} fault")
        if self.kind == "error" and not (
            isinstance(self.status, int) and 400 <= self.status <= 599
        ):
            raise ValueError("an error fault's status must be 400-599")
        if self.kind == "gateway" and self.status not in (502, 503, 504):
            raise ValueError("a gateway fault's status must be 502, 503 or 504")
        if self.kind == "strip":
            if not self.field:
                raise ValueError("a strip fault needs the field to leave out")
        elif self.field is not None:
            raise ValueError(f"field does not apply to a {self.kind} fault")

    def matches(self, method: str, path: str) -> bool:
        if self.kind == "action_failed" and method != "POST":
            return False  # only a POST can start an action
        return (
            self.count > 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method == method)
        )

    @property
    def off_contract(self) -> bool:
        return self.kind in OFF_CONTRACT_KINDS


def take_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """The first fault that matches, counted as used (an `action_failed` fault only once
    it has failed an action: see `after_processing`)."""
    for fault in faults:
        if fault.matches(method, path):
            if fault.kind != "action_failed":
                spend(faults, fault)
            return fault
    return None


def spend(faults: list[Fault], fault: Fault) -> None:
    fault.count -= 1
    if fault.count <= 0 and fault in faults:
        faults.remove(fault)


def before_processing(fault: Fault | None, bucket: TokenBucket) -> Response | None:
    """The answer a fault gives instead of processing the request, if it does."""
    if fault is None or fault.after or fault.kind not in REPLACING_KINDS:
        return None
    if fault.kind == "malformed_json":
        return Response(200, b'{"servers": [{"id": 1, "name": ')
    return _replacement(fault, bucket)


def after_processing(
    fault: Fault | None,
    response: Response,
    *,
    bucket: TokenBucket,
    world: World,
    faults: list[Fault],
) -> Response:
    """The answer once the request has been processed and answered `response`."""
    if fault is None:
        return response
    if fault.kind == "strip":
        return _strip(response, fault.field or "")
    if fault.kind == "action_failed":
        _fail_action(fault, response, world, faults)
        return response
    if not fault.after or fault.kind not in REPLACING_KINDS:
        return response
    if fault.kind == "malformed_json":
        return Response(response.status, response.body[: len(response.body) // 2])
    return _replacement(fault, bucket)


def _replacement(fault: Fault, bucket: TokenBucket) -> Response:
    if fault.kind == "drop":
        return Response(0, drop=True)
    if fault.kind == "rate_limit":
        # As if another tool had just used up the project's budget; the bucket
        # itself is left alone so that the next request can pass.
        return error_response(bucket.exceeded(), {"RateLimit-Remaining": "0"})
    if fault.kind == "error":
        assert fault.status is not None and fault.code is not None
        return error_response(ApiError(fault.status, fault.code, fault.message or ""))
    if fault.kind == "gateway":
        assert fault.status is not None
        return gateway_response(fault.status)
    return error_response(FAULT_ERRORS[fault.kind])


def gateway_response(status: int) -> Response:
    phrase = f"{status} {HTTPStatus(status).phrase}"
    body = (
        f"<html>\r\n<head><title>{phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(status, body.encode(), {"Content-Type": "text/html"}, from_proxy=True)


def _strip(response: Response, field: str) -> Response:
    try:
        data = json.loads(response.body) if response.body else None
    except ValueError:
        return response
    if isinstance(data, dict) and field in data:
        del data[field]
        return Response(response.status, json_bytes(data), response.headers)
    return response


def _fail_action(fault: Fault, response: Response, world: World, faults: list[Fault]) -> None:
    if not 200 <= response.status < 300 or not response.body:
        return
    try:
        action_id = json.loads(response.body)["action"]["id"]
    except (ValueError, KeyError, TypeError):
        return
    action = world.actions.get(action_id)
    if action is None or action.status != "running":
        return
    action.fail_with = {"code": fault.code or "action_failed", "message": fault.message or ""}
    spend(faults, fault)
