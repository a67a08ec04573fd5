"""Every fault kind in every phase, against the real app: what the operator sees, how
long until it recovers by itself (simulated seconds), jobs lost, duplicate snapshots,
`create_image` requests sent and the reconcile requests (label lookups) it took.

Used by tests/test_fault_matrix.py (asserts) and tests/bench/fault_matrix.py (prints the
table). The simulator's clock stands still between ticks, so a `latency` fault always
times the app's request out (after TIMEOUT wall seconds); the request lands LATENCY
simulated seconds after it arrived, when a tick moves the clock past that."""

from __future__ import annotations

from dataclasses import dataclass

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.jobs import JobState
from hsnap_tui.sim import FAULT_KINDS
from hsnap_tui.ui.app import HsnapApp

KINDS = (*FAULT_KINDS, "unreachable")  # every kind, and the API not answering at all
PHASES = (
    "startup",
    "refresh",
    "create_image",  # processed first where the kind can be (AFTER): the ambiguous outcome
    "create_image_before",  # the same faults instead of processing: nothing was made
    "progress",
    "inspector",
    "delete",
)
SNAPSHOT_PHASES = ("create_image", "create_image_before", "progress")
# The app's request timeout (wall seconds). Above the first OpenAPI check of a response,
# which the simulator runs before it answers (~0.2 s for the server list, more under load).
TIMEOUT = 1.5
LATENCY = 30.0  # simulated seconds a `latency` request lands late: after the first look
MAX_TICKS = 60
TICK = 10.0  # simulated seconds between ticks once a snapshot job is under way
# add_fault options per kind (beyond count, prefix, method, after)
OPTIONS: dict[str, dict] = {
    "latency": {"seconds": LATENCY},
    "error": {"status": 502, "code": "bad_gateway", "message": "bad gateway"},
    "gateway": {"status": 504},
}
# `strip`: the key each phase's faulted answer is read by
STRIP_FIELD = {
    "startup": "actions",  # GET /servers/actions, the first request under /v1/servers
    "refresh": "actions",
    "create_image": "image",
    "create_image_before": "image",
    "progress": "actions",
    "inspector": "actions",
}
# Processed, then answered with the fault: the ambiguous outcome (create_image, delete).
AFTER = {
    "create_image": ("drop", "http_500", "http_503", "malformed_json", "error", "gateway"),
    # not malformed_json: cutting a 204's empty body in half changes nothing
    "delete": ("drop", "http_500", "error", "gateway"),
}
LABEL_LOOKUP = "hsnap-job"  # a reconcile request: GET /images?label_selector=hsnap-job …


def skipped(kind: str, phase: str) -> str | None:
    """Why a kind means nothing in a phase (None: it is run)."""
    if phase == "create_image_before" and kind not in AFTER["create_image"]:
        if kind in ("rate_limit", "unreachable"):
            return "already before processing in the create_image row"
        return "always processed: see the create_image row"
    if kind == "action_failed" and phase != "create_image":
        if phase == "delete":
            return "`DELETE /images/{id}` starts no action"
        return "only a POST that starts an action can fail it; this phase only reads"
    if kind == "strip" and phase == "delete":
        return "`DELETE /images/{id}` answers 204 with no body to leave a key out of"
    return None


def cases() -> list[tuple[str, str]]:
    """(kind, phase) for every case that is run."""
    return [(k, p) for p in PHASES for k in KINDS if skipped(k, p) is None]


@dataclass
class Outcome:
    kind: str
    phase: str
    saw: str
    recovered_after: float | None  # simulated seconds from the fault to normal again
    jobs_lost: int
    duplicates: int
    crashed: bool
    posts: int = 0  # create_image requests the simulator processed
    images: int = 0  # snapshots with the job's description at the end
    reconciles: int = 0  # label lookups: GET /images?label_selector=hsnap-job …
    job_state: str | None = None  # the job's final state (snapshot phases)
    job_error: str | None = None


def reconcile_requests(log: list[dict]) -> list[dict]:
    """The label lookups in a simulator request log (each page counts)."""
    return [
        r
        for r in log
        if r["method"] == "GET"
        and r["path"] == "/v1/images"
        and any(v.startswith(LABEL_LOOKUP) for v in r["query"].get("label_selector", ()))
    ]


