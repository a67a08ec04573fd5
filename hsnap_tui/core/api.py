"""The one door to the Hetzner Cloud API: an hcloud client with the SDK's blocking
retries turned off and a response hook that records rate-limit headers and correlation
IDs in one place."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from hcloud import Client

from hsnap_tui import __version__

from .models import Action, Server, Snapshot

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
PER_PAGE = 50
MAX_IDS_PER_CALL = 50


@dataclass(frozen=True)
class RateLimit:
    """What the last response said about the project's rate limit."""

    limit: int
    remaining: int
    reset: float  # Unix time at which the bucket is full again
    server_time: float | None = None  # the response's Date, on the API's clock

    @property
    def fraction_left(self) -> float:
        return self.remaining / self.limit if self.limit else 1.0


class ApiMonitor:
    """Thread-safe record of every response: rate-limit headers, the last correlation
    ID, and how many requests were sent (the refresh budget charges by it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate_limit: RateLimit | None = None
        self.last_correlation_id: str | None = None
        self.requests_sent = 0

    def record(self, response: requests.Response) -> None:
        headers = response.headers
        if log.isEnabledFor(logging.DEBUG):
            request = response.request
            path = urlsplit(request.url or "").path if request is not None else "?"
            log.debug(
                "%s %s → %s (request ID %s)",
                request.method if request else "?",
                path,
                response.status_code,
                headers.get("X-Correlation-Id"),
            )
        with self._lock:
            self.requests_sent += 1
            correlation_id = headers.get("X-Correlation-Id")
            if correlation_id:
                self.last_correlation_id = correlation_id
            try:
                server_time = parsedate_to_datetime(headers["Date"]).timestamp()
            except (KeyError, TypeError, ValueError):
                server_time = None
            # a proxy or an error page without the headers: keep the last ones
            with contextlib.suppress(KeyError, ValueError):
                self.rate_limit = RateLimit(
                    limit=int(headers["RateLimit-Limit"]),
                    remaining=int(headers["RateLimit-Remaining"]),
                    reset=float(headers["RateLimit-Reset"]),
                    server_time=server_time,
                )

    def reset_wait(self) -> float | None:
        """Seconds from the last response until the bucket is full, on the API's clock."""
        rate = self.rate_limit
        if rate is None or rate.server_time is None:
            return None
        return max(0.0, rate.reset - rate.server_time)


class ReadOnlyError(Exception):
    """A mutating request refused before it was sent: the session is read-only."""


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HetznerApi:
    """Blocking calls for worker threads. Never used on the UI thread.

    `read_only`: no request other than GET/HEAD leaves this object — enforced on the
    HTTP session every SDK call goes through, not only in the UI."""

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
        self.monitor = monitor or ApiMonitor()
        self.read_only = read_only
        self.read_only_reason: str | None = "--read-only" if read_only else None
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
            return send(method, url, *args, **kwargs)

        base._session.request = guarded

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

    # ---- reads ----------------------------------------------------------------------

    def servers(self) -> list[Server]:
        """`GET /servers`, every page, 50 per page."""
        return [Server.from_sdk(s) for s in self.client.servers.get_all()]

    def running_server_actions(self) -> list[Action]:
        """`GET /servers/actions?status=running`, every page: the locks of the fleet."""
        actions = self.client.servers.actions.get_all(status=["running"])
        return [Action.from_sdk(a) for a in actions]

    def snapshots(self) -> list[Snapshot]:
        """`GET /images?type=snapshot`, every page. Status is filtered by the caller:
        hcloud's `status=` argument sends the wrong value."""
        return [Snapshot.from_sdk(i) for i in self.client.images.get_all(type="snapshot")]

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
        """`POST /servers/{id}/actions/create_image`, sent exactly once (no retries)."""
        body = self.client.request(
            "POST",
            f"/servers/{server_id}/actions/create_image",
            json={"type": "snapshot", "description": description, "labels": labels},
        )
        return Snapshot.from_json(body["image"]), Action.from_json(body["action"])

    def delete_image(self, image_id: int) -> None:
        """`DELETE /images/{id}` (204, no body)."""
        self.client.request("DELETE", f"/images/{image_id}")

    def image(self, image_id: int) -> Snapshot:
        return Snapshot.from_json(self.client.request("GET", f"/images/{image_id}")["image"])

    def find_snapshot(self, server_id: int, description: str, since: float) -> Snapshot | None:
        """The snapshot of this server with this description created at or after
        `since` (API clock), newest first; pages only as far back as `since`."""
        page = 1
        while page:
            body = self.client.request(
                "GET",
                "/images",
                params={
                    "type": "snapshot",
                    "sort": "created:desc",
                    "per_page": PER_PAGE,
                    "page": page,
                },
            )
            for data in body["images"]:
                image = Snapshot.from_json(data)
                if image.created is not None and image.created < since:
                    return None
                if image.server_id == server_id and image.description == description:
                    return image
            page = body["meta"]["pagination"]["next_page"]
        return None

    def action(self, action_id: int) -> Action:
        """`GET /actions/{id}`; APIException `not_found` for an unknown ID."""
        return Action.from_json(self.client.request("GET", f"/actions/{action_id}")["action"])

    def server(self, server_id: int) -> Server:
        return Server.from_sdk(self.client.servers.get_by_id(server_id))

    def server_actions(self, server_id: int, limit: int = 10) -> list[Action]:
        """The server's latest actions, newest first (one request)."""
        body = self.client.request(
            "GET",
            f"/servers/{server_id}/actions",
            params={"sort": "started:desc", "per_page": limit, "page": 1},
        )
        return [Action.from_json(a) for a in body["actions"]]
