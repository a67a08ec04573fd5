"""Plain, immutable views of the API objects the app shows.

The UI never sees hcloud's bound objects (which can make requests when touched); it
gets these, built once per refresh in a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else "\ufffd"


def printable(text: str | None) -> str | None:
    """API text as it may reach a terminal: a control character (ESC, BEL, a newline)
    is shown as its symbol (`␛`, `␇`, `␊`), never sent raw — an escape sequence in a
    description must not retitle or clear the operator's terminal."""
    if text is None or not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_picture, text)


def _printable_fields(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, str):
            clean = printable(value)
            if clean is not value:
                object.__setattr__(obj, name, clean)  # frozen: set once, at creation


def _ts(value: Any) -> float | None:
    """A timestamp from the SDK's datetime, an ISO string, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Server:
    id: int
    name: str
    status: str
    locked: bool
    server_type: str
    location: str
    ipv4: str | None
    ipv6: str | None
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    protection_delete: bool = False
    protection_rebuild: bool = False
    created: float | None = None
    disk_gb: int | None = None
    cores: int | None = None
    memory_gb: float | None = None
    image: str | None = None
    backup_window: str | None = None

    def __post_init__(self) -> None:
        _printable_fields(self, "name", "image")

    @classmethod
    def from_sdk(cls, server: Any) -> Server:
        public_net = server.public_net
        ipv4 = public_net.ipv4.ip if public_net and public_net.ipv4 else None
        ipv6 = public_net.ipv6.ip if public_net and public_net.ipv6 else None
        protection = server.protection or {}
        server_type = server.server_type
        image = server.image
        return cls(
            id=server.id,
            name=server.name,
            status=server.status,
            locked=bool(server.locked),
            server_type=server_type.name if server_type else "?",
            # hcloud >= 2.27 has no `datacenter`; `location` is the source of truth.
            location=server.location.name if server.location else "?",
            ipv4=ipv4,
            ipv6=ipv6,
            labels=dict(server.labels or {}),
            protection_delete=bool(protection.get("delete")),
            protection_rebuild=bool(protection.get("rebuild")),
            created=_ts(server.created),
            disk_gb=server.primary_disk_size,
            cores=getattr(server_type, "cores", None),
            memory_gb=getattr(server_type, "memory", None),
            image=(image.name or image.description) if image else None,
            backup_window=server.backup_window,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Server:
        """From the API's JSON (`GET /servers`); `location` is the source of truth, the
        deprecated `datacenter.location` a fallback for older APIs."""
        public_net = data.get("public_net") or {}
        ipv4 = (public_net.get("ipv4") or {}).get("ip")
        ipv6 = (public_net.get("ipv6") or {}).get("ip")
        protection = data.get("protection") or {}
        server_type = data.get("server_type") or {}
        location = data.get("location") or (data.get("datacenter") or {}).get("location") or {}
        image = data.get("image") or {}
        memory = server_type.get("memory")
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            status=str(data["status"]),
            locked=bool(data.get("locked")),
            server_type=server_type.get("name") or "?",
            location=location.get("name") or "?",
            ipv4=ipv4,
            ipv6=ipv6,
            labels=dict(data.get("labels") or {}),
            protection_delete=bool(protection.get("delete")),
            protection_rebuild=bool(protection.get("rebuild")),
            created=_ts(data.get("created")),
            disk_gb=data.get("primary_disk_size"),
            cores=server_type.get("cores"),
            memory_gb=float(memory) if memory is not None else None,
            image=(image.get("name") or image.get("description")) if image else None,
            backup_window=data.get("backup_window"),
        )

    @property
    def address(self) -> str:
        """IPv4; without one, the server's IPv6 address (`::1` of its /64, as Hetzner
        configures it)."""
        if self.ipv4:
            return self.ipv4
        if self.ipv6:
            network = self.ipv6.split("/")[0]
            return network + "1" if network.endswith("::") else network
        return "-"


@dataclass(frozen=True)
class Action:
    id: int
    command: str
    status: str
    progress: int
    started: float | None
    finished: float | None
    resources: tuple[tuple[str, int], ...]
    error_code: str | None = None
    error_message: str | None = None

    def __post_init__(self) -> None:
        _printable_fields(self, "command", "error_code", "error_message")

    @classmethod
    def from_sdk(cls, action: Any) -> Action:
        error = action.error or {}
        return cls(
            id=action.id,
            command=action.command,
            status=action.status,
            progress=int(action.progress or 0),
            started=_ts(action.started),
            finished=_ts(action.finished),
            resources=tuple((r["type"], int(r["id"])) for r in action.resources or []),
            error_code=error.get("code"),
            error_message=error.get("message"),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        error = data.get("error") or {}
        return cls(
            id=data["id"],
            command=data["command"],
            status=data["status"],
            progress=int(data.get("progress") or 0),
            started=_ts(data.get("started")),
            finished=_ts(data.get("finished")),
            resources=tuple((r["type"], int(r["id"])) for r in data.get("resources") or []),
            error_code=error.get("code"),
            error_message=error.get("message"),
        )

    @property
    def server_ids(self) -> list[int]:
        return [rid for kind, rid in self.resources if kind == "server"]

    @property
    def short_command(self) -> str:
        """`rebuild_server` → `rebuild`: the resource is obvious on a server's row."""
        return self.command.removesuffix("_server")

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class Snapshot:
    id: int
    description: str
    status: str
    image_type: str
    created: float | None
    server_id: int | None
    server_name: str | None
    image_size_gb: float | None
    disk_size_gb: float | None
    protected: bool
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        _printable_fields(self, "description", "server_name")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        created_from = data.get("created_from") or {}
        return cls(
            id=data["id"],
            description=data.get("description") or "",
            status=data["status"],
            image_type=data["type"],
            created=_ts(data.get("created")),
            server_id=created_from.get("id"),
            server_name=created_from.get("name"),
            image_size_gb=data.get("image_size"),
            disk_size_gb=data.get("disk_size"),
            protected=bool((data.get("protection") or {}).get("delete")),
            labels=dict(data.get("labels") or {}),
        )

    @classmethod
    def from_sdk(cls, image: Any) -> Snapshot:
        created_from = image.created_from
        return cls(
            id=image.id,
            description=image.description or "",
            status=image.status,
            image_type=image.type,
            created=_ts(image.created),
            server_id=created_from.id if created_from else None,
            server_name=created_from.name if created_from else None,
            image_size_gb=image.image_size,
            disk_size_gb=image.disk_size,
            protected=bool((image.protection or {}).get("delete")),
            labels=dict(image.labels or {}),
        )
