"""The Servers table's keyed diff: whatever sequence of refreshes, filters, sorts, marks
and resizes it goes through, it shows exactly what a table built afresh would show,
and a steady refresh touches nothing but the cells that changed."""

from __future__ import annotations

import random
from datetime import timedelta

import humanize
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.refresh import Refresher
from hsnap_tui.core.units import ago
from hsnap_tui.ui.widgets.server_table import COLUMNS, LOCK_WIDTH, SORTS, ServerTable, server_cells
from tests.conftest import make_app, sdk_client

FILTERS = ["", "prod", "w", "web", "env=prod", "role in (db,web)", "-0", "nothing-matches"]


@settings(deadline=None)  # microseconds each; no wall-clock limit on a loaded machine
@given(
    st.floats(min_value=-1e4, max_value=4e8, allow_nan=False),
    st.floats(min_value=0, max_value=2e9, allow_nan=False),
)
def test_ago_reads_as_humanize_reads_it(delta, now):
    expected = humanize.naturaltime(timedelta(seconds=max(0.0, delta)))
    assert ago(now - delta, now) == expected
    assert ago(None, now) == "never"


def fresh_view(table: ServerTable) -> tuple[list[tuple[str, list[tuple[str, str]]]], dict]:
    """The rows (key, (text, style) per shown column) and the content width of every
    column, computed from scratch from what the table was asked to show."""
    fleet, now = table.fleet, table.now
    visible = [s for s in fleet.servers.values() if table.filter.matches(s.labels, s.name)]
    sort = SORTS[table.sort_name]
    # the primary key in the shown direction, then the name ascending
    groups: dict[object, list] = {}
    for server in visible:
        groups.setdefault(sort.key(fleet, server), []).append(server)
    visible = [
        server
        for key in sorted(groups, reverse=table.descending)
        for server in sorted(groups[key], key=lambda s: s.name)
    ]
    cells = {s.id: server_cells(s, fleet, now, s.id in table.marks) for s in visible}
    shown = [c.key.value for c in table.ordered_columns]
    rows = [(str(s.id), [cells[s.id][c] for c in shown]) for s in visible]
    widths = {
        c.key: c.width
        or max(
            [len(c.label) + (c.key in table.sorts)]  # the sort arrow
            + [cell_len(cs[c.key][0]) for cs in cells.values()]
        )
        for c in COLUMNS
    }
    widths["lock"] = max(widths["lock"], LOCK_WIDTH)
    return rows, widths


def table_view(table: ServerTable) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (row.key.value, [(cell.plain, str(cell.style)) for cell in table.get_row(row.key)])
        for row in table.ordered_rows
    ]


def fleets_over_time(sim, steps: int, rng: random.Random) -> list:
    """Fleets as the refresher sees them while other tools lock servers, snapshots are
    taken and finish, and servers come and go."""
    refresher = Refresher(HetznerApi(sim.token, sim.url), clock=sim.clock.now)
    client = sdk_client(sim)
    refresher.poll()
    fleets = [(refresher.fleet, sim.clock.now())]
    ids = sorted(sim.world.servers)
    for step in range(steps):
        for server_id in rng.sample(ids, 3):
            if server_id in sim.world.servers and not sim.world.servers[server_id]["locked"]:
                if rng.random() < 0.3:
                    server = client.servers.get_by_id(server_id)
                    client.servers.create_image(server, description=f"t-{step}")
                else:
                    sim.start_action(server_id, "rebuild_server", rng.choice([20, 90, 4000]))
        if step % 7 == 3:  # a server is deleted by someone else
            gone = rng.choice(sorted(sim.world.servers))
            if not sim.world.servers[gone]["locked"]:
                del sim.world.servers[gone]
        if rng.random() < 0.4:
            refresher.request_full()
        sim.advance(rng.choice([1, 5, 30, 600, 90_000]))
        refresher.poll()
        fleets.append((refresher.fleet, sim.clock.now()))
    return fleets


async def test_the_diff_always_shows_what_a_fresh_table_would(make_sim):
    sim = make_sim(servers=60)
    rng = random.Random(11)
    fleets = fleets_over_time(sim, 24, rng)
    app = make_app(sim)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        table = screen.table
        for fleet, now in fleets:
            for _ in range(rng.randint(0, 3)):
                move = rng.choice(
                    ["filter", "sort", "reverse", "mark", "clear", "cursor", "resize"]
                )
                if move == "filter":
                    assert table.set_filter(rng.choice(FILTERS)) is None
                elif move == "sort":
                    table.action_cycle_sort()
                elif move == "reverse":
                    table.action_reverse_sort()
                elif move == "mark" and table.visible_ids:
                    table.toggle_mark(rng.choice(table.visible_ids))
                elif move == "clear":
                    table.clear_marks()
                elif move == "cursor" and table.row_count:
                    table.move_cursor(row=rng.randrange(table.row_count))
                elif move == "resize":
                    await pilot.resize_terminal(rng.choice([80, 100, 120, 160]), 30)
            await pilot.pause()  # a sort lands (and shows the top) before the refresh
            watched = table.highlighted_server_id
            screen.fleet_changed(fleet, now)
            await pilot.pause()
            rows, widths = fresh_view(table)
            assert table_view(table) == rows
            assert table._content_widths() == widths
            if watched is not None and str(watched) in dict(rows):
                assert table.highlighted_server_id == watched


async def test_a_steady_refresh_only_updates_the_changed_cells(make_sim):
    sim = make_sim(servers=200)
    busy = sorted(sim.world.servers)[::20]
    for server_id in busy:
        sim.start_action(server_id, "rebuild_server", 100)
    refresher = Refresher(HetznerApi(sim.token, sim.url), clock=sim.clock.now)
    first = refresher.poll().fleet
    sim.advance(refresher.next_delay())
    second = refresher.poll().fleet
    app = make_app(sim)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        table = screen.table
        screen.fleet_changed(first, sim.clock.now())
        await pilot.pause()
        calls: list[tuple] = []
        for name in ("add_row", "remove_row", "clear", "sort", "update_cell", "add_column"):
            original = getattr(table, name)

            def counting(*args, _name=name, _original=original, **kwargs):
                calls.append((_name, *(str(a) for a in args[:2])))
                return _original(*args, **kwargs)

            setattr(table, name, counting)
        screen.fleet_changed(second, sim.clock.now())
        # the locks moved on (progress), nothing else: one cell per busy server
        assert sorted(calls) == sorted(("update_cell", str(i), "lock") for i in busy)
        rows, _ = fresh_view(table)
        assert table_view(table) == rows


async def test_a_filter_keystroke_keeps_the_cursor_on_its_server(make_sim):
    sim = make_sim(servers=300)
    app = make_app(sim)
    refresher = Refresher(HetznerApi(sim.token, sim.url), clock=sim.clock.now)
    fleet = refresher.poll().fleet
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        table = screen.table
        screen.fleet_changed(fleet, sim.clock.now())
        await pilot.pause()
        web = [i for i in table.visible_ids if fleet.servers[i].name.startswith("web-")]
        target = web[len(web) // 2]
        table.move_cursor(row=table.get_row_index(str(target)))
        await pilot.press("slash", "w")
        assert table.row_count == sum("w" in s.name for s in fleet.servers.values())
        assert table.highlighted_server_id == target
        await pilot.press("backspace")
        assert table.row_count == 300
        assert table.highlighted_server_id == target
        rows, _ = fresh_view(table)
        assert table_view(table) == rows
