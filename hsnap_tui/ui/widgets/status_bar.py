"""The one-line header: where we are connected, how fresh the data is, the API budget."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    """Re-renders from `source` every second (no network: it only reads state)."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, source: Callable[[], Text], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._source = source

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        self.update(self._source())
