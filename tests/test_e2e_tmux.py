"""End to end: the real `hsnap-tui --demo` in tmux, read off the screen like a user.

These wait for the app to draw (polling the pane with a deadline), never for a fixed
time. Skipped where tmux is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, command: str, width: int = 100, height: int = 30) -> None:
        self.name = f"hsnap-e2e-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "TMUX"))}
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                f"{command}; echo EXITED:$?; sleep 30",
            ],
            check=True,
            env=env,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def hsnap_command() -> str:
    """The installed console script, as a user runs it (python -m as a fallback)."""
    script = os.path.join(os.path.dirname(sys.executable), "hsnap-tui")
    return script if os.path.exists(script) else f"{sys.executable} -m hsnap_tui"


@pytest.fixture
def demo():
    session = Tmux(f"{hsnap_command()} --demo", 100, 30)
    yield session
    session.close()


def test_demo_shows_the_fleet_with_its_locks_and_quits(demo):
    screen = demo.wait_for("DEMO", "updated", "db-prod-01", "create_image")
    assert "Servers 24/24" in screen
    assert "🔒 create_image" in screen
    # the rebuild sits further down: sort by lock brings both locks to the top
    demo.keys("o", "o")
    screen = demo.wait_for("sort: lock", "rebuild")
    rows = [line for line in screen.splitlines() if "🔒" in line]
    assert len(rows) == 2
    demo.keys("enter")
    screen = demo.wait_for("Running actions", "Last 10 actions")
    demo.keys("Escape")
    demo.wait_for("sort: lock")
    demo.keys("q")
    screen = demo.wait_for("EXITED:0")
    assert "Traceback" not in screen


def test_demo_snapshot_runs_to_the_end():
    # a faster simulated clock, so that a snapshot of minutes takes seconds
    session = Tmux(f"{hsnap_command()} --demo --demo-speed 40", 100, 30)
    try:
        session.wait_for("DEMO", "api-prod-01")
        session.keys("s")
        session.wait_for("Snapshot 1 server", "wait for the lock to clear")
        session.keys("Enter")
        screen = session.wait_for("Snapshot jobs · 1 active", "running")
        assert "api-prod-01" in screen
        session.wait_for("done", timeout=90)  # the notification of the finished job
        session.keys("3")
        screen = session.wait_for("Snapshot jobs of this run", "succeeded", "201 created")
        assert "api-prod-01" in screen
        session.keys("q")
        session.wait_for("EXITED:0")  # nothing active: quits without asking
    finally:
        session.close()


def test_the_original_story_locked_server_inspected_then_snapshotted():
    """Another tool (the demo's rebuild) holds web-prod-01. The operator snapshots it,
    sees why it waits, inspects the blocking action, and the snapshot succeeds once the
    lock clears."""
    session = Tmux(f"{hsnap_command()} --demo --demo-speed 20", 110, 32)
    try:
        session.wait_for("DEMO", "web-prod-01", "rebuild")
        session.keys("/")
        session.wait_for("name or label selector")
        session.keys("web-prod-01", "Enter")
        session.wait_for("filter: web-prod-01")
        session.keys("s")
        session.wait_for("Snapshot 1 server", "locked now")
        session.keys("Enter")
        screen = session.wait_for("waiting: #", "rebuild")
        assert "Snapshot jobs · 1 active" in screen
        session.keys("i")
        screen = session.wait_for("rebuild_server", "Resources", "web-prod-01", "following live")
        assert "running" in screen
        session.keys("Escape")
        session.wait_for("done", timeout=120)  # lock cleared, snapshot sent and finished
        session.keys("3")
        screen = session.wait_for("succeeded", "201 created")
        assert "web-prod-01" in screen
    finally:
        session.close()
