"""What every headless command shares: where output goes, how time passes and stops
(Ctrl-C), the one-line errors with their exit codes, and the first read of the fleet.

The commands drive a core `Session` in a plain loop — `tick()`, show the result, wait
`next_delay` — the loop the console runs in a worker.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.session import Session

EXIT_OK = 0
EXIT_FAILED = 1  # a job failed or was skipped, a deletion failed, an action ended in error
EXIT_USAGE = 2  # usage and setup: no token, bad selector, unknown server, read-only
EXIT_INTERRUPTED = 130  # Ctrl-C

WIDTH = 80  # human output fits the design size
LOAD_PATIENCE = 120.0  # seconds the first read of the fleet retries an unreachable API
REJECTED = frozenset({"unauthorized", "forbidden"})


def wrapped(first: str, rest: str = "", indent: int = 2) -> str:
    """`first` then `rest`, wrapped at word boundaries to 80 columns, continuation lines
    indented by `indent`."""
    return textwrap.fill(
        first + rest,
        width=WIDTH,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class CommandError(Exception):
    """Ends a command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Runtime:
    """Output streams and time for a command. The defaults are the process's; the tests
    put the simulator's clock here and let waiting advance it."""

    stdout: TextIO | None = None  # None: `sys.stdout` at the moment of writing
    stderr: TextIO | None = None
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    sleep: Callable[[float], object] | None = None  # None: wait on `stop`, interruptibly
    stop: threading.Event = field(default_factory=threading.Event)
    tags: dict[str, Any] = field(default_factory=dict)  # put first in every JSON object

    def tagged(self, **tags: Any) -> Runtime:
        """The same streams, clock and Ctrl-C, with these keys in every JSON object."""
        return replace(self, tags={**self.tags, **tags})

    @property
    def out(self) -> TextIO:
        return self.stdout or sys.stdout

    @property
    def err(self) -> TextIO:
        return self.stderr or sys.stderr

    def wait(self, seconds: float) -> bool:
        """Wait; True when Ctrl-C asked to stop (now or meanwhile)."""
        seconds = max(0.0, seconds)
        if self.sleep is not None:
            if not self.stop.is_set():
                self.sleep(seconds)
            return self.stop.is_set()
        return self.stop.wait(seconds)

    def pause(self, seconds: float) -> None:
        """Wait, whether or not Ctrl-C was pressed (a second one interrupts it)."""
        seconds = max(0.0, seconds)
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            time.sleep(seconds)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A line for the person watching (stderr)."""
        print(text, file=self.err, flush=True)

    def json(self, obj: dict[str, Any]) -> None:
        obj = {**self.tags, **obj}
        print(json.dumps(obj, ensure_ascii=False, sort_keys=False), file=self.out, flush=True)

    def err_is_terminal(self) -> bool:
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())

    def out_is_terminal(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())


@contextmanager
def ctrl_c_stops(runtime: Runtime) -> Iterator[None]:
    """The first Ctrl-C asks the command to stop at the next safe point (a request in
    flight finishes first, so no job is left not knowing what it sent); a second one
    stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if runtime.stop.is_set():
            raise KeyboardInterrupt
        runtime.stop.set()
        # on a terminal the ^C is echoed mid-line: start on a line of our own
        start = "\n" if runtime.err_is_terminal() else ""
        runtime.note(f"{start}hsnap-tui: stopping (Ctrl-C again to quit at once)…")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_fleet(session: Session, runtime: Runtime, patience: float = LOAD_PATIENCE) -> FleetState:
    """Tick until the fleet has been read. A rejected token is a setup error (exit 2);
    an unreachable API is retried with the session's backoff for `patience` seconds,
    then exit 1."""
    started = runtime.clock()
    told = False
    while True:
        result = session.tick()
        read = session.refresher.loaded and session.refresher.last_slow is not None
        if result.ran and result.error is None and result.slow_error is None and read:
            return session.fleet
        failure = _failure(session, result.error or result.slow_error)
        if result.error_code in REJECTED or session.refresher.last_error_code in REJECTED:
            raise CommandError(f"the API rejected the token: {failure}", EXIT_USAGE)
        if runtime.clock() - started >= patience:
            raise CommandError(
                f"could not read the server list for {patience / 60:.0f} minutes: {failure}",
                EXIT_FAILED,
            )
        if failure and not told:
            runtime.note(f"hsnap-tui: {failure}; retrying for up to {patience / 60:.0f} minutes")
            told = True
        if runtime.wait(result.next_delay if failure else min(result.next_delay, 1.0)):
            raise CommandError("interrupted", EXIT_INTERRUPTED)


def _failure(session: Session, error: str | None) -> str | None:
    """What went wrong, without the console's advice: `cannot reach the API (the
    connection failed or was dropped)`, with the request ID when there is one."""
    if error is None:
        return None
    explanation = session.refresher.last_explanation
    if explanation is None:
        return error
    text = explanation.summary
    if explanation.meaning and explanation.meaning.lower() not in text.lower():
        text += f" ({explanation.meaning})"
    if explanation.request_id:
        text += f", request ID {explanation.request_id}"
    return text
