"""The fleet table: one row per server, keyed by server ID, updated cell by cell."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len as cell_length
from rich.text import Text
from textual.widgets.data_table import Column as DataTableColumn
from textual.widgets.data_table import ColumnKey

from hsnap_tui.core.fleet import NO_LOCK, FleetState, LockState
from hsnap_tui.core.labels import LabelError, RowFilter
from hsnap_tui.core.models import Server
from hsnap_tui.ui.format import last_snapshot_cell, lock_text, status_text
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.tables import SCROLLBAR, Column, fit_columns, shorten, shrink_columns

Cell = tuple[str, str]  # (text, style): compared to find the cells that changed

# What a snapshot decision needs (name, status, lock, age of the last snapshot) always
# stays, left; the rest drop from the right as the terminal narrows: the address first
# (the widest, and the name already says which server it is; details show it), then
# the location, then the type (it sizes the disk, so how long a snapshot takes), and
# last the snapshot count beside the age.
COLUMNS = (
    Column("mark", " ", 1),
    # a long hostname gives up width (shortened at a word break) before status, lock
    # or the last snapshot leave an 80-column screen
    Column("name", "Name", shrink=True),
    Column("status", "Status"),
    Column("lock", "Lock"),
    Column("last_snapshot", "Last snap"),
    Column("snapshots", "Snaps", drop_rank=4),
    Column("type", "Type", drop_rank=3),
    Column("location", "Loc", drop_rank=2),
    Column("address", "IPv4 / IPv6", drop_rank=1),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SIZED = tuple(c.key for c in COLUMNS if c.width is None)  # sized to their widest cell
# The lock column is at least this wide (`🔒 create_image 25%`), so that locks coming
# and going do not shift the columns right of it; a longer one widens it, never cut.
LOCK_WIDTH = 20
MARK = "●"
# Removing a row from a DataTable renumbers every row after it (O(rows)); adding one is
# O(1) but several times dearer. Refilling the rows beats removing them one by one when
# (rows removed) * (rows in the table) exceeds this many times the rows to show.
REFILL_FACTOR = 20


def _lock_rank(fleet: FleetState, server: Server) -> int:
    lock = fleet.lock(server.id)
    return 0 if lock.unexplained else 1 if lock.held else 2


@dataclass(frozen=True)
class Sort:
    column: str  # the column whose header carries the arrow
    key: Callable[[FleetState, Server], object]  # ties stay in name order
    descending: bool = False  # the natural direction, before `O`
    server_only: bool = False  # reads the server's own fields only


# name (as the border title says it) → sort; `o` cycles through them in this order.
# Ascending last snapshot: never snapshotted first, then the oldest.
SORTS: dict[str, Sort] = {
    "name": Sort("name", lambda fleet, s: s.name, server_only=True),
    "status": Sort("status", lambda fleet, s: s.status, server_only=True),
    "lock": Sort("lock", _lock_rank),
    "last snapshot": Sort("last_snapshot", lambda fleet, s: fleet.last_snapshot(s.id) or 0.0),
    "type": Sort("type", lambda fleet, s: s.server_type, server_only=True),
    "location": Sort("location", lambda fleet, s: s.location, server_only=True),
}
SORT_NAMES = {sort.column: name for name, sort in SORTS.items()}  # column key → name


def server_cells(server: Server, fleet: FleetState, now: float, marked: bool) -> dict[str, Cell]:
    lock = lock_text(fleet.lock(server.id))
    status = status_text(server.status)
    return {
        "mark": (MARK if marked else " ", "bold cyan"),
        "name": (server.name, "bold" if marked else ""),
        "status": (status.plain, str(status.style)),
        "lock": (lock.plain, str(lock.style)),
        "type": (server.server_type, ""),
        "location": (server.location, ""),
        "address": (server.address, "" if server.ipv4 else "italic"),
        "last_snapshot": last_snapshot_cell(fleet.last_snapshot(server.id), now),
        "snapshots": (str(fleet.snapshot_count(server.id)), ""),
    }


class _Row:
    """One server's cells and what they were made from, so that a refresh with the
    same inputs reuses them (and their Rich texts) instead of formatting them again."""

    __slots__ = (
        "age",
        "cells",
        "count",
        "last",
        "lock",
        "marked",
        "server",
        "snapshots",
        "texts",
        "widths",
    )

    def __init__(
        self,
        server: Server,
        lock: LockState,
        snapshots: tuple[object, ...],
        last: float | None,
        count: int,
        marked: bool,
        age: Cell,
        cells: dict[str, Cell],
    ) -> None:
        self.server = server
        self.lock = lock
        self.snapshots = snapshots  # the snapshot list `last` and `count` come from
        self.last = last
        self.count = count
        self.marked = marked
        self.age = age
        self.cells = cells
        self.texts: dict[str, Text] = {}
        # the widths of the SIZED cells
        self.widths = tuple(cell_length(cells[key][0]) for key in SIZED)

    def text(self, column: str, width: int | None = None) -> Text:
        """The cell as shown; `width`: at most so many cells (shortened at a word break)."""
        key = column if width is None else f"{column}:{width}"
        text = self.texts.get(key)
        if text is None:
            value, style = self.cells[column]
            if width is not None:
                value = str(shorten(value, width))
            text = self.texts[key] = Text(value, style)
        return text


class ServerTable(NavTable):
    """Shows a FleetState. `show()` touches only the cells that changed, keeps the
    cursor on the same server and keeps the scroll position. `o`/`O` (NavTable) sort
    it; `enter` opens the server's details (the screen does, on RowSelected)."""

    DEFAULT_CSS = """
    ServerTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            sorts={sort.column: sort.descending for sort in SORTS.values()},
            sort_column="name",
            open_label="Details",
            open_tooltip="Details of the highlighted server",
            zebra_stripes=True,
        )
        self.fleet = FleetState()
        self.now = 0.0
        self.filter = RowFilter()
        self.marks: set[int] = set()
        self._shown: dict[str, _Row] = {}  # row key → row, for the rows in the table
        self._order: list[str] = []  # their keys, in the order shown
        self._rows: dict[str, _Row] = {}  # row key → row, for every server of the fleet
        self._visible: list[Server] = []  # the servers shown, in order
        # what _visible was computed from: the fleet's servers, the filter, the sort
        self._visible_basis: tuple[object, ...] = (None, None, None, None)
        # per SIZED column: how many shown cells have each width (the widest is the width)
        self._width_counts: tuple[Counter[int], ...] = tuple(Counter() for _ in SIZED)
        self._columns_shown: tuple[str, ...] = ()
        self._widths_shown: dict[str, int] = {}

    # ---- DataTable's column list, kept ------------------------------------------------
    # DataTable.ordered_columns builds its list afresh on every call: twice per add_row
    # and again while rendering. Columns change only through the three methods below,
    # so the list is kept until one of them runs.

    _ordered_columns: list[DataTableColumn] | None = None

    @property
    def ordered_columns(self) -> list[DataTableColumn]:
        if self._ordered_columns is None:
            self._ordered_columns = super().ordered_columns
        return self._ordered_columns

    def add_column(self, *args: Any, **kwargs: Any) -> ColumnKey:
        self._ordered_columns = None
        try:
            return super().add_column(*args, **kwargs)
        finally:
            self._ordered_columns = None

    def remove_column(self, column_key: ColumnKey | str) -> None:
        self._ordered_columns = None
        try:
            super().remove_column(column_key)
        finally:
            self._ordered_columns = None

    def clear(self, columns: bool = False) -> ServerTable:
        self._ordered_columns = None
        try:
            return super().clear(columns)
        finally:
            self._ordered_columns = None

    # ---- public ---------------------------------------------------------------------

    @property
    def highlighted_server_id(self) -> int | None:
        key = self.cursor_key
        return int(key) if key is not None else None

    @property
    def sort_name(self) -> str:
        """The sort as the border title names it (`last snapshot`)."""
        return SORT_NAMES[self.sort_column or "name"]

    @property
    def visible_ids(self) -> list[int]:
        return [int(key) for key in self._order]

    @property
    def visible_count(self) -> int:
        return len(self._order)

    def show(self, fleet: FleetState, now: float) -> None:
        self.fleet = fleet
        self.now = now
        self._apply()

    def set_filter(self, text: str) -> str | None:
        """Apply a filter; returns a message (and keeps the old filter) when it is bad."""
        try:
            new = RowFilter.parse(text)
        except LabelError as exc:
            return str(exc)
        self.apply_filter(new)
        return None

    def apply_filter(self, row_filter: RowFilter) -> None:
        self.filter = row_filter
        self._apply()

    def on_nav_table_sort_changed(self) -> None:
        self._apply()  # and on to the screen, for the border title

    def toggle_mark(self, server_id: int) -> None:
        self.marks ^= {server_id}
        self._apply()

    def reset_layout(self) -> None:
        self.marks.clear()
        self._widths_shown = {}
        self._columns_shown = ()

    def clear_marks(self) -> None:
        self.marks.clear()
        self._apply()

    # ---- diffing --------------------------------------------------------------------

    def _content_widths(self) -> dict[str, int]:
        """Each column's width: fixed, or its widest cell. Set explicitly on the columns
        so the layout never waits for DataTable's idle-time auto sizing."""
        # room for the sort arrow in the headers of the sortable columns
        widths = {c.key: c.width or len(c.label) + (c.key in self.sorts) for c in COLUMNS}
        widths["lock"] = max(widths["lock"], LOCK_WIDTH)
        for key, counts in zip(SIZED, self._width_counts, strict=True):
            widths[key] = max(widths[key], max(counts, default=0))
        return widths

    def _count_widths(self, widths: tuple[int, ...], change: int) -> None:
        for counts, width in zip(self._width_counts, widths, strict=True):
            counts[width] += change
            if not counts[width]:
                del counts[width]

    def _available(self) -> int:
        available = self.size.width or self.app.size.width
        if len(self._order) > max(0, self.size.height - 1):
            available -= SCROLLBAR
        return available

    def _wanted_columns(self, widths: dict[str, int]) -> tuple[str, ...]:
        """The columns that fit the width, dropping from the right (by drop_rank)."""
        return fit_columns(COLUMNS, widths, self._available(), keep=self.sort_column)

    def _layout(self) -> tuple[tuple[str, ...], dict[str, int]]:
        widths = self._content_widths()
        # Columns only grow while the set is unchanged, so a refresh rebuilds the table
        # only when a value is wider than any before (a resize starts afresh).
        for key, shown in self._widths_shown.items():
            widths[key] = max(widths[key], shown)
        columns = self._wanted_columns(widths)
        natural = widths["name"]
        shrink_columns(COLUMNS, widths, columns, self._available())
        self._name_width = widths["name"] if widths["name"] < natural else None
        return columns, {key: widths[key] for key in columns}

    _name_width: int | None = None  # the name column's width while names are shortened

    def _text(self, row: _Row, column: str) -> Text:
        return row.text(column, self._name_width if column == "name" else None)

    def _rebuild(self, columns: tuple[str, ...], widths: dict[str, int]) -> None:
        cursor_key = self.cursor_key
        self.clear(columns=True)
        for column in COLUMNS:
            if column.key in columns:
                self.add_column(column.label, key=column.key, width=widths[column.key])
        self._columns_shown = columns
        self._widths_shown = widths
        self._add_rows(self._order, columns)
        self._restore_cursor(cursor_key, None)

    def _add_rows(self, keys: list[str], columns: tuple[str, ...]) -> None:
        rows = self._rows
        for key in keys:
            row = rows[key]
            self.add_row(*(self._text(row, c) for c in columns), key=key)

    def _restore_cursor(self, cursor_key: str | None, scroll_y: float | None) -> None:
        if self.take_top_after_sort():
            cursor_key, scroll_y = None, 0.0
            if self.row_count:
                self.move_cursor(row=0, scroll=False)
        if cursor_key is not None and cursor_key in self._shown:
            row = self.get_row_index(cursor_key)
            if row != self.cursor_row:
                self.move_cursor(row=row, scroll=scroll_y is None)
        if scroll_y is not None and self.scroll_y != scroll_y:
            self.scroll_to(y=scroll_y, animate=False, immediate=True)

    def _row(self, key: str, server: Server, fleet: FleetState, now: float) -> _Row:
        """The server's cells, reused from the last refresh when nothing they show has
        changed (the usual case: a steady refresh changes a few dozen cells of 1000)."""
        server_id = server.id
        row = self._rows.get(key)
        lock = fleet.locks.get(server_id, NO_LOCK)
        marked = server_id in self.marks
        if row is not None and row.snapshots is fleet.snapshots:
            last, count = row.last, row.count
        else:
            last = fleet.last_snapshot(server_id)
            count = fleet.snapshot_count(server_id)
        age = last_snapshot_cell(last, now)
        if (
            row is not None
            and row.age == age
            and row.marked == marked
            and (row.server is server or row.server == server)
            and (row.lock is lock or row.lock == lock)
            and row.last == last
            and row.count == count
        ):
            # the identity checks hit next time
            row.server, row.lock, row.snapshots = server, lock, fleet.snapshots
            return row
        cells = server_cells(server, fleet, now, marked)
        row = _Row(server, lock, fleet.snapshots, last, count, marked, age, cells)
        self._rows[key] = row
        return row

    def _visible_servers(self, fleet: FleetState) -> list[Server]:
        """The servers that pass the filter, sorted; the last list again when neither
        the servers, the filter nor a sort by the server's own fields changed."""
        sort = SORTS[self.sort_name]
        descending = self.descending
        basis = (fleet.servers, self.filter, sort, descending)
        if sort.server_only and all(
            a is b for a, b in zip(basis, self._visible_basis, strict=True)
        ):
            return self._visible
        matches = self.filter.matches
        visible = [s for s in fleet.servers.values() if matches(s.labels, s.name)]
        visible.sort(key=lambda s: s.name)
        if sort.column != "name" or descending:
            # stable, in either direction: ties keep the name order
            key = sort.key
            visible.sort(key=lambda s: key(fleet, s), reverse=descending)
        self._visible, self._visible_basis = visible, basis
        return visible

    def _apply(self) -> None:
        """Show the fleet as a keyed diff: cells are formatted again only for servers
        whose data changed, only changed cells are updated, rows are added and removed
        only when the set changes, and the rows are sorted only when the order did."""
        fleet, now = self.fleet, self.now
        visible = self._visible_servers(fleet)
        rows: dict[str, _Row] = {}
        for server in visible:
            key = str(server.id)
            rows[key] = self._row(key, server, fleet, now)
        order = list(rows)
        if len(self._rows) > len(fleet.servers):  # forget servers that are gone
            self._rows = {k: r for k, r in self._rows.items() if r.server.id in fleet.servers}

        old, old_order = self._shown, self._order
        removed = [k for k in old_order if k not in rows]
        added = [k for k in order if k not in old]
        changed: list[tuple[str, str]] = []
        for key in removed:
            self._count_widths(old[key].widths, -1)
        for key in added:
            self._count_widths(rows[key].widths, +1)
        for key, row in rows.items():
            before = old.get(key)
            if before is None or before is row:
                continue
            cells, before_cells = row.cells, before.cells
            changed += [(key, c) for c in COLUMN_KEYS if cells[c] != before_cells[c]]
            if row.widths != before.widths:
                self._count_widths(before.widths, -1)
                self._count_widths(row.widths, +1)

        cursor_key = self.cursor_key
        cursor_row = self.cursor_row
        scroll_y = self.scroll_y
        with self.app.batch_update():
            self._shown = rows
            self._order = order
            columns, widths = self._layout()
            if columns != self._columns_shown or widths != self._widths_shown:
                self._rebuild(columns, widths)
                return
            if len(removed) * self.row_count > REFILL_FACTOR * len(order):
                # e.g. a filter keystroke: fill the rows afresh, in order
                self.clear()
                self._add_rows(order, columns)
                if cursor_key not in rows:
                    # where removing the rows one by one would have left the cursor
                    kept = len(old_order) - len(removed)
                    self.move_cursor(row=max(0, min(cursor_row, kept - 1)), scroll=False)
                self._restore_cursor(cursor_key, scroll_y)
                return
            for key in removed:
                self.remove_row(key)
            self._add_rows(added, columns)
            shown = set(columns)
            for key, column in changed:
                if column in shown:
                    self.update_cell(key, column, self._text(rows[key], column))
            current = old_order
            if removed or added:
                current = [k for k in old_order if k in rows] + added
            if current != order:
                self.order_rows(order)
            self._restore_cursor(cursor_key, scroll_y)

    def on_resize(self) -> None:
        self._widths_shown = {}
        columns, widths = self._layout()
        if columns != self._columns_shown or widths != self._widths_shown:
            with self.app.batch_update():
                self._rebuild(columns, widths)
