"""Snapshots from the keyboard, end to end in the app: the confirmation, the jobs
panel, the Activity view, cancelling, and quitting while jobs run."""

from __future__ import annotations

from textual.widgets import Button, DataTable, Input, RadioButton

from hsnap_tui.core.jobs import JobState
from hsnap_tui.ui.format import short_ago
from hsnap_tui.ui.screens.activity import ActivityScreen
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
from hsnap_tui.ui.widgets.server_table import ServerTable
from tests.conftest import make_app, poll
from tests.test_servers_view import plain, row_of, server_named


def posts(sim):
    return [r for r in sim.requests() if r["method"] == "POST"]


async def highlight(pilot, server_id: int) -> None:
    table = pilot.app.screen.query_one(ServerTable)
    table.move_cursor(row=table.get_row_index(str(server_id)))
    await pilot.pause()


async def tick(pilot, sim, seconds: float = 5.0) -> None:
    sim.advance(seconds)
    pilot.app.refresher.request_fast()
    await poll(pilot)


def panel_text(app) -> str:
    return plain(app.screen.query_one(JobsPanel).content)


async def test_snapshot_the_highlighted_server_and_watch_it_finish(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SnapshotDialog)
        assert [s.name for s in dialog.servers] == ["web-prod-01"]
        assert dialog.query_one("#snapshot-template", Input).value == "{server}-{date}-{time}"
        assert dialog.query_one("#snapshot-labels", Input).value == "managed-by=hsnap"
        assert dialog.query_one("#policy-wait", RadioButton).value
        await pilot.press("enter")
        assert not isinstance(app.screen, SnapshotDialog)
        await poll(pilot)  # the queued job sends its request after a fresh fast lane
        [post] = posts(sim)
        assert post["path"] == f"/v1/servers/{web}/actions/create_image"
        panel = panel_text(app)
        assert "web-prod-01" in panel and "running" in panel and "0%" in panel
        await tick(pilot, sim, 20)
        assert "web-prod-01" in panel_text(app)
        assert row_of(app, web)["lock"].startswith("🔒 create_image")
        job = app.jobs.jobs()[0]
        assert job.progress > 0
        for _ in range(40):
            if not app.jobs.active_jobs():
                break
            await tick(pilot, sim, 10)
        job = app.jobs.jobs()[0]
        assert job.state == JobState.SUCCEEDED
        # it stays in the panel a minute, dimmed, with its outcome …
        panel = app.screen.query_one(JobsPanel)
        assert panel.has_class("-active")
        assert "succeeded" in panel_text(app) and f"image {job.image_id}" in panel_text(app)
        assert panel.border_title == "Snapshot jobs · 0 active · 1 ended"
        # "last snapshot" is the new image at once, before the slow lane reads it
        image = app.fleet.snapshots_of(web)[0]
        assert image.id == job.image_id and image.status == "available"
        assert app.fleet.last_snapshot(web) == image.created
        assert row_of(app, web)["last_snapshot"] == short_ago(image.created, sim.clock.now())
        assert any("done" in n.message for n in app._notifications)
        assert len(posts(sim)) == 1
        # … then leaves the panel
        sim.advance(61)
        panel.show_jobs(app.jobs.jobs(), sim.clock.now())
        assert not panel.has_class("-active")


