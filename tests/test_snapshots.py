"""SVG snapshots of every view and dialog at 80x24 (the design size) and 120x40, from the
demo fleet on a stopped clock. (The command palette is Textual's own dialog, filled by
an asynchronous search: tests/test_palette.py checks what it lists.)

Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update`
and look at the report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.widgets import Input

from hsnap_tui.sim import Simulator
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app, poll, settle

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}

Setup = Callable[..., Awaitable[None]]


def server_id(sim: Simulator, name: str) -> int:
    return next(s["id"] for s in sim.world.servers.values() if s["name"] == name)


def no_blink(pilot) -> None:
    """A blinking cursor would make the picture depend on the moment it is taken."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def highlight(pilot, sim: Simulator, name: str) -> None:
    table = pilot.app.screen.query_one(ServerTable)
    table.move_cursor(row=table.get_row_index(str(server_id(sim, name))))
    await pilot.pause()


async def header_now(pilot) -> None:
    """Repaint the header as of now (it otherwise repaints on its own one-second timer)."""
    pilot.app._refresh_status()
    await pilot.pause()


async def jobs_running(pilot, sim: Simulator) -> None:
    app = pilot.app
    for name in ("web-prod-01", "worker-prod-01", "api-prod-01"):
        await highlight(pilot, sim, name)
        await pilot.press("space")
    await pilot.press("s", "enter")
    await poll(pilot)
    for _ in range(3):
        sim.advance(5)
        app.refresher.request_fast()
        await poll(pilot)
    app.clear_notifications()
    await pilot.pause()


# ---- one setup per view or dialog ------------------------------------------------------


async def servers(pilot, sim) -> None:
    pass


async def servers_marked_sorted(pilot, sim) -> None:
    await pilot.press("space", "space", "o", "o")  # two marked, sorted by lock


async def servers_filter_bad_selector(pilot, sim) -> None:
    await pilot.press("slash")
    no_blink(pilot)
    # a good selector, then one that does not parse: the table keeps the good one
    await pilot.press(*"role=db,env in (prod")


async def servers_stale(pilot, sim) -> None:
    app = pilot.app
    sim.add_fault("http_503", count=1)
    sim.advance(app.refresher.next_delay())
    await poll(pilot)
    app.clear_notifications()
    sim.advance(1)


async def jobs_panel(pilot, sim) -> None:
    await jobs_running(pilot, sim)


async def quit_with_jobs(pilot, sim) -> None:
    await jobs_running(pilot, sim)
    await pilot.press("q")


async def details(pilot, sim) -> None:
    app = pilot.app
    await highlight(pilot, sim, "db-prod-01")
    await pilot.press("enter")
    await settle(pilot)
    for _ in range(200):  # the details' own request, answered and shown
        note = app.screen.query("#recent-note")
        if note and "loading" not in str(note.first().content):
            break
        await pilot.pause(0.01)


async def snapshot_dialog(pilot, sim) -> None:
    for name in ("db-prod-01", "worker-prod-01"):
        await highlight(pilot, sim, name)
        await pilot.press("space")
    await pilot.press("s")
    no_blink(pilot)


async def help_screen(pilot, sim) -> None:
    await pilot.press("question_mark")


async def activity(pilot, sim) -> None:
    await jobs_running(pilot, sim)
    await pilot.press("3")


async def inspector(pilot, sim) -> None:
    app = pilot.app
    await highlight(pilot, sim, "web-prod-01")
    await pilot.press("i")
    sim.advance(20)
    app.refresher.request_fast()
    await poll(pilot)


async def action_pick(pilot, sim) -> None:
    app = pilot.app
    ref = [{"id": server_id(sim, "worker-prod-02"), "type": "server"}]
    with sim.lock:  # two at once: another tool's rebuild and an ISO being attached
        sim.world.new_action("rebuild_server", ref, 300)
        sim.world.new_action("attach_iso", ref, 300)
    app.refresher.request_fast()
    await poll(pilot)
    await highlight(pilot, sim, "worker-prod-02")
    await pilot.press("i")


async def action_id_dialog(pilot, sim) -> None:
    await pilot.press("a")
    field = pilot.app.screen.query_one(Input)
    field.cursor_blink = False
    field.value = "f21b9dc9d1535310"  # a correlation ID, not an action ID
    await pilot.press("enter")


async def lock_explanation(pilot, sim) -> None:
    sim.start_action(server_id(sim, "api-prod-01"), "migrate_server", 600, visible=False)
    pilot.app.refresher.request_full()
    await poll(pilot)
    await highlight(pilot, sim, "api-prod-01")
    await pilot.press("i")


async def snapshots(pilot, sim) -> None:
    await pilot.press("2")


async def snapshots_filtered(pilot, sim) -> None:
    await pilot.press("2", "slash")
    no_blink(pilot)
    await pilot.press(*"managed-by=hsnap")


async def delete_confirm(pilot, sim) -> None:
    await pilot.press("2", "G", "d")


async def retention(pilot, sim) -> None:
    await pilot.press("2", "p")
    no_blink(pilot)
    pilot.app.screen.query_one("#retention-keep", Input).value = "last 1"


async def retention_policy(pilot, sim) -> None:
    from textual.widgets import Select

    await pilot.press("2", "p")
    no_blink(pilot)
    pilot.app.screen.query_one("#retention-policy", Select).value = 0


async def contexts(pilot, sim) -> None:
    await pilot.press("c")


VIEWS: dict[str, Setup] = {
    "servers": servers,
    "servers-marked-sorted": servers_marked_sorted,
    "servers-filter-bad-selector": servers_filter_bad_selector,
    "servers-stale": servers_stale,
    "jobs-panel": jobs_panel,
    "quit-with-jobs": quit_with_jobs,
    "details": details,
    "snapshot-dialog": snapshot_dialog,
    "help": help_screen,
    "activity": activity,
    "inspector": inspector,
    "action-pick": action_pick,
    "action-id-dialog": action_id_dialog,
    "lock-explanation": lock_explanation,
    "snapshots": snapshots,
    "snapshots-filtered": snapshots_filtered,
    "delete-confirm": delete_confirm,
    "retention": retention,
    "retention-policy": retention_policy,
    "contexts": contexts,
}


def view_app(sim: Simulator, view: str):
    if view == "retention-policy":
        from hsnap_tui.core.keep import KeepRules
        from hsnap_tui.core.policy import Policy

        policy = Policy(
            name="prod nightly",
            selector="env=prod",
            labels={"managed-by": "hsnap"},
            keep=KeepRules(daily=7, weekly=4),
        )
        return make_app(sim, policies=[policy])
    if view == "contexts":
        from hsnap_tui.config import Context

        choices = [
            Context("prod", "p" * 64),
            Context("staging", "s" * 64, "https://api.example.test/v1"),
        ]
        return make_app(sim, demo=False, context="prod", contexts=lambda: choices)
    return make_app(sim)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(view: str, size: str, make_sim, snap_compare):
    sim = make_sim(scenario="demo")
    app = view_app(sim, view)

    async def run_before(pilot) -> None:
        await poll(pilot)
        await VIEWS[view](pilot, sim)
        await settle(pilot)
        no_blink(pilot)
        await header_now(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
