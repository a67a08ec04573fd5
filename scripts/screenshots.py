"""Regenerate screenshots/*.svg from the demo fleet (the same project `--demo` shows,
on a stopped clock so that the pictures do not change from run to run).

    python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hsnap_tui.core.api import HetznerApi  # noqa: E402
from hsnap_tui.sim import Simulator  # noqa: E402
from hsnap_tui.ui.app import HsnapApp  # noqa: E402
from hsnap_tui.ui.widgets.server_table import ServerTable  # noqa: E402

OUT = ROOT / "screenshots"
START = 1795694400.0  # 2026-11-26T12:00:00Z


async def shoot(name: str, size: tuple[int, int], steps) -> None:
    with Simulator(token="shots", servers=24, seed=1, speed=0, start=START, scenario="demo") as sim:
        app = HsnapApp(
            HetznerApi("shots", sim.url),
            demo=True,
            now=sim.clock.now,
            clock=sim.clock.now,
            poll_live=False,
        )
        async with app.run_test(size=size) as pilot:
            app.start_poll()
            await app.workers.wait_for_complete()
            await pilot.pause()
            await steps(pilot, sim)
            await app.workers.wait_for_complete()
            await pilot.pause()
            app.save_screenshot(str(OUT / f"{name}.svg"))
    print(f"wrote screenshots/{name}.svg")


async def servers(pilot, sim) -> None:
    await pilot.press("o", "o")  # sorted by lock: the busy servers on top


async def details(pilot, sim) -> None:
    table = pilot.app.screen.query_one(ServerTable)
    db = next(s["id"] for s in sim.world.servers.values() if s["name"] == "db-prod-01")
    table.move_cursor(row=table.get_row_index(str(db)))
    await pilot.press("enter")


async def _start_jobs(pilot, sim) -> None:
    app = pilot.app
    table = app.screen.query_one(ServerTable)
    for name in ("web-prod-01", "worker-prod-01", "api-prod-01"):
        server_id = next(s["id"] for s in sim.world.servers.values() if s["name"] == name)
        table.move_cursor(row=table.get_row_index(str(server_id)))
        await pilot.press("space")
    await pilot.press("s", "enter")
    await app.workers.wait_for_complete()
    for _ in range(6):  # half a minute of snapshots
        sim.advance(5)
        app.refresher.request_fast()
        app.start_poll()
        await app.workers.wait_for_complete()
        await pilot.pause()
    app.clear_notifications()


async def snapshot_progress(pilot, sim) -> None:
    await _start_jobs(pilot, sim)


async def activity(pilot, sim) -> None:
    await _start_jobs(pilot, sim)
    await pilot.press("3")


async def action_inspector(pilot, sim) -> None:
    table = pilot.app.screen.query_one(ServerTable)
    web = next(s["id"] for s in sim.world.servers.values() if s["name"] == "web-prod-01")
    table.move_cursor(row=table.get_row_index(str(web)))
    await pilot.press("i")
    sim.advance(30)
    pilot.app.refresher.request_fast()
    pilot.app.start_poll()


async def snapshots(pilot, sim) -> None:
    await pilot.press("2")


async def retention(pilot, sim) -> None:
    await pilot.press("2", "p")
    pilot.app.screen.query_one("#retention-keep").value = "daily 7, weekly 4"


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    await shoot("servers", (110, 32), servers)
    await shoot("server-details", (110, 44), details)
    await shoot("snapshot-progress", (110, 34), snapshot_progress)
    await shoot("activity", (130, 24), activity)
    await shoot("action-inspector", (100, 22), action_inspector)
    await shoot("snapshots", (140, 30), snapshots)
    await shoot("retention", (130, 34), retention)


if __name__ == "__main__":
    asyncio.run(main())
