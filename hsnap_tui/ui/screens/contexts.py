"""`c`: pick another context of the hcloud CLI config."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hsnap_tui.config import Context


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
            options = []
            for context in self.contexts:
                mark = "● " if context.name == self.current else "  "
                where = f"  {context.endpoint}" if context.endpoint else ""
                options.append(Option(f"{mark}{context.name}{where}", id=context.name))
            yield OptionList(*options, id="context-list")

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(next(c for c in self.contexts if c.name == event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
