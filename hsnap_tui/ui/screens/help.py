"""`?`: the keys of the view it was opened from, grouped — this view, the table, and
everywhere — each with its binding ID (what keymap.toml names). Only the app's own
bindings: Textual's internal keys (copy, ctrl+q, its cursor keys) have no ID and are
not listed. One line per key at any width; the tooltip gets a column when there is
room, and is left out on a narrow terminal."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# below this many cells of help body, the tooltips are left out (80x24 has 68)
TOOLTIP_WIDTH = 96


@dataclass(frozen=True)
class HelpRow:
    keys: str  # as the footer shows them, e.g. `j ↓`
    description: str
    tooltip: str
    binding_id: str
    enabled: bool = True


class HelpScreen(ModalScreen[None]):
    # the keys of every table, to read a help longer than the terminal
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
        Binding("j,down", "scroll('down')", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id="help.up"),
        Binding("g,home", "scroll('home')", "Top", show=False, id="help.first"),
        Binding("G,end", "scroll('end')", "Bottom", show=False, id="help.last"),
    ]

    def __init__(self, view_name: str, groups: list[tuple[str, list[HelpRow]]]) -> None:
        super().__init__()
        self.view_name = view_name
        self.groups = [(title, rows) for title, rows in groups if rows]

    @property
    def bindings(self) -> list[tuple[str, str, str, str]]:
        """Every row: (keys, description, tooltip, binding ID)."""
        rows = [row for _, group in self.groups for row in group]
        return [(r.keys, r.description, r.tooltip, r.binding_id) for r in rows]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = f"Keys · {self.view_name}"
            body.border_subtitle = "escape closes · remap by binding ID in keymap.toml"
            yield Static(id="help-keys")

    def on_resize(self) -> None:
        body = self.query_one("#help-body")
        self.query_one("#help-keys", Static).update(self._render_keys(body.content_size.width))

    def _render_keys(self, width: int) -> Group:
        tooltips = width >= TOOLTIP_WIDTH
        widths = {
            "keys": max((len(r.keys) for _, rows in self.groups for r in rows), default=3),
            "does": max((len(r.description) for _, rows in self.groups for r in rows), default=4),
            "id": max((len(r.binding_id) for _, rows in self.groups for r in rows), default=2),
        }
        parts = []
        for index, (title, rows) in enumerate(self.groups):
            heading = Text(title, style="bold underline")
            if index:
                heading = Text.assemble("\n", heading)
            parts.append(heading)
            table = Table.grid(padding=(0, 2), expand=tooltips)
            table.add_column(style="bold cyan", no_wrap=True, min_width=widths["keys"])
            table.add_column(no_wrap=True, min_width=widths["does"])
            if tooltips:
                table.add_column(style="dim", ratio=1, no_wrap=True, overflow="ellipsis")
            table.add_column(style="dim cyan", no_wrap=True)
            for row in rows:
                style = "" if row.enabled else "dim"
                cells = [Text(row.keys), Text(row.description, style=style)]
                if tooltips:
                    cells.append(Text(row.tooltip))
                cells.append(Text(row.binding_id))
                table.add_row(*cells)
            parts.append(table)
        return Group(*parts)

    def action_scroll(self, where: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        {
            "down": body.scroll_down,
            "up": body.scroll_up,
            "home": body.scroll_home,
            "end": body.scroll_end,
        }[where](animate=False)

    def action_dismiss(self) -> None:
        self.dismiss(None)
