"""Exactly once, point by point (issue #10): each scenario that once lost, doubled or
stalled a snapshot, through the real hcloud SDK against the simulator, on its clock."""

from __future__ import annotations

import json
import sys
import threading

import pytest
import requests

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.jobs import LATE_WINDOW, JobState
from hsnap_tui.core.naming import JOB_LABEL
from hsnap_tui.core.retention import plan_change, plan_retention
from hsnap_tui.core.session import Session, Workspace
from tests.conftest import START, TOKEN, wait_until
from tests.fake_http import FakeHandler, serving
from tests.test_core_jobs import LABELS, Rig

CREATE = "/v1/servers/{}/actions/create_image"


def own_images(sim, job) -> list[dict]:
    return [i for i in sim.world.images.values() if i["labels"].get(JOB_LABEL) == job.uid]


def posts(sim) -> list[dict]:
    return [r for r in sim.requests() if r["method"] == "POST"]


def advance_to(rig, when: float, step: float = 5.0) -> None:
    while rig.sim.clock.now() + step <= when:
        rig.tick(step)


# ---- 1. a late POST never makes a second image ---------------------------------------


def test_1_a_post_that_lands_late_is_adopted_not_repeated(sim):
    """The POST times out and lands 40 s later; another tool reboots the server from
    12 s to 36 s meanwhile. One request, one image, and the job reports it."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = sim.clock.now()
    sim.add_fault("latency", seconds=40, path_prefix=CREATE.format(web.id))
    rig.submit("web-prod-01")
    rig.tick(0)
    assert rig.job("web-prod-01").state == JobState.UNKNOWN
    advance_to(rig, t0 + 12)
    sim.start_action(web.id, "reboot_server", 24)
    advance_to(rig, t0 + 45)
    job = rig.job("web-prod-01")
    assert job.state == JobState.RUNNING, job.note  # its own image, adopted
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert len(posts(sim)) == 1 and job.posts == 1


def test_1_a_post_that_lands_on_a_locked_server_is_sent_again_once(sim):
    """It lands while the other tool holds the server (423 then): nothing was made, and
    the job sends again only after the request can no longer land."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = sim.clock.now()
    sim.add_fault("latency", seconds=20, path_prefix=CREATE.format(web.id))
    rig.submit("web-prod-01")
    rig.tick(0)
    advance_to(rig, t0 + 12)
    sim.start_action(web.id, "reboot_server", 24)
    advance_to(rig, t0 + LATE_WINDOW - 5)
    assert [p["status"] for p in posts(sim)] == [423]  # the late one, refused on landing
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [p["status"] for p in posts(sim)] == [423, 201]
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]


