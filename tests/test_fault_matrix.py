"""The fault matrix: every fault kind in every phase. The app never crashes or
freezes, shows the trouble, recovers by itself, loses no job, makes no duplicate — and
reconciles (looks its image up by label) exactly as often as the outcome requires."""

from __future__ import annotations

import math

import pytest
import requests

from hsnap_tui.core.jobs import LATE_WINDOW, RECHECK_EVERY
from hsnap_tui.sim import Simulator
from tests.conftest import START, TOKEN
from tests.contract.openapi import ContractRecorder
from tests.fault_matrix import (
    LATENCY,
    SNAPSHOT_PHASES,
    TICK,
    cases,
    create_image_posts,
    reconcile_requests,
    run_case,
)

SIZE = (80, 16)  # a small screen: most of a tick's CPU time is drawing the tables
# Every job whose snapshot action succeeds reads its image by its label once (in one
# lookup with the other jobs ending in the same tick): its size, and a second image a
# late request of a job that sent again would have made, to report.
DONE = 1


@pytest.fixture(scope="module", autouse=True)
def _warm_contract_checks():
    """The first OpenAPI check of a response compiles its schema (0.2 s for the server
    list, more under load) inside the simulator, before it answers: done here, it
    cannot time out a request of a case (TIMEOUT)."""
    with Simulator(token=TOKEN, speed=0, start=START) as sim:
        sim.response_observers.append(recorder := ContractRecorder())
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/servers/actions?status=running", "/servers", "/images?type=snapshot"):
            requests.get(sim.url + path, headers=headers, timeout=30)
    assert not recorder.failures


def lookups(resend_after: float, lands_at: float = math.inf) -> int:
    """Label lookups of a job whose outcome became unknown at 0, ticked every TICK
    seconds: it looks at the first tick, then every RECHECK_EVERY seconds (at the next
    tick) until its image is there (`lands_at`) or `resend_after` has passed."""
    count, next_check, now = 0, 0.0, 0.0
    while True:
        now += TICK
        if now < next_check:
            continue
        count += 1
        if now >= lands_at or now >= resend_after:
            return count
        next_check = min(now + RECHECK_EVERY, resend_after)


def expected(kind: str, phase: str) -> tuple[int, int]:
    """(create_image requests, reconcile requests) the case must cause, exactly."""
    if phase not in SNAPSHOT_PHASES:
        return 0, 0  # no job: nothing to reconcile
    if phase == "progress":
        return 1, DONE  # failed action polls never make a running job doubt its image
    if phase == "create_image":
        if kind == "action_failed":
            return 1, 0  # a 201, then the action's error: no image to read
        if kind == "unreachable":
            return 1, DONE  # nothing sent until the API is back
        if kind == "rate_limit":
            # 429 before processing: looked into once (a proxy may send it late), then
            # sent again; one more look when that snapshot is done (a late request of
            # the first one would be a second image to report)
            return 2, 1 + DONE
        if kind == "latency":
            # timed out; the request lands LATENCY s late: nothing at the first look,
            # found at a later one; never sent again
            return 1, lookups(LATE_WINDOW, lands_at=LATENCY) + DONE
        # processed, then the answer lost or unreadable: the first look finds the image
        return 1, 1 + DONE
    # create_image_before: nothing was made, so it is sent again
    if kind in ("http_500", "http_503"):
        return 2, 1 + DONE  # the API's own error: it is done with the request; one look
    # no answer, or a gateway's: it may still land, so it looks until LATE_WINDOW
    return 2, lookups(LATE_WINDOW) + DONE


@pytest.mark.parametrize(("kind", "phase"), list(cases()))
async def test_fault(make_sim, kind, phase):
    sim = make_sim()
    outcome = await run_case(sim, kind, phase, size=SIZE)
    assert not outcome.crashed
    assert outcome.saw
    assert outcome.recovered_after is not None, f"did not recover: {outcome}"
    assert outcome.jobs_lost == 0
    assert outcome.duplicates == 0
    if phase in SNAPSHOT_PHASES:
        # no job lost: it ended as the API says, with exactly the image that says so
        if kind == "action_failed":
            assert (outcome.job_state, outcome.job_error) == ("failed", "action_failed")
            assert outcome.images == 0  # the failed action removed its image
        else:
            assert outcome.job_state == "succeeded"
            assert outcome.images == 1
    assert (outcome.posts, outcome.reconciles) == expected(kind, phase), outcome


def test_lookup_schedule():
    """The schedule `expected` relies on: with the engine's constants, a late request is
    looked for at least twice (once before it lands) and a gateway's waits the whole
    window with a handful of looks, not one per tick."""
    assert lookups(LATE_WINDOW, lands_at=LATENCY) >= 2
    assert 2 <= lookups(LATE_WINDOW) < LATE_WINDOW / TICK


def test_request_counters():
    log = [
        {"method": "GET", "path": "/v1/images", "query": {"label_selector": ["hsnap-job in (a)"]}},
        {"method": "GET", "path": "/v1/images", "query": {"label_selector": ["hsnap-job=a"]}},
        {"method": "GET", "path": "/v1/images", "query": {"label_selector": ["managed-by=x"]}},
        {"method": "GET", "path": "/v1/images", "query": {"type": ["snapshot"]}},
        {"method": "GET", "path": "/v1/images/7", "query": {}},
        {"method": "POST", "path": "/v1/servers/3/actions/create_image", "query": {}},
        {"method": "POST", "path": "/v1/servers/3/actions/poweroff", "query": {}},
    ]
    assert len(reconcile_requests(log)) == 2
    assert len(create_image_posts(log)) == 1


@pytest.mark.parametrize(
    ("status", "code", "counts"),
    [
        # refused before processing, definitively: no look; sent again once unlocked
        # (and its image read when done)
        (423, "locked", (2, DONE)),
        # a code the job does not know, from the API itself: one look, then sent again
        # (and its image read when done)
        (409, "conflict", (2, 1 + DONE)),
    ],
)
async def test_create_image_refused_before_processing(make_sim, status, code, counts):
    sim = make_sim()
    options = {"status": status, "code": code, "message": code}
    outcome = await run_case(sim, "error", "create_image_before", size=SIZE, options=options)
    assert outcome.recovered_after is not None, outcome
    assert (outcome.jobs_lost, outcome.duplicates, outcome.images) == (0, 0, 1)
    assert (outcome.posts, outcome.reconciles) == counts, outcome
