"""The jobs panel under the server table: ended jobs stay a minute, or until `z`."""

from __future__ import annotations

from hsnap_tui.core.jobs import JobState
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
from tests.conftest import make_app, poll
from tests.test_servers_view import server_named
from tests.test_snapshot_flow import highlight, panel_text, tick


def dismiss_enabled(app) -> bool:
    return app.screen.active_bindings["z"].enabled


async def test_z_dismisses_the_ended_jobs_and_only_them(sim):
    app = make_app(sim)
    web, db = server_named(sim, "web-prod-01"), server_named(sim, "db-prod-01")
    sim.start_action(db, "rebuild_server", 3000)  # db's job waits the whole test
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        for server in (web, db):
            await highlight(pilot, server)
            await pilot.press("space")
        assert not dismiss_enabled(app)  # nothing ended to dismiss
        await pilot.press("s", "enter")
        await poll(pilot)
        panel = app.screen.query_one(JobsPanel)
        web_job, db_job = (next(j for j in app.jobs.jobs() if j.server_id == s) for s in (web, db))
        for _ in range(40):
            if app.jobs.get(web_job.id).state == JobState.SUCCEEDED:
                break
            await tick(pilot, sim, 10)
        assert app.jobs.get(web_job.id).state == JobState.SUCCEEDED
        assert app.jobs.get(db_job.id).state == JobState.WAITING
        await pilot.pause()
        assert panel.border_title == "Snapshot jobs · 1 active · 1 ended"
        assert dismiss_enabled(app)
        # the panel names the key while it shows an ended job
        assert panel.border_subtitle == "z dismisses ended"
        await pilot.press("z")
        await pilot.pause()
        text = panel_text(app)
        assert "succeeded" not in text and "web-prod-01" not in text
        assert "db-prod-01" in text and "waiting" in text  # the active one stays
        assert panel.border_title == "Snapshot jobs · 1 active" and not panel.border_subtitle
        assert not dismiss_enabled(app)
        # it does not come back on the next poll
        await tick(pilot, sim, 5)
        assert "web-prod-01" not in panel_text(app)
        # pressed with nothing to dismiss: said, not silently ignored
        await pilot.press("z")
        assert any("Dismiss ended is disabled" in n.message for n in app._notifications)