def test_1_a_job_checks_a_create_image_on_its_server_before_waiting_behind_it(sim):
    """Beyond the late window: the job sent again, found the server locked and waits;
    then its first request lands. It sees a create_image on its server, finds its own
    label on the image, and adopts it instead of waiting and sending a second one."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = sim.clock.now()
    sim.add_fault("latency", seconds=LATE_WINDOW + 30, path_prefix=CREATE.format(web.id))
    rig.submit("web-prod-01")
    rig.tick(0)
    advance_to(rig, t0 + LATE_WINDOW - 10)
    sim.start_action(web.id, "rebuild_server", 38)  # until t0 + LATE_WINDOW + 28
    advance_to(rig, t0 + LATE_WINDOW + 25)
    job = rig.job("web-prod-01")
    assert job.state == JobState.WAITING and job.maybe_landed
    advance_to(rig, t0 + LATE_WINDOW + 40)  # the lock clears; the old request lands
    job = rig.job("web-prod-01")
    assert job.state == JobState.RUNNING, job.note
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert [p["status"] for p in posts(sim)] == [201]


# ---- 2. another job's image is never taken for this one's ------------------------------


def test_2_same_description_does_not_make_a_false_success(sim):
    rig = Rig(sim)
    web = rig.server("web-prod-01")
    rig.submit("web-prod-01", template="{server}-{date}")
    rig.run_until_done()
    first = rig.job("web-prod-01")
    rig.tick(60)
    sim.add_fault("http_503", path_prefix=CREATE.format(web.id))  # before processing
    rig.submit("web-prod-01", template="{server}-{date}")
    rig.run_until_done()
    second = max(rig.engine.jobs(), key=lambda j: j.id)
    assert first.description == second.description
    assert second.state == JobState.SUCCEEDED
    assert second.image_id != first.image_id
    assert [i["id"] for i in own_images(sim, second)] == [second.image_id]
    assert [p["status"] for p in posts(sim)] == [201, 503, 201]


# ---- 3. a lock nothing explains: no storm, the slow lane looks again --------------------


def test_3_an_unexplained_lock_backs_off_and_rereads_the_server_list(sim):
    rig = Rig(sim, budget=0.25)
    web = rig.server("web-prod-01")
    # locked by an operation the actions API does not list, after the last full list
    sim.start_action(web.id, "migrate_server", 600, visible=False)
    rig.submit("web-prod-01")
    sim.clear_requests()
    start = sim.clock.now()
    session = rig.session
    while sim.clock.now() < start + 60:
        result = session.tick()
        sim.advance(max(result.next_delay, 0.5))
    assert len(posts(sim)) <= 2, [p["status"] for p in posts(sim)]
    assert any(r["path"] == "/v1/servers" for r in sim.requests())  # re-read `locked`
    job = rig.job("web-prod-01")
    assert job.state == JobState.WAITING and job.blocking == "locked (no visible action)"
    assert session.fleet.lock(web.id).unexplained
    # within the budget: a quarter of 3600/h is 15 a minute, plus the bucket's burst
    assert len(sim.requests()) <= 60 * session.budget.rate() + session.budget.capacity()
    sent = len(posts(sim))
    while sim.clock.now() < start + 300:
        result = session.tick()
        sim.advance(max(result.next_delay, 0.5))
    assert len(posts(sim)) == sent  # waits on the flag, no more POSTs


# ---- 4. one stepper, compare-and-set ------------------------------------------------------


def test_4_two_threads_never_step_one_session(sim):
    rig = Rig(sim, timeout=5)
    web = rig.server("web-prod-01")
    rig.submit("web-prod-01")
    sim.add_fault("latency", seconds=1, path_prefix=CREATE.format(web.id))
    results = []
    worker = threading.Thread(target=lambda: results.append(rig.session.tick()))
    worker.start()
    # the POST is held by the simulator, the step waits for it
    wait_until(lambda: sim.pending() or not worker.is_alive())
    assert worker.is_alive()
    second = rig.session.tick()  # another worker (an old poll after a context switch)
    step = rig.engine.step(rig.session.fleet)
    sim.advance(2)  # the held POST lands and is answered
    worker.join()
    assert second.ran is False and step.ran is False
    assert results[0].ran and rig.job("web-prod-01").state == JobState.RUNNING
    rig.run_until_done()
    assert len(posts(sim)) == 1 and len(own_images(sim, rig.job("web-prod-01"))) == 1


def test_4_a_cancel_during_a_lookup_wins_over_the_decision(sim):
    rig = Rig(sim)
    job = rig.submit("web-prod-01")[0][0]
    engine = rig.engine
    # a job whose earlier request may land: it looks its image up before anything else
    engine._update(engine.get(job.id), state=JobState.UNKNOWN, maybe_landed=True)
    lookup = rig.api.snapshots

    def cancelled_meanwhile(**options):
        images = lookup(**options)
        current = engine.get(job.id)
        engine._update(current, state=JobState.WAITING)  # …then the operator cancels
        assert engine.cancel(job.id) is None
        return images

    rig.api.snapshots = cancelled_meanwhile
    rig.tick()
    rig.api.snapshots = lookup
    assert engine.get(job.id).state == JobState.CANCELLED  # the stale decision dropped
    rig.tick(LATE_WINDOW)
    assert posts(sim) == [] and engine.get(job.id).state == JobState.CANCELLED


def test_4_a_cancel_cannot_hide_an_image_its_request_made(sim):
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    sim.add_fault("latency", seconds=8, path_prefix=CREATE.format(web.id))
    job = rig.submit("web-prod-01")[0][0]
    rig.tick(0)
    engine = rig.engine
    lookup = rig.api.snapshots

    def cancelled_meanwhile(**options):
        images = lookup(**options)
        current = engine.get(job.id)
        if current.state == JobState.UNKNOWN:
            engine._update(current, state=JobState.WAITING)
            engine.cancel(job.id)
        return images

    rig.api.snapshots = cancelled_meanwhile
    rig.tick(10)  # the request landed: the lookup finds the image
    rig.api.snapshots = lookup
    rig.run_until_done()
    done = engine.get(job.id)
    assert done.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, done)] == [done.image_id]


# ---- 5. no exception escapes a step; no job is stuck --------------------------------------


def test_5_a_201_without_its_image_is_adopted(sim):
    rig = Rig(sim)
    web = rig.server("web-prod-01")
    sim.add_fault("strip", path_prefix=CREATE.format(web.id), field="image")
    rig.submit("web-prod-01", "db-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    assert job.state == JobState.UNKNOWN and job.landed
    assert rig.job("db-prod-01").state in (JobState.RUNNING, JobState.WAITING)
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert len([p for p in posts(sim) if p["path"] == CREATE.format(web.id)]) == 1
    assert rig.job("db-prod-01").state == JobState.SUCCEEDED


def test_5_a_bug_in_one_job_neither_stalls_it_nor_stops_the_others(sim):
    rig = Rig(sim)
    web = rig.server("web-prod-01")
    rig.submit("web-prod-01", "db-prod-01")
    create = rig.api.create_image

    def broken(server_id, *args):
        if server_id == web.id:
            raise RuntimeError("a bug before anything was sent")
        return create(server_id, *args)

    rig.api.create_image = broken
    rig.tick()
    rig.api.create_image = create
    job = rig.job("web-prod-01")
    assert job.state == JobState.UNKNOWN and not job.landed
    assert rig.job("db-prod-01").state == JobState.RUNNING
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    # and a server whose job ended can be snapshotted again
    assert rig.submit("web-prod-01")[0]


def test_5_a_job_without_word_from_the_api_ends(sim):
    rig = Rig(sim, timeout=1.0, give_up_after=600)
    rig.submit("web-prod-01")
    rig.tick()
    job = rig.job("web-prod-01")
    assert job.state == JobState.RUNNING
    sim.go_offline()
    try:
        for _ in range(40):
            sim.advance(30)
            rig.tick(0)  # every poll fails: the API is away
            if not rig.job("web-prod-01").active:
                break
    finally:
        sim.go_online()
    assert rig.events and rig.events[-1].job.state == JobState.FAILED
    job = rig.job("web-prod-01")
    assert job.state == JobState.FAILED and job.error_code == "unknown"
    assert f"{JOB_LABEL}={job.uid}" in job.error_message


# ---- 6. an error code the job does not know is not final ----------------------------------


@pytest.mark.parametrize(
    ("after", "code", "statuses"),
    [(True, "bad_gateway", [502]), (False, "weird_new_code", [500, 201])],
)
def test_6_unknown_error_codes_make_the_outcome_unknown(sim, after, code, statuses):
    rig = Rig(sim)
    web = rig.server("web-prod-01")
    status = 502 if after else 500
    sim.add_fault("error", path_prefix=CREATE.format(web.id), after=after, code=code, status=status)
    rig.submit("web-prod-01")
    rig.tick()
    assert rig.job("web-prod-01").state == JobState.UNKNOWN
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert [p["status"] for p in posts(sim)] == statuses


# ---- 7. the audit log records each request's own ID ---------------------------------------


def test_7_audit_request_ids_are_per_request_under_thread_switches(make_sim, tmp_path):
    sim = make_sim(servers=24)
    snapshots = [
        s for s in sim.world.images.values() if s["type"] == "snapshot"
    ]  # every snapshot of the project, protected ones refused by the API
    for image in snapshots:
        image["protection"]["delete"] = False
        image["status"] = "available"
    api = HetznerApi(TOKEN, sim.url)
    audit = AuditLog(tmp_path / "audit.jsonl", context="t", endpoint=sim.url)
    session = Session(api, name="t", audit=audit, clock=sim.clock.now, now=sim.clock.now)
    session.tick()
    fleet = list(session.fleet.snapshots)
    halves = [fleet[::2], fleet[1::2]]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [
            threading.Thread(target=session.delete_snapshots, args=(half,)) for half in halves
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(old)
    by_path = {r["path"]: r["correlation_id"] for r in sim.requests() if r["method"] == "DELETE"}
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(entries) == len(fleet) >= 20
    assert all(e["request_id"] == by_path["/v1" + e["path"]] for e in entries)


# ---- 8. jobs of a context switched away from stay visible ------------------------------


def test_8_finished_jobs_of_a_background_session_stay_visible(make_sim):
    prod, staging = make_sim(seed=1), make_sim(seed=2, servers=8)

    def session(sim, name):
        api = HetznerApi(TOKEN, sim.url, timeout=1)
        return Session(api, name=name, clock=sim.clock.now, now=sim.clock.now, budget=1.0)

    live = session(prod, "prod")
    workspace = Workspace(live)
    live.tick()
    web, db = (
        next(s for s in live.fleet.servers.values() if s.name == name)
        for name in ("web-prod-01", "db-prod-01")
    )
    prod.add_fault("error", path_prefix=CREATE.format(db.id), code="invalid_input", status=400)
    live.submit([web, db], "{server}", LABELS)
    prod.advance(5)
    live.tick()
    other = session(staging, "staging")
    workspace.switch(other)
    for _ in range(100):
        prod.advance(10)
        staging.advance(10)
        for each in workspace.to_tick():
            each.refresher.request_fast()
            each.tick()
        if not live.jobs.active_jobs():
            break
    # the context left behind is no longer ticked, but its jobs stay, with their outcome
    assert workspace.background == [live] and workspace.to_tick() == [other]
    jobs = {j.server_name: j for j in workspace.all_jobs()}
    assert jobs["web-prod-01"].state == JobState.SUCCEEDED
    failed = jobs["db-prod-01"]
    assert failed.state == JobState.FAILED and failed.error_code == "invalid_input"
    assert failed.request_id and failed.context == "prod"
    workspace.switch(live)  # and back: the same session with the same jobs
    assert workspace.live is live and workspace.background == []
    assert sorted(j.id for j in workspace.all_jobs()) == sorted(j.id for j in jobs.values())


# ---- 9. every request charged once, at the hook ------------------------------------------


def test_9_every_request_is_charged_once_whoever_sends_it(sim):
    api = HetznerApi(TOKEN, sim.url, timeout=1.0)
    session = Session(api, name="t", clock=sim.clock.now, now=sim.clock.now)
    session.tick()
    web = next(s for s in session.fleet.servers.values() if s.name == "web-prod-01")
    threads = [
        threading.Thread(target=lambda: [api.server_actions(web.id) for _ in range(25)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.action(sim.world.visible_actions()[0].id)  # an inspector's fetch
    sim.add_fault("latency", seconds=5)
    with pytest.raises(requests.Timeout):
        api.server(web.id)  # timed out: still charged
    sim.add_fault("drop")
    with pytest.raises(requests.ConnectionError):
        api.server(web.id)
    sim.advance(10)
    assert session.budget.sent == api.monitor.requests_sent == len(sim.requests())


def test_9_all_unknown_jobs_share_one_lookup_per_tick(make_sim):
    sim = make_sim(servers=120)
    rig = Rig(sim)
    servers = list(rig.session.fleet.servers.values())
    rig.session.submit(servers, "{server}", LABELS)
    engine = rig.engine
    for job in engine.jobs():  # 120 jobs whose requests' outcome is unknown
        engine._update(job, state=JobState.UNKNOWN, maybe_landed=True, resend_after=1e18)
    sim.clear_requests()
    rig.step()
    lookups = [r for r in sim.requests() if r["path"] == "/v1/images"]
    assert len(lookups) == 3  # 40 job labels a request
    assert all(q["query"]["label_selector"][0].startswith(f"{JOB_LABEL} in (") for q in lookups)


class _Rewriting(FakeHandler):
    """A proxy in front of the simulator that says `RateLimit-Limit: 0`."""

    upstream = ""

    def do_GET(self):
        answer = requests.get(
            self.upstream + self.path, headers={"Authorization": self.headers["Authorization"]}
        )
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            self.send_header(name, "0" if name.lower() == "ratelimit-limit" else value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)


def test_9_a_zero_limit_from_a_proxy_is_ignored(sim):
    handler = type("H", (_Rewriting,), {"upstream": sim.base_url})
    with serving(handler) as url:
        api = HetznerApi(TOKEN, url)
        session = Session(api, name="t", clock=sim.clock.now, now=sim.clock.now)
        result = session.tick()
        assert result.error is None and result.lanes == ("fast", "slow")
        assert api.monitor.rate_limit.limit == 0
        assert session.budget.limit == 3600  # the default, not a division by zero
        sim.advance(result.next_delay)
        assert session.tick().error is None


def test_9_a_refresh_asked_for_during_a_poll_is_not_swallowed(sim):
    api = HetznerApi(TOKEN, sim.url, timeout=5)
    session = Session(api, name="t", clock=sim.clock.now, now=sim.clock.now)
    session.tick()
    sim.add_fault("latency", seconds=1, path_prefix="/v1/servers/actions")
    sim.advance(5)
    worker = threading.Thread(target=session.tick)
    worker.start()
    wait_until(sim.pending)
    session.request_full()  # `r`, pressed while the poll waits for its answer
    sim.advance(1)
    worker.join()
    sim.clear_requests()
    result = session.tick()  # right away: not due by the clock, but asked for
    assert result.lanes == ("fast", "slow")


# ---- 10. paging stops when the server repeats itself ---------------------------------------


class _StuckPager(FakeHandler):
    """Like a Prism mock of the OpenAPI description: every page is the same example,
    `page 3, next_page 4`."""

    hits = 0

    def do_GET(self):
        type(self).hits += 1
        key = "actions" if "actions" in self.path else "images" if "images" in self.path else None
        example = {"id": 42, "name": "my-server", "status": "running", "locked": False}
        items = [] if key else [example]
        body = json.dumps(
            {
                key or "servers": items,
                "meta": {
                    "pagination": {
                        "page": 3,
                        "per_page": 25,
                        "previous_page": 2,
                        "next_page": 4,
                        "last_page": 4,
                        "total_entries": 100,
                    }
                },
            }
        ).encode()
        self.reply(200, body)


def test_10_a_pager_that_repeats_itself_is_stopped():
    handler = type("H", (_StuckPager,), {"hits": 0})
    with serving(handler) as url:
        session = Session(HetznerApi("t", url), name="mock", clock=lambda: START, now=lambda: START)
        result = session.tick()
        assert result.error is None
        assert [s.name for s in session.fleet.servers.values()] == ["my-server"]
        assert handler.hits == 3  # one page of each list, not thousands


def test_10_a_list_that_changes_while_it_is_paged_is_complete(make_sim):
    sim = make_sim(servers=120)
    api = HetznerApi(TOKEN, sim.url)
    ids = sorted(sim.world.servers)
    state = {"pages": 0}

    def delete_one_on_page_one(method, path, response, fault):
        if path == "/v1/servers" and state["pages"] == 0:
            state["pages"] += 1
            del sim.world.servers[ids[3]]  # the rest shift one place to the front

    sim.response_observers.append(delete_one_on_page_one)
    listed = [s.id for s in api.servers()]
    assert sorted(listed) == sorted(set(ids) - {ids[3]})
    assert len(listed) == len(set(listed))


# ---- 11. retention plans from fresh data; changes are not undone by old lists -----------


def test_11_the_plan_is_recomputed_right_before_deleting(make_sim):
    sim = make_sim(scenario="demo")
    api = HetznerApi(TOKEN, sim.url)
    session = Session(api, name="t", clock=sim.clock.now, now=sim.clock.now)
    session.tick()
    plan = plan_retention(session.fleet.snapshots, 1)
    assert plan.delete
    victim = plan.delete[0]
    del sim.world.images[victim.id]  # another tool deleted one meanwhile
    fresh = session.replan(plan)
    change = plan_change(plan, fresh)
    assert [s.id for s in change.now_kept] == [victim.id]
    assert victim.id not in {s.id for s in session.fleet.snapshots}
    assert not plan_change(fresh, session.replan(fresh))


def test_11_an_older_list_cannot_undo_a_delete_or_a_new_image(make_sim):
    sim = make_sim(scenario="demo")
    api = HetznerApi(TOKEN, sim.url)
    session = Session(api, name="t", clock=sim.clock.now, now=sim.clock.now, budget=1.0)
    session.tick()
    victim = next(s for s in session.fleet.snapshots if not s.protected and s.status == "available")
    web = next(s for s in session.fleet.servers.values() if not session.fleet.lock(s.id).held)
    other_tool = HetznerApi(TOKEN, sim.url)
    made = []

    def meanwhile(method, path, response, fault):
        # the slow lane's snapshot list has been read, and is on its way back …
        if path == "/v1/images" and method == "GET" and not made:
            made.append(None)
            # … when the operator deletes a snapshot, and a retention re-read sees a
            # snapshot that another tool just made
            session.delete_snapshots([victim])
            image, _ = other_tool.create_image(web.id, "by another tool", {})
            made[0] = image.id
            session.fresh_snapshots()

    session.request_full()
    sim.response_observers.append(meanwhile)
    session.tick()
    ids = {s.id for s in session.fleet.snapshots}
    assert made[0] and made[0] in ids
    assert victim.id not in ids
    sim.response_observers.remove(meanwhile)
    sim.advance(60)
    session.request_full()
    session.tick()  # a list asked for after the changes knows them itself
    assert session.refresher._changes == {}
    ids = {s.id for s in session.fleet.snapshots}
    assert made[0] in ids and victim.id not in ids
