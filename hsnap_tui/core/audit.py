"""The audit log: one JSON line per mutating request, in the user's state directory.

Never the token: entries are built from explicit fields only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "hsnap-tui"


def default_audit_path() -> Path:
    """`$HSNAP_STATE_DIR/audit.jsonl`, else the platform's user state directory."""
    base = os.environ.get("HSNAP_STATE_DIR") or platformdirs.user_state_dir(APP_NAME)
    return Path(base) / "audit.jsonl"


@dataclass(frozen=True)
class AuditEntry:
    time: str  # ISO 8601, UTC
    context: str
    endpoint_host: str
    method: str
    path: str
    server: str | None
    outcome: str  # e.g. "201 created", "423 locked", "ambiguous: connection dropped"
    request_id: str | None


class AuditLog:
    """Append-only JSON lines; thread-safe. Keeps this run's entries in memory too."""

    def __init__(
        self,
        path: Path | None,
        *,
        context: str,
        endpoint: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.now = now
        self.context = context
        self.endpoint_host = urlsplit(endpoint).netloc or endpoint
        self.entries: list[AuditEntry] = []
        self._lock = threading.Lock()
        self._load_history()

    def for_context(self, context: str, endpoint: str) -> AuditLog:
        """The same log (file and entries) written under another context."""
        other = AuditLog(None, context=context, endpoint=endpoint, now=self.now)
        other.path, other.entries, other._lock = self.path, self.entries, self._lock
        return other

    def _load_history(self, limit: int = 200) -> None:
        """Earlier runs' entries, so the Activity view shows what was done before."""
        if self.path is None or not self.path.exists():
            return
        try:
            # The file only grows: stream it and keep the tail, not the whole file.
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                lines = deque(handle, maxlen=limit)
        except OSError:
            return
        for line in lines:
            try:
                self.entries.append(AuditEntry(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn or foreign line is skipped, not fatal

    @property
    def count(self) -> int:
        return len(self.entries)

    def record(
        self, method: str, path: str, *, server: str | None, outcome: str, request_id: str | None
    ) -> AuditEntry:
        entry = AuditEntry(
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now())),
            context=self.context,
            endpoint_host=self.endpoint_host,
            method=method,
            path=path,
            server=server,
            outcome=outcome,
            request_id=request_id,
        )
        with self._lock:
            self.entries.append(entry)
            if self.path is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self.path.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(asdict(entry)) + "\n")
                except OSError:
                    pass  # the in-memory log still shows it; a full disk must not stop jobs
        return entry

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        with self._lock:
            return list(self.entries[-limit:])
