"""The one navigation model of every table in the app.

`j`/`k`/arrows move, `pgup`/`pgdn` page, `g`/`home` and `G`/`end` go to the first and
last row, `left`/`right` scroll by whole columns, `o` sorts by the next sortable column
and `O` reverses it (an arrow marks the sorted column's header), `enter` opens what the
row is about. The table only keeps the sort state and says when it changed; the view
that fills the table does the sorting.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

ASCENDING, DESCENDING = "▲", "▼"


class NavTable(DataTable):
    """A row-cursor DataTable with the app's keys (see the module docstring).

    `sorts` maps each sortable column key to its natural direction (True: descending,
    e.g. newest first). `open_label` names what `enter` does in this table ("Details",
    "Inspect", …); without it `enter` is not offered."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="table.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("g,home", "scroll_top", "First row", show=False, id="table.first"),
        Binding("G,end", "scroll_bottom", "Last row", show=False, id="table.last"),
        Binding("right", "column_right", "Scroll right", show=False, id="table.right"),
        Binding("left", "column_left", "Scroll left", show=False, id="table.left"),
        Binding(
            "enter", "select_cursor", "Open", id="table.open", tooltip="Open the highlighted row"
        ),
        # not in the footer (the header's arrow and the title say the sort): room for
        # the view's own keys at 80 columns; ? and the palette list it
        Binding(
            "o",
            "cycle_sort",
            "Sort",
            show=False,
            id="table.sort",
            tooltip="Sort by the next column",
        ),
        Binding(
            "O",
            "reverse_sort",
            "Reverse",
            show=False,
            id="table.reverse",
            tooltip="Reverse the sort",
        ),
    ]

    class SortChanged(Message):
        """`o` or `O` was pressed: the owner sorts the rows again."""

        def __init__(self, table: NavTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> NavTable:
            return self.table

    def __init__(
        self,
        *,
        sorts: dict[str, bool] | None = None,
        sort_column: str | None = None,
        open_label: str | None = None,
        open_tooltip: str | None = None,
        id: str | None = None,
        show_cursor: bool = True,
        zebra_stripes: bool = False,
    ) -> None:
        super().__init__(
            id=id, cursor_type="row", show_cursor=show_cursor, zebra_stripes=zebra_stripes
        )
        self.sorts = dict(sorts or {})
        self.sort_column = sort_column or next(iter(self.sorts), None)
        self.sort_reverse = False
        self.top_after_sort = False
        self.open_label = open_label
        self._labels: dict[str, str] = {}  # column key → label without the sort arrow
        if open_label:
            # the same key everywhere, named for what it opens in this table
            (enter,) = self._bindings.key_to_bindings["enter"]
            self._bindings.key_to_bindings["enter"] = [
                replace(enter, description=open_label, tooltip=open_tooltip or enter.tooltip)
            ]

    # ---- what the owner reads -------------------------------------------------------

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None when the table is empty)."""
        if self.row_count == 0:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        return self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value

    @property
    def descending(self) -> bool:
        """The direction the rows should be in now."""
        natural = self.sorts.get(self.sort_column or "", False)
        return natural != self.sort_reverse

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cycle_sort", "reverse_sort"):
            return bool(self.sorts)
        if action == "select_cursor":
            return self.open_label is not None and self.show_cursor
        return True

    # ---- sorting --------------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        if not self.sorts:
            return
        # only the columns on screen: an order by a column the operator cannot see
        # would look random (a narrow terminal drops columns)
        keys = [key for key in self.sorts if key in self.columns] or list(self.sorts)
        at = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_column = keys[(at + 1) % len(keys)]
        self.sort_reverse = False
        self._sort_changed()

    def action_reverse_sort(self) -> None:
        if not self.sorts:
            return
        self.sort_reverse = not self.sort_reverse
        self._sort_changed()

    def set_sort(self, column: str, reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self.mark_sorted_column()

    def _sort_changed(self) -> None:
        self.mark_sorted_column()
        # the owner's next fill shows the top of the new order, where the answer to
        # "which is oldest / biggest" is, with the cursor on it (not off screen)
        self.top_after_sort = True
        self.post_message(self.SortChanged(self))

    def take_top_after_sort(self) -> bool:
        """For the owner's fill: True once after a sort (the cursor goes to the top)."""
        top, self.top_after_sort = self.top_after_sort, False
        return top

    def sort_arrow(self) -> str:
        return DESCENDING if self.descending else ASCENDING

    def add_column(self, label, *, width=None, key=None, default=None) -> ColumnKey:
        plain = label.plain if isinstance(label, Text) else str(label)
        column_key = super().add_column(
            self._header(key, plain), width=width, key=key, default=default
        )
        self._labels[column_key.value] = plain
        return column_key

    def _header(self, key: str | None, label: str) -> str:
        if key is not None and key == self.sort_column:
            return f"{label}{self.sort_arrow()}"
        return label

    def mark_sorted_column(self) -> None:
        """Put the arrow on the sorted column's header (and take it off the others)."""
        changed = False
        for key, column in self.columns.items():
            base = self._labels.get(key.value)
            if base is None:
                continue
            wanted = self._header(key.value, base)
            if column.label.plain != wanted:
                column.label = Text(wanted)
                changed = True
        if changed:
            self._clear_caches()  # the header row is cached with the old label
            self.refresh()

    # ---- scrolling by column --------------------------------------------------------

    def _column_starts(self) -> list[int]:
        starts, x = [], 0
        for column in self.ordered_columns:
            starts.append(x)
            x += column.get_render_width(self)
        return starts

    def action_column_right(self) -> None:
        """Scroll so that the next column starts at the left edge."""
        later = [x for x in self._column_starts() if x > self.scroll_x]
        if later:
            self.scroll_to(x=min(later[0], self.max_scroll_x), animate=False)

    def action_column_left(self) -> None:
        earlier = [x for x in self._column_starts() if x < self.scroll_x]
        self.scroll_to(x=earlier[-1] if earlier else 0, animate=False)

    # ---- fitted to the width ---------------------------------------------------------

    _refit = None
    _fitted_width = 0

    def refit_with(self, fill) -> None:
        """How to fill this table again for another width (`show_fitted` leaves it):
        a table whose width changes after it was filled (a dialog laid out, a terminal
        resized) fits its columns to the new width by itself."""
        self._refit, self._fitted_width = fill, self.size.width

    def on_resize(self) -> None:
        if self._refit is not None and self.size.width != self._fitted_width:
            self._refit()

    # ---- ordering by row key ---------------------------------------------------------

    def order_rows(self, order: list[str]) -> None:
        """Put the rows in `order` (their keys). DataTable.sort hands its key function
        the cells only, and no column is sure to be on screen and unique, so this does
        what it does with the row keys (Textual 8's row locations)."""
        position = {key: index for index, key in enumerate(order)}
        self._row_locations = TwoWayDict(
            {row_key: position[row_key.value] for row_key in self._data}
        )
        self._update_count += 1
        self.refresh()
