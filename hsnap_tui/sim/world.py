"""The simulated project: servers, images and actions, and the operations the API offers
on them. No HTTP here; `hsnap_tui.sim.routes` maps requests onto these methods.

Time is lazy: every operation first calls `tick()`, which settles every action whose
duration has passed at the clock's current time, so results depend only on the clock.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hsnap_tui.core.labels import LabelError, label_problems, parse_selector

from .clock import SimClock

MAX_ID = 2**53 - 1


def iso(ts: float | None) -> str | None:
    """RFC 3339 the way the API writes it: `2026-11-26T12:00:00+00:00`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).isoformat()


class ApiError(Exception):
    """An error answer: HTTP status, Hetzner error code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}


def invalid_input(field_name: str, message: str) -> ApiError:
    return ApiError(
        400,
        "invalid_input",
        f"invalid input in field '{field_name}'",
        {"fields": [{"name": field_name, "messages": [message]}]},
    )


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{kind} with ID '{ident}' not found")


@dataclass
class Action:
    id: int
    command: str
    started: float
    duration: float
    resources: list[dict[str, Any]]
    status: str = "running"
    progress: int = 0
    finished: float | None = None
    error: dict[str, str] | None = None
    # Hidden actions lock a server without being listed, as operations of Hetzner's own
    # (migrations, maintenance) do.
    visible: bool = True
    fail_with: dict[str, str] | None = None
    # each server's status when the action started, restored when it fails
    status_before: dict[int, str] = field(default_factory=dict, repr=False)
    on_done: Callable[[Action], None] | None = field(default=None, repr=False)

    @property
    def server_ids(self) -> list[int]:
        return [r["id"] for r in self.resources if r["type"] == "server"]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "status": self.status,
            "progress": self.progress,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "resources": copy.deepcopy(self.resources),
            "error": copy.deepcopy(self.error),
        }


# Which server status a command shows while it runs and after it succeeds.
COMMAND_STATUS = {
    "stop_server": (None, "off"),
    # shutdown_server ends once the ACPI signal is sent; the OS takes the server off
    # later (`Server shutdown` below), or never when it ignores ACPI
    "start_server": ("starting", "running"),
    "reboot_server": (None, "running"),
    "rebuild_server": ("rebuilding", "running"),
    "change_server_type": ("migrating", None),
}

# Mutating endpoint → (command, seconds it takes)
POWER_ACTIONS = {
    "poweroff": ("stop_server", 3),
    "poweron": ("start_server", 8),
    "reboot": ("reboot_server", 12),
    "shutdown": ("shutdown_server", 2),
}

# The power commands that take over from an OS shutting down after ACPI.
TAKES_OVER_SHUTDOWN = frozenset({"stop_server", "start_server", "reboot_server"})
OS_SHUTDOWN_SECONDS = 20.0  # from the ACPI signal to `off`, for an OS that honours it

SORT_FIELDS = {
    "servers": ("id", "name", "created"),
    "images": ("id", "name", "created"),
    "actions": ("id", "command", "status", "started", "finished"),
}


def parse_sort(values: list[str], kind: str) -> list[tuple[str, bool]]:
    keys = []
    for value in values:
        name, _, direction = value.partition(":")
        if name not in SORT_FIELDS[kind] or direction not in ("", "asc", "desc"):
            raise invalid_input("sort", f"invalid sort value '{value}'")
        keys.append((name, direction == "desc"))
    return keys


def sort_items(items: list[Any], keys: list[tuple[str, bool]], get: Callable) -> list[Any]:
    # Stable sorts applied from the last key to the first give a multi-key order;
    # None sorts first ascending, as the API puts unfinished actions.
    items = sorted(items, key=lambda item: get(item, "id"))
    for name, descending in reversed(keys):
        items.sort(
            key=lambda item, name=name: (
                (get(item, name) is not None, get(item, name) or 0)
                if name in ("finished",)
                else get(item, name)
            ),
            reverse=descending,
        )
    return items


def paginate(items: list[Any], page: int, per_page: int) -> tuple[list[Any], dict[str, Any]]:
    total = len(items)
    last_page = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last_page else None,
        "last_page": last_page,
        "total_entries": total,
    }
    return items[start : start + per_page], {"pagination": pagination}


class World:
    """Every object of one simulated project. Not thread-safe by itself: the HTTP layer
    holds `lock` around each request."""

    def __init__(self, clock: SimClock, seed: int = 1) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.servers: dict[int, dict[str, Any]] = {}
        self.images: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, Action] = {}
        self.running: list[int] = []
        self.next_action_id = 1_930_000_000 + self.rng.randrange(1_000_000)
        self.next_image_id = 240_000_000 + self.rng.randrange(1_000_000)
        # Size (GB) of the data on each server's disk, which sets snapshot size and time.
        self.disk_used: dict[int, float] = {}
        # Servers whose OS ignores the ACPI shutdown signal; per-server OS shutdown times.
        self.acpi_ignored: set[int] = set()
        self.os_shutdown_seconds: dict[int, float] = {}
        # server → (when, status): an OS that got the ACPI signal goes `off` then
        self.pending_status: dict[int, tuple[float, str]] = {}

    # ---- time -------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def tick(self) -> float:
        """Settle every action that has run its course by now; update progress."""
        now = self.now()
        for action_id in list(self.running):
            action = self.actions[action_id]
            end = action.started + action.duration
            if now >= end:
                self._finish(action, end)
            else:
                elapsed = max(0.0, now - action.started)
                action.progress = min(99, int(100 * elapsed / action.duration))
        for server_id, (when, status) in list(self.pending_status.items()):
            if now >= when:
                del self.pending_status[server_id]
                server = self.servers.get(server_id)
                if server is not None and server["status"] == "stopping":
                    server["status"] = status
        return now

    def _finish(self, action: Action, when: float) -> None:
        action.finished = when
        self.running.remove(action.id)
        if action.fail_with:
            action.status = "error"
            action.error = dict(action.fail_with)
        else:
            action.status = "success"
            action.progress = 100
        if action.on_done:
            action.on_done(action)
        for server_id in action.server_ids:
            self._refresh_server_state(server_id, action)

    def _refresh_server_state(self, server_id: int, finished: Action | None = None) -> None:
        server = self.servers.get(server_id)
        if server is None:
            return
        running = [self.actions[a] for a in self.running if server_id in self.actions[a].server_ids]
        server["locked"] = bool(running)
        if finished is not None and finished.status == "success":
            after = COMMAND_STATUS.get(finished.command, (None, None))[1]
            if after:
                server["status"] = after
        elif finished is not None and server_id in finished.status_before:
            during = COMMAND_STATUS.get(finished.command, (None, None))[0]
            if during and server["status"] == during:
                server["status"] = finished.status_before[server_id]  # failed: as it was
        for action in running:
            during = COMMAND_STATUS.get(action.command, (None, None))[0]
            if during:
                server["status"] = during

    # ---- actions ----------------------------------------------------------------------

    def new_action(
        self,
        command: str,
        resources: list[dict[str, Any]],
        seconds: float,
        *,
        started: float | None = None,
        visible: bool = True,
        fail_with: dict[str, str] | None = None,
        on_done: Callable[[Action], None] | None = None,
    ) -> Action:
        action = Action(
            id=self.next_action_id,
            command=command,
            started=self.now() if started is None else started,
            duration=max(float(seconds), 0.001),
            resources=resources,
            visible=visible,
            fail_with=fail_with,
            on_done=on_done,
        )
        action.status_before = {
            sid: self.servers[sid]["status"] for sid in action.server_ids if sid in self.servers
        }
        self.next_action_id += 1 + self.rng.randrange(40)
        self.actions[action.id] = action
        self.running.append(action.id)
        for server_id in action.server_ids:
            self._refresh_server_state(server_id)
        return action

    def finished_action(
        self,
        command: str,
        resources: list[dict[str, Any]],
        started: float,
        seconds: float,
        error: dict[str, str] | None = None,
    ) -> Action:
        """A historical action that ended long ago."""
        action = Action(
            id=self.next_action_id,
            command=command,
            started=started,
            duration=seconds,
            resources=resources,
            status="error" if error else "success",
            progress=100 if not error else self.rng.randrange(5, 90),
            finished=started + seconds,
            error=error,
        )
        self.next_action_id += 1 + self.rng.randrange(40)
        self.actions[action.id] = action
        return action

    def visible_actions(self) -> list[Action]:
        return [a for a in self.actions.values() if a.visible]

    def get_action(
        self, action_id: int, *, server_id: int | None = None, server_scoped: bool = False
    ) -> Action:
        action = self.actions.get(action_id)
        if action is None or not action.visible:
            raise not_found("action", action_id)
        if server_scoped and not action.server_ids:
            raise not_found("action", action_id)
        if server_id is not None and server_id not in action.server_ids:
            raise not_found("action", action_id)
        return action

    def list_actions(
        self,
        *,
        ids: list[int] | None = None,
        status: list[str] | None = None,
        sort: list[tuple[str, bool]] | None = None,
        server_id: int | None = None,
        server_scoped: bool = False,
    ) -> list[Action]:
        if status and set(status) == {"running"}:
            # the fast path every lock poll takes: only the running ones, not the history
            actions = [self.actions[i] for i in self.running if self.actions[i].visible]
        else:
            actions = self.visible_actions()
        if server_scoped:
            actions = [a for a in actions if a.server_ids]
        if server_id is not None:
            actions = [a for a in actions if server_id in a.server_ids]
        if ids:
            wanted = set(ids)
            actions = [a for a in actions if a.id in wanted]
        if status:
            actions = [a for a in actions if a.status in status]

        def get(action: Action, name: str) -> Any:
            return getattr(action, name)

        return sort_items(actions, sort or [], get)

    def start_foreign_action(
        self,
        server_id: int,
        command: str,
        seconds: float,
        *,
        visible: bool = True,
        fail: dict[str, str] | None = None,
    ) -> Action:
        """An action started by another tool (Terraform, the Console, a CI job)."""
        server = self.get_server(server_id)
        if server["locked"]:
            raise ApiError(423, "locked", "cannot perform operation because server is locked")
        return self.new_action(
            command,
            [{"id": server_id, "type": "server"}],
            seconds,
            visible=visible,
            fail_with=fail,
        )

    # ---- servers ----------------------------------------------------------------------

    def get_server(self, server_id: int) -> dict[str, Any]:
        server = self.servers.get(server_id)
        if server is None:
            raise not_found("server", server_id)
        return server

    def list_servers(
        self,
        *,
        name: str | None = None,
        status: list[str] | None = None,
        label_selector: str | None = None,
        sort: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        servers = list(self.servers.values())
        if name is not None:
            servers = [s for s in servers if s["name"] == name]
        if status:
            servers = [s for s in servers if s["status"] in status]
        if label_selector is not None:
            selector = _selector(label_selector)
            servers = [s for s in servers if selector.matches(s["labels"])]
        return sort_items(servers, sort or [], lambda s, f: s[f])

    def _ensure_unlocked(self, server: dict[str, Any]) -> None:
        if server["locked"]:
            raise ApiError(423, "locked", "cannot perform operation because server is locked")

    def power_action(self, server_id: int, endpoint: str) -> Action:
        server = self.get_server(server_id)
        self._ensure_unlocked(server)
        command, seconds = POWER_ACTIONS[endpoint]
        if command in TAKES_OVER_SHUTDOWN:
            self.pending_status.pop(server_id, None)
        on_done = None
        if command == "shutdown_server":
            on_done = self._acpi_signal_sent
        return self.new_action(
            command, [{"id": server_id, "type": "server"}], seconds, on_done=on_done
        )

    def _acpi_signal_sent(self, action: Action) -> None:
        """As on Hetzner: the shutdown action ends once the signal is sent; an OS that
        honours it stops the server a while later."""
        for server_id in action.server_ids:
            server = self.servers.get(server_id)
            if action.status != "success" or server is None or server_id in self.acpi_ignored:
                continue
            if server["status"] == "running":
                server["status"] = "stopping"
                delay = self.os_shutdown_seconds.get(server_id, OS_SHUTDOWN_SECONDS)
                self.pending_status[server_id] = ((action.finished or self.now()) + delay, "off")

    def snapshot_seconds(self, server_id: int) -> float:
        """How long a snapshot of this server takes: by the data on its disk."""
        used = self.disk_used.get(server_id, 10.0)
        return round(30 + used * 6)

    def create_image(self, server_id: int, body: dict[str, Any]) -> tuple[dict, Action]:
        server = self.get_server(server_id)
        image_type = body.get("type", "snapshot")
        if image_type not in ("snapshot", "backup"):
            raise invalid_input("type", "must be one of: snapshot, backup")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid_input("description", "must be a string")
        labels = body.get("labels", {})
        if labels is None:
            labels = {}
        problems = label_problems(labels)
        if problems:
            raise invalid_input("labels", problems[0])
        self._ensure_unlocked(server)
        now = self.now()
        image = self.make_image(
            server,
            image_type=image_type,
            description=description,
            labels=labels,
            created=now,
            status="creating",
        )
        used = self.disk_used.get(server_id, 10.0)

        def done(action: Action) -> None:
            if action.status == "success" and image["id"] in self.images:
                image["status"] = "available"
                image["image_size"] = round(used * 0.62, 6)
            elif action.status == "error":
                # as on Hetzner: the image of a failed create_image goes away
                self.images.pop(image["id"], None)

        action = self.new_action(
            "create_image",
            [{"id": server_id, "type": "server"}, {"id": image["id"], "type": "image"}],
            self.snapshot_seconds(server_id),
            on_done=done,
        )
        return image, action

    # ---- images -----------------------------------------------------------------------

    def make_image(
        self,
        server: dict[str, Any] | None,
        *,
        image_type: str,
        description: str | None,
        labels: dict[str, str],
        created: float,
        status: str = "available",
        image_size: float | None = None,
        protected: bool = False,
        created_from: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        image_id = self.next_image_id
        self.next_image_id += 1 + self.rng.randrange(300)
        base = server["image"] if server and server.get("image") else None
        if description is None:
            # The API names unnamed snapshots after their creation time.
            description = datetime.fromtimestamp(int(created), tz=timezone.utc).strftime(
                "snapshot %Y-%m-%d %H:%M:%S"
            )
        image = {
            "id": image_id,
            "type": image_type,
            "status": status,
            "name": None,
            "description": description,
            "image_size": image_size,
            "disk_size": float(server["primary_disk_size"]) if server else 20.0,
            "created": iso(created),
            "created_from": created_from
            or ({"id": server["id"], "name": server["name"]} if server else None),
            "bound_to": server["id"] if server and image_type == "backup" else None,
            "os_flavor": base["os_flavor"] if base else "unknown",
            "os_version": base["os_version"] if base else None,
            "rapid_deploy": False,
            "protection": {"delete": protected},
            "deprecated": None,
            "deleted": None,
            "labels": dict(labels),
            "architecture": server["server_type"]["architecture"] if server else "x86",
        }
        self.images[image_id] = image
        return image

    def get_image(self, image_id: int) -> dict[str, Any]:
        image = self.images.get(image_id)
        if image is None:
            raise not_found("image", image_id)
        return image

    def list_images(
        self,
        *,
        types: list[str] | None = None,
        status: list[str] | None = None,
        label_selector: str | None = None,
        name: str | None = None,
        bound_to: list[int] | None = None,
        architecture: str | None = None,
        include_deprecated: bool = False,
        sort: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        images = list(self.images.values())
        if types:
            images = [i for i in images if i["type"] in types]
        if status:
            images = [i for i in images if i["status"] in status]
        if name is not None:
            images = [i for i in images if i["name"] == name]
        if bound_to:
            images = [i for i in images if i["bound_to"] in bound_to]
        if architecture is not None:
            images = [i for i in images if i["architecture"] == architecture]
        if not include_deprecated:
            images = [i for i in images if i["deprecated"] is None]
        if label_selector is not None:
            selector = _selector(label_selector)
            images = [i for i in images if selector.matches(i["labels"])]

        def get(image: dict[str, Any], name: str) -> Any:
            value = image[name]
            return "" if value is None and name == "name" else value

        return sort_items(images, sort or [], get)

    def update_image(self, image_id: int, body: dict[str, Any]) -> dict[str, Any]:
        image = self.get_image(image_id)
        if image["type"] not in ("snapshot", "backup"):
            raise ApiError(403, "forbidden", "insufficient permissions for this image")
        updates: dict[str, Any] = {}
        if "description" in body:
            if not isinstance(body["description"], str):
                raise invalid_input("description", "must be a string")
            updates["description"] = body["description"]
        if "labels" in body:
            problems = label_problems(body["labels"])
            if problems:
                raise invalid_input("labels", problems[0])
            updates["labels"] = dict(body["labels"])
        if "type" in body:
            if body["type"] != "snapshot":
                raise invalid_input("type", "can only be converted to snapshot")
            updates["type"] = "snapshot"
            updates["bound_to"] = None
        image.update(updates)
        return image

    def delete_image(self, image_id: int) -> None:
        image = self.get_image(image_id)
        if image["type"] not in ("snapshot", "backup"):
            raise ApiError(403, "forbidden", "insufficient permissions for this image")
        if image["protection"]["delete"]:
            raise ApiError(423, "protected", "cannot perform operation because image is protected")
        if image["status"] == "creating":
            raise ApiError(423, "locked", "cannot perform operation because image is locked")
        del self.images[image_id]

    def change_image_protection(self, image_id: int, body: dict[str, Any]) -> Action:
        image = self.get_image(image_id)
        if "delete" in body and not isinstance(body["delete"], bool):
            raise invalid_input("delete", "must be a boolean")
        if image["type"] not in ("snapshot", "backup"):
            raise ApiError(403, "forbidden", "insufficient permissions for this image")
        if "delete" in body:
            image["protection"]["delete"] = body["delete"]
        return self.new_action("change_protection", [{"id": image_id, "type": "image"}], 1)

    # ---- copies for output ------------------------------------------------------------

    def server_json(self, server: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(server)

    def image_json(self, image: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(image)


def _selector(text: str):
    try:
        return parse_selector(text)
    except LabelError as exc:
        raise invalid_input("label_selector", str(exc)) from None
