"""The reviewer's attacks on the exactly-once job engine (the scripts in /tmp/attack/,
fixed in 188a1ef), each as a regression test on the simulator's stopped clock: one
image per confirmed snapshot, a job that reports the image its request made, every job
ending, the lanes going on when one list fails, the pager bounded, and API or operator
text shown as it is."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from textual.widgets import DataTable, Input

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.jobs import LATE_WINDOW, JobState, LockPolicy
from hsnap_tui.core.retention import plan_retention
from hsnap_tui.core.session import Session
from hsnap_tui.sim import routes
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from hsnap_tui.ui.screens.snapshots import SnapshotsScreen
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import START, TOKEN, make_app, poll
from tests.contract.openapi import ContractRecorder
from tests.fake_http import FakeHandler, serving
from tests.test_core_jobs import LABELS, Rig
from tests.test_exactly_once import advance_to, own_images, posts

CREATE = "/v1/servers/{}/actions/create_image"
FAST = "/v1/servers/actions"  # the fast lane: the running actions


def session_on(sim, url: str | None = None, timeout: float = 5.0, **options) -> Session:
    api = HetznerApi(TOKEN, url or sim.url, timeout=timeout)
    audit = AuditLog(None, context="t", endpoint=sim.url, now=sim.clock.now)
    return Session(api, name="t", audit=audit, clock=sim.clock.now, now=sim.clock.now, **options)


def named(session, name: str):
    return next(s for s in session.fleet.servers.values() if s.name == name)


def job_of(session, name: str):
    return next(j for j in session.jobs.jobs() if j.server_name == name)


def like_the_app(sim, session, until: float, events: list | None = None) -> None:
    """Poll as `HsnapApp` does with `poll_live`: one tick, then wait the tick's
    `next_delay` (at least 0.2 s), on the simulator's clock."""
    while sim.clock.now() < until:
        result = session.tick()
        if events is not None:
            events.extend(result.events)
        sim.advance(max(0.2, result.next_delay))


def off_contract(sim) -> None:
    """The test makes the simulator's data break the API's contract on purpose."""
    sim.response_observers[:] = [
        o for o in sim.response_observers if not isinstance(o, ContractRecorder)
    ]


def post_lands_late(sim, server, seconds: float = LATE_WINDOW + 30) -> float:
    """The server's next create_image lands `seconds` late (test 1c's timeline: past
    the late window); returns the time it was sent."""
    sim.add_fault("latency", seconds=seconds, path_prefix=CREATE.format(server.id))
    return sim.clock.now()


# ---- F4: its own create_image, not seen, then a resend -----------------------------------


def test_f4_an_unseen_late_landing_is_found_before_sending_again(sim):
    """The job waits behind another tool's rebuild while its first POST may still land.
    The operator's network drops for 150 s right when the rebuild ends: the late POST
    lands and its snapshot runs and ends unseen. Back online, the job looks its label up
    before sending again, and adopts the image: one POST, one image."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = post_lands_late(sim, web)
    rig.submit("web-prod-01")
    rig.tick(0)
    advance_to(rig, t0 + LATE_WINDOW - 10)
    sim.start_action(web.id, "rebuild_server", 38)  # until t0 + LATE_WINDOW + 28
    advance_to(rig, t0 + LATE_WINDOW + 25)
    job = rig.job("web-prod-01")
    assert job.state == JobState.WAITING and job.maybe_landed
    sim.go_offline()
    try:
        for _ in range(30):
            sim.advance(5)
            rig.session.tick()  # every poll fails
    finally:
        sim.go_online()
    [landed] = own_images(sim, job)
    assert landed["status"] == "available"  # made and finished while nobody looked
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED and job.image_id == landed["id"]
    assert [i["id"] for i in own_images(sim, job)] == [landed["id"]]
    assert [p["status"] for p in posts(sim)] == [201] and job.posts == 1
    assert job.duplicates == ()


def test_f4b_a_failing_lookup_holds_the_resend(sim):
    """Like F4 with the API up, but the label lookup (GET /images) answers 503 twelve
    times around the landing: no resend without a lookup that found nothing."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = post_lands_late(sim, web)
    rig.submit("web-prod-01")
    rig.tick(0)
    advance_to(rig, t0 + LATE_WINDOW - 10)
    sim.start_action(web.id, "rebuild_server", 38)
    advance_to(rig, t0 + LATE_WINDOW + 25)
    sim.add_fault("http_503", count=12, path_prefix="/v1/images", method="GET")
    advance_to(rig, t0 + LATE_WINDOW + 35)
    rig.run_until_done()
    job = rig.job("web-prod-01")
    lookups = [r["status"] for r in sim.requests() if r["path"] == "/v1/images"]
    assert lookups.count(503) == 12  # the fault was spent on the lookups meanwhile
    assert job.state == JobState.SUCCEEDED
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert [p["status"] for p in posts(sim)] == [201] and job.posts == 1


