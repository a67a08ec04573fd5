"""The filter bar of the Servers and Snapshots views: an input and a one-line message,
hidden until opened. What the text means is core's one rule (`RowFilter`): a label
selector iff it contains one of `=!()`, else a text to search for. A selector that
does not parse is said in the message line and changes nothing: the view keeps the
last good filter."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from hsnap_tui.core.labels import LabelError, RowFilter


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        padding: 0 1;
    }
    FilterBar > Input.-invalid {
        border: tall $error;
    }
    FilterBar > .filter-message {
        color: $error;
        height: auto;
    }
    """

    class Changed(Message):
        """A new good filter: the view shows the rows it matches."""

        def __init__(self, bar: FilterBar, row_filter: RowFilter) -> None:
            super().__init__()
            self.bar = bar
            self.filter = row_filter

        @property
        def control(self) -> FilterBar:
            return self.bar

    class Closed(Message):
        """The bar closed (enter on a good filter, or `close()`): the view takes the focus
        back."""

        def __init__(self, bar: FilterBar) -> None:
            super().__init__()
            self.bar = bar

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.placeholder = placeholder
        self.filter = RowFilter()  # the last good filter: what the view shows
        self.problem: str | None = None  # why the text in the input is not a filter
        self.display = False

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder, classes="filter-input")
        yield Static("", classes="filter-message")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def is_open(self) -> bool:
        return self.display

    @property
    def message(self) -> str:
        """The message line as the operator reads it ("" when there is none)."""
        return self.problem or ""

    def open(self) -> None:
        """Show the bar with the filter in force and put the cursor in it."""
        self.display = True
        field = self.input
        if field.value != self.filter.text and self.problem is None:
            field.value = self.filter.text
        # focus now, not after this message: keys typed right after `/` go to the field
        self.screen.set_focus(field)

    def close(self) -> None:
        """Hide the bar; the filter in force stays."""
        if self.problem is not None:  # the bad text goes; the good filter stays
            self._say(None)
            self.input.value = self.filter.text
        self.display = False
        self.post_message(self.Closed(self))

    def clear(self) -> None:
        """No filter, bar closed."""
        self._say(None)
        self.input.value = ""
        self._set(RowFilter())
        self.close()

    def _say(self, problem: str | None) -> None:
        self.problem = problem
        self.query_one(".filter-message", Static).update(Text(problem or ""))
        self.input.set_class(problem is not None, "-invalid")

    def _set(self, row_filter: RowFilter) -> None:
        if row_filter.text != self.filter.text:
            self.filter = row_filter
            self.post_message(self.Changed(self, row_filter))

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            row_filter = RowFilter.parse(event.value)
        except LabelError as exc:
            self._say(str(exc))
            return
        self._say(None)
        self._set(row_filter)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.problem is None:
            self.close()
