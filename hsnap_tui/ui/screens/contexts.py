"""`c`: pick another context of the hcloud CLI config."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable

from hsnap_tui.config import Context
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.tables import fill_table


class ContextScreen(ModalScreen[Context | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="context.cancel")]

    def __init__(self, contexts: list[Context], current: str | None) -> None:
        super().__init__()
        self.contexts = contexts
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="context-dialog") as dialog:
            dialog.border_title = "Switch context"
            dialog.border_subtitle = "enter switches · escape cancels"
            yield NavTable(id="context-list", open_label="Switch", open_tooltip="Switch to it")

    def on_mount(self) -> None:
        rows = [
            (
                context.name,
                ("●" if context.name == self.current else "", context.name, context.endpoint or ""),
            )
            for context in self.contexts
        ]
        table = self.query_one("#context-list", NavTable)
        fill_table(table, [("current", ""), ("name", "Context"), ("endpoint", "Endpoint")], rows)
        if self.current in table.rows:
            table.move_cursor(row=table.get_row_index(self.current), animate=False)
        table.focus()

    @on(DataTable.RowSelected, "#context-list")
    def _picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(next(c for c in self.contexts if c.name == event.row_key.value))

    def action_cancel(self) -> None:
        self.dismiss(None)
