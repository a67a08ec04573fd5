"""Every fault kind in every phase, against the real app: what the operator sees, how
long until it recovers by itself (simulated seconds), jobs lost, duplicate snapshots.

Used by tests/test_fault_matrix.py (asserts) and tests/bench/fault_matrix.py (prints the
table)."""

from __future__ import annotations

from dataclasses import dataclass

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.jobs import JobState
from hsnap_tui.ui.app import HsnapApp

KINDS = ("http_500", "http_503", "rate_limit", "latency", "drop", "malformed_json", "unreachable")
PHASES = ("startup", "refresh", "create_image", "progress", "inspector", "delete")
TIMEOUT = 0.3  # the app's request timeout here; latency faults wait LATENCY
LATENCY = 0.6
MAX_TICKS = 60


@dataclass
class Outcome:
    kind: str
    phase: str
    saw: str
    recovered_after: float | None  # simulated seconds from the fault to normal again
    jobs_lost: int
    duplicates: int
    crashed: bool


def app_for(sim) -> HsnapApp:
    api = HetznerApi(sim.token, sim.url, timeout=TIMEOUT)
    return HsnapApp(api, demo=True, now=sim.clock.now, clock=sim.clock.now, poll_live=False)


async def _poll(pilot) -> None:
    pilot.app.start_poll()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _tick(pilot, sim, seconds: float | None = None) -> None:
    app = pilot.app
    sim.advance(seconds if seconds is not None else max(app.refresher.next_delay(), 1.0))
    await _poll(pilot)


def _inject(
    sim, kind: str, prefix: str, count: int = 2, *, after: bool = False, method: str | None = None
) -> None:
    if kind == "unreachable":
        sim.go_offline()
        return
    sim.add_fault(
        kind, count=count, path_prefix=prefix, method=method, after=after, seconds=LATENCY
    )


def _heal(sim, kind: str) -> None:
    if kind == "unreachable":
        sim.go_online()


def _fresh(app) -> bool:
    return app.refresher.failures == 0 and app.refresher.last_success is not None


def _status(app) -> str:
    return app.status_text().plain.split("  ", 1)[-1].strip()


async def run_case(sim, kind: str, phase: str, size=(140, 40)) -> Outcome:
    app = app_for(sim)
    web = next(s["id"] for s in sim.world.servers.values() if s["name"] == "web-prod-01")
    description = None
    saw = ""
    start = None
    recovered = None
    async with app.run_test(size=size) as pilot:
        if phase in ("startup", "refresh"):
            if phase == "refresh":
                await _poll(pilot)  # a good first load, then the fault
                app.refresher.request_full()
            _inject(sim, kind, "/v1/servers")
            start = sim.clock.now()
            if phase == "startup":
                await _poll(pilot)
            else:
                await _tick(pilot, sim)
            saw = _status(app)
            for tick in range(MAX_TICKS):
                if tick == 2:
                    _heal(sim, kind)
                await _tick(pilot, sim)
                if _fresh(app):
                    recovered = sim.clock.now() - start
                    break
            assert app.screen.query_one("ServerTable").row_count == len(sim.world.servers)

        elif phase in ("create_image", "progress"):
            await _poll(pilot)
            queued, _ = app.jobs.submit(
                [app.fleet.servers[web]], "{server}-fault-{time}", {"managed-by": "hsnap"}
            )
            description = queued[0].description
            if phase == "create_image":
                # after=True where the server can process the request first: the
                # ambiguous outcome a naive client would retry into a second snapshot
                after = kind in ("drop", "http_500", "http_503", "malformed_json")
                _inject(sim, kind, f"/v1/servers/{web}/actions/create_image", count=1, after=after)
            app.refresher.request_fast()
            await _poll(pilot)
            if phase == "progress":
                _inject(sim, kind, "/v1/actions")
                app.refresher.request_fast()
                await _tick(pilot, sim, 5)
            start = sim.clock.now()
            job = app.jobs.jobs()[0]
            saw = (
                f"job {job.state.value}: {job.note or _status(app)}"
                if phase == "create_image"
                else f"job stays {job.state.value} at {job.progress}%; {_status(app)}"
            )
            for tick in range(MAX_TICKS * 2):
                if tick == 2:
                    _heal(sim, kind)
                app.refresher.request_fast()
                await _tick(pilot, sim, 10)
                job = app.jobs.jobs()[0]
                if job.state == JobState.SUCCEEDED and _fresh(app):
                    recovered = sim.clock.now() - start
                    break

        elif phase == "inspector":
            await _poll(pilot)
            blocker = sim.start_action(web, "rebuild_server", 400)
            action = await _open_inspector(pilot, sim, blocker["id"])
            before = action.progress
            _inject(sim, kind, "/v1/actions")
            start = sim.clock.now()
            app.refresher.request_fast()
            await _tick(pilot, sim, 10)
            saw = f"inspector keeps {app.screen.action.progress}% (was {before}%); {_status(app)}"
            for tick in range(MAX_TICKS):
                if tick == 2:
                    _heal(sim, kind)
                app.refresher.request_fast()
                await _tick(pilot, sim, 10)
                expected = sim.world.actions[blocker["id"]].progress
                if app.screen.action.progress == expected and _fresh(app):
                    recovered = sim.clock.now() - start
                    break

        elif phase == "delete":
            await _poll(pilot)
            target = next(
                i
                for i in sim.world.images.values()
                if i["type"] == "snapshot"
                and not i["protection"]["delete"]
                and i["status"] == "available"
            )
            snapshot = next(s for s in app.fleet.snapshots if s.id == target["id"])
            _inject(
                sim,
                kind,
                f"/v1/images/{target['id']}",
                count=1,
                method="DELETE",
                after=kind in ("drop", "http_500", "malformed_json"),
            )
            start = sim.clock.now()
            app.delete_snapshots([snapshot])
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            saw = notes[-1] if notes else _status(app)
            _heal(sim, kind)
            for _ in range(MAX_TICKS):
                if (
                    target["id"] not in sim.world.images
                    and all(s.id != target["id"] for s in app.fleet.snapshots)
                    and _fresh(app)
                ):
                    recovered = sim.clock.now() - start
                    break
                if target["id"] in sim.world.images and all(
                    s.id != target["id"] for s in app.fleet.snapshots
                ):
                    break  # the app believes it is gone while it is not: a bug
                if target["id"] in sim.world.images:
                    app.delete_snapshots([snapshot])  # the operator tries again
                    await pilot.app.workers.wait_for_complete()
                app.refresher.request_full()
                await _tick(pilot, sim, 10)

        crashed = not app.is_running
        jobs = app.jobs.jobs()
        lost = sum(1 for j in jobs if j.state != JobState.SUCCEEDED) if description else 0
        made = [
            i for i in sim.world.images.values() if description and i["description"] == description
        ]
        duplicates = max(0, len(made) - 1)
    _heal(sim, kind)
    return Outcome(kind, phase, saw, recovered, lost, duplicates, crashed)


async def _open_inspector(pilot, sim, action_id: int):
    app = pilot.app
    app.refresher.request_fast()
    await _tick(pilot, sim, 5)
    app.inspect_action_id(action_id)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return app.screen.action