# ---- F1: a large deletion puts the budget in debt ---------------------------------------


def test_f1_budget_debt_neither_fails_a_job_nor_silences_the_fast_lane(sim):
    """A retention apply deletes ~490 snapshots at once: the budget is ~35 minutes in
    debt. The running job's snapshot ends meanwhile: the job ends succeeded with its
    image (not failed for 'no word from the API'), and the fast lane still runs at
    least once a minute while the debt is paid back."""
    donor = next(s for s in sim.world.servers.values() if s["name"] == "db-prod-01")
    for i in range(480):  # old hsnap snapshots that retention prunes
        sim.world.make_image(
            donor,
            image_type="snapshot",
            description=f"old-{i}",
            labels=dict(LABELS),
            created=START - 86400 * 30 - i * 60,
            status="available",
            image_size=1.0,
        )
    session = session_on(sim)
    session.tick()
    session.submit([named(session, "web-prod-01")], "{server}-{date}", LABELS)
    events: list = []
    like_the_app(sim, session, sim.clock.now() + 10, events)
    job = job_of(session, "web-prod-01")
    assert job.state == JobState.RUNNING
    plan = session.replan(plan_retention(session.fleet.snapshots, 3))
    assert len(plan.delete) > 400
    session.delete_snapshots(plan.delete)
    debt = -session.budget.available() / session.budget.rate()
    assert debt > 30 * 60  # seconds until the budget is back at zero
    start = sim.clock.now()
    sim.clear_requests()
    like_the_app(sim, session, start + 40 * 60, events)
    job = job_of(session, "web-prod-01")
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert sim.world.images[job.image_id]["status"] == "available"
    assert [e.message for e in events] == [
        f"web-prod-01: snapshot {job.image_id} done, {job.image_size_gb:.1f} GB"
    ]
    times = [start] + [r["time"] for r in sim.requests() if r["path"] == FAST]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[-1] > start + 39 * 60
    assert max(gaps) <= 60.5, gaps  # at least once a minute …
    in_debt = [t for t in times[1:] if t < start + 30 * 60]
    assert len(in_debt) <= 31, in_debt  # … and about only that while the debt lasts


# ---- F2: the full list fails, the fast lane works -----------------------------------------


@pytest.mark.parametrize("variant", ["images_500", "odd_created"])
def test_f2_a_failing_full_list_stalls_no_job_and_backs_off(make_sim, variant):
    """Only the slow lane fails — A: GET /images answers 500 for good; B: one snapshot
    of another tool has a `created` the parser rejects. The running job is followed on
    the fast lane and ends succeeded; the full list is retried with a growing backoff,
    not on every poll."""
    sim = make_sim()
    session = session_on(sim)
    session.tick()
    session.submit([named(session, "web-prod-01")], "{server}-{date}", LABELS)
    like_the_app(sim, session, sim.clock.now() + 6)
    assert job_of(session, "web-prod-01").state == JobState.RUNNING
    if variant == "images_500":
        sim.add_fault("http_500", count=100_000, path_prefix="/v1/images", method="GET")
    else:
        off_contract(sim)
        other = next(i for i in sim.world.images.values() if i["type"] == "snapshot")
        other["created"] = "2026-11-26 12:00:00 UTC"  # not RFC 3339
    start = sim.clock.now()
    sim.clear_requests()
    like_the_app(sim, session, start + 35 * 60)
    job = job_of(session, "web-prod-01")
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    assert sim.world.images[job.image_id]["status"] == "available"
    assert session.refresher.slow_error  # and it says why the list is old
    full = [r["time"] - start for r in sim.requests() if r["path"] == "/v1/servers"]
    # backing off 20, 40, 80, 160 s, then every 5 minutes: 10 reads in 35 minutes
    assert len(full) <= 11, full
    gaps = [b - a for a, b in itertools.pairwise(full)]
    assert gaps == sorted(gaps) and gaps[-1] >= 300, gaps
    fast = [r for r in sim.requests() if r["path"] == FAST]
    assert len(fast) > 10 * len(full)  # the fast lane went on at its own pace


