"""Remapping keys by binding ID."""

from __future__ import annotations

from hsnap_tui.keymap import load_keymap
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog
from tests.conftest import make_app, poll


def test_load_keymap(tmp_path):
    path = tmp_path / "keymap.toml"
    assert load_keymap(path) == ({}, [])  # no file: nothing to do, nothing to say
    path.write_text(
        '[keymap]\n"servers.snapshot" = "S"\n"app.quit" = "ctrl+q,q"\n'
        '"table.sort" = ""\n"servers.mark" = 3\n'
    )
    keymap, problems = load_keymap(path)
    assert keymap == {"servers.snapshot": "S", "app.quit": "ctrl+q,q"}
    assert len(problems) == 2 and all("is not a key list" in p for p in problems)
    path.write_text("[keymap\n")
    keymap, problems = load_keymap(path)
    assert keymap == {} and "not valid TOML" in problems[0]


async def test_a_remapped_key_works_and_the_old_one_does_not(sim, tmp_path):
    path = tmp_path / "keymap.toml"
    path.write_text('[keymap]\n"servers.snapshot" = "S"\n')
    keymap, _ = load_keymap(path)
    app = make_app(sim, keymap=keymap)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("s")
        assert not isinstance(app.screen, SnapshotDialog)
        await pilot.press("S")
        assert isinstance(app.screen, SnapshotDialog)


async def test_an_unknown_binding_id_in_the_keymap_is_said(sim):
    from tests.conftest import make_app, poll

    app = make_app(sim, keymap={"servers.snapshto": "S", "servers.snapshot": "S"})
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        said = [n.message for n in app._notifications]
    assert any(
        "no binding has the ID 'servers.snapshto' (did you mean 'servers.snapshot'?)" in m
        for m in said
    ), said
    assert not any("'servers.snapshot'; it is ignored" in m for m in said)


async def test_the_table_keys_are_remapped_by_their_table_ids(make_sim):
    sim = make_sim(scenario="demo")
    app = make_app(sim, keymap={"table.sort": "S", "table.first": "f"})
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        table = app.screen.query_one("ServerTable")
        await pilot.press("o")  # no longer a key
        assert table.sort_name == "name"
        await pilot.press("S")
        assert table.sort_name == "status"
        await pilot.press("G", "f")
        assert table.cursor_row == 0
