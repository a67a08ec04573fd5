"""SVG snapshots of each view, from the demo fleet on a stopped clock.

Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update`
and look at the report."""

from __future__ import annotations

from textual.widgets import Input

from hsnap_tui.ui.widgets.filter_bar import FilterBar
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app, poll, settle


async def loaded(pilot) -> None:
    await poll(pilot)


def demo_app(make_sim):
    return make_app(make_sim(scenario="demo"))


def test_servers_80x24(make_sim, snap_compare):
    assert snap_compare(demo_app(make_sim), terminal_size=(80, 24), run_before=loaded)


def test_servers_120x40(make_sim, snap_compare):
    assert snap_compare(demo_app(make_sim), terminal_size=(120, 40), run_before=loaded)


def test_servers_marked_and_sorted_by_lock(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("space", "space", "o", "o")

    assert snap_compare(demo_app(make_sim), terminal_size=(120, 30), run_before=run_before)


def test_servers_filter_with_bad_selector(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("slash")
        field = pilot.app.screen.query_one(FilterBar).input
        field.cursor_blink = False
        # a good selector, then one that does not parse: the table keeps the good one
        await pilot.press(*"role=db,env in (prod")
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(100, 30), run_before=run_before)


def test_servers_stale(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await poll(pilot)
        sim.add_fault("http_503", count=1)
        sim.advance(app.refresher.next_delay())
        await poll(pilot)
        app.clear_notifications()
        sim.advance(1)
        for status in app.screen.query("StatusBar"):
            status.refresh_status()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 24), run_before=run_before)


def test_server_details(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await poll(pilot)
        table = app.screen.query_one(ServerTable)
        db = next(s["id"] for s in sim.world.servers.values() if s["name"] == "db-prod-01")
        table.move_cursor(row=table.get_row_index(str(db)))
        await pilot.press("enter")
        await settle(pilot)
        # the details' own request answered and shown, then the header's request count
        # as of it (the header otherwise repaints on its next tick)
        for _ in range(200):
            note = app.screen.query("#recent-note")
            if note and "loading" not in str(note.first().content):
                break
            await pilot.pause(0.01)
        app._refresh_status()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 50), run_before=run_before)


def test_help(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(110, 30), run_before=run_before)


def test_snapshot_dialog(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await poll(pilot)
        table = app.screen.query_one(ServerTable)
        for name in ("db-prod-01", "worker-prod-01"):
            server_id = next(s["id"] for s in sim.world.servers.values() if s["name"] == name)
            table.move_cursor(row=table.get_row_index(str(server_id)))
            await pilot.press("space")
        await pilot.press("s")
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def _jobs_running(pilot, sim, app) -> None:
    await poll(pilot)
    table = app.screen.query_one(ServerTable)
    for name in ("web-prod-01", "worker-prod-01", "api-prod-01"):
        server_id = next(s["id"] for s in sim.world.servers.values() if s["name"] == name)
        table.move_cursor(row=table.get_row_index(str(server_id)))
        await pilot.press("space")
    await pilot.press("s", "enter")
    await poll(pilot)
    for _ in range(3):
        sim.advance(5)
        app.refresher.request_fast()
        await poll(pilot)
    app.clear_notifications()
    await pilot.pause()


def test_jobs_panel_progress(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await _jobs_running(pilot, sim, app)

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)


def test_activity_view(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await _jobs_running(pilot, sim, app)
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 30), run_before=run_before)


def test_action_inspector(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        await poll(pilot)
        table = app.screen.query_one(ServerTable)
        web = next(s["id"] for s in sim.world.servers.values() if s["name"] == "web-prod-01")
        table.move_cursor(row=table.get_row_index(str(web)))
        await pilot.press("i")
        sim.advance(20)
        app.refresher.request_fast()
        await poll(pilot)

    assert snap_compare(app, terminal_size=(100, 24), run_before=run_before)


def test_action_id_dialog_explains_a_correlation_id(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("a")
        field = pilot.app.screen.query_one(Input)
        field.cursor_blink = False
        field.value = "f21b9dc9d1535310"
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(100, 24), run_before=run_before)


def test_lock_explanation(make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = make_app(sim)

    async def run_before(pilot) -> None:
        api = next(s["id"] for s in sim.world.servers.values() if s["name"] == "api-prod-01")
        sim.start_action(api, "migrate_server", 600, visible=False)
        await poll(pilot)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 24), run_before=run_before)


def test_snapshots_view(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("2")
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(140, 30), run_before=run_before)


def test_snapshots_view_80x24(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("2")
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(80, 24), run_before=run_before)


def test_retention_preview(make_sim, snap_compare):
    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("2", "p")
        field = pilot.app.screen.query_one("#retention-keep", Input)
        field.cursor_blink = False
        field.value = "2"
        await pilot.pause()

    assert snap_compare(demo_app(make_sim), terminal_size=(130, 34), run_before=run_before)


def test_retention_plan_of_a_policy_80x24(make_sim, snap_compare):
    from textual.widgets import Select

    from hsnap_tui.core.keep import KeepRules
    from hsnap_tui.core.policy import Policy

    policy = Policy(
        name="prod nightly",
        selector="env=prod",
        labels={"managed-by": "hsnap"},
        keep=KeepRules(daily=7, weekly=4),
    )
    app = make_app(make_sim(scenario="demo"), policies=[policy])

    async def run_before(pilot) -> None:
        await poll(pilot)
        await pilot.press("2", "p")
        screen = pilot.app.screen
        screen.query_one("#retention-keep", Input).cursor_blink = False
        screen.query_one("#retention-policy", Select).value = 0
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
