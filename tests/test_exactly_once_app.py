"""Exactly once, end to end through the app (issue #10, points 1 to 6): the real `HsnapApp`
driven from the keyboard against the simulator, on its stopped clock. Each test checks
what the operator sees (the jobs panel, the Activity view, the notifications) and what
the simulator was asked and made: one image carrying the job's `hsnap-job` label, the
job reporting that image, the requests sent, and the job ending."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest
from textual.widgets import DataTable

from hsnap_tui.config import Context
from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.naming import JOB_LABEL
from hsnap_tui.ui.app import HsnapApp
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.contexts import ContextScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app
from tests.test_servers_view import plain, server_named

CREATE = "/v1/servers/{}/actions/create_image"
UNKNOWN = "unknown"  # a job whose request may or may not have made its image
SIZE = (140, 40)


# ---- what identifies a job's image, and what the app reports after a tick -------------


def own_images(sim, job) -> list[int]:
    """The images in the project that carry this job's label."""
    return sorted(
        i["id"] for i in sim.world.images.values() if i["labels"].get(JOB_LABEL) == job.uid
    )


def tick_delays(app) -> list[float]:
    """Every poll's `next_delay` for the live session, as the app is told it (what
    `poll_live` would wait before the next poll)."""
    delays: list[float] = []
    post = app.post_message

    def spy(message):
        results = getattr(message, "results", None)
        if results is not None:
            delays.extend(r.next_delay for r in results if r.session is app.session)
        return post(message)

    app.post_message = spy
    return delays


def budget_bound(app, seconds: float) -> float:
    """Requests the live session may send in `seconds`: its rate plus its burst."""
    budget = app.session.budget
    return seconds * budget.rate() + budget.capacity()


# ---- the operator ----------------------------------------------------------------------


def posts(sim, server_id: int | None = None) -> list[dict]:
    path = CREATE.format(server_id) if server_id is not None else None
    return [
        r for r in sim.requests() if r["method"] == "POST" and (path is None or r["path"] == path)
    ]


