"""Regenerate screenshots/*.svg from the demo fleet (the project `--demo` shows, on a
stopped clock so that the pictures do not change from run to run), at 80x24 and 120x40.

    python scripts/screenshots.py

The views are set up as the SVG snapshot tests set them up (tests/test_snapshots.py),
so a picture here is one the test suite checks.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hsnap_tui.sim import Simulator  # noqa: E402
from tests.conftest import START, poll, settle  # noqa: E402
from tests.test_snapshots import SIZES, VIEWS, header_now, no_blink, view_app  # noqa: E402

OUT = ROOT / "screenshots"
# what the README shows: each view, the Servers view and its jobs at both sizes
SHOTS = {
    "servers": "servers",
    "jobs-panel": "snapshot-progress",
    "details": "server-details",
    "activity": "activity",
    "inspector": "action-inspector",
    "snapshots": "snapshots",
    "retention": "retention",
    "help": "help",
}


async def shoot(view: str, name: str, size: str) -> None:
    with Simulator(token="shots", servers=24, seed=1, speed=0, start=START, scenario="demo") as sim:
        app = view_app(sim, view)
        async with app.run_test(size=SIZES[size]) as pilot:
            await poll(pilot)
            await VIEWS[view](pilot, sim)
            await settle(pilot)
            no_blink(pilot)
            await header_now(pilot)
            app.save_screenshot(str(OUT / f"{name}-{size}.svg"))
    print(f"wrote screenshots/{name}-{size}.svg")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.svg"):
        old.unlink()
    for view, name in SHOTS.items():
        for size in SIZES:
            await shoot(view, name, size)


if __name__ == "__main__":
    asyncio.run(main())
