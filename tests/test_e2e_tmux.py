"""End to end: the real `hsnap-tui --demo` in tmux, read off the screen like a user.

Isolation: every session runs on its own tmux server (`tmux -L <unique name>`, no config
file), killed at the end, so the user's tmux server is never touched; the app runs with
HOME, the XDG directories and the hsnap state and log directories in the test's tmp_path,
without any token variable, and with TERM=xterm-256color.

Timing: these wait for the app to draw (polling the pane with a deadline), never for a
fixed time. A key is only sent once the screen proves the app will act on it: the view
that binds it is drawn with its data, and the footer lists the key (Textual's footer
shows the bindings of the focused widget and its screen, and drops the ones a focused
text field would swallow). Skipped where tmux is not installed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

REPO = Path(__file__).resolve().parents[1]
TERM = "xterm-256color"
# The footer of the Servers view while its table has the focus. While the filter field
# has it, the footer drops `s Snapshot` (the field would take the `s`).
SERVERS_KEYS = "s Snapshot"


# What the app may inherit from the test process. Everything else is left out: tokens
# (HCLOUD_*, HERTZNER_API_KEY), the user's tmux, XDG and hsnap settings, and what
# describes the test runner's terminal rather than the pane. Above all COLUMNS and
# LINES: pytest imports readline, which exports COLUMNS=80 LINES=24 (or the size of the
# terminal pytest runs in) into the environment that pytest-xdist workers inherit, and
# Textual takes them over the pane's real size: under `pytest -n 2` the app drew an
# 80x24 screen in a 100x30 pane and rows and columns the tests wait for were cut off.
INHERITED = ("PATH", "TMPDIR", "TZ", "USER", "LOGNAME", "LANG", "VIRTUAL_ENV")
INHERITED_PREFIXES = ("LC_", "PYTHON", "COVERAGE_", "COV_CORE_")


def app_environment(home: Path) -> dict[str, str]:
    """The environment of the app (and of its tmux server): per-user directories under
    `home`, no token, TERM=xterm-256color."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name in INHERITED or name.startswith(INHERITED_PREFIXES)
    }
    directories = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "HSNAP_STATE_DIR": home / "hsnap-state",
        "HSNAP_LOG_DIR": home / "hsnap-logs",
    }
    for name, path in directories.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["TERM"] = TERM
    if not any("UTF-8" in env.get(v, "").upper() for v in ("LC_ALL", "LC_CTYPE", "LANG")):
        env["LANG"] = "C.UTF-8"
    return env


