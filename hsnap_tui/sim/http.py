"""The simulator on a real HTTP socket: its lifecycle, one path through which every request
goes (`Simulator.handle`: faults, late requests, correlation IDs, the request log), and
the socket server. The endpoints are in `routes`, the faults in `faults`, the `/__sim/`
controls in `control`.

A request hit by a `latency` fault lands late: it is held and processed when the
simulated clock reaches its arrival time + `seconds`. Landing happens under `lock`, in
order of due time (ties: arrival order), before any other request is handled and within
`advance()`, which stops the clock at each due time on its way; so outcomes depend only
on the clock and the order of requests, never on thread timing. The connection's handler
waits (wall time) until its request has landed and then answers — unless the client gave
up first (its timeout): then the connection closes, and the request still lands when
due. With a stopped clock (speed 0) a late request therefore always times its client
out and lands exactly when the clock is advanced past its due time; with a running clock
it lands by itself."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .clock import SimClock
from .control import handle_control
from .faults import FAULT_KINDS, Fault, after_processing, before_processing, take_fault
from .fleet import build_world
from .routes import Api, Response, TokenBucket
from .world import OS_SHUTDOWN_SECONDS, World

__all__ = ["FAULT_KINDS", "Fault", "Response", "Simulator", "TokenBucket"]

MAX_WAIT = 300.0  # wall seconds a handler waits at most for its late request to land
POLL = 0.02  # wall seconds between checks while waiting (client still there? due yet?)


@dataclass(eq=False)
class Request:
    """An API request as it arrived; `response` is set once it has been processed."""

    seq: int
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    body: bytes
    fault: Fault | None
    arrived: float
    due: float
    response: Response | None = None


Observer = Callable[[str, str, Response, Fault | None], None]


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
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.world: World = build_world(self.clock, servers=servers, seed=seed, scenario=scenario)
        self.bucket = TokenBucket(rate_limit, refill_per_second, self.clock.now())
        self.api = Api(self.world, self.bucket, token, read_only_token)
        self.faults: list[Fault] = []
        self.request_log: list[dict[str, Any]] = []
        self._correlation_rng = random.Random(seed * 7919 + 17)
        self._correlation_ids: set[str] = set()
        # Called with (method, path, response, fault) for every API response: the test
        # suite checks each body against the OpenAPI schemas this way.
        self.response_observers: list[Observer] = []
        # Late requests (latency faults), and who waits for them.
        self._pending: list[Request] = []
        self._seq = 0
        self._landed = threading.Condition(self.lock)
        self._generation = 0  # bumped by stop(): waiting handlers give up
        self._lander: tuple[int, threading.Thread] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # the token stays out of reprs
        return f"Simulator(url={self.url if self._httpd else None!r})"

    @property
    def token(self) -> str:
        return self.api.token

    @token.setter
    def token(self, value: str) -> None:
        self.api.token = value

    @property
    def read_only_token(self) -> str | None:
        """A token with "Read" permission only: GETs pass, changes get 403."""
        return self.api.read_only_token

    @read_only_token.setter
    def read_only_token(self, value: str | None) -> None:
        self.api.read_only_token = value

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
        with self.lock:
            if self._pending:
                self._ensure_lander()
        return self

    def stop(self) -> None:
        with self._landed:  # handlers waiting for late requests give up
            self._generation += 1
            self._landed.notify_all()
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
        """The API becomes unreachable: connections refused, open ones cut. Requests
        already on their way still land."""
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
        self._settle()
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
        self._settle()
        with self.lock:
            self.world.tick()
            action = self.world.start_foreign_action(
                server_id, command, seconds, visible=visible, fail=fail
            )
            return action.to_json()

    def set_server(
        self,
        server_id: int,
        *,
        acpi: bool | None = None,
        shutdown_seconds: float | None = None,
    ) -> dict:
        """How a server's OS behaves: `acpi=False` ignores the ACPI shutdown signal;
        `shutdown_seconds`: how long it takes from the signal to `off`."""
        self._settle()
        with self.lock:
            world = self.world
            world.get_server(server_id)  # 404 for an unknown server
            if acpi is not None:
                if acpi:
                    world.acpi_ignored.discard(server_id)
                else:
                    world.acpi_ignored.add(server_id)
            if shutdown_seconds is not None:
                if shutdown_seconds < 0:
                    raise ValueError("shutdown_seconds must not be negative")
                world.os_shutdown_seconds[server_id] = float(shutdown_seconds)
            return {
                "id": server_id,
                "acpi": server_id not in world.acpi_ignored,
                "shutdown_seconds": world.os_shutdown_seconds.get(server_id, OS_SHUTDOWN_SECONDS),
            }

    def add_fault(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str = "",
        *,
        method: str | None = None,
        seconds: float = 0.0,
        after: bool = False,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        field: str | None = None,
    ) -> Fault:
        """Inject a fault (see `hsnap_tui.sim.faults`); ValueError for a bad one."""
        fault = Fault(
            kind,
            count,
            path_prefix,
            method,
            seconds,
            after,
            status=status,
            code=code,
            message=message,
            field=field,
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by `seconds`. Late requests due on the way land
        at their due time, in order."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        landed: list[Request] = []
        with self.lock:
            target = self.clock.now() + seconds
            while self._pending:
                first = min(self._pending, key=lambda r: (r.due, r.seq))
                if first.due > target:
                    break
                now = self.clock.now()
                if first.due > now:
                    self.clock.advance(first.due - now)
                landed += self._land_due()
            if not landed:
                self.clock.advance(seconds)  # exactly, as the caller asked
            elif target > (now := self.clock.now()):
                self.clock.advance(target - now)
            self.world.tick()
            now = self.clock.now()
        self._observe(landed)
        return now

    def pending(self) -> list[dict[str, Any]]:
        """Late requests that have not landed yet: method, path, arrived, due."""
        with self.lock:
            return [
                {"method": r.method, "path": r.path, "arrived": r.arrived, "due": r.due}
                for r in sorted(self._pending, key=lambda r: (r.due, r.seq))
            ]

    # ---- request handling -----------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: Any,
        body: bytes,
        *,
        gone: Callable[[], bool] | None = None,
    ) -> Response:
        """Answer one request. `gone()` tells whether the client has hung up; a late
        request's answer waits for its landing only while the client is there."""
        split = urlsplit(raw_path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/__sim/"):
            self._settle()
            return handle_control(self, method, path, body)

        with self.lock:
            landed = self._land_due()
            fault = take_fault(self.faults, method, path)
            now = self.clock.now()
            self._seq += 1
            request = Request(
                seq=self._seq,
                method=method,
                path=path,
                query=query,
                authorization=headers.get("Authorization", "") if headers is not None else "",
                body=body,
                fault=fault,
                arrived=now,
                due=now,
            )
            if fault is not None and fault.kind == "latency":
                request.due = now + fault.seconds
                self._pending.append(request)
                landed += self._land_due()  # zero seconds: at once
                if request.response is None:
                    self._ensure_lander()
            else:
                self._process(request, now)
                landed.append(request)
        self._observe(landed)
        if request.response is None and not self._await(request, gone):
            return Response(0, drop=True)  # the client left (or we stopped) first
        assert request.response is not None
        return request.response

    def _process(self, request: Request, now: float) -> None:
        """Process a request at `now` (lock held): answer, headers, log entry."""
        fault = request.fault
        uses = fault.count if fault is not None else 0
        response = before_processing(fault, self.bucket)
        if response is None:
            response = self.api.respond(
                request.method,
                request.path,
                request.query,
                request.authorization,
                request.body,
                now,
            )
            response = after_processing(
                fault, response, bucket=self.bucket, world=self.world, faults=self.faults
            )
        correlation_id = None
        if not response.from_proxy:
            correlation_id = self._new_correlation_id()
            response.headers = {
                "Content-Type": "application/json",
                "X-Correlation-Id": correlation_id,
                **self.bucket.headers(now),
                **(response.headers or {}),
            }
        applied = fault is not None and (fault.kind != "action_failed" or fault.count < uses)
        request.response = response
        self.request_log.append(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: list(v) for k, v in request.query.items()},
                "status": None if response.drop else response.status,
                "time": now,
                "arrived": request.arrived,
                "correlation_id": correlation_id,
                "fault": fault.kind if applied and fault is not None else None,
            }
        )

    def _land_due(self) -> list[Request]:
        """Process every late request that is due by now (lock held)."""
        if not self._pending:
            return []
        now = self.clock.now()
        due = sorted((r for r in self._pending if r.due <= now), key=lambda r: (r.due, r.seq))
        for request in due:
            self._pending.remove(request)
            self._process(request, now)
        if due:
            self._landed.notify_all()
        return due

    def _settle(self) -> None:
        with self.lock:
            landed = self._land_due()
        self._observe(landed)

    def _observe(self, landed: list[Request]) -> None:
        for request in landed:
            assert request.response is not None
            for observer in self.response_observers:
                observer(request.method, request.path, request.response, request.fault)

    def _await(self, request: Request, gone: Callable[[], bool] | None) -> bool:
        """Wait (wall time) until `request` has landed. False when the client hung up,
        the simulator stopped or MAX_WAIT passed first; the request lands anyway."""
        deadline = time.monotonic() + MAX_WAIT
        with self.lock:
            generation = self._generation
        while True:
            with self._landed:
                landed = self._land_due()
                if request.response is None and self._generation == generation:
                    self._landed.wait(POLL)
                    landed += self._land_due()
                answered = request.response is not None
                stopped = self._generation != generation
            self._observe(landed)
            if answered:
                return True
            if stopped or time.monotonic() >= deadline or (gone is not None and gone()):
                return False

    def _ensure_lander(self) -> None:
        """A thread that lands late requests when due while the clock runs by itself,
        also those whose client has gone (lock held). One per generation."""
        if self._lander is None or self._lander[0] != self._generation:
            thread = threading.Thread(
                target=self._land_loop,
                args=(self._generation,),
                name="hcloud-sim-lander",
                daemon=True,
            )
            self._lander = (self._generation, thread)
            thread.start()

    def _land_loop(self, generation: int) -> None:
        while True:
            with self._landed:
                if self._generation != generation:
                    return  # stopped; start() makes a new one if needed
                if not self._pending:
                    self._lander = None
                    return
                landed = self._land_due()
                if not landed:
                    self._landed.wait(POLL if self.clock.speed > 0 else 0.2)
            self._observe(landed)

    def _new_correlation_id(self) -> str:
        while True:
            value = f"{self._correlation_rng.getrandbits(64):016x}"
            if value not in self._correlation_ids:
                self._correlation_ids.add(value)
                return value


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

    def _client_gone(self) -> bool:
        """The client closed its end (it gave up waiting) or the connection broke."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.sim.handle(
            self.command, self.path, self.headers, body, gone=self._client_gone
        )
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
