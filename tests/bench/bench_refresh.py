"""Benchmark of the Servers view's refresh (a script, not a test).

    python tests/bench/bench_refresh.py [--sizes 10 200 1000] [--launches 3]

Prints, per fleet size: requests per full refresh against the per-server approach of
the original script; the median time to apply one steady refresh (~5 % of the fleet
busy) to the Servers table, and to apply and paint it; the median time from typing one
character into the filter (`w`: about a fifth of the fleet matches) until the table
shows the matching rows, and from erasing it until all rows are back; and, once, the
time from launch to the first painted row of `hsnap-tui --demo` (in tmux) and the peak
RSS of the app at 1000 servers (simulator in another process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hcloud import Client  # noqa: E402
from textual import events  # noqa: E402

from hsnap_tui.core.api import HetznerApi  # noqa: E402
from hsnap_tui.core.refresh import Refresher  # noqa: E402
from hsnap_tui.sim import Simulator  # noqa: E402

START = 1795694400.0


def requests_per_refresh(servers: int) -> tuple[int, int]:
    """(hsnap-tui full refresh, per-server approach) request counts."""
    with Simulator(token="b", servers=servers, speed=0, start=START) as sim:
        Refresher(HetznerApi("b", sim.url)).poll()
        ours = len(sim.requests())
        sim.clear_requests()
        client = Client(token="b", api_endpoint=sim.url)
        client._client._retry_max_retries = 0
        # the original script: list the servers, then ask each one for its actions
        for server in client.servers.get_all():
            client.servers.get_actions_list(server, status=["running"])
        theirs = len(sim.requests())
    return ours, theirs


FILTER_KEY = "w"


async def key_until_rows(app, table, key: str, char: str | None, rows: int) -> float:
    """ms from a key reaching the app until the table holds `rows` rows. The loop only
    yields to the event loop (Pilot's idle detection would add its own waiting)."""
    began = time.perf_counter()
    app.post_message(events.Key(key, char))
    while table.row_count != rows:
        if time.perf_counter() - began > 30:
            raise AssertionError(f"the table shows {table.row_count} rows, not {rows}")
        await asyncio.sleep(0)
    return (time.perf_counter() - began) * 1000


async def apply_times(
    servers: int, rounds: int = 30, keystrokes: int = 7
) -> tuple[float, float, float, float, float]:
    """Headless app, ms: the first full load; the median steady refresh (a fast-lane
    poll with ~5 % of the fleet busy) applied to the table, and applied then painted;
    the median filter keystroke and its erasure, each until the table shows the rows."""
    from hsnap_tui.ui.app import HsnapApp
    from hsnap_tui.ui.screens.servers import ServersScreen

    with Simulator(token="b", servers=servers, speed=0, start=START) as sim:
        ids = sorted(sim.world.servers)
        for server_id in ids[:: max(1, len(ids) // 20)]:  # ~5 % of the fleet busy
            sim.start_action(server_id, "rebuild_server", 600)
        api = HetznerApi("b", sim.url)
        refresher = Refresher(api, clock=sim.clock.now)
        fleets = [refresher.poll().fleet]
        for _ in range(rounds):
            sim.advance(refresher.next_delay())
            fleets.append(refresher.poll().fleet)
        app = HsnapApp(api, demo=True, now=sim.clock.now, clock=sim.clock.now, poll_live=False)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ServersScreen)
            began = time.perf_counter()
            screen.fleet_changed(fleets[0], sim.clock.now())
            await pilot.pause()
            first = (time.perf_counter() - began) * 1000
            diffs, painted = [], []
            for fleet in fleets[1:]:
                began = time.perf_counter()
                screen.fleet_changed(fleet, sim.clock.now())
                diffs.append((time.perf_counter() - began) * 1000)
                await pilot.pause()
                painted.append((time.perf_counter() - began) * 1000)
            table = screen.table
            matching = sum(FILTER_KEY in s.name for s in fleets[-1].servers.values())
            await pilot.press("slash")
            typed, erased = [], []
            for _ in range(keystrokes):
                typed.append(await key_until_rows(app, table, FILTER_KEY, FILTER_KEY, matching))
                await pilot.pause()
                erased.append(await key_until_rows(app, table, "backspace", None, servers))
                await pilot.pause()
    return (
        first,
        statistics.median(diffs),
        statistics.median(painted),
        statistics.median(typed),
        statistics.median(erased),
    )


def launch_to_first_row(launches: int) -> list[float] | None:
    """Seconds from starting `hsnap-tui --demo` in tmux to a server row on screen."""
    if shutil.which("tmux") is None:
        return None
    script = Path(sys.executable).with_name("hsnap-tui")
    command = str(script) if script.exists() else f"{sys.executable} -m hsnap_tui"
    results = []
    # a tmux server of its own: the user's sessions are never touched
    socket = f"hsnap-bench-{uuid.uuid4().hex[:6]}"
    tmux = ["tmux", "-L", socket]
    try:
        for _ in range(launches):
            name = f"bench-{uuid.uuid4().hex[:6]}"
            began = time.perf_counter()
            size = ["-x", "100", "-y", "30"]
            subprocess.run([*tmux, "new-session", "-d", "-s", name, *size, f"{command} --demo"])
            try:
                while time.perf_counter() - began < 60:
                    screen = subprocess.run(
                        [*tmux, "capture-pane", "-p", "-t", name], capture_output=True, text=True
                    ).stdout
                    if "api-prod-01" in screen:
                        results.append(time.perf_counter() - began)
                        break
                    time.sleep(0.02)
            finally:
                subprocess.run([*tmux, "kill-session", "-t", name], capture_output=True)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        # tmux leaves the socket file behind
        base = os.environ.get("TMUX_TMPDIR") or "/tmp"
        (Path(base) / f"tmux-{os.getuid()}" / socket).unlink(missing_ok=True)
    return results


RSS_CHILD = textwrap.dedent("""
    import asyncio, resource, sys
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.ui.app import HsnapApp

    async def main(url):
        app = HsnapApp(HetznerApi("b", url), demo=True, poll_live=False)
        async with app.run_test(size=(160, 50)) as pilot:
            for _ in range(3):
                app.action_refresh()
                await app.workers.wait_for_complete()
                await pilot.pause()
            assert app.screen.query_one("ServerTable").row_count == 1000
    asyncio.run(main(sys.argv[1]))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def peak_rss_mb(servers: int = 1000) -> float:
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hsnap_tui.sim",
            "--port",
            "0",
            "--token",
            "b",
            "--servers",
            str(servers),
            "--speed",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = sim.stdout.readline().split()[-1]
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, url],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        return int(out.split()[-1]) / 1024
    finally:
        sim.terminate()
        sim.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200, 1000])
    parser.add_argument("--launches", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(
        f"{'servers':>8} {'req/refresh':>12} {'per-server':>11} {'first load':>11} "
        f"{'apply (median)':>15} {'apply+paint':>12} {'filter key':>11} {'erase key':>10}"
    )
    for size in args.sizes:
        ours, theirs = requests_per_refresh(size)
        first, diff, painted, typed, erased = asyncio.run(apply_times(size))
        print(
            f"{size:>8} {ours:>12} {theirs:>11} {first:>9.1f}ms {diff:>13.2f}ms "
            f"{painted:>10.2f}ms {typed:>9.1f}ms {erased:>8.1f}ms"
        )
    launches = launch_to_first_row(args.launches) if args.launches else []
    if launches:
        print(
            f"launch → first row (--demo, tmux): median {statistics.median(launches):.2f}s "
            f"of {', '.join(f'{x:.2f}' for x in launches)}"
        )
    else:
        print("launch → first row: skipped" + (" (no tmux)" if launches is None else ""))
    print(f"peak RSS at 1000 servers: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
