"""`?` at 80x24: the keys of the view, grouped (this view, the table, everywhere), one
line each with its binding ID, nothing of Textual's internals; and the palette lists the
same keys."""

from __future__ import annotations

import re

from hsnap_tui.ui.commands import key_commands
from hsnap_tui.ui.screens.help import HelpScreen
from tests.conftest import make_app, poll
from tests.test_activity_view import shown
from tests.test_palette import palette

BINDING_ID = re.compile(r"[a-z_]+(\.[a-z_]+)+$")


async def help_lines(pilot) -> tuple[list[str], int]:
    """The help's lines as drawn (all of them, also those scrolled off) and the width
    they have."""
    await pilot.press("question_mark")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HelpScreen)
    body = screen.query_one("#help-body")
    return shown(screen.query_one("#help-keys")), body.scrollable_content_region.width


async def test_help_at_80x24_one_line_per_key_with_its_id_and_no_internals(sim):
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await pilot.press("3")
        ids = {c.binding_id for c in key_commands(app.screen)}
        lines, width = await help_lines(pilot)
        screen = app.screen
        text = "\n".join(lines)
        rows = [line.rstrip() for line in lines if BINDING_ID.search(line.rstrip())]
        headings = [line.strip() for line in lines if line.strip() and line.rstrip() not in rows]
        assert headings == ["This view", "The table", "Everywhere"]
        # one line per key: as many key lines as bindings, none wider than the help
        assert len(rows) == len(screen.bindings) == len(ids)
        assert all(len(line) <= width for line in lines)
        assert {line.split()[-1] for line in rows} == ids
        for expected in (
            ("activity.cancel", "x", "Cancel job"),
            ("table.open", "⏎", "Open"),
            ("table.first", "g home", "First row"),
            ("table.down", "j ↓", "Down"),
            ("app.view.servers", "1", "Servers"),
        ):
            binding_id, keys, description = expected
            [line] = [row for row in rows if row.endswith(f" {binding_id}")]
            assert line.split(description)[0].strip() == keys, line
        # this view's first, then the table's, then the app's
        assert text.index("activity.cancel") < text.index("table.open") < text.index("app.quit")
        for internal in ("super+c", "ctrl+c", "Copy", "ctrl+q", "Home", "Scroll Home"):
            assert internal not in text
        # a narrow help leaves the tooltips out; a wide one has them
        assert "Cancel the highlighted job before its snapshot is sent" not in text
        # longer than 24 lines: it moves with the keys of every table
        body = screen.query_one("#help-body")
        assert body.max_scroll_y > 0
        await pilot.press("G")
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("k")
        assert body.scroll_y == body.max_scroll_y - 1
        await pilot.press("g")
        assert body.scroll_y == 0
        await pilot.press("escape")
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        lines, width = await help_lines(pilot)
        tooltip = "Cancel the highlighted job before its snapshot is sent"
        assert any(tooltip in line for line in lines)
        assert all(len(line.rstrip()) <= width for line in lines)


async def test_the_palette_lists_every_key_with_an_id_of_the_activity_view(sim):
    app = make_app(sim)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot)
        await pilot.press("3")
        commands = key_commands(app.screen)
        listed = dict(await palette(pilot))
        for command in commands:
            assert listed[command.name].startswith(" ".join(command.keys)), command.binding_id
        for name in ("Open", "Sort", "Reverse", "First row", "Last row", "Cancel job"):
            assert name in listed


async def test_help_lists_the_keys_that_do_not_apply_now_so_they_can_be_remapped(sim):
    """No filter and no marks: escape does nothing in Servers now, yet its two binding
    IDs are what keymap.toml needs — listed (greyed out)."""
    app = make_app(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        lines, _ = await help_lines(pilot)
        text = "\n".join(lines)
        assert "servers.clear_filter" in text and "servers.clear_marks" in text
        assert text.count("servers.snapshot") == 1  # each once