# ---- F3: skipped or cancelled while its request may land ----------------------------------


@pytest.mark.parametrize("mode", ["skip", "cancel"])
def test_f3_a_job_ended_while_its_request_may_land_reports_the_image(sim, mode):
    """Test 1c's timeline with --if-locked skip, or the operator cancelling the waiting
    job: it ends while its first POST is still on its way. The POST lands and makes an
    image with its label: the job reports that image; one POST, one image."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    t0 = post_lands_late(sim, web)
    policy = LockPolicy.SKIP if mode == "skip" else LockPolicy.WAIT
    rig.submit("web-prod-01", policy=policy)
    rig.tick(0)
    advance_to(rig, t0 + LATE_WINDOW - 10)
    sim.start_action(web.id, "rebuild_server", 38)
    advance_to(rig, t0 + LATE_WINDOW + 25)
    job = rig.job("web-prod-01")
    assert sim.pending() and job.maybe_landed
    if mode == "cancel":
        assert job.state == JobState.WAITING
        assert rig.session.cancel(job.id) is None
    assert rig.job("web-prod-01").state == (
        JobState.SKIPPED if mode == "skip" else JobState.CANCELLED
    )
    advance_to(rig, t0 + LATE_WINDOW + 200)
    job = rig.job("web-prod-01")
    [image] = own_images(sim, job)
    assert job.image_id == image["id"] and job.state == JobState.SUCCEEDED
    assert [p["status"] for p in posts(sim)] == [201]
    ended = "skipped" if mode == "skip" else "cancelled"
    messages = [e.message for e in rig.events]
    assert f"web-prod-01: {ended}, but its earlier request made image {image['id']}" in messages


# ---- F6a: a list read while it changes ---------------------------------------------------


def test_f6a_a_server_missing_from_one_list_read_does_not_fail_its_job(make_sim):
    """Another tool deletes a server on page 1 and creates one while the slow lane pages
    GET /servers: the job's server shifts from page 2 to page 1 and is missing from
    that read. The job must not fail `not_found` on a list read (only the API's 404 may
    say a server is gone); it waits for its server's lock and then snapshots it.

    Known residual (not asserted): the server itself is still missing from the fleet
    picture, and so from the table, until the next full list — the total did not change,
    so the read looks complete."""
    sim = make_sim(servers=60)
    session = session_on(sim, budget=1.0)
    session.tick()
    ids = sorted(sim.world.servers)
    victim = ids[50]  # the first server of page 2
    name = sim.world.servers[victim]["name"]
    sim.start_action(victim, "rebuild_server", 90)
    sim.advance(5)
    session.refresher.request_fast()
    session.tick()
    session.submit([named(session, name)], "{server}-snap", LABELS)
    sim.advance(5)
    session.refresher.request_fast()
    session.tick()
    assert job_of(session, name).state == JobState.WAITING
    armed = [True]

    def churn(method, path, response, fault):
        if armed[0] and method == "GET" and path == "/v1/servers":
            armed[0] = False
            del sim.world.servers[ids[3]]  # deleted by another tool
            new = copy.deepcopy(sim.world.servers[ids[10]])  # created by another tool
            new["id"], new["name"] = ids[-1] + 1000, "ci-runner-tmp-99"
            sim.world.servers[new["id"]] = new

    sim.response_observers.append(churn)
    sim.advance(30)
    session.request_full()
    events = list(session.tick().events)
    assert not armed[0]  # the list did change while it was read
    job = job_of(session, name)
    assert job.state == JobState.WAITING, (job.error_code, job.error_message)
    sim.response_observers.remove(churn)
    for _ in range(120):
        if not session.jobs.active_jobs():
            break
        sim.advance(10)
        session.refresher.request_fast()
        events += session.tick().events
    job = job_of(session, name)
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert [e.job.state for e in events] == [JobState.SUCCEEDED]


# ---- F6b: pagers that do not page as asked ------------------------------------------------


def test_f6b_a_server_that_pages_by_25_still_lists_every_server(make_sim, monkeypatch):
    """The API (or something in front) ignores `per_page=50` and pages by 25, saying so
    in `per_page`: all 120 servers are read, in 5 pages, never a silent partial list."""
    sim = make_sim(servers=120)
    page_of = routes._page
    monkeypatch.setattr(routes, "_page", lambda query: (page_of(query)[0], 25))
    api = HetznerApi(TOKEN, sim.url)
    sim.clear_requests()
    listed = api.servers()
    assert sorted(s.id for s in listed) == sorted(sim.world.servers)
    assert [r["query"]["page"] for r in sim.requests()] == [["1"], ["2"], ["3"], ["4"], ["5"]]


class _EndlessPager(FakeHandler):
    """Pages for ever: `total_entries` null ("can be null if unknown"), every answer
    offering the next page. `fresh` pagers make up a new item on every page."""

    fresh = False
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
        ident = page if self.fresh else 1
        if "/actions" in self.path:
            key, item = (
                "actions",
                {
                    "id": ident,
                    "command": "create_image",
                    "status": "success",
                    "progress": 100,
                    "started": "2026-11-26T11:00:00+00:00",
                    "finished": "2026-11-26T11:01:00+00:00",
                    "resources": [],
                    "error": None,
                },
            )
        elif "/images" in self.path:
            key, item = (
                "images",
                {
                    "id": ident,
                    "type": "snapshot",
                    "status": "available",
                    "description": "d",
                    "labels": {},
                },
            )
        else:
            key, item = "servers", {"id": ident, "name": f"s{ident}", "status": "running"}
        pagination = {
            "page": page,
            "per_page": 50,
            "previous_page": page - 1 or None,
            "next_page": page + 1,
            "last_page": None,
            "total_entries": None,
        }
        body = json.dumps({key: [item], "meta": {"pagination": pagination}}).encode()
        self.reply(200, body)


@pytest.fixture
def endless():
    with contextlib.ExitStack() as stack:

        def start(fresh: bool):
            handler = type("Pager", (_EndlessPager,), {"fresh": fresh, "hits": 0})
            return handler, stack.enter_context(serving(handler))

        yield start


def test_f6b_an_endless_pager_repeating_itself_stops_at_once(endless):
    """Null total, the same item on every page: a page that adds nothing ends the read.
    Two pages of each of the three lists, not a thousand."""
    handler, url = endless(fresh=False)
    session = Session(HetznerApi("t", url), name="mock", clock=lambda: START, now=lambda: START)
    result = session.tick()
    assert result.error is None and result.lanes == ("fast", "slow")
    assert handler.hits == 6
    assert session.budget.sent == 6


def test_f6b_an_endless_pager_with_new_items_is_bounded_by_the_budget(endless):
    """Null total and a new item on every page: nothing says where the list ends, so
    the session's budget does — the read stops once the debt reaches a full bucket."""
    handler, url = endless(fresh=True)
    session = Session(HetznerApi("t", url), name="mock", clock=lambda: START, now=lambda: START)
    result = session.tick()
    assert result.error is not None and "budget" in result.error
    capacity = session.budget.capacity()  # a minute's share and one slow refresh
    # the bucket full, then as deep in debt again, and the one page that went past
    assert handler.hits == math.floor(2 * capacity) + 1, (handler.hits, capacity)
    assert session.budget.sent == handler.hits


