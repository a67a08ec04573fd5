"""View 2 against the simulator: the listing, deleting with a confirmation, refusals
that send nothing, and the retention plan from preview to the exact DELETEs."""

from __future__ import annotations

import json

from textual.widgets import Button, DataTable, Input

from hsnap_tui.core.audit import AuditLog
from hsnap_tui.core.retention import plan_retention
from hsnap_tui.ui.format import size_gb
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.screens.details import ServerDetailsScreen
from hsnap_tui.ui.screens.retention import RetentionScreen
from hsnap_tui.ui.screens.snapshots import SnapshotsScreen
from hsnap_tui.ui.widgets.filter_bar import FilterBar
from tests.conftest import make_app, poll, settle
from tests.test_servers_view import assert_nothing_cut, escape_does, plain, screen_lines


def sim_snapshots(sim):
    return [i for i in sim.world.images.values() if i["type"] == "snapshot"]


def deletes(sim):
    return [r for r in sim.requests() if r["method"] == "DELETE"]


def rows(app) -> list[dict[str, str]]:
    """The rows as shown, by column key (only the columns that fit are there)."""
    table = app.screen.query_one("#snapshots", DataTable)
    keys = [c.key.value for c in table.ordered_columns]
    return [
        dict(zip(keys, (str(c) for c in table.get_row(row.key)), strict=True))
        for row in table.ordered_rows
    ]


def plan_rows(table: DataTable) -> list[dict[str, str]]:
    """The retention plan's rows by column key (those shown at this width), with the
    snapshot ID of each row."""
    keys = [c.key.value for c in table.ordered_columns]
    return [
        {"id": row.key.value} | dict(zip(keys, map(str, table.get_row(row.key)), strict=True))
        for row in table.ordered_rows
    ]


async def open_view(pilot) -> None:
    await poll(pilot)
    await pilot.press("2")
    assert isinstance(pilot.app.screen, SnapshotsScreen)


async def highlight_image(pilot, image_id: int) -> None:
    table = pilot.app.screen.query_one("#snapshots", DataTable)
    table.move_cursor(row=table.get_row_index(str(image_id)))
    await pilot.pause()


