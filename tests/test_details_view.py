"""Server details at 80x24: the recent actions table moves like every table, `enter`
opens an action in the inspector, and no column it keeps is cut."""

from __future__ import annotations

from hsnap_tui.ui.screens.details import ServerDetailsScreen
from hsnap_tui.ui.screens.inspector import ActionInspectorScreen
from hsnap_tui.ui.widgets.nav_table import NavTable
from tests.conftest import make_app, poll, settle
from tests.test_activity_view import headers, shown
from tests.test_servers_view import server_named
from tests.test_snapshot_flow import highlight


async def open_details(pilot, sim, name: str) -> ServerDetailsScreen:
    await highlight(pilot, server_named(sim, name))
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ServerDetailsScreen)
    return screen


async def test_recent_actions_move_sort_and_open_in_the_inspector(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        screen = await open_details(pilot, sim, "db-prod-01")
        recent = screen.query_one("#recent", NavTable)
        assert recent.has_focus and recent.show_cursor
        assert recent.row_count > 3
        # what an action is and how long it took: whole at 80 columns
        columns = headers(recent)
        assert {"Command", "Status", "Started▼", "Duration"} <= set(columns)
        assert recent.max_scroll_x == 0
        header = shown(recent)[0]
        assert header.rstrip().endswith("Duration")
        actions = screen.recent
        assert [str(a.id) for a in actions][: recent.row_count] == [
            recent.coordinate_to_cell_key((i, 0)).row_key.value for i in range(recent.row_count)
        ]
        await pilot.press("G")
        assert recent.cursor_key == str(actions[-1].id)
        await pilot.press("g", "j")
        assert recent.cursor_key == str(actions[1].id)
        await pilot.press("O")  # oldest first
        assert "Started▲" in headers(recent)
        assert recent.coordinate_to_cell_key((0, 0)).row_key.value == str(actions[-1].id)
        assert recent.cursor_key == str(actions[-1].id)  # a sort shows the top
        await pilot.press("j")
        assert recent.cursor_key == str(actions[-2].id)
        # enter: that action in the inspector, as loaded (no request of its own)
        asked = len(sim.requests())
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ActionInspectorScreen)
        assert app.screen.action.id == actions[-2].id
        await settle(pilot)  # the tick the inspector asks for, to follow it live
        fetched = [r["path"] for r in sim.requests()[asked:]]
        assert f"/v1/actions/{actions[-2].id}" not in fetched  # not looked up again
        await pilot.press("escape")
        assert app.screen is screen
        # the snapshots table: its keys too, and the name of each snapshot whole
        await pilot.press("tab")
        snapshots = screen.query_one("#details-snapshots", NavTable)
        assert snapshots.has_focus
        assert headers(snapshots)[:3] == ["Description", "Created▼", "Size"]
        lines = "\n".join(shown(snapshots))
        for snapshot in app.fleet.snapshots_of(server_named(sim, "db-prod-01")):
            assert snapshot.description in lines


async def test_an_action_that_ended_is_read_again_not_left_running(make_sim):
    sim = make_sim(scenario="demo")
    rescue = sim.start_action(server_named(sim, "queue-dev-01"), "enable_rescue", 60)
    app = make_app(sim)
    async with app.run_test(size=(80, 30)) as pilot:
        await poll(pilot)
        screen = await open_details(pilot, sim, "queue-dev-01")
        [listed] = [a for a in screen.recent if a.id == rescue["id"]]
        assert listed.status == "running"
        sim.clear_requests()
        for _ in range(3):
            sim.advance(60)
            app.refresher.request_fast()
            await poll(pilot)
            await settle(pilot)
        [listed] = [a for a in screen.recent if a.id == rescue["id"]]
        assert listed.status == "success"
        # read again once when it ended, not on every refresh
        queue = server_named(sim, "queue-dev-01")
        reads = [r for r in sim.requests() if r["path"] == f"/v1/servers/{queue}/actions"]
        assert len(reads) == 1, reads


async def test_a_context_switch_closes_the_details_of_the_other_project(make_sim):
    from hsnap_tui.config import Context
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.ui.app import HsnapApp
    from hsnap_tui.ui.screens.servers import ServersScreen

    prod = make_sim(seed=1, token="prod-token-1111", scenario="demo")
    staging = make_sim(seed=2, servers=3, token="staging-token-2222")
    contexts = [
        Context("prod", "prod-token-1111", prod.url),
        Context("staging", "staging-token-2222", staging.url),
    ]
    app = HsnapApp(
        HetznerApi("prod-token-1111", prod.url, timeout=5),
        context="prod",
        now=prod.clock.now,
        clock=prod.clock.now,
        poll_live=False,
        contexts=lambda: contexts,
        connect=lambda c: HetznerApi(c.token, c.endpoint, timeout=5),
    )
    async with app.run_test(size=(80, 30)) as pilot:
        await poll(pilot)
        await open_details(pilot, prod, "db-prod-01")
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.context == "staging"
        assert isinstance(app.screen, ServersScreen)
        assert not any(isinstance(s, ServerDetailsScreen) for s in app.screen_stack)


async def test_the_row_a_key_moves_to_is_on_screen_and_opening_leaves_the_top(make_sim):
    from tests.test_servers_view import screen_lines

    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        screen = await open_details(pilot, sim, "db-prod-01")
        assert "Server  db-prod-01" in "\n".join(screen_lines(app))  # the page's top
        recent = screen.query_one("#recent", NavTable)
        await pilot.press("G")
        await pilot.pause()
        assert recent.cursor_key == str(screen.recent[-1].id)
        assert any(recent.cursor_key in line for line in screen_lines(app))
