"""Honest freshness: the header speaks for every lane on screen, flags a late one and
says STALE for a failing one; snapshots made or deleted here show at once."""

from __future__ import annotations

import logging

from textual.widgets import DataTable

from hsnap_tui.core.jobs import JobState
from hsnap_tui.core.units import short_age
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from tests.conftest import make_app, poll
from tests.test_servers_view import row_of, server_named, status_line
from tests.test_snapshot_flow import highlight, tick

SNAPSHOT_LIST = "/v1/images"  # the slow lane's second read, after /v1/servers


async def test_a_failing_slow_lane_says_stale_while_the_locks_stay_fresh(sim, caplog):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        assert "locks 0s ago · servers 0s ago" in status_line(app)
        # the snapshot list fails from now on: the slow lane fails, the fast one does not
        sim.add_fault("http_503", count=1000, path_prefix=SNAPSHOT_LIST)
        caplog.set_level(logging.INFO, logger="hsnap_tui")
        for _ in range(30):
            await tick(pilot, sim, 5)
            if app.refresher.slow_error:
                break
        assert app.refresher.slow_error
        sim.advance(3)
        line = status_line(app)
        failed_at = app.refresher.last_slow
        assert "locks 3s ago" in line, line
        age = sim.clock.now() - failed_at
        assert f"servers STALE {short_age(age)}" in line, line
        assert "retrying" not in line  # the API answers: only one lane is stale
        # the log says it once, not on every failed retry
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "list could not be read" in warnings[0], warnings
        # the list recovers: the lane is fresh again and the log says so
        sim.faults.clear()
        for _ in range(40):
            await tick(pilot, sim, 5)
            if app.refresher.slow_error is None:
                break
        assert app.refresher.slow_error is None
        assert "STALE" not in status_line(app)
        assert any("read again" in r.getMessage() for r in caplog.records)


