"""Snapshot jobs against the simulator: waiting behind locks, skipping, and never a
second image — whatever the network does to the create_image request."""

from __future__ import annotations

import json

import pytest

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.jobs import JobState, LockPolicy
from hsnap_tui.core.models import Server
from hsnap_tui.core.naming import (
    JOB_LABEL,
    TemplateError,
    check_labels,
    check_template,
    render_description,
)
from hsnap_tui.core.session import Session
from tests.conftest import TOKEN

LABELS = {"managed-by": "hsnap"}


class Rig:
    """A session on the simulator's clock; `tick()` moves the clock, asks for the fast
    lane and runs one session tick (a poll, then one job step), as the app's worker
    does."""

    def __init__(self, sim, tmp_path=None, timeout: float = 5.0, **options) -> None:
        # the whole project's budget: these tests force a poll on every tick
        options.setdefault("budget", 1.0)
        self.sim = sim
        # the first read (the fleet, its schemas compiled by the contract checks) with
        # time to spare on a loaded machine; the test's own timeout from then on
        self.api = HetznerApi(sim.token, sim.url, timeout=max(timeout, 10.0))
        path = tmp_path / "audit.jsonl" if tmp_path else None
        self.audit = AuditLog(path, context="test", endpoint=sim.url, now=sim.clock.now)
        self.session = Session(
            self.api,
            name="test",
            audit=self.audit,
            clock=sim.clock.now,
            now=sim.clock.now,
            **options,
        )
        self.refresher = self.session.refresher
        self.engine = self.session.jobs
        self.events = []
        self.session.tick()
        self.api.client._client._timeout = timeout

    def server(self, name: str) -> Server:
        return next(s for s in self.session.fleet.servers.values() if s.name == name)

    def submit(self, *names: str, policy=LockPolicy.WAIT, template="{server}-snap"):
        return self.session.submit([self.server(n) for n in names], template, LABELS, policy)

    def tick(self, advance: float = 5.0):
        self.sim.advance(advance)
        self.refresher.request_fast()
        result = self.session.tick()
        self.events.extend(result.events)
        return result.events

    def step(self):
        """One job step on the picture the session has (no poll before it)."""
        result = self.engine.step(self.session.fleet)
        self.events.extend(result.events)
        return result

    def job(self, name: str):
        return next(j for j in self.engine.jobs() if j.server_name == name)

    def posts(self):
        return [r for r in self.sim.requests() if r["method"] == "POST"]

    def images(self, description: str):
        return [i for i in self.sim.world.images.values() if i["description"] == description]

    def run_until_done(self, limit: int = 200) -> None:
        for _ in range(limit):
            if not self.engine.active_jobs():
                return
            self.tick(10)
        raise AssertionError("jobs did not finish")