# ---- F8: queued and waiting jobs while the API is away -----------------------------------


def test_f8_queued_and_waiting_jobs_end_while_the_api_is_away(sim):
    """One job waits behind a rebuild, another is queued while the network is down.
    Neither can reach the API for give_up_after: both end failed, saying that nothing
    was sent; and nothing was."""
    session = session_on(sim, timeout=1.0, give_up_after=600)
    session.tick()
    web, db = named(session, "web-prod-01"), named(session, "db-prod-01")
    sim.start_action(db.id, "rebuild_server", 600)
    sim.advance(6)
    session.tick()
    session.submit([db], "{server}", LABELS)
    sim.advance(6)
    session.refresher.request_fast()
    session.tick()
    assert job_of(session, "db-prod-01").state == JobState.WAITING
    sim.go_offline()
    events: list = []
    try:
        session.submit([web], "{server}", LABELS)
        start = sim.clock.now()
        like_the_app(sim, session, start + 900, events)
    finally:
        sim.go_online()
    assert not session.jobs.active_jobs()
    for name in ("web-prod-01", "db-prod-01"):
        job = job_of(session, name)
        assert job.state == JobState.FAILED and job.error_code == "unknown"
        assert job.error_message == "could not reach the API for 10 minutes; nothing was sent"
        assert job.finished_at - start <= 600 + 60  # give_up_after, plus one backoff
    assert sorted(e.message for e in events) == [
        f"{name}: failed — unknown: could not reach the API for 10 minutes; nothing was sent"
        for name in ("db-prod-01", "web-prod-01")
    ]
    assert posts(sim) == []


