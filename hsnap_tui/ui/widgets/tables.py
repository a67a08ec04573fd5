"""Filling tables with explicit column widths, so that the layout is final at once instead
of waiting for DataTable's idle-time auto sizing; and fitting the columns that matter
most into the width there is (80 columns first)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from hsnap_tui.ui.format import literal
from hsnap_tui.ui.widgets.nav_table import NavTable

COLUMN_PADDING = 2  # DataTable's cell_padding=1 on each side
SCROLLBAR = 2  # the vertical scrollbar's width, when the rows overflow
ELLIPSIS = "…"
WORD_BREAKS = " -_./"  # where a shortened text may end
MIN_SHRUNK = 12  # a shrinkable column keeps at least this many cells


def fill_table(
    table: DataTable,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[str | None, Sequence[object]]],
    *,
    max_width: int = 48,
) -> None:
    """Replace columns and rows. `columns`: (key, label); `rows`: (row key, cells)."""
    table.clear(columns=True)
    sorts = table.sorts if isinstance(table, NavTable) else {}
    for index, (key, label) in enumerate(columns):
        header = cell_len(label) + (key in sorts)  # room for the sort arrow
        width = max([header] + [cell_len(str(cells[index])) for _, cells in rows])
        table.add_column(label, key=key, width=min(width, max_width))
    for key, cells in rows:
        table.add_row(*(literal(cell) for cell in cells), key=key)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # fixed width; None sizes to content
    drop_rank: int | None = None  # dropped on narrow screens, lowest first; None: never
    shrink: bool = False  # gives up width last, its texts shortened at a word boundary


def fit_columns(
    columns: Iterable[Column], widths: dict[str, int], available: int
) -> tuple[str, ...]:
    """The keys of the columns that fit `available` cells, the droppable ones going in
    their drop order (the same order on every screen size, so a column never comes
    back when the terminal narrows)."""
    shown = list(columns)
    droppable = sorted((c for c in shown if c.drop_rank is not None), key=lambda c: c.drop_rank)
    while sum(widths[c.key] + COLUMN_PADDING for c in shown) > available and droppable:
        shown.remove(droppable.pop(0))
    return tuple(c.key for c in shown)


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` cells: whole, or cut at the last word break that fits
    and ended with `…` (mid-word only when one word is wider than the column)."""
    if cell_len(text) <= width:
        return text
    room, kept = width - 1, 0  # one cell for the ellipsis
    while kept < len(text) and cell_len(text[: kept + 1]) <= room:
        kept += 1
    cut = text[:kept]
    if text[kept] not in WORD_BREAKS:  # else the cut is at a word break already
        at = max(cut.rfind(char, 1) for char in WORD_BREAKS)
        if at > 0:
            cut = cut[:at]
    return cut.rstrip(WORD_BREAKS) + ELLIPSIS


class FittedTable(NavTable):
    """A NavTable that shows the columns that fit its width: droppable columns go in
    their drop order, then the shrinkable one gives up width with its texts shortened
    at a word boundary. Fitted again on every resize. For tables of up to a few
    thousand rows: every `show()` fills the table afresh."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._table_columns: Sequence[Column] = ()
        self._table_rows: Sequence[tuple[str, Sequence[object]]] = ()
        self._layout_shown: tuple[tuple[str, ...], dict[str, int]] | None = None

    def show(self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[object]]]) -> None:
        """Replace the rows (row key, one cell per column), keeping the cursor's row."""
        self._table_columns, self._table_rows = columns, rows
        self._fill()

    def on_resize(self) -> None:
        if self._table_columns and self._layout() != self._layout_shown:
            self._fill()

    def _layout(self) -> tuple[tuple[str, ...], dict[str, int]]:
        columns, rows = self._table_columns, self._table_rows
        widths = {}
        for index, column in enumerate(columns):
            header = cell_len(column.label) + (column.key in self.sorts)  # the sort arrow
            widths[column.key] = column.width or max(
                [header] + [cell_len(_plain(cells[index])) for _, cells in rows]
            )
        available = self.size.width or self.app.size.width
        if len(rows) > max(0, self.size.height - 1):
            available -= SCROLLBAR
        keys = fit_columns(columns, widths, available)
        used = sum(widths[key] + COLUMN_PADDING for key in keys)
        for column in columns:
            if column.shrink and column.key in keys and used > available:
                widths[column.key] = max(MIN_SHRUNK, widths[column.key] - (used - available))
                break
        return keys, {key: widths[key] for key in keys}

    def _fill(self) -> None:
        keys, widths = layout = self._layout()
        index = {column.key: i for i, column in enumerate(self._table_columns)}
        shrunk = {c.key for c in self._table_columns if c.shrink and c.key in keys}
        cursor_key = self.cursor_key
        with self.app.batch_update():
            self.clear(columns=True)
            for column in self._table_columns:
                if column.key in keys:
                    self.add_column(column.label, key=column.key, width=widths[column.key])
            for row_key, cells in self._table_rows:
                shown = []
                for key in keys:
                    cell = cells[index[key]]
                    if key in shrunk and isinstance(cell, str):
                        cell = shorten(cell, widths[key])
                    shown.append(literal(cell))
                self.add_row(*shown, key=row_key)
            if cursor_key is not None and cursor_key in self.rows:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False)
        self._layout_shown = layout


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