class Operator:
    """Drives the app with keys and the clock, and keeps what the screen showed after
    every step (notifications expire in wall time, so they are collected as they come)."""

    def __init__(self, pilot, *sims) -> None:
        self.pilot = pilot
        self.app = pilot.app
        self.sims = sims
        self.panels: list[str] = []  # the jobs panel after each step, when it showed
        self.heard: dict[str, str] = {}  # notification identity → "title: message"

    async def settle(self) -> None:
        """Until no poll runs and none is about to (a poll asked for during one)."""
        app = self.app
        for _ in range(200):
            await app.workers.wait_for_complete()
            await self.pilot.pause()
            running = [w for w in app.workers if w.group == "refresh" and not w.is_finished]
            if not running and not app._polling:
                self.look()
                return
        raise AssertionError("the app kept polling")

    def look(self) -> None:
        if not self.app.is_running:
            return
        for panel in self.app.screen.query(JobsPanel):
            self.panels.append(plain(panel.content) if panel.has_class("-active") else "")
        for note in self.app._notifications:
            self.heard[note.identity] = f"{note.title}: {note.message}"

    def notes(self) -> list[str]:
        self.look()
        return list(self.heard.values())

    async def tick(self, seconds: float = 5.0) -> None:
        """Move every simulator's clock, ask each ticked session for its fast lane, and
        run one poll of the app to its end."""
        for sim in self.sims:
            sim.advance(seconds)
        self.app.refresher.request_fast()
        for session in self.app.background:
            session.refresher.request_fast()
        self.app.start_poll()
        await self.settle()

    async def load(self) -> None:
        """The first load; if a loaded machine timed it out, again once the app's own
        backoff (simulated time) has passed."""
        for attempt in range(5):
            await self.tick(0 if attempt == 0 else max(1.0, self.app.refresher.next_delay()))
            if self.app.screen.query_one(ServerTable).row_count:
                return
        raise AssertionError(f"the servers never loaded: {self.app.last_error}")

    async def follow(self, until: float, delays: list[float]) -> None:
        """Poll as `poll_live` would, on the simulated clock: a poll now, then the clock
        advanced by each poll's own delay (at least 0.5 s) until `until`."""
        while True:
            self.app.start_poll()
            await self.settle()
            if self.sims[0].clock.now() >= until:
                return
            for sim in self.sims:
                sim.advance(max(delays[-1], 0.5))

    async def advance_to(self, when: float, seconds: float = 5.0) -> None:
        while self.sims[0].clock.now() + seconds <= when:
            await self.tick(seconds)

    async def until_done(self, job_id: int, seconds: float = 20.0, limit: int = 30):
        """Tick until the job ends (at most `limit` ticks); the job as it is then."""
        for _ in range(limit):
            if not self.job(job_id).active:
                break
            await self.tick(seconds)
        return self.job(job_id)

    def job(self, job_id: int):
        """The job as the app has it now, wherever it runs."""
        jobs = [j for j in self.app.all_jobs() if j.id == job_id]
        assert jobs, f"job {job_id} is gone from the app"
        return jobs[0]

    async def highlight(self, server_id: int) -> None:
        table = self.app.screen.query_one(ServerTable)
        table.move_cursor(row=table.get_row_index(str(server_id)))
        await self.pilot.pause()

    async def open_dialog(self, server_id: int | None = None, erase: int = 0):
        """`s` on the highlighted server (or on the marked ones); `erase` characters
        of the template's end deleted with backspace."""
        if server_id is not None:
            await self.highlight(server_id)
        await self.pilot.press("s")
        dialog = self.app.screen
        assert isinstance(dialog, SnapshotDialog), self.notes()
        if erase:
            await self.pilot.press("end", *["backspace"] * erase)
        return dialog

    async def snapshot(self, server_id: int | None = None, erase: int = 0, preview: str = ""):
        """`s`, the template edited, `enter`; the poll that sends it runs to its end.
        Returns the new jobs."""
        before = {j.id for j in self.app.all_jobs()}
        dialog = await self.open_dialog(server_id, erase)
        if preview:
            shown = plain(dialog.query_one("#snapshot-preview").content).strip()
            assert shown == f"→ {preview}", shown
        await self.pilot.press("enter")
        assert not isinstance(self.app.screen, SnapshotDialog)
        await self.settle()
        return sorted((j for j in self.app.all_jobs() if j.id not in before), key=lambda j: j.id)

    async def activity_row(self, job_id: int) -> list[str]:
        """The job's row in the Activity view (`3`)."""
        if not isinstance(self.app.screen, ActivityScreen):
            await self.pilot.press("3")
        assert isinstance(self.app.screen, ActivityScreen)
        table = self.app.screen.query_one("#jobs", DataTable)
        return [str(cell) for cell in table.get_row(str(job_id))]


# ---- 1. a late POST is adopted, never repeated ------------------------------------------