class Tmux:
    """One app in one detached session of a private tmux server."""

    def __init__(self, command: str, home: Path, width: int = 100, height: int = 30) -> None:
        self.name = f"hsnap-e2e-{uuid.uuid4().hex[:12]}"  # the server's socket and session
        self.env = app_environment(home)
        # The pane's TERM comes from tmux's default-terminal option, not the environment.
        config = home / "tmux.conf"
        config.write_text(f'set -g default-terminal "{TERM}"\n', encoding="utf-8")
        self.config = str(config)
        # where `-L` puts the socket (no TMUX_TMPDIR here); tmux leaves the file behind
        self.socket = Path("/tmp", f"tmux-{os.getuid()}", self.name)
        try:
            self.tmux(
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                "-c",
                str(REPO),
                f"{command}; echo EXITED:$?; sleep 600",
            )
            path = self.tmux("display-message", "-p", "-t", self.name, "#{socket_path}")
            self.socket = Path(path.strip() or self.socket)
        except BaseException:
            self.close()
            raise

    def tmux(self, *args: str) -> str:
        """Run a tmux command on this session's own server, never on the user's."""
        done = subprocess.run(
            ["tmux", "-u", "-L", self.name, "-f", self.config, *args],
            capture_output=True,
            text=True,
            env=self.env,
        )
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, *texts: str, absent: tuple[str, ...] = (), timeout: float = 30.0) -> str:
        """The screen once all `texts` are on it and none of `absent` is."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts) and not any(t in screen for t in absent):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{texts} (and not {absent}) not on screen after {timeout}s:\n{screen}"
                )
            time.sleep(0.05)

    def servers_ready(self, *texts: str, timeout: float = 60.0) -> str:
        """The Servers view, after a successful refresh ("locks … ago" in the header), with
        `texts` drawn and its table focused: the next key goes to the table and the view."""
        return self.wait_for("DEMO", "locks ", SERVERS_KEYS, *texts, timeout=timeout)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.name, "-f", self.config, "kill-server"],
            capture_output=True,
            env=self.env,
        )
        self.socket.unlink(missing_ok=True)


def hsnap_command() -> str:
    """The installed console script, as a user runs it (python -m as a fallback)."""
    script = os.path.join(os.path.dirname(sys.executable), "hsnap-tui")
    if os.path.exists(script):
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m hsnap_tui"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Tmux]]:
    """start(arguments, width, height): `hsnap-tui --demo ARGUMENTS` in its own tmux."""
    sessions: list[Tmux] = []

    def start(arguments: str = "", width: int = 100, height: int = 30) -> Tmux:
        home = tmp_path / f"home{len(sessions)}"
        session = Tmux(f"{hsnap_command()} --demo {arguments}".strip(), home, width, height)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def test_demo_shows_the_fleet_with_its_locks_and_quits(start):
    demo = start()
    screen = demo.servers_ready("db-prod-01", "create_image")
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
    demo.wait_for("sort: lock", SERVERS_KEYS, absent=("Running actions",))
    demo.keys("q")
    screen = demo.wait_for("EXITED:0")
    assert "Traceback" not in screen


def test_demo_snapshot_runs_to_the_end(start):
    # a faster simulated clock, so that a snapshot of minutes takes seconds
    session = start("--demo-speed 40")
    session.servers_ready("api-prod-01")
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


def test_the_original_story_locked_server_inspected_then_snapshotted(start):
    """Another tool (the demo's rebuild) holds web-prod-01. The operator snapshots it,
    sees why it waits, inspects the blocking action, and the snapshot succeeds once the
    lock clears."""
    session = start("--demo-speed 20", 110, 32)
    session.servers_ready("web-prod-01", "rebuild")
    session.keys("/")
    # the field has the focus: the footer no longer offers `s`
    session.wait_for("name or label selector", absent=(SERVERS_KEYS,))
    session.keys("web-prod-01", "Enter")
    # the title follows every letter typed; the footer's `s` proves the field handed the
    # focus back to the table (on Enter), so the `s` below is not typed into the filter
    session.wait_for("filter: web-prod-01", SERVERS_KEYS)
    session.keys("s")
    session.wait_for("Snapshot 1 server", "locked now")
    session.keys("Enter")
    screen = session.wait_for("waiting: rebuild")
    assert "Snapshot jobs · 1 active" in screen
    session.keys("i")
    screen = session.wait_for("rebuild_server", "Resources", "web-prod-01", "following live")
    assert "running" in screen
    session.keys("Escape")
    session.wait_for(SERVERS_KEYS, absent=("following live",))
    session.wait_for("done", timeout=120)  # lock cleared, snapshot sent and finished
    session.keys("3")
    screen = session.wait_for("succeeded", "201 created")
    assert "web-prod-01" in screen


def test_headless_snapshot_on_a_terminal_shows_bars_then_the_results(tmp_path, make_sim):
    """`hsnap-tui snapshot` in an 80x24 terminal: a progress bar per job on stderr while
    Hetzner makes the images, then one result line per server and the summary."""
    sim = make_sim()  # stopped: the snapshots move only when the test advances the clock
    env = f"HCLOUD_TOKEN={shlex.quote(sim.token)} HCLOUD_ENDPOINT={shlex.quote(sim.url)}"
    command = f"env {env} {hsnap_command()} snapshot web-prod-01 db-prod-01 --refresh 1"
    session = Tmux(command, tmp_path / "home", 80, 24)
    try:
        screen = session.wait_for("web-prod-01", "db-prod-01", "snapshotting", "0:00:0")
        assert "━" in screen  # the bars
        sim.advance(3600)  # both snapshots finish
        screen = session.wait_for("2 snapshot jobs: 2 succeeded", "EXITED:0")
        lines = screen.splitlines()
        assert any(line.startswith("web-prod-01  succeeded  image ") for line in lines)
        assert any(line.startswith("db-prod-01   succeeded  image ") for line in lines)
        assert "snapshotting" not in screen  # the bars are gone
        assert sim.token not in screen
    finally:
        session.close()