def test_wait_for_lock_then_succeed(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server = rig.server("web-prod-01")
    blocker = sim.start_action(server.id, "rebuild_server", 30)
    rig.tick(1)
    rig.submit("web-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    assert job.state == JobState.WAITING
    assert job.blocking == f"#{blocker['id']} rebuild 20%"
    assert job.blocking_action_id == blocker["id"]
    assert rig.posts() == []
    rig.tick(30)  # the rebuild ends; the job sends its request
    job = rig.job("web-prod-01")
    assert job.state == JobState.RUNNING and job.action_id and job.image_id
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert job.image_size_gb and job.image_size_gb > 0
    assert len(rig.posts()) == 1
    image = sim.world.images[job.image_id]
    assert (image["status"], image["description"], image["labels"]) == (
        "available",
        "web-prod-01-snap",
        {**LABELS, JOB_LABEL: job.uid},
    )
    assert [e.message for e in rig.events] == [
        f"web-prod-01: snapshot {job.image_id} done, {job.image_size_gb:.1f} GB"
    ]


def test_skip_a_locked_server(sim):
    rig = Rig(sim)
    server = rig.server("db-prod-01")
    sim.start_action(server.id, "rebuild_server", 300)
    rig.tick(1)
    rig.submit("db-prod-01", policy=LockPolicy.SKIP)
    rig.tick()
    job = rig.job("db-prod-01")
    assert job.state == JobState.SKIPPED and "rebuild" in job.blocking
    assert rig.posts() == []


def test_second_s_on_the_same_server_sends_nothing(sim):
    rig = Rig(sim)
    queued, refused = rig.submit("web-prod-01")
    again, refused_again = rig.submit("web-prod-01")
    assert len(queued) == 1 and refused == []
    assert again == [] and refused_again[0][1] == "already has an active snapshot job"
    rig.run_until_done()
    assert len(rig.posts()) == 1
    assert len(rig.images("web-prod-01-snap")) == 1


def test_dropped_after_processing_is_reconciled_into_one_image(sim):
    rig = Rig(sim)
    server = rig.server("web-prod-01")
    sim.add_fault(
        "drop", count=1, after=True, path_prefix=f"/v1/servers/{server.id}/actions/create_image"
    )
    rig.submit("web-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    assert job.state == JobState.UNKNOWN and job.maybe_landed
    assert "outcome unknown" in job.note
    rig.tick()  # looks for its image by its label before anything else, and adopts it
    job = rig.job("web-prod-01")
    assert job.state == JobState.RUNNING and job.landed
    lookup = [r for r in sim.requests() if r["path"] == "/v1/images"][-1]
    assert lookup["query"]["label_selector"] == [f"{JOB_LABEL} in ({job.uid})"]
    rig.run_until_done()
    assert rig.job("web-prod-01").state == JobState.SUCCEEDED
    assert len(rig.posts()) == 1
    assert len(rig.images("web-prod-01-snap")) == 1


@pytest.mark.parametrize(("after", "posts"), [(False, 2), (True, 1)])
def test_503_on_create_image_never_doubles(sim, after, posts):
    rig = Rig(sim)
    server = rig.server("web-prod-01")
    sim.add_fault(
        "http_503",
        count=1,
        after=after,
        path_prefix=f"/v1/servers/{server.id}/actions/create_image",
    )
    rig.submit("web-prod-01")
    rig.tick()
    assert rig.job("web-prod-01").state == JobState.UNKNOWN
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in rig.images("web-prod-01-snap")] == [job.image_id]
    assert len(rig.posts()) == posts  # resent only when no image had been made


def test_timeout_on_create_image_waits_for_a_late_landing(make_sim):
    sim = make_sim()
    rig = Rig(sim, timeout=0.2)
    server = rig.server("web-prod-01")
    # the request reaches the API 30 simulated seconds late, after the client gave up
    sim.add_fault(
        "latency", count=1, seconds=30, path_prefix=f"/v1/servers/{server.id}/actions/create_image"
    )
    rig.submit("web-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    assert job.state == JobState.UNKNOWN and "the API did not answer in time" in job.note
    rig.tick(10)
    assert rig.job("web-prod-01").state == JobState.UNKNOWN  # nothing yet: no second send
    assert rig.images("web-prod-01-snap") == []
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in rig.images("web-prod-01-snap")] == [job.image_id]
    assert len(rig.posts()) == 1


def test_lock_between_look_and_request_puts_the_job_back_to_waiting(sim):
    rig = Rig(sim)
    server = rig.server("web-prod-01")
    rig.submit("web-prod-01")
    rig.sim.advance(5)
    rig.refresher.request_fast()
    rig.refresher.poll()  # the job's lock picture: unlocked
    sim.start_action(server.id, "rebuild_server", 20)  # … another tool is faster
    rig.step()
    job = rig.job("web-prod-01")
    assert job.state == JobState.WAITING
    assert job.error_code == "locked"
    locked_post = rig.posts()[0]
    assert locked_post["status"] == 423
    assert job.request_id == locked_post["correlation_id"]
    rig.tick()
    assert "rebuild" in rig.job("web-prod-01").blocking
    rig.run_until_done()
    assert rig.job("web-prod-01").state == JobState.SUCCEEDED
    assert [p["status"] for p in rig.posts()] == [423, 201]


def test_action_error_fails_the_job_with_its_code(sim):
    rig = Rig(sim)
    rig.submit("web-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    sim.world.actions[job.action_id].fail_with = {
        "code": "image_creation_failed",
        "message": "disk read error",
    }
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.FAILED
    assert (job.error_code, job.error_message) == ("image_creation_failed", "disk read error")
    assert "failed — image_creation_failed: disk read error" in rig.events[0].message


def test_other_refusals_fail_with_the_request_id(sim):
    rig = Rig(sim)
    queued, _ = rig.engine.submit(
        [rig.server("web-prod-01")], "{server}", {"ok": "fine"}, LockPolicy.WAIT
    )
    del sim.world.servers[queued[0].server_id]  # deleted by someone else meanwhile
    rig.step()
    job = rig.job("web-prod-01")
    assert job.state == JobState.FAILED and job.error_code == "not_found"
    assert job.request_id == rig.posts()[0]["correlation_id"]


def test_ten_servers_ten_posts_and_one_progress_poll_per_tick(make_sim):
    sim = make_sim(servers=40)
    rig = Rig(sim)
    names = sorted(
        s.name
        for s in rig.refresher.fleet.servers.values()
        if not rig.refresher.fleet.lock(s.id).held
    )[:10]
    rig.submit(*names)
    rig.tick()
    assert len(rig.posts()) == 10
    assert all(rig.job(n).state == JobState.RUNNING for n in names)
    for _ in range(3):
        sim.clear_requests()
        rig.tick()
        paths = [r["path"] for r in sim.requests()]
        assert paths.count("/v1/actions") == 1
        ids = sim.requests()[paths.index("/v1/actions")]["query"]["id"]
        assert sorted(map(int, ids)) == sorted(rig.job(n).action_id for n in names)
        assert not [r for r in sim.requests() if r["method"] == "POST"]
    rig.run_until_done()
    assert all(rig.job(n).state == JobState.SUCCEEDED for n in names)


def test_more_than_fifty_running_jobs_poll_in_chunks(make_sim):
    sim = make_sim(servers=60)
    rig = Rig(sim)
    free = [
        s.name
        for s in rig.refresher.fleet.servers.values()
        if not rig.refresher.fleet.lock(s.id).held
    ][:55]
    rig.submit(*free)
    for _ in range(5):  # the sends are paced by the request budget
        rig.tick(5)
        if all(j.state == JobState.RUNNING for j in rig.engine.jobs()):
            break
    assert all(j.state == JobState.RUNNING for j in rig.engine.jobs())
    sim.clear_requests()
    rig.tick(1)
    calls = [r for r in sim.requests() if r["path"] == "/v1/actions"]
    assert [len(c["query"]["id"]) for c in calls] == [50, 5]


def test_cancel_queued_or_waiting_only(sim):
    rig = Rig(sim)
    server = rig.server("db-prod-01")
    sim.start_action(server.id, "rebuild_server", 300)
    rig.tick(1)
    rig.submit("db-prod-01", "web-prod-01")
    rig.tick()
    waiting, running = rig.job("db-prod-01"), rig.job("web-prod-01")
    assert (waiting.state, running.state) == (JobState.WAITING, JobState.RUNNING)
    assert rig.engine.cancel(waiting.id) is None
    assert rig.job("db-prod-01").state == JobState.CANCELLED
    assert rig.engine.cancel(running.id) == "a running job cannot be cancelled"
    rig.tick(400)
    assert len(rig.posts()) == 1  # nothing sent for the cancelled one


def test_audit_log_records_every_create_image_without_the_token(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server = rig.server("web-prod-01")
    sim.start_action(server.id, "rebuild_server", 10)
    rig.submit("web-prod-01")
    rig.step()  # stale picture: unlocked → 423
    rig.run_until_done()
    job = rig.job("web-prod-01")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    created = f"201 created image {job.image_id}"
    assert [e["outcome"] for e in entries] == ["refused: 423 locked", created]
    for entry, post in zip(entries, rig.posts(), strict=True):
        assert entry["method"] == "POST"
        assert entry["path"] == f"/servers/{server.id}/actions/create_image"
        assert entry["server"] == "web-prod-01"
        assert entry["context"] == "test"
        assert entry["endpoint_host"] == sim.url.split("/")[2]
        assert entry["request_id"] == post["correlation_id"]
    assert TOKEN not in (tmp_path / "audit.jsonl").read_text()
    # a later run shows the earlier entries
    again = AuditLog(tmp_path / "audit.jsonl", context="test", endpoint=sim.url)
    assert [e.outcome for e in again.entries] == ["refused: 423 locked", created]


def test_description_template_and_labels():
    server = Server(
        id=42,
        name="web-1",
        status="running",
        locked=False,
        server_type="cx22",
        location="fsn1",
        ipv4=None,
        ipv6=None,
    )
    when = 1795694400.0 + 3600 * 5 + 7 * 60
    assert render_description("{server}-{date}-{time}", server, when) == ("web-1-2026-11-26-1707")
    assert render_description("#{id} {server}", server, when) == "#42 web-1"
    for bad in ["", "{nope}", "{server", "{server:>10}", "{server!r}", "x" * 300]:
        with pytest.raises(TemplateError):
            check_template(bad)
    assert check_labels("managed-by=hsnap, env=prod") == {"managed-by": "hsnap", "env": "prod"}
    with pytest.raises(TemplateError, match="not key=value"):
        check_labels("bad key=1")
    with pytest.raises(TemplateError, match="must be at most 63"):
        check_labels("k=" + "v" * 64)
    with pytest.raises(TemplateError, match="set by hsnap-tui"):
        check_labels(f"{JOB_LABEL}=mine")
