"""The one door to the Hetzner Cloud API: an hcloud client with the SDK's blocking
retries turned off and a response hook that records rate-limit headers and correlation
IDs in one place."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from hcloud import Client

from hsnap_tui import __version__

from .budget import RequestBudget
from .models import Action, Server, Snapshot

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
PER_PAGE = 50
MAX_IDS_PER_CALL = 50
MAX_PAGES = 1000  # 50,000 items: beyond any real project, a stop for a broken pager
POWER_COMMANDS = frozenset({"shutdown", "poweroff", "poweron"})
SORT_BY_ID = {"sort": "id:asc"}  # items created while a list is paged land at its end


@dataclass(frozen=True)
class RateLimit:
    """What the last response said about the project's rate limit."""

    limit: int
    remaining: int
    reset: float  # Unix time at which the bucket is full again
    server_time: float | None = None  # the response's Date, on the API's clock

    @property
    def fraction_left(self) -> float:
        # a proxy that sends `RateLimit-Limit: 0` must not divide by zero
        return self.remaining / self.limit if self.limit > 0 else 1.0


class ApiMonitor:
    """Thread-safe record of every response: the rate-limit headers (shared by the
    session) and, per thread, the request ID of that thread's last request — so that a
    worker never reports another worker's request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.rate_limit: RateLimit | None = None
        self.requests_sent = 0

    @property
    def last_correlation_id(self) -> str | None:
        """The X-Correlation-Id of this thread's last request (None if it got no answer)."""
        return getattr(self._local, "request_id", None)

    @property
    def last_status(self) -> int | None:
        """The HTTP status of this thread's last request (None if it got no answer)."""
        return getattr(self._local, "status", None)

    def forget(self) -> None:
        """Forget this thread's last answer (before a call that may fail unsent)."""
        self._local.request_id = None
        self._local.status = None

    def sending(self) -> None:
        """A request leaves this thread: forget the last one's answer, count it."""
        self.forget()
        with self._lock:
            self.requests_sent += 1

    def record(self, response: requests.Response) -> None:
        headers = response.headers
        correlation_id = headers.get("X-Correlation-Id")
        self._local.request_id = correlation_id
        self._local.status = response.status_code
        if log.isEnabledFor(logging.DEBUG):
            request = response.request
            path = urlsplit(request.url or "").path if request is not None else "?"
            log.debug(
                "%s %s → %s (request ID %s)",
                request.method if request else "?",
                path,
                response.status_code,
                correlation_id,
            )
        try:
            server_time = parsedate_to_datetime(headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError):
            server_time = None
        try:
            rate = RateLimit(
                limit=int(headers["RateLimit-Limit"]),
                remaining=int(headers["RateLimit-Remaining"]),
                reset=float(headers["RateLimit-Reset"]),
                server_time=server_time,
            )
        except (KeyError, ValueError):
            return  # a proxy or an error page without the headers: keep the last ones
        with self._lock:
            # Answers to concurrent requests arrive in any order: the newest by the
            # API's clock wins, and within one second the lower count (it was sent later)
            last = self.rate_limit
            if (
                last is not None
                and last.server_time is not None
                and rate.server_time is not None
                and (
                    rate.server_time < last.server_time
                    or (rate.server_time == last.server_time and rate.remaining > last.remaining)
                )
            ):
                return
            self.rate_limit = rate

    def reset_wait(self) -> float | None:
        """Seconds from the last response until the bucket is full, on the API's clock."""
        rate = self.rate_limit
        if rate is None or rate.server_time is None:
            return None
        return max(0.0, rate.reset - rate.server_time)


class ReadOnlyError(Exception):
    """A mutating request refused before it was sent: the session is read-only."""


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UnreadableAnswer(ValueError):
    """A success status whose body is not what the API sends."""

    def __init__(self, status: int) -> None:
        super().__init__(f"unreadable answer (HTTP {status})")
        self.status = status


class PagingError(ValueError):
    """The API's pagination does not add up (a proxy, a mock, or an API bug)."""


