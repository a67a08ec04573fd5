"""Filling a DataTable in one go with explicit column widths, so that the layout is
final at once instead of waiting for DataTable's idle-time auto sizing."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.widgets import DataTable

from hsnap_tui.ui.format import literal
from hsnap_tui.ui.widgets.nav_table import NavTable


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