# ---- F10: a request that lands just past the late window ---------------------------------


def test_f10_a_second_image_from_a_request_past_the_late_window_is_reported(sim):
    """The POST lands 30 s after the resend's snapshot is done, past LATE_WINDOW. The
    resend was right by the rule, and exactly once cannot hold past any window — but the
    second image is reported: in `job.duplicates` and in an event."""
    rig = Rig(sim, timeout=1.0)
    web = rig.server("web-prod-01")
    took = sim.world.snapshot_seconds(web.id)
    t0 = sim.clock.now()
    sim.add_fault("latency", seconds=LATE_WINDOW + took + 30, path_prefix=CREATE.format(web.id))
    rig.submit("web-prod-01")
    rig.tick(0)
    advance_to(rig, t0 + LATE_WINDOW + took + 120)
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED
    mine = sorted(i["id"] for i in own_images(sim, job))
    assert len(mine) == 2 and job.image_id in mine
    [late] = set(mine) - {job.image_id}
    assert job.duplicates == (late,)
    assert any(f"a late request also made {late}: delete it" in e.message for e in rig.events), [
        e.message for e in rig.events
    ]
    assert [p["status"] for p in posts(sim)] == [201, 201]


# ---- F5, F7: kept as regressions ------------------------------------------------------------


class _Gateway(FakeHandler):
    """A gateway in front of the simulator. The first create_image it passes on, then
    answers 502 itself — with an HTML page, or JSON that is not the API's error shape
    (`{"error": {"code": "bad_gateway"}}`, no message) — while the request is still on
    its way to the API."""

    sim = None
    body_kind = "json"
    passed_on: list = []

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {"Authorization": self.headers["Authorization"]}
        if self.command == "POST" and self.path.endswith("/create_image") and not self.passed_on:
            # handed to the API (it lands late: a latency fault), not waited for
            self.passed_on.append(self.path)
            headers["Content-Type"] = "application/json"
            self.sim.handle("POST", self.path, headers, body, gone=lambda: True)
            if self.body_kind == "json":
                status, kind = 502, "application/json"
                content = json.dumps({"error": {"code": "bad_gateway"}}).encode()
            else:
                status, kind = 502, "text/html"
                content = b"<html><body>502 Bad Gateway</body></html>"
        else:
            if body:
                headers["Content-Type"] = "application/json"
            answer = requests.request(
                self.command, self.sim.base_url + self.path, headers=headers, data=body
            )
            status, content = answer.status_code, answer.content
            kind = answer.headers.get("Content-Type", "application/json")
        self.reply(status, content, kind)

    do_GET = do_POST = do_DELETE = do_PUT = _any


@pytest.mark.parametrize("body_kind", ["json", "html"])
def test_f5_any_502_without_an_api_answer_gets_the_late_window(sim, body_kind):
    """The gateway passes the POST on and answers 502; the POST lands 100 s later,
    within LATE_WINDOW. Whatever the 502's body, the job waits for it instead of sending
    again at once: one POST at the API, one image."""
    handler = type("G", (_Gateway,), {"sim": sim, "body_kind": body_kind, "passed_on": []})
    with serving(handler) as url:
        session = session_on(sim, url=url, timeout=2.0, budget=1.0)
        session.tick()
        web = named(session, "web-prod-01")
        sim.add_fault("latency", seconds=100, path_prefix=CREATE.format(web.id))
        session.submit([web], "{server}-snap", LABELS)
        start = sim.clock.now()
        for _ in range(80):
            sim.advance(5)
            session.refresher.request_fast()
            session.tick()
            if not session.jobs.active_jobs() and sim.clock.now() > start + 130:
                break
    job = job_of(session, "web-prod-01")
    assert handler.passed_on == [CREATE.format(web.id)]
    assert job.state == JobState.SUCCEEDED and job.posts == 1
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]
    assert [p["status"] for p in posts(sim)] == [201]


