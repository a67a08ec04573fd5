"""Tables that fit their width: the columns that matter most stay, the others go first
when the terminal is narrow, and a text column that still does not fit is cut between
words (with `…`), never mid-word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from hsnap_tui.ui.format import literal
from hsnap_tui.ui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    drop: int = 0  # 0: always shown; else the higher, the sooner it goes when narrow
    squeeze: bool = False  # may be narrowed (cut between words) when even the kept ones do not fit


def clip_words(value: object, width: int) -> object:
    """`value` cut to `width` cells at the last space that fits, with `…`."""
    text = value if isinstance(value, Text) else Text(str(value))
    if text.cell_len <= width:
        return value
    plain = text.plain
    room = max(0, width - 1)
    cut = plain.rfind(" ", 0, room + 1)
    if cut <= 0:
        cut = room  # one long word: cut it rather than show nothing
    clipped = text[:cut]
    clipped.rstrip()
    clipped.append("…", style="dim")
    return clipped


def available_width(table: DataTable) -> int:
    """The columns' room: the table's width less a vertical scrollbar, reserved so that
    a scrollbar appearing with more rows does not push the last column off."""
    width = table.size.width or table.app.size.width
    return max(0, width - table.styles.scrollbar_size_vertical)


def fit_columns(
    table: DataTable,
    columns: Sequence[Column],
    rows: Sequence[tuple[str | None, dict[str, object]]],
    available: int,
) -> dict[str, int]:
    """The columns to show, in order, with their widths: each as wide as its widest cell
    (and its header with room for the sort arrow); the highest `drop` goes first while
    they are too wide (never the sorted one: its arrow says how the rows are ordered);
    then the `squeeze` columns narrow."""
    sorts = table.sorts if isinstance(table, NavTable) else {}
    sorted_by = table.sort_column if isinstance(table, NavTable) else None
    padding = 2 * table.cell_padding
    widths: dict[str, int] = {}
    for column in columns:
        header = cell_len(column.label) + (column.key in sorts)
        cells = (_cell_width(cells.get(column.key, "")) for _, cells in rows)
        widths[column.key] = max(header, *cells, 0)
    shown = list(columns)

    def total() -> int:
        return sum(widths[c.key] + padding for c in shown)

    droppable = (c for c in columns if c.drop and c.key != sorted_by)
    for column in sorted(droppable, key=lambda c: -c.drop):
        if total() <= available:
            break
        shown.remove(column)
    for column in (c for c in shown if c.squeeze):
        over = total() - available
        if over <= 0:
            break
        floor = cell_len(column.label) + (column.key in sorts)
        widths[column.key] = max(floor, widths[column.key] - over)
    return {c.key: widths[c.key] for c in shown}


def _cell_width(value: object) -> int:
    return value.cell_len if isinstance(value, Text) else cell_len(str(value))


def show_fitted(
    table: DataTable,
    columns: Sequence[Column],
    rows: Sequence[tuple[str | None, dict[str, object]]],
    *,
    overflow: bool = False,
) -> None:
    """Replace columns and rows with those that fit the table's width; the cursor stays
    on the row it was on (by key). `overflow`: the columns that do not fit are not left
    out but put past the right edge, whole, reached by scrolling a column at a time
    (the last one that fits is widened to the edge so none shows cut)."""
    available = available_width(table)
    widths = fit_columns(table, columns, rows, available)
    if overflow and len(widths) < len(columns):
        padding = 2 * table.cell_padding
        last = next(reversed(widths))
        # to the edge as it is now (the reserve for a scrollbar would show the next cut)
        edge = table.scrollable_content_region.width or available
        widths[last] += max(0, edge - sum(w + padding for w in widths.values()))
        natural = fit_columns(table, columns, rows, 1 << 30)
        widths |= {key: width for key, width in natural.items() if key not in widths}
    labels = {c.key: c.label for c in columns}
    cursor = table.cursor_key if isinstance(table, NavTable) else None
    scroll_x = table.scroll_x
    table.clear(columns=True)
    for key, width in widths.items():
        table.add_column(labels[key], key=key, width=width)
    for row_key, cells in rows:
        table.add_row(
            *(literal(clip_words(cells.get(key, ""), width)) for key, width in widths.items()),
            key=row_key,
        )
    if cursor is not None and cursor in table.rows:
        table.move_cursor(row=table.get_row_index(cursor), animate=False)
    table.scroll_to(x=min(scroll_x, table.max_scroll_x), animate=False, immediate=True)
