"""The fleet as last seen, and what holds each server's lock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .models import Action, Server, Snapshot


@dataclass(frozen=True)
class LockState:
    """Why a server is locked: the running actions that name it, or only the flag."""

    actions: tuple[Action, ...] = ()
    flagged: bool = False  # `server.locked` with no running action to explain it

    @property
    def held(self) -> bool:
        return bool(self.actions) or self.flagged

    @property
    def unexplained(self) -> bool:
        return self.flagged and not self.actions

    def label(self) -> str:
        """`create_image 42%`, `rebuild 7% +1`, `locked`, or empty."""
        if self.actions:
            first = self.actions[0]
            text = f"{first.short_command} {first.progress}%"
            if len(self.actions) > 1:
                text += f" +{len(self.actions) - 1}"
            return text
        return "locked" if self.flagged else ""


NO_LOCK = LockState()


def derive_locks(
    servers: Iterable[Server],
    running: Iterable[Action],
    explained_at_slow: frozenset[int] = frozenset(),
) -> dict[int, LockState]:
    """Lock state per server from the fast lane's running actions and the slow lane's
    `locked` flags.

    `explained_at_slow` holds the servers that were locked *and* had a running action
    when their `locked` flag was read: once that action is gone, the flag is old news,
    not a mystery lock.
    """
    by_server: dict[int, list[Action]] = {}
    for action in running:
        if action.running:
            for server_id in action.server_ids:
                by_server.setdefault(server_id, []).append(action)
    locks: dict[int, LockState] = {}
    for server in servers:
        actions = tuple(sorted(by_server.get(server.id, ()), key=lambda a: a.id))
        flagged = server.locked and not actions and server.id not in explained_at_slow
        if actions or flagged:
            locks[server.id] = LockState(actions, flagged)
    return locks


class FleetState:
    """One consistent picture of the project, rebuilt after each refresh. Treat as
    immutable: the UI thread reads it while the next one is built in a worker."""

    def __init__(
        self,
        servers: dict[int, Server] | None = None,
        running: tuple[Action, ...] = (),
        snapshots: tuple[Snapshot, ...] = (),
        explained_at_slow: frozenset[int] = frozenset(),
        *,
        servers_request_id: str | None = None,
        servers_read_at: float | None = None,
        _snapshot_index: dict[int, list[Snapshot]] | None = None,
    ) -> None:
        self.servers: dict[int, Server] = servers or {}
        # when the server list was asked for (session clock): its statuses are at least
        # this fresh
        self.servers_read_at = servers_read_at
        # the correlation ID of the server list: what support needs about a locked flag
        self.servers_request_id = servers_request_id
        self.running = tuple(running)
        self.snapshots = tuple(snapshots)
        self.explained_at_slow = explained_at_slow
        self.locks = derive_locks(self.servers.values(), self.running, explained_at_slow)
        if _snapshot_index is None:
            _snapshot_index = {}
            for snap in self.snapshots:
                if snap.server_id is not None:
                    _snapshot_index.setdefault(snap.server_id, []).append(snap)
            for snaps in _snapshot_index.values():
                snaps.sort(key=lambda s: s.created or 0, reverse=True)
        self._snapshots_by_server = _snapshot_index

    def with_running(self, running: tuple[Action, ...]) -> FleetState:
        """The same servers and snapshots with new running actions (a fast-lane poll)."""
        return FleetState(
            self.servers,
            running,
            self.snapshots,
            self.explained_at_slow,
            servers_request_id=self.servers_request_id,
            servers_read_at=self.servers_read_at,
            _snapshot_index=self._snapshots_by_server,
        )

    def with_snapshots(self, snapshots: Iterable[Snapshot]) -> FleetState:
        """The same servers and running actions with another snapshot list."""
        return FleetState(
            self.servers,
            self.running,
            tuple(snapshots),
            self.explained_at_slow,
            servers_request_id=self.servers_request_id,
            servers_read_at=self.servers_read_at,
        )

    def lock(self, server_id: int) -> LockState:
        return self.locks.get(server_id, NO_LOCK)

    def snapshots_of(self, server_id: int) -> list[Snapshot]:
        """The server's snapshots, newest first."""
        return list(self._snapshots_by_server.get(server_id, ()))

    def last_snapshot(self, server_id: int) -> float | None:
        """When the server's newest finished snapshot was taken."""
        for snap in self._snapshots_by_server.get(server_id, ()):
            if snap.status == "available":
                return snap.created
        return None

    def snapshot_count(self, server_id: int) -> int:
        return len(self._snapshots_by_server.get(server_id, ()))

    def running_for(self, server_id: int) -> list[Action]:
        return [a for a in self.running if server_id in a.server_ids]