class HetznerApi:
    """Blocking calls for worker threads. Never used on the UI thread.

    Every request passes one door (`guarded`, on the HTTP session every SDK call goes
    through): it is refused there when the session is read-only, and otherwise charged
    to the session's request budget *before* it is sent, so that timeouts and dropped
    connections count too."""

    def __init__(
        self,
        token: str,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 15.0,
        monitor: ApiMonitor | None = None,
        read_only: bool = False,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.monitor = monitor or ApiMonitor()
        self.read_only = read_only
        self.read_only_reason: str | None = "--read-only" if read_only else None
        self.budget: RequestBudget | None = None
        self._paging_warned: set[tuple[str, str]] = set()
        self.client = Client(
            token=token,
            api_endpoint=self.endpoint,
            application_name="hsnap-tui",
            application_version=__version__,
            timeout=timeout,
        )
        base = self.client._client
        # The SDK would sleep in our worker and retry by itself — including a POST
        # whose outcome is unknown. Retries and backoff are the app's job.
        base._retry_max_retries = 0
        base._session.hooks["response"].append(self._on_response)
        send = base._session.request

        def guarded(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
            if self.read_only and method.upper() not in READ_ONLY_METHODS:
                raise ReadOnlyError(
                    f"read-only session ({self.read_only_reason}): {method.upper()} not sent"
                )
            self.monitor.sending()
            budget = self.budget
            if budget is not None:
                budget.charge(1)
            return send(method, url, *args, **kwargs)

        base._session.request = guarded

    def attach_budget(self, budget: RequestBudget) -> None:
        """Charge every request from now on to `budget` (the session's)."""
        budget._limit = self.rate_limit_value
        self.budget = budget

    def rate_limit_value(self) -> int | None:
        rate = self.monitor.rate_limit
        return rate.limit if rate else None

    def last_request_id(self) -> str | None:
        """The X-Correlation-Id of the calling thread's last request."""
        return self.monitor.last_correlation_id

    def last_status(self) -> int | None:
        return self.monitor.last_status

    def go_read_only(self, reason: str) -> None:
        """From now on nothing mutating is sent (the API said the token may not)."""
        if not self.read_only:
            log.warning("switching to read-only: %s", reason)
        self.read_only = True
        self.read_only_reason = reason

    def __repr__(self) -> str:  # never the token
        return f"HetznerApi(endpoint={self.endpoint!r})"

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.monitor.record(response)
        method = response.request.method if response.request is not None else "GET"
        if response.status_code == 403 and method not in READ_ONLY_METHODS:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                return
            if code in ("token_readonly", "forbidden"):
                # The token may read but not change: stop trying, say so once.
                self.go_read_only(f"the API answered {code} to a change")

    # ---- paging ---------------------------------------------------------------------

    def list_all(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict]:
        """Every item of a paged list, de-duplicated by ID, in the API's order.

        Paging stops when `next_page` is missing or does not advance, when the API
        answers another page than the one asked for, or when more pages were read than
        `total_entries` allows — so a proxy, a mock or an API bug cannot keep it going.
        Offset paging over a list that changes meanwhile can skip an item (one deleted
        on an earlier page shifts the rest); when the count does not add up, the list is
        read once more."""
        for attempt in range(2):
            items, complete = self._list_pages(path, key, dict(params or {}))
            if complete or attempt:
                return list(items.values())
            log.info("%s changed while it was paged; reading it again", path)
        return list(items.values())  # pragma: no cover - the loop always returns

    def _list_pages(
        self, path: str, key: str, params: dict[str, Any]
    ) -> tuple[dict[Any, dict], bool]:
        """(items by ID, whether the read looks complete)."""
        items: dict[Any, dict] = {}
        page, read = 1, 0
        totals: set[int] = set()
        while True:
            body = self.client.request(
                "GET", path, params={**params, "page": page, "per_page": PER_PAGE}
            )
            batch = body.get(key) if isinstance(body, dict) else None
            if not isinstance(batch, list):
                raise PagingError(f"the answer to GET {path} has no {key!r} list")
            read += 1
            known = len(items)
            for item in batch:
                if isinstance(item, dict) and "id" in item:
                    items.setdefault(item["id"], item)
            pagination = ((body.get("meta") or {}).get("pagination")) or {}
            total = pagination.get("total_entries")
            total = total if isinstance(total, int) and total >= 0 else None
            per_page = pagination.get("per_page")
            per_page = per_page if isinstance(per_page, int) and per_page > 0 else PER_PAGE
            if total is not None:
                totals.add(total)
            next_page = pagination.get("next_page")
            answered = pagination.get("page", page)
            if not next_page:
                # a count that changed between pages, or does not add up: it moved
                return items, len(totals) <= 1 and (total is None or len(items) >= total)
            stop = None
            if answered != page or not isinstance(next_page, int) or next_page <= page:
                stop = f"asked for page {page}, got page {answered} with next page {next_page}"
            elif len(items) == known:
                stop = f"page {page} added nothing new"
            elif total is not None and read >= math.ceil(total / per_page) + 1:
                # one page more than the count needs: a list may grow while it is read
                stop = f"more pages than {total} entries at {per_page} a page allow"
            elif total is None and read >= MAX_PAGES:
                stop = f"more than {MAX_PAGES} pages"
            if stop is not None:
                if (path, stop) not in self._paging_warned:  # once, not on every poll
                    self._paging_warned.add((path, stop))
                    log.warning("GET %s: %s; stopping there", path, stop)
                return items, True
            budget = self.budget
            if total is None and budget is not None and budget.available() < -budget.capacity():
                # no count to go by: the budget bounds what a pager can make us read
                raise PagingError(f"GET {path}: more pages than the request budget allows")
            page = next_page

    # ---- reads ----------------------------------------------------------------------

    def servers(self) -> list[Server]:
        """`GET /servers`, every page, 50 per page, oldest first (new ones append)."""
        return [Server.from_json(s) for s in self.list_all("/servers", "servers", SORT_BY_ID)]

    def servers_in_status(self, statuses: list[str]) -> list[Server]:
        """`GET /servers?status=…`, every page: the servers in these states only (the
        few that are off or stopping, for the jobs that wait for that)."""
        params = {"status": list(statuses), **SORT_BY_ID}
        return [Server.from_json(s) for s in self.list_all("/servers", "servers", params)]

    def running_server_actions(self) -> list[Action]:
        """`GET /servers/actions?status=running`, every page: the locks of the fleet."""
        params = {"status": "running", **SORT_BY_ID}
        return [Action.from_json(a) for a in self.list_all("/servers/actions", "actions", params)]

    def snapshots(self, label_selector: str | None = None) -> list[Snapshot]:
        """`GET /images?type=snapshot`, every page. Status is filtered by the caller:
        hcloud's `status=` argument sends the wrong value."""
        params: dict[str, Any] = {"type": "snapshot", **SORT_BY_ID}
        if label_selector:
            params["label_selector"] = label_selector
        return [Snapshot.from_json(i) for i in self.list_all("/images", "images", params)]

    def actions_by_id(self, ids: list[int]) -> list[Action]:
        """`GET /actions?id=…`, up to 50 IDs a call."""
        found: list[Action] = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[start : start + MAX_IDS_PER_CALL]
            body = self.client.request("GET", "/actions", params={"id": chunk})
            found.extend(Action.from_json(a) for a in body["actions"])
        return found

    # ---- snapshots ------------------------------------------------------------------

    def create_image(
        self, server_id: int, description: str, labels: dict[str, str]
    ) -> tuple[Snapshot, Action]:
        """`POST /servers/{id}/actions/create_image`, sent exactly once (no retries).
        A 201 whose body cannot be read raises KeyError/TypeError/ValueError."""
        body = self.client.request(
            "POST",
            f"/servers/{server_id}/actions/create_image",
            json={"type": "snapshot", "description": description, "labels": labels},
        )
        return Snapshot.from_json(body["image"]), Action.from_json(body["action"])

    def power(self, server_id: int, command: str) -> Action:
        """`POST /servers/{id}/actions/{command}` for `shutdown` (ACPI), `poweroff`
        (hard) or `poweron`: the action it started. Sent once (no retries)."""
        if command not in POWER_COMMANDS:
            raise ValueError(f"not a power command: {command}")
        body = self.client.request("POST", f"/servers/{server_id}/actions/{command}")
        return Action.from_json(body["action"])

    def delete_image(self, image_id: int) -> None:
        """`DELETE /images/{id}` (204, no body)."""
        self.client.request("DELETE", f"/images/{image_id}")

    def image(self, image_id: int) -> Snapshot:
        return Snapshot.from_json(self.client.request("GET", f"/images/{image_id}")["image"])

    def action(self, action_id: int) -> Action:
        """`GET /actions/{id}`; APIException `not_found` for an unknown ID."""
        return Action.from_json(self.client.request("GET", f"/actions/{action_id}")["action"])

    def server(self, server_id: int) -> Server:
        return Server.from_json(self.client.request("GET", f"/servers/{server_id}")["server"])

    def server_actions(self, server_id: int, limit: int = 10) -> list[Action]:
        """The server's latest actions, newest first (one request)."""
        body = self.client.request(
            "GET",
            f"/servers/{server_id}/actions",
            params={"sort": "started:desc", "per_page": limit, "page": 1},
        )
        return [Action.from_json(a) for a in body["actions"]]
