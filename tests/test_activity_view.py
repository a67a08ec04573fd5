"""The Activity view (`3`) at the design size, 80x24: which columns stay, the keys of
its tables, `enter` on a job, and the elapsed time that moves between polls."""

from __future__ import annotations

from hsnap_tui.core.jobs import JobState
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.inspector import ActionInspectorScreen
from hsnap_tui.ui.screens.snapshots import SnapshotsScreen
from hsnap_tui.ui.widgets.nav_table import NavTable
from tests.conftest import make_app, poll, settle
from tests.test_servers_view import server_named
from tests.test_snapshot_flow import highlight, posts, tick


def shown(widget) -> list[str]:
    """What a widget shows on the screen, line by line."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


def jobs_table(app) -> NavTable:
    return app.screen.query_one("#jobs", NavTable)


def headers(table: NavTable) -> list[str]:
    return [column.label.plain for column in table.ordered_columns]


async def snapshot(pilot, sim, *names: str) -> None:
    """Mark the servers and snapshot them, from the Servers view."""
    await pilot.press("1")
    for name in names:
        await highlight(pilot, server_named(sim, name))
        await pilot.press("space")
    await pilot.press("s", "enter")
    await poll(pilot)


async def test_80x24_keeps_server_state_and_the_whole_blocker(sim):
    app = make_app(sim)
    db = server_named(sim, "db-prod-01")
    blocker = sim.start_action(db, "rebuild_server", 300)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await snapshot(pilot, sim, "monitoring-staging-01", "db-prod-01", "bastion-staging-02")
        await tick(pilot, sim, 10)
        await pilot.press("3")
        assert isinstance(app.screen, ActivityScreen)
        table = jobs_table(app)
        await pilot.pause()
        # the sorted column (its arrow), server, state, what it waits for: the rest went
        assert headers(table) == ["#▲", "Server", "State", "Progress", "Detail"]
        lines = "\n".join(shown(table))
        for name in ("monitoring-staging-01", "db-prod-01", "bastion-staging-02"):
            assert name in lines
        # what blocks it, its command first: shortened at 80 columns, that stays
        assert "waiting: rebuild" in lines
        assert any(j.blocking_action_id == blocker["id"] for j in app.jobs.jobs())
        assert "creating the image" in lines
        # nothing runs off the right edge: the table does not scroll sideways
        assert table.max_scroll_x == 0
        # wider: the other columns come back; narrower again: they go
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        await pilot.pause()
        assert "Description" in headers(table) and "Image" in headers(table)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert "Description" not in headers(table)
        assert table.max_scroll_x == 0


async def test_keys_of_the_jobs_table_and_enter_on_a_waiting_job(sim):
    app = make_app(sim)
    db = server_named(sim, "db-prod-01")
    blocker = sim.start_action(db, "rebuild_server", 300)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await snapshot(pilot, sim, "web-prod-01", "db-prod-01", "api-prod-01")
        await tick(pilot, sim, 10)
        await pilot.press("3")
        table = jobs_table(app)
        assert table.has_focus
        assert table.cursor_key == "1"
        await pilot.press("G")
        assert table.cursor_key == "3"
        await pilot.press("k")
        assert table.cursor_key == "2"
        await pilot.press("g")
        assert table.cursor_key == "1"
        # o: by server (the arrow moves there), O: the other way round
        await pilot.press("o")
        assert "Server▲" in headers(table) and "#▲" not in headers(table)
        servers = [str(table.get_cell(row.key, "server")) for row in table.ordered_rows]
        assert servers == ["api-prod-01", "db-prod-01", "web-prod-01"]
        assert table.cursor_row == 0  # a sort shows the top of the new order
        await pilot.press("O")
        assert "Server▼" in headers(table)
        servers = [str(table.get_cell(row.key, "server")) for row in table.ordered_rows]
        assert servers == ["web-prod-01", "db-prod-01", "api-prod-01"]
        # enter on the waiting job: the action it waits for, from the fleet (no request)
        job = next(j for j in app.jobs.jobs() if j.server_id == db)
        assert job.state == JobState.WAITING
        table.move_cursor(row=table.get_row_index(str(job.id)))
        asked = len(sim.requests())
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ActionInspectorScreen)
        assert app.screen.action.id == blocker["id"]
        assert "waits for this action" in str(app.screen.query_one("#inspector-note").content)
        await settle(pilot)  # the tick the inspector asks for, to follow it live
        fetched = [r["path"] for r in sim.requests()[asked:]]
        assert f"/v1/actions/{blocker['id']}" not in fetched  # not looked up: it was known
        await pilot.press("escape")
        # enter on a running job: its own create_image
        web = next(j for j in app.jobs.jobs() if j.server_name == "web-prod-01")
        assert web.state == JobState.RUNNING
        table.move_cursor(row=table.get_row_index(str(web.id)))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ActionInspectorScreen)
        assert app.screen.action.id == web.action_id
        assert app.screen.action.command == "create_image"


async def test_enter_on_a_finished_job_shows_its_image_in_the_snapshots_view(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await snapshot(pilot, sim, "web-prod-01")
        for _ in range(40):
            if not app.jobs.active_jobs():
                break
            await tick(pilot, sim, 10)
        [job] = app.jobs.jobs()
        assert job.state == JobState.SUCCEEDED
        await pilot.press("3")
        table = jobs_table(app)
        await pilot.pause()
        row = "\n".join(shown(table))
        # one unit (the API's GB) for the same image in the toast and in Activity
        toast = next(n.message for n in app._notifications if f"{job.image_id} done" in n.message)
        size = toast.rsplit(", ", 1)[1]
        assert size.endswith(" GB") and f"image {job.image_id} · {size}" in row
        assert "GiB" not in row
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, SnapshotsScreen)
        snapshots = app.screen.query_one("#snapshots")
        assert snapshots.coordinate_to_cell_key((snapshots.cursor_row, 0)).row_key.value == str(
            job.image_id
        )
        assert len(posts(sim)) == 1  # looking is not doing


async def test_elapsed_time_moves_every_second_without_a_poll(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await snapshot(pilot, sim, "web-prod-01")
        await tick(pilot, sim, 10)
        await pilot.press("3")
        screen = app.screen
        table = jobs_table(app)
        before = str(table.get_cell("1", "duration"))
        asked = len(sim.requests())
        sim.advance(3)
        screen._tick()  # what the screen's one-second interval runs
        await pilot.pause()
        after = str(table.get_cell("1", "duration"))
        assert before == "10s" and after == "13s"
        assert len(sim.requests()) == asked


async def test_audit_table_moves_and_sorts(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await snapshot(pilot, sim, "web-prod-01", "db-prod-01")
        await pilot.press("3", "tab")
        audit = app.screen.query_one("#audit", NavTable)
        assert audit.has_focus and audit.row_count == 2
        assert headers(audit)[0] == "Time (UTC)▼"
        await pilot.press("G")
        assert audit.cursor_row == 1
        # at 80 columns: when, where and what came of it; the request past the edge
        assert headers(audit)[:3] == ["Time (UTC)▼", "Server", "Outcome"]
        assert headers(audit)[3:] == ["Request", "Request ID"]
        first_hidden = sum(c.get_render_width(audit) for c in audit.ordered_columns[:3])
        assert first_hidden == audit.scrollable_content_region.width  # none shows cut
        lines = shown(audit)
        assert "201 created image" in lines[1] and "POST" not in lines[1]
        await pilot.press("o")  # by server
        assert headers(audit)[1] == "Server▲"
        servers = [str(audit.get_row_at(i)[1]) for i in range(audit.row_count)]
        assert servers == ["db-prod-01", "web-prod-01"]
        await pilot.press("right", "right", "right")  # a whole column at a time
        assert audit.scroll_x == audit.max_scroll_x
        assert any(line.lstrip().startswith("POST /servers/") for line in shown(audit))
