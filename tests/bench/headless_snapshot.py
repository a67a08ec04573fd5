"""Requests a nightly snapshot of a whole fleet costs (a script, not a test): the
README's per-server script against `hsnap-tui snapshot --all`, on one simulated
project each, from the start to the last image.

    python tests/bench/headless_snapshot.py [--servers 200]

The script is the README's story with the wait people add to it: list the servers,
`create_image` for each, then `action.wait_until_finished()` for each (hcloud polls
`GET /actions/{id}` once a second per action; `max_retries` raised so that it does not
give up after two minutes). Both run on the simulator's clock: every sleep moves it.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time as wall
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hcloud._client
import hcloud.actions.client
from hcloud import Client
from hcloud.images import Image  # noqa: F401  (the SDK's own types, as a script has them)

from hsnap_tui.cli import main as hsnap_main
from hsnap_tui.headless.common import Runtime
from hsnap_tui.sim import Simulator

START = 1795694400.0
TOKEN = "bench-token"


def categorize(log: list[dict]) -> Counter:
    kinds: Counter = Counter()
    for r in log:
        path, method = r["path"], r["method"]
        if method == "POST" and path.endswith("/create_image"):
            kinds["create_image"] += 1
        elif path == "/v1/servers":
            kinds["GET /servers"] += 1
        elif path == "/v1/servers/actions":
            kinds["GET /servers/actions"] += 1
        elif path == "/v1/actions":
            kinds["GET /actions?id=…"] += 1
        elif path.startswith("/v1/actions/"):
            kinds["GET /actions/{id}"] += 1
        elif path == "/v1/images":
            kinds["GET /images?label_selector"] += 1
        else:
            kinds[f"{method} {path.split('/')[2]}…"] += 1
        if r["status"] == 429:
            kinds["429 rate_limit_exceeded"] += 1
    return kinds


def peak_per_minute(log: list[dict]) -> int:
    times = sorted(r["time"] for r in log)
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] < t - 60:
            first += 1
        best = max(best, last - first + 1)
    return best


def last_image_at(sim: Simulator, since: float) -> float:
    done = [
        a.finished
        for a in sim.world.actions.values()
        if a.command == "create_image" and a.finished is not None and a.started >= since
    ]
    return max(done) - since if done else math.nan


def new_images(sim: Simulator) -> int:
    """Snapshots made during the run (create_image actions that succeeded)."""
    return sum(
        1
        for a in sim.world.actions.values()
        if a.command == "create_image" and a.status == "success" and a.started >= START
    )


def per_server_script(servers: int) -> tuple[Counter, tuple[float, float], int, int]:
    with Simulator(token=TOKEN, servers=servers, seed=7, speed=0, start=START) as sim:
        fake_time = SimpleNamespace(sleep=sim.advance, time=sim.clock.now)
        hcloud.actions.client.time = fake_time  # the SDK's sleeps move the sim clock
        hcloud._client.time = fake_time
        client = Client(token=TOKEN, api_endpoint=sim.url, poll_max_retries=100_000)
        actions = []
        for server in client.servers.get_all():
            response = client.servers.create_image(
                server, description=f"{server.name}-snapshot", type="snapshot"
            )
            actions.append(response.action)
        for action in actions:
            action.wait_until_finished()
        ended = sim.clock.now() - START
        log = sim.requests()
        took = (last_image_at(sim, START), ended)
        return categorize(log), took, peak_per_minute(log), new_images(sim)


def hsnap_snapshot_all(servers: int) -> tuple[Counter, tuple[float, float], int, int, int]:
    with Simulator(token=TOKEN, servers=servers, seed=7, speed=0, start=START) as sim:
        import os

        os.environ.update(HCLOUD_TOKEN=TOKEN, HCLOUD_ENDPOINT=sim.url)
        runtime = Runtime(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            clock=sim.clock.now,
            now=sim.clock.now,
            sleep=sim.advance,
        )
        code = hsnap_main(["snapshot", "--all", "--json"], runtime=runtime)
        ended = sim.clock.now() - START
        log = sim.requests()
        return (
            categorize(log),
            (last_image_at(sim, START), ended),
            peak_per_minute(log),
            new_images(sim),
            code,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=200)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as state:
        import os

        os.environ["HSNAP_STATE_DIR"] = state
        os.environ["HSNAP_LOG_DIR"] = state
        began = wall.monotonic()
        ours, ours_took, ours_peak, ours_images, code = hsnap_snapshot_all(args.servers)
        ours_wall = wall.monotonic() - began
    began = wall.monotonic()
    theirs, theirs_took, theirs_peak, theirs_images = per_server_script(args.servers)
    theirs_wall = wall.monotonic() - began
    kinds = sorted(set(ours) | set(theirs), key=lambda k: (-theirs[k] - ours[k], k))
    print(f"snapshot of {args.servers} servers, start to last image (simulated time)\n")
    print("| requests | per-server script | hsnap-tui snapshot --all |")
    print("| --- | ---: | ---: |")
    for kind in kinds:
        print(f"| {kind} | {theirs[kind]} | {ours[kind]} |")
    total_theirs = sum(v for k, v in theirs.items() if not k.startswith("429"))
    total_ours = sum(v for k, v in ours.items() if not k.startswith("429"))
    print(f"| **all requests** | **{total_theirs}** | **{total_ours}** |")
    print(f"| most in one minute | {theirs_peak} | {ours_peak} |")
    print(f"| images made | {theirs_images} | {ours_images} |")
    print(f"| last image done after | {theirs_took[0]:.0f} s | {ours_took[0]:.0f} s |")
    print(f"| run ended after | {theirs_took[1]:.0f} s | {ours_took[1]:.0f} s |")
    print(f"| exit code | - | {code} |")
    print(f"\n(wall time: script {theirs_wall:.1f} s, hsnap-tui {ours_wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
