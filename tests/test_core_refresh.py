"""The refresh engine against the simulator: exact request counts, lock derivation,
pacing within the budget, backoff and recovery. No Textual here."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.refresh import Refresher
from tests.conftest import wait_until


def engine(sim, **options):
    api = HetznerApi(sim.token, sim.url, timeout=options.pop("timeout", 5.0))
    return Refresher(api, clock=sim.clock.now, **options)


def counts(sim):
    tally: dict[str, int] = {}
    for r in sim.requests():
        path = r["path"]
        if path.startswith("/v1/servers/") and path.split("/")[3].isdigit():
            path = "/v1/servers/{id}" + ("/..." if path.count("/") > 3 else "")
        key = f"{r['method']} {path}"
        tally[key] = tally.get(key, 0) + 1
    return tally


def test_one_full_refresh_is_paged_lists_and_nothing_per_server(make_sim):
    sim = make_sim(servers=120)
    ids = sorted(sim.world.servers)
    for server_id in ids[:3]:
        sim.start_action(server_id, "rebuild_server", 300)
    refresher = engine(sim)
    result = refresher.poll()
    assert result.lanes == ("fast", "slow") and result.error is None
    snapshots = len(sim.world.list_images(types=["snapshot"]))
    assert counts(sim) == {
        "GET /v1/servers": 3,
        "GET /v1/servers/actions": 1,
        "GET /v1/images": math.ceil(snapshots / 50),
    }
    assert all(r["query"]["per_page"] == ["50"] for r in sim.requests())
    images = [r for r in sim.requests() if r["path"] == "/v1/images"]
    assert all(r["query"]["type"] == ["snapshot"] for r in images)
    running = [r for r in sim.requests() if r["path"] == "/v1/servers/actions"]
    assert running[0]["query"]["status"] == ["running"]
    assert {sid for sid, lock in result.fleet.locks.items()} == set(ids[:3])
    assert len(result.fleet.servers) == 120


def test_fast_lane_alone_between_full_refreshes(sim):
    refresher = engine(sim)
    refresher.poll()
    sim.clear_requests()
    sim.advance(refresher.next_delay())
    result = refresher.poll()
    assert result.lanes == ("fast",)
    assert counts(sim) == {"GET /v1/servers/actions": 1}


def test_lock_shows_within_five_seconds_and_clears(sim):
    refresher = engine(sim)
    refresher.poll()
    server_id = sorted(sim.world.servers)[5]
    sim.start_action(server_id, "rebuild_server", 60)
    delay = refresher.next_delay()
    assert delay <= 5.0
    sim.advance(delay)
    fleet = refresher.poll().fleet
    assert fleet.lock(server_id).label() == "rebuild 8%"
    # the action ends: the fast lane sees it gone, and a slow refresh reads the status
    sim.advance(60)
    result = refresher.poll()
    assert result.lanes == ("fast", "slow")
    assert not result.fleet.lock(server_id).held
    assert result.fleet.servers[server_id].status == "running"


def test_locked_flag_without_action_is_shown_as_locked(sim):
    server_id = sorted(sim.world.servers)[2]
    sim.start_action(server_id, "migrate_server", 600, visible=False)
    fleet = engine(sim).poll().fleet
    lock = fleet.lock(server_id)
    assert lock.unexplained and lock.label() == "locked"


def test_finished_action_is_not_mistaken_for_a_mystery_lock(sim):
    refresher = engine(sim)
    server_id = sorted(sim.world.servers)[2]
    sim.start_action(server_id, "rebuild_server", 20)
    refresher.poll()  # slow lane reads locked=True, explained by the action
    sim.advance(21)  # the action ends before the next full refresh
    refresher.last_slow = sim.clock.now()  # no early slow lane: only the fast lane runs
    result = refresher.poll()
    assert result.lanes == ("fast",)
    assert result.fleet.servers[server_id].locked  # stale flag from the slow lane …
    assert not result.fleet.lock(server_id).held  # … known to be the finished action


@pytest.mark.parametrize(("servers", "minutes"), [(24, 10), (120, 10), (200, 20), (1000, 60)])
def test_request_rate_stays_within_a_quarter_of_the_limit(make_sim, servers, minutes):
    sim = make_sim(servers=servers)
    refresher = engine(sim)
    server_ids = sorted(sim.world.servers)
    start = sim.clock.now()
    end = start + minutes * 60
    started = 0
    while sim.clock.now() < end:
        result = refresher.poll()
        assert result.error is None
        if servers <= 200:
            assert result.next_delay <= 5.0 + 1e-9  # locks show within 5 s
        # other tools keep the fleet busy: a new action every minute
        if sim.clock.now() - start > started * 60:
            sim.start_action(server_ids[started % len(server_ids)], "reboot_server", 30)
            started += 1
        sim.advance(result.next_delay)
    sent = len(sim.requests())  # the first full load included
    # a token bucket: a quarter of the limit per second, plus what it may save up
    budget = refresher.budget
    assert budget.rate() <= 0.25 * 3600 / 3600
    assert sent <= budget.rate() * minutes * 60 + budget.capacity()
    slow_refreshes = sum(
        r["path"] == "/v1/servers" and r["query"]["page"] == ["1"] for r in sim.requests()
    )
    assert slow_refreshes >= 2  # the fleet list is refreshed, only stretched
    if servers > 200:
        assert refresher.intervals()[1] <= 900  # … to about every 15 minutes at most


def test_budget_option_scales_the_pace(make_sim):
    sim = make_sim(servers=200)
    slow = engine(sim, budget=0.05)
    slow.poll()
    fast, full = slow.intervals()
    assert fast > 5.0 and full > 600


def test_low_remaining_slows_down(make_sim):
    sim = make_sim(rate_limit=100)
    refresher = engine(sim)
    normal = refresher.intervals()
    for _ in range(92):
        sim.bucket.take(sim.clock.now())
    result = refresher.poll()
    assert result.throttled
    fast, _ = refresher.intervals()
    assert fast >= normal[0] * 4


def test_429_waits_for_the_bucket_and_recovers(sim):
    refresher = engine(sim)
    refresher.poll()
    sim.add_fault("rate_limit", count=1, path_prefix="/v1/servers/actions")
    sim.advance(refresher.next_delay())
    result = refresher.poll()
    assert "request budget is used up" in result.error
    assert result.throttled
    wait = refresher.api.monitor.reset_wait()
    assert result.next_delay == min(60.0, max(2.0, wait))
    sim.advance(result.next_delay)
    assert refresher.poll().error is None


def test_errors_keep_data_back_off_and_recover(sim):
    refresher = engine(sim)
    first = refresher.poll().fleet
    sim.add_fault("http_503", count=3)
    delays = []
    for _ in range(3):
        sim.advance(refresher.next_delay())
        result = refresher.poll()
        assert result.fleet is None and "unavailable" in result.error
        delays.append(result.next_delay)
        assert refresher.fleet is first  # the last data stays
        assert refresher.stale_for() > 0
    assert delays == [2.0, 4.0, 8.0]
    sim.advance(refresher.next_delay())
    result = refresher.poll()
    assert result.error is None and refresher.stale_for() is None


@pytest.mark.parametrize("kind", ["http_500", "drop", "malformed_json"])
def test_any_failure_is_explained_not_raised(sim, kind):
    refresher = engine(sim)
    sim.add_fault(kind, count=1)
    result = refresher.poll()
    assert result.error and result.fleet is None
    assert refresher.poll().error is None


def test_timeout_is_a_failure_not_a_hang(sim):
    refresher = engine(sim, timeout=0.05)
    sim.add_fault("latency", count=1, seconds=0.3)
    result = refresher.poll()
    assert "did not answer in time" in result.error


def test_refreshes_never_overlap(sim):
    refresher = engine(sim)
    sim.add_fault("latency", count=1, path_prefix="/v1/servers/actions", seconds=0.3)
    results = []
    first = threading.Thread(target=lambda: results.append(refresher.poll()))
    first.start()
    wait_until(sim.pending)  # the first poll waits for its held answer
    second = refresher.poll()
    sim.advance(1)  # the held request lands and is answered
    first.join()
    assert second.lanes == () and second.fleet is None
    assert results[0].lanes == ("fast", "slow")
    assert counts(sim)["GET /v1/servers/actions"] == 1


def test_monitor_captures_headers_in_one_place(sim):
    refresher = engine(sim)
    refresher.poll()
    monitor = refresher.api.monitor
    assert monitor.rate_limit.limit == 3600
    assert monitor.rate_limit.remaining == 3600 - len(sim.requests())
    assert monitor.last_correlation_id == sim.requests()[-1]["correlation_id"]
    assert monitor.requests_sent == len(sim.requests())


def test_core_never_imports_textual():
    core = Path(__file__).parent.parent / "hsnap_tui" / "core"
    for source in core.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("textual", "hsnap_tui.ui", "rich")), (
                    f"{source.name} imports {name}"
                )
    modules = [f"hsnap_tui.core.{p.stem}" for p in core.glob("*.py") if p.stem != "__init__"]
    code = "; ".join(f"import {m}" for m in modules)
    code += "; import sys; assert 'textual' not in sys.modules, 'textual was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