async def test_bad_labels_and_template_are_refused_inline(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("s")
        dialog = app.screen
        labels = dialog.query_one("#snapshot-labels", Input)
        labels.value = "managed-by=hsnap, Bad Key=1"
        await pilot.pause()
        assert "not key=value" in plain(dialog.query_one("#snapshot-error").content)
        assert dialog.query_one("#snapshot-confirm", Button).disabled
        labels.value = "team=" + "x" * 70
        await pilot.pause()
        assert "at most 63 characters" in plain(dialog.query_one("#snapshot-error").content)
        await pilot.press("enter")
        assert isinstance(app.screen, SnapshotDialog)  # not confirmed
        labels.value = "managed-by=hsnap"
        template = dialog.query_one("#snapshot-template", Input)
        template.value = "{server}-{week}"
        await pilot.pause()
        assert "unknown placeholder {week}" in plain(dialog.query_one("#snapshot-error").content)
        template.value = "{server}-manual"
        await pilot.pause()
        assert "→ api-prod-01-manual" in plain(dialog.query_one("#snapshot-preview").content)
        await pilot.press("escape")
        assert not isinstance(app.screen, SnapshotDialog)
        assert app.jobs.jobs() == []
        await poll(pilot)
        assert posts(sim) == []


async def test_marked_servers_skip_policy_and_one_job_per_server(sim):
    app = make_app(sim)
    db, web = server_named(sim, "db-prod-01"), server_named(sim, "web-prod-01")
    sim.start_action(db, "rebuild_server", 300)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        for server_id in (db, web):
            await highlight(pilot, server_id)
            await pilot.press("space")
        await pilot.press("s")
        dialog = app.screen
        assert sorted(s.name for s in dialog.servers) == ["db-prod-01", "web-prod-01"]
        assert "🔒 locked now" in plain(dialog.query_one("#snapshot-servers").content)
        dialog.query_one("#policy-skip", RadioButton).value = True
        await pilot.pause()
        await pilot.click("#snapshot-confirm")
        await poll(pilot)
        states = {j.server_name: j.state for j in app.jobs.jobs()}
        assert states == {"db-prod-01": JobState.SKIPPED, "web-prod-01": JobState.RUNNING}
        assert [p["path"] for p in posts(sim)] == [f"/v1/servers/{web}/actions/create_image"]
        assert not app.screen.query_one(ServerTable).marks  # marks used up
        # `s` again on the running server: said, not sent
        await highlight(pilot, web)
        await pilot.press("s")
        assert not isinstance(app.screen, SnapshotDialog)
        assert any("already has an active snapshot job" in n.message for n in app._notifications)
        await tick(pilot, sim)
        assert len(posts(sim)) == 1


async def test_waiting_job_names_the_blocker_and_can_be_cancelled(sim):
    app = make_app(sim)
    db = server_named(sim, "db-prod-01")
    blocker = sim.start_action(db, "rebuild_server", 300)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, db)
        await pilot.press("s", "enter")
        await tick(pilot, sim, 30)
        assert "waiting: rebuild" in panel_text(app) and f"(#{blocker['id']})" in panel_text(app)
        await pilot.press("3")
        assert isinstance(app.screen, ActivityScreen)
        jobs = app.screen.query_one("#jobs", DataTable)
        row = [str(c) for c in jobs.get_row("1")]
        assert row[1] == "db-prod-01" and row[2] == "waiting"
        assert "waiting: rebuild" in row[7] and f"(#{blocker['id']})" in row[7]
        await pilot.press("x")
        assert app.jobs.get(1).state == JobState.CANCELLED
        assert str(jobs.get_row("1")[2]) == "cancelled"
        await tick(pilot, sim, 300)
        assert posts(sim) == []
        await pilot.press("1")
        assert app.screen.query_one(ServerTable)


async def test_activity_view_shows_outcomes_and_the_audit_log(sim):
    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(140, 40)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("s", "enter")
        await poll(pilot)
        await pilot.press("3")
        jobs = app.screen.query_one("#jobs", DataTable)
        await pilot.press("x")  # a running job cannot be cancelled
        assert any("cannot be cancelled" in n.message for n in app._notifications)
        for _ in range(40):
            if not app.jobs.active_jobs():
                break
            await tick(pilot, sim, 10)
        row = [str(c) for c in jobs.get_row("1")]
        job = app.jobs.get(1)
        assert row[2] == "succeeded" and row[3] == "100%"
        assert row[5] == str(job.image_id) and row[6].endswith(" GB")
        audit = app.screen.query_one("#audit", DataTable)
        [entry] = [[str(c) for c in audit.get_row_at(i)] for i in range(audit.row_count)]
        assert entry[1] == f"POST /servers/{web}/actions/create_image"
        assert entry[2] == "web-prod-01" and entry[3].startswith("201 created image ")
        assert entry[4] == posts(sim)[0]["correlation_id"]


