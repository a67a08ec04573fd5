"""The Servers view driven like an operator would, against the simulator: what is on
screen, and what the simulator was asked."""

from __future__ import annotations

import copy
import io

from rich.cells import cell_len
from rich.console import Console
from textual.widgets import DataTable, Static

from hsnap_tui.ui.format import OLD_SNAPSHOT_AGE
from hsnap_tui.ui.screens.details import ServerDetailsScreen
from hsnap_tui.ui.screens.help import HelpScreen
from hsnap_tui.ui.widgets.filter_bar import FilterBar
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app, poll, settle


def plain(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def table(app) -> ServerTable:
    return app.screen.query_one(ServerTable)


def row_of(app, server_id: int) -> dict[str, str]:
    t = table(app)
    columns = [c.key.value for c in t.ordered_columns]
    values = t.get_row(str(server_id))
    return {key: str(value) for key, value in zip(columns, values, strict=True)}


def names_on_screen(app) -> list[str]:
    t = table(app)
    return [str(t.get_row(row.key)[1]) for row in t.ordered_rows]


def screen_lines(app) -> list[str]:
    """The screen as the operator reads it, line by line."""
    width, height = app.size
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


def escape_does(app) -> str | None:
    """What the footer and the help say escape does now (None: escape is not offered)."""
    active = app.screen.active_bindings.get("escape")
    return active.binding.description if active is not None else None


def status_line(app) -> str:
    return app.status_text().plain


def server_named(sim, name: str) -> int:
    return next(s["id"] for s in sim.world.servers.values() if s["name"] == name)


async def test_first_refresh_fills_the_table(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        assert "loading" in status_line(app)
        await poll(pilot)
        assert table(app).row_count == 24
        assert names_on_screen(app) == sorted(s["name"] for s in sim.world.servers.values())
        line = status_line(app)
        assert "DEMO" in line and "locks 0s ago · servers 0s ago" in line
        assert f"API {3600 - len(sim.requests())}/3600" in line
        locked = [row_of(app, int(row.key.value))["lock"] for row in table(app).ordered_rows]
        assert sorted(x for x in locked if x) == ["🔒 create_image 25%", "🔒 rebuild 6%"]


async def test_lock_from_another_tool_shows_within_one_fast_tick_and_clears(sim):
    app = make_app(sim)
    server_id = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        assert row_of(app, server_id)["lock"] == ""
        sim.start_action(server_id, "rebuild_server", 100)
        sim.clear_requests()
        sim.advance(app.refresher.next_delay())
        await poll(pilot)
        assert [r["path"] for r in sim.requests()] == ["/v1/servers/actions"]
        assert row_of(app, server_id)["lock"] == "🔒 rebuild 5%"
        sim.advance(app.refresher.next_delay())
        await poll(pilot)
        assert row_of(app, server_id)["lock"] == "🔒 rebuild 10%"
        sim.advance(100)
        await poll(pilot)
        row = row_of(app, server_id)
        assert row["lock"] == ""
        assert row["status"] == "running"


async def test_only_changed_cells_are_updated(sim):
    app = make_app(sim)
    server_id = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        sim.start_action(server_id, "rebuild_server", 100)
        sim.advance(5)
        await poll(pilot)
        updates: list[tuple[str, str]] = []
        t = table(app)
        original = t.update_cell

        def counting(row_key, column_key, value, **kwargs):
            updates.append((str(row_key), str(column_key)))
            return original(row_key, column_key, value, **kwargs)

        t.update_cell = counting
        sim.advance(5)
        await poll(pilot)
        assert updates == [(str(server_id), "lock")]


async def test_cursor_stays_on_its_server_when_rows_reorder(make_sim):
    sim = make_sim(servers=60)
    app = make_app(sim)
    async with app.run_test(size=(100, 20)) as pilot:
        await poll(pilot)
        await pilot.press("o", "o")  # sort by lock: locked servers first
        assert table(app).sort_name == "lock"
        for _ in range(30):
            await pilot.press("j")
        for _ in range(6):
            await pilot.press("k")  # away from the bottom edge: no scrolling needed
        t = table(app)
        watched = t.highlighted_server_id
        scroll_before = t.scroll_y
        assert scroll_before > 0
        row_before = t.cursor_row
        # two servers far down the list become locked and move to the top
        others = [int(k) for k in t.visible_ids if int(k) != watched][-2:]
        for other in others:
            sim.start_action(other, "rebuild_server", 300)
        sim.advance(app.refresher.next_delay())
        await poll(pilot)
        assert t.visible_ids[:2] == sorted(others, key=lambda i: sim.world.servers[i]["name"])
        assert t.highlighted_server_id == watched
        assert t.cursor_row in (row_before, row_before + 1, row_before + 2)
        assert t.scroll_y == scroll_before


async def test_rows_appear_and_vanish_with_the_fleet(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        gone = server_named(sim, "web-prod-01")
        del sim.world.servers[gone]
        new = copy.deepcopy(sim.world.servers[server_named(sim, "db-prod-01")])
        new["id"], new["name"] = 99_000_001, "db-prod-99"
        sim.world.servers[new["id"]] = new
        await pilot.press("r")
        await settle(pilot)
        names = names_on_screen(app)
        assert "web-prod-01" not in names and "db-prod-99" in names
        assert table(app).row_count == 24


async def test_filter_by_name_and_label_selector(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("slash")
        await pilot.press(*"cache")
        assert names_on_screen(app) and all("cache" in n for n in names_on_screen(app))
        bar = app.screen.query_one(FilterBar)
        field = bar.input
        field.value = "env=prod,role in (db,web)"
        await pilot.pause()
        expected = sorted(
            s["name"]
            for s in sim.world.servers.values()
            if s["labels"]["env"] == "prod" and s["labels"]["role"] in ("db", "web")
        )
        assert names_on_screen(app) == expected
        assert "filter: env=prod,role in (db,web)" in table(app).border_title
        field.value = "role in (db"
        await pilot.pause()
        error = bar.query_one(".filter-message", Static)
        assert "unbalanced" in plain(error.content)
        assert names_on_screen(app) == expected  # the last good filter stays
        await pilot.press("escape")
        assert table(app).row_count == 24
        assert not bar.display


async def test_marks_and_sort(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("space", "space")
        t = table(app)
        assert len(t.marks) == 2
        marked = [row_of(app, sid)["mark"] for sid in t.marks]
        assert marked == ["●", "●"]
        assert "marked: 2" in t.border_title
        await pilot.press("o")
        assert t.sort_name == "status"
        statuses = [row_of(app, sid)["status"] for sid in t.visible_ids]
        assert statuses == sorted(statuses)
        await pilot.press("escape")
        assert not t.marks


async def test_stale_marker_under_503s_and_recovery(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        sim.add_fault("http_503", count=2)
        sim.advance(app.refresher.next_delay())
        await poll(pilot)
        sim.advance(1)
        assert status_line(app).count("STALE 6s — retrying in 1s") == 1
        assert table(app).row_count == 24  # last data still shown
        sim.advance(1)
        await poll(pilot)
        assert "STALE 7s — retrying in 4s" in status_line(app)
        sim.advance(4)
        await poll(pilot)
        line = status_line(app)
        assert "STALE" not in line and "locks 0s ago · servers" in line


async def test_details_show_everything_and_fetch_last_actions_once(sim):
    app = make_app(sim)
    server_id = server_named(sim, "db-prod-01")
    async with app.run_test(size=(120, 50)) as pilot:
        await poll(pilot)
        t = table(app)
        t.move_cursor(row=t.get_row_index(str(server_id)))
        sim.clear_requests()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ServerDetailsScreen)
        assert [(r["path"], r["query"]) for r in sim.requests()] == [
            (
                f"/v1/servers/{server_id}/actions",
                {"sort": ["started:desc"], "per_page": ["10"], "page": ["1"]},
            )
        ]
        overview = plain(app.screen.query_one("#overview", Static).content)
        server = sim.world.servers[server_id]
        for text in (
            "db-prod-01",
            server["server_type"]["name"],
            server["location"]["name"],
            "env=",
            "Protection",
        ):
            assert text in overview
        recent = app.screen.query_one("#recent", DataTable)
        assert 0 < recent.row_count <= 10
        snaps = app.screen.query_one("#details-snapshots", DataTable)
        expected = [
            i
            for i in sim.world.images.values()
            if i["type"] == "snapshot" and (i["created_from"] or {}).get("id") == server_id
        ]
        assert snaps.row_count == max(1, len(expected))
        await pilot.press("escape")
        assert not isinstance(app.screen, ServerDetailsScreen)


async def test_help_lists_every_binding_with_its_id(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[3] for row in app.screen.bindings}
        assert {
            "servers.filter",
            "servers.mark",
            "servers.snapshot",
            "table.down",
            "table.up",
            "table.page_down",
            "table.page_up",
            "table.first",
            "table.last",
            "table.sort",
            "table.reverse",
            "table.open",
            "app.quit",
            "app.help",
            "app.refresh",
        } <= ids
        # with nothing to undo, escape's two IDs are listed greyed out (for keymap.toml)
        rows = [row for _, group in app.screen.groups for row in group]
        greyed = {row.binding_id for row in rows if not row.enabled}
        assert {"servers.clear_filter", "servers.clear_marks"} <= greyed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


ALWAYS = ["mark", "name", "status", "lock", "last_snapshot"]


def shown_columns(app) -> list[str]:
    return [c.key.value for c in table(app).ordered_columns]


def assert_nothing_cut(t: DataTable) -> None:
    """Every shown cell and header fits its column, and the columns fit the table:
    nothing on screen is cut mid-word."""
    for column in t.ordered_columns:
        cells = [str(t.get_cell(row.key, column.key)) for row in t.ordered_rows]
        texts = [column.label.plain, *cells]
        assert max(cell_len(x) for x in texts) <= column.width, column.key
    assert t.max_scroll_x == 0


async def test_80x24_keeps_what_a_snapshot_decision_needs(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        assert shown_columns(app) == ALWAYS
        assert_nothing_cut(table(app))
        header = screen_lines(app)[2].strip("│ ")
        assert header.split() == ["Name▲", "Status", "Lock", "Last", "snap"]
        # wider: the other columns come back in the reverse of their drop order
        await pilot.resize_terminal(100, 24)
        await pilot.pause()
        assert shown_columns(app) == [*ALWAYS, "snapshots", "type", "location"]
        assert_nothing_cut(table(app))
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert shown_columns(app) == [*ALWAYS, "snapshots", "type", "location", "address"]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert shown_columns(app) == ALWAYS
        assert_nothing_cut(table(app))


async def test_never_snapshotted_and_old_snapshots_stand_out(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        t = table(app)
        now, fleet = app.now(), app.fleet
        cells = {sid: t.get_cell(str(sid), "last_snapshot") for sid in t.visible_ids}
        never = [sid for sid in cells if fleet.last_snapshot(sid) is None]
        old = [
            sid
            for sid in cells
            if sid not in never and now - fleet.last_snapshot(sid) >= OLD_SNAPSHOT_AGE
        ]
        recent = [sid for sid in cells if sid not in never and sid not in old]
        assert never and old and recent, "the demo fleet has all three"
        for sid in never:
            assert (cells[sid].plain, str(cells[sid].style)) == ("never", "bold red")
        for sid in old:
            assert cells[sid].plain.endswith("d ago") or cells[sid].plain.endswith("mo ago")
            assert str(cells[sid].style) == "bold yellow"
        for sid in recent:
            assert str(cells[sid].style) == ""
        # the threshold itself: 6 days is plain, 7 days stands out
        server_id = recent[0]
        sim.advance(OLD_SNAPSHOT_AGE - (now - fleet.last_snapshot(server_id)))
        await poll(pilot)
        cell = t.get_cell(str(server_id), "last_snapshot")
        assert (cell.plain, str(cell.style)) == ("7d ago", "bold yellow")


async def test_navigation_keys_move_the_cursor(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        t = table(app)
        names = names_on_screen(app)

        def at() -> str:
            return str(t.get_row_at(t.cursor_row)[1])

        assert at() == names[0]
        await pilot.press("j", "j", "down")
        assert at() == names[3]
        await pilot.press("k", "up")
        assert at() == names[1]
        await pilot.press("G")
        assert at() == names[-1]
        await pilot.press("g")
        assert at() == names[0]
        await pilot.press("end")
        assert at() == names[-1]
        await pilot.press("home")
        assert at() == names[0]
        await pilot.press("pagedown")
        page = t.cursor_row
        assert 10 < page < len(names) - 1
        await pilot.press("pageup")
        assert at() == names[0]
        await pilot.press("G", "enter")
        assert isinstance(app.screen, ServerDetailsScreen)
        assert app.screen.server_id == server_named(sim, names[-1])


async def test_o_and_shift_o_sort_with_an_arrow_on_the_header(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        t = table(app)

        def headers() -> list[str]:
            return [c.label.plain for c in t.ordered_columns]

        assert headers()[1:] == ["Name▲", "Status", "Lock", "Last snap"]
        assert "sort: name ▲" in t.border_title
        await pilot.press("O")
        assert headers()[1] == "Name▼" and "sort: name ▼" in t.border_title
        assert names_on_screen(app) == sorted(names_on_screen(app), reverse=True)
        await pilot.press("o")  # the next column, in its natural direction
        assert headers()[1:3] == ["Name", "Status▲"]
        assert "sort: status ▲" in t.border_title
        await pilot.press("o", "o")
        assert headers()[1:] == ["Name", "Status", "Lock", "Last snap▲"]
        assert "sort: last snapshot ▲" in t.border_title
        fleet = app.fleet
        lasts = [fleet.last_snapshot(sid) or 0.0 for sid in t.visible_ids]
        assert lasts == sorted(lasts) and lasts[0] == 0.0  # never snapshotted first
        never = [str(t.get_cell(str(sid), "last_snapshot")) for sid in t.visible_ids[:3]]
        assert never == ["never"] * 3
        names = [fleet.servers[sid].name for sid in t.visible_ids[:3]]
        assert names == sorted(names)  # ties in name order
        await pilot.press("O")
        assert headers()[-1] == "Last snap▼" and "sort: last snapshot ▼" in t.border_title
        lasts = [fleet.last_snapshot(sid) or 0.0 for sid in t.visible_ids]
        assert lasts == sorted(lasts, reverse=True)
        names = [fleet.servers[sid].name for sid in t.visible_ids[-3:]]
        assert names == sorted(names)  # reversed, ties still in name order
        assert "Last snap▼" in screen_lines(app)[2]
        # type and location are not on screen at 80 columns: `o` goes round without them
        await pilot.press("o")
        assert headers()[1] == "Name▲" and "sort: name ▲" in t.border_title
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        await pilot.press("o", "o", "o", "o")
        assert "sort: type ▲" in t.border_title
        assert [h for h in headers() if h.endswith("▲")] == ["Type▲"]


async def test_escape_undoes_the_filter_then_the_marks(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        t = table(app)
        bar = app.screen.query_one(FilterBar)
        await pilot.press("space", "space")  # marks, and moves on
        assert len(t.marks) == 2 and t.cursor_row == 2
        assert escape_does(app) == "Clear marks"
        await pilot.press("slash", *"db")
        assert escape_does(app) == "Clear filter"
        assert all("db" in n for n in names_on_screen(app))
        await pilot.press("escape")  # one step: the filter
        assert not bar.display and not t.filter and t.row_count == 24
        assert len(t.marks) == 2
        assert escape_does(app) == "Clear marks"
        assert "Clear marks" in screen_lines(app)[-1]  # the footer says it
        await pilot.press("slash", *"db", "enter")  # a filter in force, bar closed
        assert not bar.display and t.filter.text == "db"
        assert escape_does(app) == "Clear filter"
        await pilot.press("escape")
        assert not t.filter and len(t.marks) == 2
        await pilot.press("escape")  # the next step: the marks
        assert not t.marks
        assert escape_does(app) is None
        await pilot.press("escape")  # nothing left to undo: nothing happens
        assert t.row_count == 24 and not t.marks


async def test_quit_key_exits(sim):
    app = make_app(sim)
    async with app.run_test() as pilot:
        await pilot.press("q")
    assert app.return_code == 0


async def test_no_color_is_respected_and_locks_do_not_rely_on_colour(sim, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(sim)
    server_id = server_named(sim, "web-prod-01")
    sim.start_action(server_id, "rebuild_server", 100)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        assert app.no_color
        assert row_of(app, server_id)["lock"].startswith("🔒 rebuild")


async def test_a_sort_shows_the_top_of_the_new_order_with_the_cursor_on_it(make_sim):
    """After `o` the operator looks at the first rows (the oldest snapshot, the
    biggest): the cursor is there, not on its old server somewhere off screen."""
    app = make_app(make_sim(scenario="demo"))
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await pilot.press("G")  # the cursor at the bottom
        await pilot.press("o", "o", "o")  # by last snapshot: never snapshotted first
        await pilot.pause()
        t = table(app)
        assert t.sort_name == "last snapshot"
        assert t.cursor_row == 0 and t.scroll_y == 0
        first = t.visible_ids[0]
        assert t.highlighted_server_id == first
        assert row_of(app, first)["last_snapshot"] == "never"


async def test_a_long_hostname_and_a_long_lock_keep_the_80_column_promise(make_sim):
    """A 38-character hostname gives up width (shortened at a word break) so that
    status, lock and the last snapshot stay; a lock longer than the usual width widens
    its column rather than losing its percentage."""
    sim = make_sim(scenario="demo")
    long_name = "k8s-production-worker-pool-a-fsn1-0001"
    free = [i for i in sorted(sim.world.servers) if not sim.world.servers[i]["locked"]]
    sim.world.servers[free[0]]["name"] = long_name
    sim.start_action(free[1], "change_protection", 600)
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        header = screen_lines(app)[2]
        assert all(h in header for h in ("Name", "Status", "Lock", "Last snap")), header
        assert_nothing_cut(table(app))
        shown = str(table(app).get_cell(str(free[0]), "name"))
        assert shown != long_name and shown.endswith("…")
        assert long_name.startswith(shown.removesuffix("…"))
        assert long_name[len(shown) - 1] in "-"  # cut where a word ends
        assert str(table(app).get_cell(str(free[1]), "lock")).endswith("0%")
        # a wide terminal shows the whole name again
        await pilot.resize_terminal(160, 24)
        await pilot.pause()
        assert str(table(app).get_cell(str(free[0]), "name")) == long_name
