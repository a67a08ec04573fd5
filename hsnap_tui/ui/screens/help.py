"""`?`: every binding of the view it was opened from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from hsnap_tui.ui.format import literal


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, view_name: str, bindings: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.view_name = view_name
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), expand=True, show_header=True, header_style="bold")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        table.add_column("binding id", style="dim", no_wrap=True)
        for key, description, tooltip, binding_id in self.bindings:
            text = Text(description)
            if tooltip:
                text.append(f" — {tooltip}", style="dim")
            table.add_row(literal(key), literal(text), literal(binding_id))
        with VerticalScroll(id="help-body") as body:
            body.border_title = f"Keys · {self.view_name}"
            body.border_subtitle = "escape closes · remap by binding id"
            yield Static(table)

    def action_dismiss(self) -> None:
        self.dismiss(None)