@pytest.mark.parametrize("pace", ["own", 10.0], ids=["own-pace", "every-10s"])
async def test_1_app_adopts_a_post_that_lands_late(sim, pace):
    """The POST times out (1 s) and lands 40 s later; another tool reboots the server
    from 12 s to 36 s. One POST, one image, the job reports it, and the operator never
    sees the job waiting behind its own create_image. The app polls at its own pace, or
    every 10 s (then it first looks after the landing while the image is being made)."""
    app = make_app(sim, timeout=1.0)
    web = server_named(sim, "web-prod-01")
    delays = tick_delays(app)
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, sim)
        await op.load()
        sim.add_fault("latency", seconds=40, path_prefix=CREATE.format(web))
        [job] = await op.snapshot(web)
        for _ in range(3):  # a fast lane that a loaded machine timed out: at once again
            if sim.pending():
                break
            await op.tick(0)
        [held] = sim.pending()
        t0 = held["arrived"]
        job = op.job(job.id)
        assert job.state.value == UNKNOWN, job.note  # timed out: looking for its image
        assert "unknown" in op.panels[-1]
        # On a running clock the client's own timeout (15 s by default) passes before the
        # app looks again; on this stopped one, the clock moves on here, and the other
        # tool's reboot is already running when the app next looks.
        sim.advance(t0 + 12 - sim.clock.now())
        reboot = sim.start_action(web, "reboot_server", 24)
        if pace == "own":
            await op.follow(t0 + 45, delays)
        else:
            await op.tick(0)
            await op.advance_to(t0 + 45, pace)
        sent = [(p["status"], p["time"] - t0) for p in posts(sim)]
        assert sent == [(201, 40)], sent  # one request, landed late on the free server
        done = await op.until_done(job.id)
        row = await op.activity_row(job.id)

    assert done.state.value == "succeeded", done.note
    assert own_images(sim, done) == [done.image_id]
    assert [p["status"] for p in posts(sim)] == [201]
    # on screen: never "waiting" behind its own create_image; the reboot, at most
    assert not [p for p in op.panels if re.search(r"waiting: create_image", p)]
    assert all(f"#{reboot['id']}" in p for p in op.panels if "waiting:" in p)
    assert row[2] == "succeeded" and row[5] == str(done.image_id)
    assert [n for n in op.notes() if f"snapshot {done.image_id} done" in n]


# ---- 2. the same description is not someone else's success ------------------------------


async def test_2_app_a_repeated_description_is_not_a_false_success(sim):
    """`{server}-{date}` twice, a minute apart; the second POST gets a 503 before it is
    processed. Two images, and each job reports its own."""
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, sim)
        await op.load()
        # `{server}-{date}-{time}` → `{server}-{date}`: seven backspaces
        [first] = await op.snapshot(web, erase=7, preview="web-prod-01-2026-11-26")
        first = await op.until_done(first.id)
        assert first.state.value == "succeeded", first.note
        await op.tick(60)
        sim.add_fault("http_503", path_prefix=CREATE.format(web))  # before processing
        [second] = await op.snapshot(web, erase=7, preview="web-prod-01-2026-11-26")
        second = await op.until_done(second.id)
        rows = [await op.activity_row(j.id) for j in (first, second)]

    assert first.description == second.description == "web-prod-01-2026-11-26"
    assert second.state.value == "succeeded", second.note
    assert first.image_id != second.image_id
    assert own_images(sim, first) == [first.image_id]
    assert own_images(sim, second) == [second.image_id]
    same = [i for i in sim.world.images.values() if i["description"] == first.description]
    assert len(same) == 2
    assert [p["status"] for p in posts(sim)] == [201, 503, 201]
    assert [r[2] for r in rows] == ["succeeded", "succeeded"]
    assert [r[5] for r in rows] == [str(first.image_id), str(second.image_id)]
    done = op.notes()
    assert [n for n in done if f"snapshot {first.image_id} done" in n]
    assert [n for n in done if f"snapshot {second.image_id} done" in n]


# ---- 3. a lock nothing explains: no storm, the server list is read again ----------------


