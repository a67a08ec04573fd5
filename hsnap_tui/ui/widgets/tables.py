"""Filling tables with explicit column widths, so that the layout is final at once instead
of waiting for DataTable's idle-time auto sizing; and fitting the columns that matter
most into the width there is (80 columns first): the others go first when it is narrow,
and a text that still does not fit is cut at a word break with `…`, never mid-word."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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

Rows = Sequence[tuple[str | None, Mapping[str, object]]]  # (row key, cell per column key)


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
    shrink: bool = False  # gives up width when the rest does not fit, its texts shortened
    # when a shrinkable column gives up width down to `shrink_floor` cells, in the drop
    # order: before the columns with a higher drop_rank go (None: after every drop)
    shrink_rank: float | None = None
    shrink_floor: int = 20


def fit_columns(
    columns: Iterable[Column], widths: Mapping[str, int], available: int, keep: str | None = None
) -> tuple[str, ...]:
    """The keys of the columns that fit `available` cells, the droppable ones going in
    their drop order (the same order on every screen size, so a column never comes
    back when the terminal narrows); a column with a `shrink_rank` counts at its
    `shrink_floor` from that point of the order on (`shrink_columns` then narrows it).
    `keep` (the sorted column: its arrow says how the rows are ordered) is dropped
    last, and only when the rest does not fit without it (the border title still
    names the sort)."""
    columns = list(columns)
    for spared in (keep, None) if keep is not None else (None,):
        shown = list(columns)
        width = {c.key: widths[c.key] for c in columns}
        steps = [
            (c.drop_rank, 1, c) for c in columns if c.drop_rank is not None and c.key != spared
        ] + [(c.shrink_rank, 0, c) for c in columns if c.shrink_rank is not None]
        steps.sort(key=lambda step: (step[0], step[1]))

        def total() -> int:
            return sum(width[c.key] + COLUMN_PADDING for c in shown)  # noqa: B023

        for _, is_drop, column in steps:
            if total() <= available:
                break
            if is_drop:
                shown.remove(column)
            else:
                width[column.key] = min(width[column.key], column.shrink_floor)
        if total() <= available:
            break
    return tuple(c.key for c in shown)


def shrink_columns(
    columns: Iterable[Column], widths: dict[str, int], keys: Sequence[str], available: int
) -> None:
    """Narrow the shrinkable columns among `keys` until the shown ones fit `available`:
    the widest gives up width first, so that the room left is shared (no column below
    MIN_SHRUNK or its header)."""
    shrinkable = [c for c in columns if c.shrink and c.key in keys]
    over = sum(widths[key] + COLUMN_PADDING for key in keys) - available
    while over > 0 and shrinkable:
        floors = {
            c.key: min(widths[c.key], max(MIN_SHRUNK, cell_len(c.label) + 1)) for c in shrinkable
        }
        widest = max(shrinkable, key=lambda c: widths[c.key] - floors[c.key])
        room = widths[widest.key] - floors[widest.key]
        if room <= 0:
            return
        others = [widths[c.key] for c in shrinkable if c is not widest]
        # down to the next widest, or by what is over, whichever comes first
        target = max(max(others, default=0), floors[widest.key], widths[widest.key] - over)
        step = max(1, widths[widest.key] - target) if target < widths[widest.key] else 1
        step = min(step, room, over)
        widths[widest.key] -= step
        over -= step


def _width(text: str) -> int:
    """Cells of a text: its length when it is ASCII (almost every cell), fast."""
    return len(text) if text.isascii() else cell_len(text)


def shorten(value: object, width: int) -> object:
    """`value` (text, or Rich Text keeping its style) in at most `width` cells: whole,
    or cut at the last word break that fits and ended with `…` (mid-word only when one
    word is wider than the column)."""
    plain = value.plain if isinstance(value, Text) else str(value)
    if _width(plain) <= width:
        return value
    room = width - 1  # one cell for the ellipsis
    if plain.isascii():
        kept = max(0, room)
    else:
        kept = 0
        while kept < len(plain) and cell_len(plain[: kept + 1]) <= room:
            kept += 1
    cut = plain[:kept]
    if plain[kept] not in WORD_BREAKS:  # else the cut is at a word break already
        at = max(cut.rfind(char, 1) for char in WORD_BREAKS)
        if at > 0:
            cut = cut[:at]
    cut = cut.rstrip(WORD_BREAKS)
    if not isinstance(value, Text):
        return cut + ELLIPSIS
    short = value[: len(cut)]
    short.append(ELLIPSIS, style="dim")
    return short


def _cell_width(value: object) -> int:
    return _width(value.plain if isinstance(value, Text) else str(value))


def fitted_widths(
    table: DataTable, columns: Sequence[Column], rows: Rows, *, overflow: bool = False
) -> dict[str, int]:
    """The columns to show, in order, with their widths in the table's width (see
    `show_fitted`)."""
    sorts = table.sorts if isinstance(table, NavTable) else {}
    keep = table.sort_column if isinstance(table, NavTable) else None
    widths: dict[str, int] = {}
    for column in columns:
        header = cell_len(column.label) + (column.key in sorts)  # room for the sort arrow
        cells = (_cell_width(cells.get(column.key, "")) for _, cells in rows)
        widths[column.key] = column.width or max(header, *cells, 0)
    available = table.size.width or table.app.size.width
    if len(rows) > max(0, table.size.height - 1):
        available -= SCROLLBAR
    keys = fit_columns(columns, widths, available, keep)
    shrink_columns(columns, widths, keys, available)
    shown = {key: widths[key] for key in keys}
    if overflow and len(keys) < len(columns):
        last = keys[-1]
        # to the edge as it is now (less a scrollbar the rows make), so that the next
        # column starts just past it, not one cell of it showing
        edge = min(available, table.scrollable_content_region.width or available)
        shown[last] += max(0, edge - sum(w + COLUMN_PADDING for w in shown.values()))
        shown |= {c.key: widths[c.key] for c in columns if c.key not in shown}
    return shown


def fitted_cells(cells: Mapping[str, object], shown: Mapping[str, int]) -> tuple[object, ...]:
    """One row's cells as shown: each in its column's width, shortened at a word break."""
    return tuple(literal(shorten(cells.get(key, ""), width)) for key, width in shown.items())


def show_fitted(
    table: DataTable, columns: Sequence[Column], rows: Rows, *, overflow: bool = False
) -> None:
    """Replace columns and rows with those that fit the table's width; the cursor stays
    on the row it was on (by key). `overflow`: the columns that do not fit are not left
    out but put past the right edge, whole, reached by scrolling a column at a time
    (the last one that fits is widened to the edge so none shows cut)."""
    shown = fitted_widths(table, columns, rows, overflow=overflow)
    _refill(table, columns, shown, [(key, fitted_cells(cells, shown)) for key, cells in rows])
    if isinstance(table, NavTable):
        table.refit_with(lambda: show_fitted(table, columns, rows, overflow=overflow))


def _refill(
    table: DataTable,
    columns: Sequence[Column],
    shown: Mapping[str, int],
    rows: Sequence[tuple[str | None, tuple[object, ...]]],
) -> None:
    labels = {c.key: c.label for c in columns}
    cursor = table.cursor_key if isinstance(table, NavTable) else None
    cursor_row, scroll_x, scroll_y = table.cursor_row, table.scroll_x, table.scroll_y
    table.clear(columns=True)
    for key, width in shown.items():
        table.add_column(labels[key], key=key, width=width)
    for row_key, cells in rows:
        table.add_row(*cells, key=row_key)
    keep_view(table, cursor, cursor_row, scroll_x, scroll_y)


def keep_view(
    table: DataTable, cursor: str | None, cursor_row: int, scroll_x: float, scroll_y: float
) -> None:
    """After a refill: the cursor on its row (by key), or where that row was when it is
    gone (its neighbour, not the top: the next `d` must not hit the newest snapshot),
    and the rows where they were on screen unless the cursor's row moved out of view."""
    if not table.row_count:
        return
    if isinstance(table, NavTable) and table.take_top_after_sort():
        row, scroll_y = 0, 0.0
    elif cursor is not None and cursor in table.rows:
        row = table.get_row_index(cursor)
    else:
        row = min(cursor_row, table.row_count - 1)
    table.move_cursor(row=row, animate=False, scroll=False)

    def scroll_back() -> None:
        # after the refresh: only then does the table know its new height
        view = max(1, table.scrollable_content_region.height - table.header_height)
        top = min(scroll_y, table.max_scroll_y)
        if not top <= row < top + view:  # the row moved (a sort): show it, not the old place
            top = max(0, row - view // 2)
        table.scroll_to(x=min(scroll_x, table.max_scroll_x), y=top, animate=False, immediate=True)

    table.call_after_refresh(scroll_back)


# Removing a row renumbers every row after it (O(rows)): when more than this share of
# the rows goes at once (a filter keystroke), filling the table afresh is cheaper.
REFILL_SHARE = 0.05


class FittedTable(NavTable):
    """A NavTable that keeps its columns and rows and fits them to its width again when
    that changes (see `show_fitted`). A `show()` with the same columns and widths
    changes only what changed — the cells, the rows that came and went, the order — so
    that a refresh or a sort of thousands of snapshots does not stall the app."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._table_columns: Sequence[Column] = ()
        self._table_rows: Rows = ()
        self._widths_shown: dict[str, int] | None = None
        self._cells_shown: dict[str, tuple[object, ...]] = {}  # row key → cells on screen
        # row key → (the cells given, as shown): reused while the widths stay
        self._cells_made: dict[str, tuple[Mapping[str, object], tuple[object, ...]]] = {}

    def show(self, columns: Sequence[Column], rows: Rows) -> None:
        """Replace the rows (row key, cell per column key), keeping the cursor's row."""
        self._table_columns, self._table_rows = columns, rows
        self._fill()

    def _fill(self) -> None:
        columns, rows = self._table_columns, self._table_rows
        shown = fitted_widths(self, columns, rows)
        old, made = self._cells_shown, self._cells_made
        new: dict[str, tuple[object, ...]] = {}
        self._cells_made = {}
        for key, cells in rows:
            key = str(key)
            was = made.get(key)
            # the same cells in the same widths: the same row on screen, not made again
            if was is not None and was[0] is cells and shown == self._widths_shown:
                fitted = was[1]
            else:
                fitted = fitted_cells(cells, shown)
            new[key] = fitted
            self._cells_made[key] = (cells, fitted)
        removed = [key for key in old if key not in new]
        with self.app.batch_update():
            if shown != self._widths_shown or len(removed) > REFILL_SHARE * max(1, len(old)):
                _refill(self, columns, shown, list(new.items()))
            else:
                self._update(old, new, removed)
        self._widths_shown, self._cells_shown = shown, new
        self.refit_with(self._fill)

    def _update(
        self,
        old: dict[str, tuple[object, ...]],
        new: dict[str, tuple[object, ...]],
        removed: list[str],
    ) -> None:
        """The same columns: only the rows and cells that changed, then the order."""
        cursor, cursor_row = self.cursor_key, self.cursor_row
        scroll_x, scroll_y = self.scroll_x, self.scroll_y
        keys = list(self._widths_shown or {})
        for key in removed:
            self.remove_row(key)
        for key, cells in new.items():
            before = old.get(key)
            if before is None:
                self.add_row(*cells, key=key)
            elif before != cells:
                for column, cell, was in zip(keys, cells, before, strict=True):
                    if cell != was:
                        self.update_cell(key, column, cell)
        order = list(new)
        if [row.key.value for row in self.ordered_rows] != order:
            self.order_rows(order)
        keep_view(self, cursor, cursor_row, scroll_x, scroll_y)