def test_f7_a_cut_off_200_before_processing_is_sent_again_once(sim):
    """A 200 with cut-off JSON, before anything was made: not taken for made (it once
    ended `image_gone`); sent again once; one image."""
    rig = Rig(sim)
    web = rig.server("web-prod-01")
    sim.add_fault("malformed_json", path_prefix=CREATE.format(web.id), method="POST")
    rig.submit("web-prod-01")
    rig.run_until_done()
    job = rig.job("web-prod-01")
    assert job.state == JobState.SUCCEEDED, (job.error_code, job.error_message)
    assert [(p["status"], p["fault"]) for p in posts(sim)] == [(200, "malformed_json"), (201, None)]
    assert [i["id"] for i in own_images(sim, job)] == [job.image_id]


# ---- F9: text that looks like markup ------------------------------------------------------


def shown(widget) -> str:
    """What a widget shows on the screen, line by line."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_f9_a_foreign_description_that_looks_like_markup(sim):
    """Another tool described snapshots `db dump [/var/lib/mysql]` (a closing tag to
    Rich; it crashed the app when view 2 opened): the app keeps running, and the text
    shows literally in the Snapshots view, the delete confirmation and the notification
    that refuses to delete a protected one."""
    text = "db dump [/var/lib/mysql]"
    db = next(s for s in sim.world.servers.values() if s["name"] == "db-prod-01")
    made = {"created": START - 60, "status": "available", "image_size": 1.0, "labels": {}}
    foreign = sim.world.make_image(db, image_type="snapshot", description=text, **made)
    guarded = sim.world.make_image(
        db, image_type="snapshot", description=f"{text} kept", protected=True, **made
    )
    app = make_app(sim)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await poll(pilot)
        await pilot.press("2")
        assert isinstance(app.screen, SnapshotsScreen)
        await pilot.pause()
        table = app.screen.query_one("#snapshots", DataTable)
        listed = shown(table)
        assert text in listed and f"{text} kept" in listed, listed

        table.move_cursor(row=table.get_row_index(str(foreign["id"])))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.pause()
        assert f"Delete snapshot {text!r}" in shown(app.screen.query_one("#confirm-message"))
        await pilot.press("n")
        assert isinstance(app.screen, SnapshotsScreen)

        table.move_cursor(row=table.get_row_index(str(guarded["id"])))
        await pilot.press("d")  # protected: refused with a notification that names it
        await pilot.pause()
        await pilot.pause()
        # "Toast": Textual's notification widget
        toasts = [" ".join(shown(t).split()) for t in app.screen.query("Toast")]
        assert any(f"{text} kept is protected against deletion" in t for t in toasts), toasts
        assert app.is_running and app.return_code is None
    assert app.return_code in (None, 0)


async def test_f9_an_operator_template_that_looks_like_markup(sim):
    """The operator's template `{server} [/] pre-upgrade` (check_template accepts it; it
    crashed the app in the Activity view): the app keeps running, and the description
    shows literally in the dialog's preview, the Activity view and the Snapshots view."""
    description = "web-prod-01 [/] pre-upgrade"
    app = make_app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        await poll(pilot)
        web = next(s for s in app.fleet.servers.values() if s.name == "web-prod-01")
        servers = app.screen.query_one(ServerTable)
        servers.move_cursor(row=servers.get_row_index(str(web.id)))
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SnapshotDialog)
        dialog.query_one("#snapshot-template", Input).value = "{server} [/] pre-upgrade"
        await pilot.pause()
        assert f"→ {description}" in shown(dialog.query_one("#snapshot-preview"))
        await pilot.click("#snapshot-confirm")
        await poll(pilot)
        [job] = app.jobs.jobs()
        assert job.state == JobState.RUNNING and job.description == description

        await pilot.press("3")
        assert isinstance(app.screen, ActivityScreen)
        await pilot.pause()
        assert description in shown(app.screen.query_one("#jobs", DataTable))

        await pilot.press("2")  # its image, listed at once
        assert isinstance(app.screen, SnapshotsScreen)
        await pilot.pause()
        listed = shown(app.screen.query_one("#snapshots", DataTable))
        assert description in listed, listed
        assert app.is_running and app.return_code is None
    assert app.return_code in (None, 0)