async def test_3_app_an_unexplained_lock_makes_no_storm(sim):
    """The server is locked by an operation no listed action explains. The app, polled
    as `poll_live` would (the clock advanced by each poll's delay), sends at most 2 POSTs
    in a minute, re-reads the server list, stays within its budget, and shows the job
    waiting on the bare lock; `x` cancels it."""
    app = make_app(sim)  # the default budget: a quarter of the project's limit
    web = server_named(sim, "web-prod-01")
    delays = tick_delays(app)
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, sim)
        await op.load()
        sim.start_action(web, "migrate_server", 600, visible=False)
        await op.open_dialog(web)
        sim.clear_requests()
        start = sim.clock.now()

        async def run_for(seconds: float) -> None:
            await op.follow(start + seconds, delays)

        await pilot.press("enter")  # the first poll sends the request
        await op.settle()
        sim.advance(max(delays[-1], 0.5))
        await run_for(60)
        # the minute: no storm, the server list read again, within the budget
        requests = sim.requests()
        statuses = [r["status"] for r in requests if r["method"] == "POST"]
        assert 1 <= len(statuses) <= 2 and set(statuses) == {423}, statuses
        refused = next(i for i, r in enumerate(requests) if r["method"] == "POST")
        assert [r for r in requests[refused:] if r["path"] == "/v1/servers"]  # `locked`
        assert len(requests) <= budget_bound(app, 60), len(requests)
        # on screen: waiting on the bare lock
        [job] = app.jobs.jobs()
        job = op.job(job.id)
        assert job.state.value == "waiting", job.note
        assert job.blocking == "locked (no visible action)"
        assert "waiting: locked (no visible action)" in op.panels[-1]
        assert app.fleet.lock(web).unexplained
        sent = len(posts(sim))
        await run_for(300)
        assert len(posts(sim)) == sent  # it waits on the flag: no more POSTs
        row = await op.activity_row(job.id)
        assert row[2] == "waiting" and "locked (no visible action)" in row[7]
        await pilot.press("x")
        cancelled = op.job(job.id)
        row = await op.activity_row(job.id)
        await run_for(360)

    assert cancelled.state.value == "cancelled" and row[2] == "cancelled"
    assert [n for n in op.notes() if "Cancelled the snapshot of web-prod-01" in n]
    assert len(posts(sim)) == sent and not own_images(sim, cancelled)


# ---- 4. a context switch while a poll is in flight ---------------------------------------


class StepWatch:
    """Wraps a job engine's `step`: how many threads were in it at once, at most."""

    def __init__(self, engine) -> None:
        self.inside = 0
        self.most = 0
        self.calls = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        self._step = engine.step
        engine.step = self

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)
            self.threads.add(threading.get_ident())
        try:
            return self._step(*args, **kwargs)
        finally:
            with self._lock:
                self.inside -= 1


async def wait_for(pilot, condition, wall: float = 30.0) -> None:
    """Until `condition()` holds (another thread's progress), at most `wall` seconds."""
    deadline = time.monotonic() + wall
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)
        await pilot.pause()


async def test_4_app_a_context_switch_during_a_poll_neither_overlaps_nor_doubles(make_sim):
    """A job on prod whose POST is held (a latency fault) while the operator switches to
    staging with `c`: no second thread steps prod's job engine, the POST lands once, the
    job ends with its one image and stays in the Activity view after it finished."""
    prod = make_sim(seed=1, token="prod-token-1111")
    staging = make_sim(seed=2, servers=12, token="staging-token-2222")
    contexts = [
        Context("prod", "prod-token-1111", prod.url),
        Context("staging", "staging-token-2222", staging.url),
    ]

    def connect(context):
        return HetznerApi(context.token, context.endpoint, timeout=30)

    app = HsnapApp(
        HetznerApi("prod-token-1111", prod.url, timeout=30),  # held, never timed out
        context="prod",
        now=prod.clock.now,
        clock=prod.clock.now,
        poll_live=False,
        contexts=lambda: contexts,
        connect=connect,
    )
    web = server_named(prod, "web-prod-01")
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, prod, staging)
        await op.load()
        watch = StepWatch(app.jobs)
        prod.add_fault("latency", seconds=2, path_prefix=CREATE.format(web))
        await op.open_dialog(web)
        await pilot.press("enter")
        [held] = [w for w in app.workers if w.group == "refresh" and not w.is_finished]
        await wait_for(pilot, lambda: prod.pending())  # the poll waits for its POST
        [job] = app.all_jobs()
        await pilot.press("c")
        assert isinstance(app.screen, ContextScreen)
        await pilot.press("down", "enter")  # staging
        assert isinstance(app.screen, ConfirmScreen)
        message = str(app.screen.query_one("#confirm-message").content)
        assert "keeps following it in the background" in message
        await pilot.press("y")
        assert app.context == "staging"
        # whatever the switch started has run (the held poll still waits for its POST)
        await wait_for(
            pilot,
            lambda: (
                not [
                    w
                    for w in app.workers
                    if w.group == "refresh" and w is not held and not w.is_finished
                ]
            ),
        )
        assert not held.is_finished and prod.pending()
        assert watch.most == 1, f"{watch.most} threads stepped prod's job engine at once"
        prod.advance(2)  # the POST lands: 201
        await op.settle()
        assert "+1 job in other contexts" in app.status_text().plain
        done = await op.until_done(job.id)
        status = app.status_text().plain
        row = await op.activity_row(job.id)

    assert watch.most == 1, f"{watch.most} threads stepped prod's job engine at once"
    assert done.state.value == "succeeded", done.note
    assert own_images(prod, done) == [done.image_id]
    assert [p["status"] for p in posts(prod)] == [201] and posts(staging) == []
    assert "job in other contexts" not in status
    assert row[1] == "web-prod-01" and row[2] == "succeeded" and row[5] == str(done.image_id)
    assert [n for n in op.notes() if n.startswith("Snapshot job (prod): ") and "done" in n]


