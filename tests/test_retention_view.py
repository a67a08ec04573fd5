"""The retention plan (`p` in view 2) at 80x24: what it deletes, by its whole name,
first; and after it has run, what became of each, with no second Delete on offer."""

from __future__ import annotations

from textual.widgets import Button, Input

from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.retention import RetentionScreen
from hsnap_tui.ui.widgets.nav_table import NavTable
from tests.conftest import make_app, settle
from tests.test_activity_view import headers, shown
from tests.test_snapshots_view import deletes, open_view, plan_rows


async def open_plan(pilot, keep: str) -> RetentionScreen:
    await open_view(pilot)
    await pilot.press("p")
    screen = pilot.app.screen
    assert isinstance(screen, RetentionScreen)
    screen.query_one("#retention-keep", Input).value = keep
    await pilot.pause()
    return screen


async def test_80x24_shows_every_deletion_first_by_its_whole_name(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, "last 1")
        plan = screen.plan
        assert plan is not None and len(plan.delete) > 10
        table = screen.query_one("#retention-plan", NavTable)
        # on screen: what is deleted, whole; why, ID and server wait whole past the
        # right edge, a column at a time with →
        assert headers(table) == ["Action", "Snapshot", "Created", "Size", "Why", "ID", "Server"]
        assert table.max_scroll_x > 0
        listed = plan_rows(table)
        verdicts = [r["action"] for r in listed]
        deleting = len(plan.delete)
        assert verdicts == ["delete"] * deleting + ["keep"] * (len(verdicts) - deleting)
        names = {s.id: s.description for s in plan.delete}
        # every row the table shows: the whole name, its age and size, page after page
        seen = set()
        await pilot.press("tab")  # from the keep rules to the plan
        assert table.has_focus
        content = table.scrollable_content_region.width  # the scrollbar covers the rest
        for _ in range(10):
            for line in (line[:content] for line in shown(table)[1:]):
                if line.strip().startswith("delete"):
                    name = line.split()[1]
                    assert name in names.values(), line
                    assert line.rstrip().endswith(" GB"), line
                    seen.add(name)
            if len(seen) == deleting:
                break
            await pilot.press("pagedown")
        assert seen == set(names.values())


async def test_after_a_run_the_rows_say_deleted_or_why_not(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, "last 2")
        plan = screen.plan
        assert plan is not None and len(plan.delete) >= 2
        refused = plan.delete[0].id
        sim.add_fault("error", count=1, path_prefix=f"/v1/images/{refused}", method="DELETE")
        sim.clear_requests()
        await pilot.click("#retention-apply")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        await pilot.pause()
        assert app.screen is screen
        sent = sorted(int(r["path"].rsplit("/", 1)[1]) for r in deletes(sim))
        assert sent == sorted(s.id for s in plan.delete)  # each once, none again
        listed = {int(r["id"]): r["action"] for r in plan_rows(screen.query_one(NavTable))}
        assert listed[refused] == "failed"
        assert {listed[s.id] for s in plan.delete[1:]} == {"deleted"}
        assert "delete" not in listed.values()
        lines = "\n".join(shown(screen.query_one(NavTable)))
        assert "deleted" in lines and "failed" in lines
        summary = str(screen.query_one("#retention-summary").content)
        assert f"Deleted {len(plan.delete) - 1} of {len(plan.delete)} snapshots." in summary
        # no second Delete on offer: the button is gone, only Close remains
        apply = screen.query_one("#retention-apply", Button)
        assert not apply.display
        await pilot.press("enter")
        await pilot.pause()
        assert len(deletes(sim)) == len(plan.delete)
