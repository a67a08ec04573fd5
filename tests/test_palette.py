"""The command palette (ctrl+p): every key of the current view is a command, named as in
the footer and the help, with its key in the help text, and choosing it does what the
key does — against the simulator, as an operator would use it."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

from hsnap_tui.ui.app import HsnapApp
from hsnap_tui.ui.commands import REPLACED_SYSTEM_COMMANDS
from hsnap_tui.ui.screens.servers import ServersScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from hsnap_tui.ui.screens.snapshots import SnapshotsScreen
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app, poll, settle


async def palette(pilot, query: str = "") -> list[tuple[str, str]]:
    """Open the palette (unless it is open), type `query`, and return what it lists:
    (name, help text) per command, in order."""
    app = pilot.app
    if not isinstance(app.screen, CommandPalette):
        await pilot.press("ctrl+p")
    if query:
        await pilot.press(*query)
    for _ in range(3):  # the palette gathers its hits in a worker, per keystroke
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert isinstance(app.screen, CommandPalette)
    listed = app.screen.query_one(CommandList)
    options = [listed.get_option_at_index(i) for i in range(listed.option_count)]
    return [(option.hit.text, str(option.hit.help or "")) for option in options]


def mutations(sim) -> list[dict]:
    return [r for r in sim.requests() if r["method"] != "GET"]


def assert_every_key_listed(app, view, listed: dict[str, str]) -> int:
    """Every key the view offers (the footer's and the help's) is a command of its name,
    with the key in its help text; returns how many were checked."""
    checked = 0
    for active in view.active_bindings.values():
        binding = active.binding
        if binding.id:  # without one: Textual's own
            keys = listed[binding.description].split(" · ")[0].split()
            assert app.get_key_display(binding) in keys, binding.id
            checked += 1
    return checked


async def test_every_key_of_the_view_is_a_command_named_as_in_the_footer(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        view = app.screen
        listed = dict(await palette(pilot))
        assert assert_every_key_listed(app, view, listed) > 20
        ids = {a.binding.id for a in view.active_bindings.values()}
        classes = (ServerTable, ServersScreen, HsnapApp)
        offered = {b.id for c in classes for b in c.BINDINGS} - ids
        # escape is offered when there is something to undo (a filter, marks)
        assert offered == {"servers.clear_filter", "servers.clear_marks"}
        assert listed["Details"] == "⏎ · Details of the highlighted server"
        assert listed["Snapshot"] == "s · Snapshot the highlighted server, or all marked ones"
        # Textual's own keys and commands stay out (its Quit would not ask about running
        # jobs; ours does); its theme and screenshot commands stay in, after the app's
        names = [name for name, _ in await palette(pilot)]
        assert names.count("Quit") == 1 and listed["Quit"] == "q · Quit hsnap-tui"
        assert "Keys" not in listed and "Cursor up" not in listed
        assert {"Theme", "Screenshot"} <= set(listed)

        await pilot.press("escape", "2")
        assert isinstance(app.screen, SnapshotsScreen)
        view = app.screen
        listed = dict(await palette(pilot))
        assert assert_every_key_listed(app, view, listed) > 15
        assert listed["Delete"].startswith("d ·") and listed["Sort"].startswith("o ·")


async def test_snap_lists_the_snapshot_command_and_enter_opens_the_dialog(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        highlighted = app.screen.query_one(ServerTable).highlighted_server_id
        listed = await palette(pilot, "snap")
        assert listed[0] == ("Snapshot", "s · Snapshot the highlighted server, or all marked ones")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SnapshotDialog)
        assert [s.id for s in app.screen.servers] == [highlighted]
        assert mutations(sim) == []  # only the dialog: nothing sent before it is confirmed


async def test_refresh_from_the_palette_sends_what_r_sends(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        sim.clear_requests()
        listed = await palette(pilot, "refresh")
        assert listed[0] == ("Refresh", "r · Refresh servers, locks and snapshots now")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, CommandPalette)
        from_palette = [(r["method"], r["path"]) for r in sim.requests()]
        assert ("GET", "/v1/servers") in from_palette  # the full refresh, not just locks
        sim.clear_requests()
        await pilot.press("r")
        await settle(pilot)
        assert [(r["method"], r["path"]) for r in sim.requests()] == from_palette


async def test_apps_commands_come_before_textuals(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        system = {title for title, *_ in app.get_system_commands(app.screen)}
        system -= REPLACED_SYSTEM_COMMANDS  # replaced by the app's own
        for query in ("", "e", "s", "th"):
            names = [name for name, _ in await palette(pilot, query)]
            ours = [name not in system for name in names]
            assert ours == sorted(ours, reverse=True), (query, names)
            for _ in query:
                await pilot.press("backspace")
        assert "Theme" in names  # "th": Textual's, after the app's (none match)


async def test_read_only_lists_disabled_keys_with_the_reason_and_sends_nothing(sim):
    app = make_app(sim)
    app.api.go_read_only("--read-only")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await poll(pilot)
        app.clear_notifications()
        listed = await palette(pilot, "snap")
        assert listed[0] == ("Snapshot", "s · disabled: read-only (--read-only)")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, (SnapshotDialog, CommandPalette))
        notes = [n.message for n in app._notifications]
        assert notes == ["Snapshot is disabled: read-only (--read-only)."]
        # the keys that stay enabled still work from the palette
        await palette(pilot, "sort")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one(ServerTable).sort_name == "status"
        assert mutations(sim) == []


async def test_a_remapped_key_shows_in_the_palette(sim):
    app = make_app(sim, keymap={"app.refresh": "f5"})
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        listed = await palette(pilot, "refresh")
        assert listed[0] == ("Refresh", "f5 · Refresh servers, locks and snapshots now")