# ---- 5. a 201 without its image: the job ends, `s` works again ----------------------------


async def test_5_app_a_201_without_its_image_ends_and_s_works_again(sim):
    """The 201 of one of two marked servers lacks `image`. That job finds its image by
    its label and succeeds, the job stepped after it in the same tick is not held up,
    and `s` on the server works again afterwards."""
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    worker = server_named(sim, "worker-prod-01")  # listed after web: its job comes next
    sim.add_fault("strip", path_prefix=CREATE.format(web), field="image")
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, sim)
        await op.load()
        for server_id in (web, worker):
            await op.highlight(server_id)
            await pilot.press("space")
        jobs = {j.server_name: j for j in await op.snapshot()}
        first = op.job(jobs["web-prod-01"].id)
        other = op.job(jobs["worker-prod-01"].id)
        assert first.id < other.id
        assert first.state.value == UNKNOWN, first.note
        assert other.state.value == "running", other.note  # its step was not cut short
        assert "unknown" in op.panels[-1]
        first = await op.until_done(first.id)
        other = await op.until_done(other.id)
        await pilot.press("1")
        [again] = await op.snapshot(web)
        again = await op.until_done(again.id)
        row = await op.activity_row(first.id)

    assert first.state.value == "succeeded", first.note
    assert own_images(sim, first) == [first.image_id]
    assert other.state.value == "succeeded" and own_images(sim, other) == [other.image_id]
    assert again.state.value == "succeeded" and own_images(sim, again) == [again.image_id]
    assert again.image_id != first.image_id
    assert [p["status"] for p in posts(sim, web)] == [201, 201]
    assert [p["status"] for p in posts(sim, worker)] == [201]
    assert row[2] == "succeeded" and row[5] == str(first.image_id)
    assert not [n for n in op.notes() if "already has an active snapshot job" in n]
    assert not [n for n in op.notes() if "Refresh failed" in n]


# ---- 6. an error code the job does not know is not final ---------------------------------


async def test_6_app_an_unknown_error_after_processing_is_adopted(sim):
    """The POST is processed, then answered `502 bad_gateway` (JSON): the job looks for
    its image, adopts it and succeeds; nothing is sent again."""
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    sim.add_fault(
        "error", path_prefix=CREATE.format(web), after=True, code="bad_gateway", status=502
    )
    async with app.run_test(size=SIZE) as pilot:
        op = Operator(pilot, sim)
        await op.load()
        [job] = await op.snapshot(web)
        assert job.state.value == UNKNOWN, job.note
        done = await op.until_done(job.id)
        row = await op.activity_row(job.id)

    assert done.state.value == "succeeded", done.note
    assert own_images(sim, done) == [done.image_id]
    assert [p["status"] for p in posts(sim)] == [502]
    assert row[2] == "succeeded" and row[5] == str(done.image_id)
    assert [n for n in op.notes() if f"snapshot {done.image_id} done" in n]
    assert not [n for n in op.notes() if "failed" in n]