async def test_lists_every_snapshot_newest_first(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_view(pilot)
        listed = rows(app)
        expected = sorted(sim_snapshots(sim), key=lambda i: (i["created"], i["id"]), reverse=True)
        assert [r["id"] for r in listed] == [str(i["id"]) for i in expected]
        first = listed[0]
        assert first["description"] == "db-prod-01-pre-migration"
        assert first["status"] == "creating"
        orphan = next(r for r in listed if r["description"].startswith("legacy-app"))
        # the source server is gone, its name stays
        assert orphan["server"].endswith("(deleted)")
        assert any(r["protected"] == "🛡 yes" for r in listed)
        assert "managed-by=hsnap" in listed[1]["labels"]
        table = app.screen.query_one("#snapshots", DataTable)
        assert f"Snapshots {len(expected)}/{len(expected)}" in table.border_title
        sim.clear_requests()
        await pilot.press("o")  # sorting asks nothing
        assert app.screen.sort_name == "server"
        assert sim.requests() == []


async def test_filter_by_text_and_label_selector(sim):
    app = make_app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_view(pilot)
        await pilot.press("slash")
        field = app.screen.query_one(FilterBar).input
        field.value = "managed-by=hsnap"
        await pilot.pause()
        assert rows(app) and all("managed-by=hsnap" in r["labels"] for r in rows(app))
        field.value = "before upgrade"
        await pilot.pause()
        assert rows(app) and all(r["description"].startswith("before upgrade") for r in rows(app))
        await pilot.press("escape")
        assert len(rows(app)) == len(sim_snapshots(sim))


async def test_delete_asks_then_sends_one_delete(sim, tmp_path):
    app = make_app(sim, audit=AuditLog(tmp_path / "audit.jsonl", context="test", endpoint=sim.url))
    target = next(
        i
        for i in sim_snapshots(sim)
        if not i["protection"]["delete"] and i["status"] == "available"
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await open_view(pilot)
        await highlight_image(pilot, target["id"])
        sim.clear_requests()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert target["description"] in plain(app.screen.query_one("#confirm-message").content)
        await pilot.press("n")
        assert deletes(sim) == []
        await pilot.press("d", "y")
        await settle(pilot)
        assert [r["path"] for r in deletes(sim)] == [f"/v1/images/{target['id']}"]
        assert target["id"] not in sim.world.images
        assert str(target["id"]) not in [r["id"] for r in rows(app)]
        [entry] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert entry["method"] == "DELETE" and entry["outcome"] == "204 deleted"
        assert entry["request_id"] == deletes(sim)[0]["correlation_id"]


async def test_protected_and_creating_are_refused_without_a_request(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    protected = next(i for i in sim_snapshots(sim) if i["protection"]["delete"])
    creating = next(i for i in sim_snapshots(sim) if i["status"] == "creating")
    async with app.run_test(size=(160, 40)) as pilot:
        await open_view(pilot)
        sim.clear_requests()
        await highlight_image(pilot, protected["id"])
        await pilot.press("d")
        assert not isinstance(app.screen, ConfirmScreen)
        message = list(app._notifications)[-1].message
        assert "protected against deletion" in message
        assert f"hcloud image disable-protection {protected['id']} delete" in message
        await highlight_image(pilot, creating["id"])
        await pilot.press("d")
        assert any("still being created" in n.message for n in app._notifications)
        assert sim.requests() == []


async def test_retention_preview_then_exactly_the_planned_deletes(make_sim):
    sim = make_sim(servers=40)
    app = make_app(sim)
    async with app.run_test(size=(160, 50)) as pilot:
        await open_view(pilot)
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        field = screen.query_one("#retention-keep", Input)
        field.value = "0"
        await pilot.pause()
        assert "at least 1" in plain(screen.query_one("#retention-summary").content)
        assert screen.query_one("#retention-apply", Button).disabled
        field.value = "2"
        await pilot.pause()
        plan = plan_retention(app.fleet.snapshots, 2)
        assert plan.delete, "the generated fleet has servers with more than 2 snapshots"
        summary = plain(screen.query_one("#retention-summary").content)
        assert f"Deletes {len(plan.delete)} snapshots" in summary
        listed = plan_rows(screen.query_one("#retention-plan", DataTable))
        assert {int(r["id"]) for r in listed if r["action"] == "delete"} == {
            s.id for s in plan.delete
        }
        assert {int(r["id"]) for r in listed if r["action"] == "keep"} == {s.id for s in plan.keep}
        sim.clear_requests()
        assert deletes(sim) == []  # the preview sends nothing
        await pilot.click("#retention-apply")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        await pilot.pause()
        sent = sorted(int(r["path"].rsplit("/", 1)[1]) for r in deletes(sim))
        assert sent == sorted(s.id for s in plan.delete)
        assert all(r["status"] == 204 for r in deletes(sim))
        summary = plain(app.screen.query_one("#retention-summary").content)
        assert f"Deleted {len(plan.delete)} of {len(plan.delete)} snapshots." in summary
        assert not {s.id for s in plan.delete} & set(sim.world.images)
        kept = {s.id for s in plan.keep}
        assert kept <= set(sim.world.images)
        await pilot.press("escape")
        assert len(rows(app)) == len(sim_snapshots(sim))


def a_month_of_nightlies(sim, name: str, labels: dict) -> list[dict]:
    server = next(s for s in sim.world.servers.values() if s["name"] == name)
    with sim.lock:
        return [
            sim.world.make_image(
                server,
                image_type="snapshot",
                description=f"{name}-nightly-{day:02d}",
                labels=labels,
                created=sim.clock.now() - day * 86400 + 9000,
                image_size=4.0,
            )
            for day in range(30, 0, -1)
        ]


async def test_the_plan_offers_periods_and_previews_a_policy(make_sim):
    from textual.widgets import Select

    from hsnap_tui.core.keep import KeepRules
    from hsnap_tui.core.policy import Policy

    sim = make_sim()
    labels = {"managed-by": "hsnap", "policy": "db-nightly"}
    made = a_month_of_nightlies(sim, "db-prod-01", labels)
    a_month_of_nightlies(sim, "web-prod-01", labels)  # not a role=db server
    policy = Policy(
        name="db nightly",
        selector="role=db",
        labels=labels,
        keep=KeepRules(daily=7, weekly=4, monthly=6),
    )
    app = make_app(sim, policies=[policy])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        field = screen.query_one("#retention-keep", Input)
        assert field.value == "last 3"  # the newest 3 per server unless told otherwise
        field.value = "daily 7, weekly 4"
        await pilot.pause()
        rules = KeepRules(daily=7, weekly=4)
        expected = plan_retention(app.fleet.snapshots, rules)
        table = screen.query_one("#retention-plan", DataTable)
        listed = plan_rows(table)
        assert {int(r["id"]) for r in listed if r["action"] == "delete"} == {
            s.id for s in expected.delete
        }
        # why each is kept: past the right edge at 80 columns (→), on screen when wider
        assert "why" in listed[0]
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        listed = plan_rows(table)
        made_ids = {i["id"] for i in made}
        whys = {r["why"] for r in listed if r["action"] == "keep" and int(r["id"]) in made_ids}
        assert any(w.startswith("daily 2026-") for w in whys), whys
        assert any("weekly 2026-W" in w for w in whys), whys
        assert {r["why"] for r in listed if r["action"] == "delete"} == {"no rule keeps it"}
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        field.value = "dayly 7"
        await pilot.pause()
        assert "'dayly' is not a rule" in plain(screen.query_one("#retention-summary").content)
        assert screen.query_one("#retention-apply", Button).disabled
        # the policy: its rules, its labelled snapshots, of the servers its selector picks
        screen.query_one("#retention-policy", Select).value = 0
        await pilot.pause()
        assert field.value == "daily 7, weekly 4, monthly 6"
        scope = plain(screen.query_one("#retention-scope").content)
        assert scope.startswith("Policy db nightly: snapshots labelled managed-by=hsnap,")
        plan = screen.plan
        assert plan is not None and plan.selector == policy.prune_selector
        assert {p.server_name for p in plan.servers} == {"db-prod-01"}
        assert len(plan.keep) == 10 and len(plan.delete) == 20
        sim.clear_requests()
        await pilot.click("#retention-apply")
        assert isinstance(app.screen, ConfirmScreen)
        assert "keeping daily 7, weekly 4, monthly 6 per server" in plain(
            app.screen.query_one("#confirm-message").content
        )
        await pilot.press("y")
        await settle(pilot)
        sent = sorted(int(r["path"].rsplit("/", 1)[1]) for r in deletes(sim))
        assert sent == sorted(s.id for s in plan.delete)
        # web-prod-01's nightlies carry the same labels but its server is not role=db
        web = [i for i in sim.world.images.values() if i["description"].startswith("web-prod")]
        assert len([i for i in web if "nightly" in i["description"]]) == 30


async def test_a_policy_without_keep_rules_previews_nothing_and_deletes_nothing(make_sim):
    from textual.widgets import Select

    from hsnap_tui.core.keep import KeepRules
    from hsnap_tui.core.policy import Policy

    sim = make_sim()
    policies = [
        Policy(
            name="A", selector="role=db", labels={"managed-by": "hsnap"}, keep=KeepRules(last=1)
        ),
        Policy(name="B", selector="role=db", labels={"managed-by": "hsnap", "p": "b"}),
    ]
    app = make_app(sim, policies=policies)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        await pilot.press("p")
        screen = app.screen
        select = screen.query_one("#retention-policy", Select)
        select.value = 0
        await pilot.pause()
        assert screen.plan is not None
        select.value = 1
        await pilot.pause()
        assert screen.plan is None
        assert "never prunes" in plain(screen.query_one("#retention-scope").content)
        assert screen.query_one("#retention-apply", Button).disabled


async def test_read_only_keys_say_why_and_the_retention_preview_still_works(make_sim):
    sim = make_sim()
    app = make_app(sim)
    app.api.go_read_only("--read-only")
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await pilot.press("s")  # greyed out on the Servers view
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any(m.startswith("Snapshot is disabled: read-only (--read-only)") for m in said)
        await open_view(pilot)
        await pilot.press("d")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any("is disabled: read-only (--read-only)" in m and "Delete" in m for m in said)
        await pilot.press("p")  # the preview is harmless: it opens …
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        screen.query_one("#retention-keep", Input).value = "1"
        await pilot.pause()
        assert screen.plan is not None and screen.plan.delete
        assert screen.query_one("#retention-apply", Button).disabled  # … its apply does not
    assert [r for r in sim.requests() if r["method"] != "GET"] == []


# ---- the navigation model and 80x24 -------------------------------------------------

ALWAYS = ["description", "server", "created", "size", "status"]


def snapshots_table(app) -> DataTable:
    return app.screen.query_one("#snapshots", DataTable)


async def test_80x24_keeps_what_a_decision_needs_and_cuts_nothing_mid_word(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        assert [c.key.value for c in table.ordered_columns] == ALWAYS
        assert_nothing_cut(table)
        header = screen_lines(app)[2].strip("│ ")
        assert header.split() == ["Description", "Server", "Created▼", "Size", "Status"]
        by_id = {s.id: s for s in app.fleet.snapshots}
        shortened = 0
        for row in table.ordered_rows:
            snapshot = by_id[int(row.key.value)]
            shown = dict(zip(ALWAYS, (str(c) for c in table.get_row(row.key)), strict=True))
            assert shown["size"] == size_gb(snapshot.image_size_gb)  # whole: not `160.0 G`
            assert shown["status"] == snapshot.status
            assert shown["created"].endswith(" ago")
            gone = " (deleted)" if snapshot.server_id not in app.fleet.servers else ""
            for key, whole in (
                ("description", snapshot.description),
                ("server", f"{snapshot.server_name}{gone}"),
            ):
                if shown[key] != whole:
                    # shortened at a word boundary, and says so
                    shortened += 1
                    kept = shown[key].removesuffix("…")
                    assert shown[key].endswith("…") and whole.startswith(kept), shown
                    assert whole[len(kept)] in " -_./"
        assert shortened, "the demo's long descriptions do not fit 80 columns whole"
        # wider: the dropped columns come back, last dropped first
        await pilot.resize_terminal(120, 24)
        await pilot.pause()
        assert [c.key.value for c in table.ordered_columns] == [*ALWAYS, "protected", "id"]
        assert_nothing_cut(table)
        await pilot.resize_terminal(160, 24)
        await pilot.pause()
        assert [c.key.value for c in table.ordered_columns][-1] == "labels"
        assert all(r["description"] == by_id[int(r["id"])].description for r in rows(app))


async def test_navigation_sort_and_enter(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        count = table.row_count
        await pilot.press("j", "j", "down", "k")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == count - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("end", "home", "pagedown")
        assert 10 < table.cursor_row < count - 1
        await pilot.press("pageup")
        assert table.cursor_row == 0

        def headers() -> list[str]:
            return [c.label.plain for c in table.ordered_columns]

        def created() -> list[float]:
            by_id = {str(s.id): s for s in app.fleet.snapshots}
            return [by_id[row.key.value].created for row in table.ordered_rows]

        assert headers()[2] == "Created▼" and "sort: created ▼" in table.border_title
        assert created() == sorted(created(), reverse=True)  # newest first
        await pilot.press("O")
        assert headers()[2] == "Created▲" and "sort: created ▲" in table.border_title
        assert created() == sorted(created())
        await pilot.press("o")
        assert headers()[1:3] == ["Server▲", "Created"]
        servers = [r["server"].lower() for r in rows(app)]
        assert servers == sorted(servers)
        await pilot.press("o")
        assert headers()[3] == "Size▼" and "sort: size ▼" in table.border_title
        sizes = [s.image_size_gb or 0 for s in app.fleet.snapshots]
        by_id = {str(s.id): s for s in app.fleet.snapshots}
        shown = [by_id[row.key.value].image_size_gb or 0 for row in table.ordered_rows]
        assert shown == sorted(sizes, reverse=True)
        await pilot.press("o", "o")
        assert headers()[4] == "Status▲" and "sort: status ▲" in table.border_title
        await pilot.press("o")  # round again
        assert headers()[2] == "Created▼"
        # enter: the highlighted snapshot's server
        made_from = next(
            s for s in app.fleet.snapshots if s.server_id in app.fleet.servers and s.created
        )
        table.move_cursor(row=table.get_row_index(str(made_from.id)))
        await pilot.press("enter")
        assert isinstance(app.screen, ServerDetailsScreen)
        assert app.screen.server_id == made_from.server_id
        await pilot.press("escape")
        assert isinstance(app.screen, SnapshotsScreen)
        orphan = next(s for s in app.fleet.snapshots if s.server_id not in app.fleet.servers)
        table.move_cursor(row=table.get_row_index(str(orphan.id)))
        await pilot.press("enter")
        assert isinstance(app.screen, SnapshotsScreen)
        said = [n.message for n in app._notifications]
        assert said[-1] == f"{orphan.server_name} has been deleted: no details to show."


async def test_escape_clears_the_filter_and_says_so(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        everything = table.row_count
        assert escape_does(app) is None
        await pilot.press("slash", *"before upgrade")
        assert escape_does(app) == "Clear filter"
        assert 0 < table.row_count < everything
        await pilot.press("enter")  # closes the bar, the filter stays
        assert table.has_focus and 0 < table.row_count < everything
        assert "Clear filter" in screen_lines(app)[-1]
        await pilot.press("escape")
        assert table.row_count == everything
        assert escape_does(app) is None


async def test_one_filter_rule_in_both_views(make_sim):
    """The same text means the same in Servers and Snapshots: a label selector iff it
    has one of `=!()`; a bad one is said in the bar and the last good filter stays."""
    from hsnap_tui.core.labels import LabelError, parse_selector

    sim = make_sim(scenario="demo")
    app = make_app(sim)
    bad = "env in (prod"
    try:
        parse_selector(bad)
    except LabelError as exc:
        reason = str(exc)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        for view in ("1", "2"):
            await pilot.press(view)
            bar = app.screen.query_one(FilterBar)
            table = app.screen.query_one("#servers" if view == "1" else "#snapshots", DataTable)
            await pilot.press("slash", *"prod")  # text: in names (and descriptions)
            good = [row.key.value for row in table.ordered_rows]
            assert good and bar.filter.selector is None
            bar.input.value = bad
            await pilot.pause()
            assert bar.message == reason
            assert reason in "\n".join(screen_lines(app))
            assert [row.key.value for row in table.ordered_rows] == good
            bar.input.value = "managed-by!=hsnap"  # `!`: a selector, over the labels
            await pilot.pause()
            assert bar.message == "" and bar.filter.selector is not None
            labels = {str(s.id): s.labels for s in app.fleet.servers.values()}
            labels.update({str(s.id): s.labels for s in app.fleet.snapshots})
            shown = [row.key.value for row in table.ordered_rows]
            assert all(labels[key].get("managed-by") != "hsnap" for key in shown)
            await pilot.press("escape")
            assert not bar.display and not bar.filter


async def test_keys_typed_in_a_burst_after_slash_go_to_the_field(make_sim):
    """Over SSH `/web` can arrive in one read: no key may go to the table instead."""
    from textual import events

    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        for view, text in (("1", "web"), ("2", "[/var")):
            await pilot.press(view)
            for char in "/" + text:
                app.post_message(events.Key("slash" if char == "/" else char, char))
            await pilot.pause()
            bar = app.screen.query_one(FilterBar)
            assert bar.input.value == text  # and a `/` in the field is text
            await pilot.press("escape")
            assert not bar.display


async def test_a_filter_that_matches_nothing_empties_the_table_and_escape_brings_all_back(
    make_sim,
):
    """Typed one key at a time, the last text matches no snapshot: the table shows none
    (not the rows of the text typed before it)."""
    app = make_app(make_sim(scenario="demo"))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        total = table.row_count
        await pilot.press("slash", *"schedule=nightly")
        await pilot.pause()
        assert table.row_count == 0
        assert f"Snapshots 0/{total}" in str(table.border_title)
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == total


async def test_after_a_delete_the_cursor_is_on_the_neighbour_not_the_newest(make_sim):
    sim = make_sim()  # no `creating` snapshot at the top
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        order = [r.key.value for r in table.ordered_rows]
        await pilot.press(*"j" * 10)
        assert table.cursor_key == order[10]
        await pilot.press("d")
        await pilot.press("y")
        await settle(pilot)
        assert order[10] not in table.rows
        assert table.cursor_key == order[11]  # the row that took its place


async def test_a_refresh_keeps_the_rows_on_screen_where_they_were(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        table = snapshots_table(app)
        await pilot.press("G", *"k" * 15)
        await pilot.pause()
        before = (table.cursor_key, table.scroll_y, screen_lines(app)[3])
        sim.advance(3600)  # every age changes: the table is filled again
        app.refresher.request_full()
        await poll(pilot)
        await pilot.pause()
        assert (table.cursor_key, table.scroll_y) == before[:2]
        # the same snapshot first on screen (its age reads differently now)
        assert screen_lines(app)[3].split()[:3] == before[2].split()[:3]
