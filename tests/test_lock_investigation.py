"""`i` and `a` in the app: from a locked server to the action that holds it, and the
inputs that are not action IDs."""

from __future__ import annotations

from textual.widgets import Input

from hsnap_tui.core.jobs import LockPolicy
from hsnap_tui.ui.screens.details import ServerDetailsScreen
from hsnap_tui.ui.screens.inspector import (
    ActionIdDialog,
    ActionInspectorScreen,
    ActionPickScreen,
    LockExplanationScreen,
)
from hsnap_tui.ui.widgets.nav_table import NavTable
from tests.conftest import make_app, poll, settle
from tests.test_servers_view import plain, server_named
from tests.test_snapshot_flow import highlight, tick


def inspector_text(app) -> str:
    return plain(app.screen.query_one("#inspector-body").content)


async def test_i_on_a_locked_server_follows_its_action_live(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        action = sim.start_action(web, "rebuild_server", 200)
        await tick(pilot, sim, 10)
        await highlight(pilot, web)
        await pilot.press("i")
        assert isinstance(app.screen, ActionInspectorScreen)
        text = inspector_text(app)
        assert f"#{action['id']}" in text and "rebuild_server" in text
        assert "running" in text and "5%" in text
        assert f"server {web}  web-prod-01" in text  # named from the fleet: no request
        sim.clear_requests()
        progress = []
        for _ in range(3):
            await tick(pilot, sim, 20)
            progress.append(app.screen.action.progress)
        assert progress == [15, 25, 35]
        assert "35%" in inspector_text(app)
        polls = [r for r in sim.requests() if r["path"] == "/v1/actions"]
        assert len(polls) == 3 and all(p["query"]["id"] == [str(action["id"])] for p in polls)
        assert not [
            r
            for r in sim.requests()
            if r["path"].startswith("/v1/servers/") and r["path"] != "/v1/servers/actions"
        ]
        await tick(pilot, sim, 200)
        text = inspector_text(app)
        assert "success" in text and "100%" in text and "Finished" in text
        await pilot.press("enter")
        assert isinstance(app.screen, ServerDetailsScreen)
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, ActionInspectorScreen)
        assert app.session.followed() == set()


async def test_failed_action_shows_its_error(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    action = sim.start_action(
        web, "rebuild_server", 10, fail={"code": "rebuild_failed", "message": "image not found"}
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("i")
        await tick(pilot, sim, 20)
        text = inspector_text(app)
        assert "error" in text and "rebuild_failed: image not found" in text
        assert app.screen.action.id == action["id"]


async def test_several_actions_give_a_pick_list(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    ref = [{"id": web, "type": "server"}]
    first = sim.world.new_action("rebuild_server", ref, 100)
    second = sim.world.new_action("attach_iso", ref, 100)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("i")
        assert isinstance(app.screen, ActionPickScreen)
        options = app.screen.query_one(NavTable)
        assert options.row_count == 2
        await pilot.press("j", "enter")
        assert isinstance(app.screen, ActionInspectorScreen)
        assert app.screen.action.id == second.id != first.id


async def test_locked_without_an_action_is_explained(sim):
    app = make_app(sim)
    db = server_named(sim, "db-prod-01")
    sim.start_action(db, "migrate_server", 600, visible=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, db)
        await pilot.press("i")
        assert isinstance(app.screen, LockExplanationScreen)
        text = plain(app.screen.query_one("Static").content)
        servers_request = [r for r in sim.requests() if r["path"] == "/v1/servers"][-1]
        assert "none of this project's running actions names it" in text
        assert servers_request["correlation_id"] in text
        await pilot.press("escape")
        await highlight(pilot, server_named(sim, "api-prod-01"))
        await pilot.press("i")
        assert any("is not locked" in n.message for n in app._notifications)


async def ask(pilot, text: str) -> str:
    app = pilot.app
    if not isinstance(app.screen, ActionIdDialog):
        await pilot.press("a")
    field = app.screen.query_one(Input)
    field.value = text
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()
    if isinstance(app.screen, ActionIdDialog):
        return plain(app.screen.query_one("#action-id-message").content)
    return ""


async def test_a_refuses_garbage_explains_correlation_ids_and_unknown_ids(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        sim.clear_requests()
        assert "not a whole number" in await ask(pilot, "1e3")
        assert "start at 1" in await ask(pilot, "0")
        message = await ask(pilot, "f21b9dc9d1535310")
        assert "is a request ID" in message and "not an action ID" in message
        message = await ask(
            pilot, "cannot perform operation because server is locked (locked, f21b9dc9d1535310)"
        )
        assert "f21b9dc9d1535310 is a request ID" in message
        assert sim.requests() == []  # none of these asked the API
        assert "There is no action 42 in this project." in await ask(pilot, "#42")
        assert [r["path"] for r in sim.requests()] == ["/v1/actions/42"]
        history = next(a for a in sim.world.actions.values() if a.status == "success")
        assert await ask(pilot, f" {history.id} ") == ""
        assert isinstance(app.screen, ActionInspectorScreen)
        assert "success" in inspector_text(app)


async def test_a_job_that_met_locked_links_to_the_blocker(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        app.jobs.submit([app.fleet.servers[web]], "{server}-x", {}, LockPolicy.WAIT)
        # another tool takes the server between our look and our request
        blocker = sim.start_action(web, "rebuild_server", 60)
        app.jobs.step(app.fleet)
        job = app.jobs.jobs()[0]
        assert job.error_code == "locked" and job.request_id
        await tick(pilot, sim)
        await pilot.press("3", "i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ActionInspectorScreen)
        assert app.screen.action.id == blocker["id"]
        note = plain(app.screen.query_one("#inspector-note").content)
        assert f"request ID {job.request_id}" in note


async def test_a_lookup_under_faults_explains_and_retries(sim):
    app = make_app(sim)
    history = next(a for a in sim.world.actions.values() if a.status == "success")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        for kind in ("http_503", "drop", "malformed_json", "rate_limit"):
            sim.add_fault(kind, count=1, path_prefix="/v1/actions/")
            message = await ask(pilot, str(history.id))
            assert isinstance(app.screen, ActionIdDialog), kind
            assert message and "Traceback" not in message, kind
        assert await ask(pilot, str(history.id)) == ""  # the API answers again
        assert isinstance(app.screen, ActionInspectorScreen)


async def test_screens_dismissed_before_they_mount_do_not_crash(sim):
    """Keys typed ahead can open and close a dialog within one frame."""
    from hsnap_tui.ui.screens.confirm import ConfirmScreen
    from hsnap_tui.ui.screens.details import ServerDetailsScreen
    from hsnap_tui.ui.screens.retention import RetentionScreen
    from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog

    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        server = next(iter(app.fleet.servers.values()))
        action = next(iter(sim.world.actions.values()))
        from hsnap_tui.core.models import Action

        for screen in (
            ActionIdDialog(),
            ConfirmScreen("t", "m"),
            RetentionScreen(),
            SnapshotDialog([server], set()),
            ServerDetailsScreen(server.id),
            ActionInspectorScreen(Action.from_json(action.to_json())),
        ):
            app.push_screen(screen)
            app.pop_screen()
            await settle(pilot)
            assert app.is_running, type(screen).__name__
        assert app.session.followed() == set()