async def test_quit_with_active_jobs_asks_first(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("s", "enter")
        await poll(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        message = plain(app.screen.query_one("#confirm-message").content)
        assert "Hetzner finishes the 1 snapshot already started" in message
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.is_running
        await pilot.press("q", "y")
    assert app.return_code == 0


async def test_the_dialog_offers_a_consistent_snapshot_and_the_panel_shows_its_steps(sim):
    from textual.widgets import Checkbox

    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await highlight(pilot, web)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SnapshotDialog)
        box = dialog.query_one("#snapshot-shutdown", Checkbox)
        assert not box.value  # a running snapshot unless asked
        assert box.region.bottom <= 24 and box.region.height > 0  # fits at 80x24
        box.focus()
        await pilot.press("space")  # space ticks it …
        assert box.value
        await pilot.press("enter")  # … enter confirms the dialog from there too
        await pilot.pause()
        assert not isinstance(app.screen, SnapshotDialog)
        for _ in range(10):  # the job reads the server list afresh before it shuts down
            await tick(pilot, sim, 2)
            if posts(sim):
                break
        assert [p["path"].rsplit("/", 1)[1] for p in posts(sim)] == ["shutdown"]
        assert "shutting down" in panel_text(app)
        shown = ""
        for _ in range(80):
            if not app.jobs.active_jobs():
                break
            await tick(pilot, sim, 5)
            if app.jobs.active_jobs():
                shown += panel_text(app)
        assert "snapshotting" in shown and "starting" in shown
        job = app.jobs.jobs()[0]
        assert job.state == JobState.SUCCEEDED and job.powered_on
        assert [p["path"].rsplit("/", 1)[1] for p in posts(sim)] == [
            "shutdown",
            "create_image",
            "poweron",
        ]
        assert sim.world.servers[web]["status"] == "running"
        assert any("powered on again" in n.message for n in app._notifications)


async def test_quitting_with_a_server_off_names_it_after_the_console(sim):
    from hsnap_tui.core.jobs import LockPolicy

    app = make_app(sim)
    web = server_named(sim, "web-prod-01")
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        server = app.fleet.servers[web]
        app.session.submit(
            [server], "{server}-c", {"managed-by": "hsnap"}, LockPolicy.WAIT, shutdown=True
        )
        for _ in range(20):
            await tick(pilot, sim, 2)
            if app.jobs.jobs()[0].turned_off:
                break
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert "STILL OFF: web-prod-01" in plain(app.screen.query_one("#confirm-message").content)
        said = []
        real_exit = app.exit
        app.exit = lambda *a, message=None, **k: (said.append(message), real_exit(*a, **k))
        await pilot.press("y")
        await pilot.pause()
    assert said and said[0], "a message for the terminal after the console"
    assert "STILL OFF" in said[0] and "hcloud server poweron web-prod-01" in said[0]


async def test_an_invalid_template_drops_the_old_preview_and_labels_say_how(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await pilot.press("s")
        dialog = app.screen
        assert plain(dialog.query_one("#snapshot-preview").content).startswith("→ ")
        dialog.query_one("#snapshot-template", Input).value = "{servr}"
        await pilot.pause()
        preview = plain(dialog.query_one("#snapshot-preview").content).strip()
        assert preview == "→ (no preview while the template is not valid)"
        assert dialog.query_one("#snapshot-confirm", Button).disabled
        dialog.query_one("#snapshot-template", Input).value = "{server}"
        dialog.query_one("#snapshot-labels", Input).value = "bad key=x"
        await pilot.pause()
        error = plain(dialog.query_one("#snapshot-error").content)
        assert "'bad' is not key=value: labels are key=value, separated by commas" in error