async def test_a_lane_late_by_three_intervals_is_flagged(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        slow = app.refresher.intervals()[1]
        # the fast lane runs, the slow one is held back (e.g. by the budget)
        app.refresher.last_slow -= 3 * slow + 1
        line = status_line(app)
        age = sim.clock.now() - app.refresher.last_slow
        minutes = age // 60
        assert f"servers {minutes:.0f}m ago (late)" in line, line
        assert "locks 0s ago" in line and "locks 0s ago (late)" not in line
        # it is the oldest thing on the Servers view; the Snapshots view shows only it
        await pilot.press("2")
        line = status_line(app)
        assert "snapshots" in line and "(late)" in line and "locks" not in line
        await pilot.press("3")
        line = status_line(app)
        assert "jobs 0s ago" in line and "servers" not in line and "snapshots" not in line


async def test_the_api_down_shows_the_oldest_age_on_screen(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await tick(pilot, sim, 8)  # a fast tick: locks are newer than the server list
        assert app.refresher.last_success > app.refresher.last_slow
        sim.add_fault("http_503", count=100)
        await tick(pilot, sim, 5)
        oldest = sim.clock.now() - app.refresher.last_slow
        assert f"STALE {short_age(oldest)}" in status_line(app), status_line(app)


async def test_a_new_image_and_a_deleted_one_show_at_once_without_the_slow_lane(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        before = len(app.fleet.snapshots_of(web))
        last_before = row_of(app, web)["last_snapshot"]
        await highlight(pilot, web)
        sim.clear_requests()
        await pilot.press("s")
        await pilot.press("enter")
        await poll(pilot)  # the job sends create_image; the answer names the image
        [job] = app.jobs.jobs()
        assert job.image_id is not None
        await pilot.press("2")
        await pilot.pause()
        table = app.screen.query_one("#snapshots", DataTable)
        assert str(job.image_id) in [row.key.value for row in table.ordered_rows]
        # no snapshot list was read meanwhile: the job's own answer put it there
        assert not [r for r in sim.requests() if r["path"] == SNAPSHOT_LIST]
        assert len(app.fleet.snapshots_of(web)) == before + 1
        await pilot.press("1")
        assert row_of(app, web)["snapshots"] == str(before + 1)
        for _ in range(60):
            if not app.jobs.active_jobs():
                break
            await tick(pilot, sim, 10)
        [job] = app.jobs.jobs()
        assert job.state == JobState.SUCCEEDED
        assert row_of(app, web)["last_snapshot"] != last_before  # the new one, available
        await pilot.press("2")
        await pilot.pause()
        # delete it: gone from the table as soon as the API said so
        table = app.screen.query_one("#snapshots", DataTable)
        table.move_cursor(row=table.get_row_index(str(job.image_id)))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#snapshots", DataTable)
        assert str(job.image_id) not in [row.key.value for row in table.ordered_rows]
        assert len(app.fleet.snapshots_of(web)) == before
        await pilot.press("1")
        assert row_of(app, web)["snapshots"] == str(before)
        assert row_of(app, web)["last_snapshot"] == last_before


async def test_a_running_job_is_reread_every_fast_tick_and_its_time_moves_every_second(sim):
    from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
    from tests.test_snapshot_flow import panel_text

    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("s", "enter")
        await poll(pilot)
        [job] = app.jobs.jobs()
        seen = []
        for _ in range(3):
            sim.clear_requests()
            sim.advance(app.refresher.next_delay())  # the next fast tick, no sooner
            await poll(pilot)
            paths = [r["path"] for r in sim.requests()]
            # the lock lane and the job's action, in one batched read, on every tick
            assert paths[:2] == ["/v1/servers/actions", "/v1/actions"], paths
            [job] = app.jobs.jobs()
            seen.append(job.progress)
            assert f"{job.progress}%" in panel_text(app)
        assert seen == sorted(seen) and len(set(seen)) == 3, seen
        # between ticks the elapsed time moves on the panel's one-second clock
        panel = app.screen.query_one(JobsPanel)
        before = panel_text(app)
        sim.advance(1)
        panel._tick()  # what its set_interval(1.0) runs
        after = panel_text(app)
        assert before != after and f"{job.progress}%" in after


def test_the_log_records_a_rejected_token_and_an_outage_once_each(sim, caplog):
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.core.refresh import Refresher

    caplog.set_level(logging.INFO, logger="hsnap_tui")
    wrong = "x" * 64
    refresher = Refresher(HetznerApi(wrong, sim.url), clock=sim.clock.now)
    for _ in range(3):
        refresher.request_full()
        refresher.poll()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "poll failed (unauthorized)" in errors[0], errors
    caplog.clear()
    refresher = Refresher(HetznerApi(sim.token, sim.url), clock=sim.clock.now)
    refresher.poll()
    sim.add_fault("http_503", count=3)
    for _ in range(3):
        refresher.request_full()
        refresher.poll()
    refresher.request_full()
    refresher.poll()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for level, m in messages if level == logging.WARNING] == [
        next(m for _, m in messages if m.startswith("poll failed (unavailable)"))
    ]
    assert any("answers again (after 3 failed polls)" in m for _, m in messages)
    assert wrong not in caplog.text and sim.token not in caplog.text


async def test_a_stale_lane_is_said_first_even_with_a_long_context_and_endpoint(sim):
    """The header is one line: at 80 columns the freshness comes before the context's
    endpoint, which goes when it does not fit."""
    app = make_app(sim, demo=False, context="acme-production")
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        sim.add_fault("http_503", count=1000, path_prefix=SNAPSHOT_LIST)
        for _ in range(8):
            await tick(pilot, sim, 30)
        line = status_line(app)
        assert "acme-production" in line and "servers STALE" in line, line
        assert len(line) <= 78  # all of it on screen, inside the header's padding
        assert sim.url not in line  # the endpoint did not fit: left out, not cut
        await pilot.resize_terminal(160, 24)
        await pilot.pause()
        assert sim.url in status_line(app)