def create_image_posts(log: list[dict]) -> list[dict]:
    return [r for r in log if r["method"] == "POST" and r["path"].endswith("/actions/create_image")]


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
    sim,
    kind: str,
    phase: str,
    prefix: str,
    count: int = 2,
    *,
    method: str | None = None,
    options: dict | None = None,
) -> None:
    if kind == "unreachable":
        sim.go_offline()
        return
    options = {**OPTIONS.get(kind, {}), **(options or {})}
    if kind == "strip":
        options["field"] = STRIP_FIELD[phase]
    after = kind in AFTER.get(phase, ())
    sim.add_fault(kind, count=count, path_prefix=prefix, method=method, after=after, **options)


def _heal(sim, kind: str) -> None:
    if kind == "unreachable":
        sim.go_online()


def _fresh(app) -> bool:
    return app.refresher.failures == 0 and app.refresher.last_success is not None


def _status(app) -> str:
    return app.status_text().plain.split("  ", 1)[-1].strip()


async def run_case(
    sim, kind: str, phase: str, size=(140, 40), *, options: dict | None = None
) -> Outcome:
    """One case; `options` overrides the fault's add_fault options (OPTIONS)."""
    reason = skipped(kind, phase)
    if reason is not None:
        raise ValueError(f"{kind} in {phase}: {reason}")
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
            _inject(sim, kind, phase, "/v1/servers", options=options)
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

        elif phase in SNAPSHOT_PHASES:
            await _poll(pilot)
            queued, _ = app.jobs.submit(
                [app.fleet.servers[web]], "{server}-fault-{time}", {"managed-by": "hsnap"}
            )
            description = queued[0].description
            if phase in ("create_image", "create_image_before"):
                # after=True (AFTER) where the server can process the request first: the
                # ambiguous outcome a naive client would retry into a second snapshot
                _inject(
                    sim,
                    kind,
                    phase,
                    f"/v1/servers/{web}/actions/create_image",
                    count=1,
                    options=options,
                )
            app.refresher.request_fast()
            await _poll(pilot)
            if phase == "progress":
                _inject(sim, kind, phase, "/v1/actions", options=options)
                app.refresher.request_fast()
                await _tick(pilot, sim, 5)
            start = sim.clock.now()
            job = app.jobs.jobs()[0]
            saw = (
                f"job {job.state.value}: {job.note or _status(app)}"
                if phase != "progress"
                else f"job stays {job.state.value} at {job.progress}%; {_status(app)}"
            )
            for tick in range(MAX_TICKS * 2):
                if tick == 2:
                    _heal(sim, kind)
                app.refresher.request_fast()
                await _tick(pilot, sim, TICK)
                job = app.jobs.jobs()[0]
                if _ended_as_expected(job, kind) and _fresh(app):
                    recovered = sim.clock.now() - start
                    break
                if not job.active and not _ended_as_expected(job, kind):
                    break  # ended otherwise: nothing more will happen
            if job.state == JobState.FAILED:
                saw += f" → failed: {job.error_code}: {job.error_message}"

        elif phase == "inspector":
            await _poll(pilot)
            blocker = sim.start_action(web, "rebuild_server", 400)
            action = await _open_inspector(pilot, sim, blocker["id"])
            before = action.progress
            _inject(sim, kind, phase, "/v1/actions", options=options)
            start = sim.clock.now()
            app.refresher.request_fast()
            await _tick(pilot, sim, 10)
            saw = f"inspector at {app.screen.action.progress}% (was {before}%); {_status(app)}"
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
                phase,
                f"/v1/images/{target['id']}",
                count=1,
                method="DELETE",
                options=options,
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
        lost = sum(1 for j in jobs if not _ended_as_expected(j, kind)) if description else 0
        made = [
            i for i in sim.world.images.values() if description and i["description"] == description
        ]
        images, duplicates = len(made), max(0, len(made) - 1)
        final = jobs[0] if description and jobs else None
    _heal(sim, kind)
    log = sim.requests()
    return Outcome(
        kind,
        phase,
        saw,
        recovered,
        lost,
        duplicates,
        crashed,
        posts=len(create_image_posts(log)),
        images=images,
        reconciles=len(reconcile_requests(log)),
        job_state=final.state.value if final else None,
        job_error=final.error_code if final else None,
    )


def _ended_as_expected(job, kind: str) -> bool:
    """Succeeded; or, when the simulator failed its action, failed with that error."""
    if kind == "action_failed":
        return job.state == JobState.FAILED and job.error_code == "action_failed"
    return job.state == JobState.SUCCEEDED


async def _open_inspector(pilot, sim, action_id: int):
    app = pilot.app
    app.refresher.request_fast()
    await _tick(pilot, sim, 5)
    app.inspect_action_id(action_id)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return app.screen.action
