"""The fleet table: one row per server, keyed by server ID, updated cell by cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len as cell_length
from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.labels import LabelError, looks_like_selector, parse_selector
from hsnap_tui.core.models import Server
from hsnap_tui.ui.format import ago, lock_text, status_text

Cell = tuple[str, str]  # (text, style): compared to find the cells that changed


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # fixed width; None sizes to content
    drop_rank: int | None = None  # dropped on narrow screens, lowest first; None: never


COLUMNS = (
    Column("mark", " ", 1),
    Column("name", "Name"),
    Column("status", "Status", drop_rank=6),
    Column("lock", "Lock", 20),
    Column("type", "Type", drop_rank=5),
    Column("location", "Loc", drop_rank=4),
    Column("address", "IPv4 / IPv6", drop_rank=3),
    Column("last_snapshot", "Last snap", drop_rank=2),
    Column("snapshots", "Snaps", drop_rank=1),
)
COLUMN_PADDING = 2  # DataTable's cell_padding=1 on each side
MARK = "●"


def _lock_rank(fleet: FleetState, server: Server) -> int:
    lock = fleet.lock(server.id)
    return 0 if lock.unexplained else 1 if lock.held else 2


# name → key function; `o` cycles through them in this order.
SORTS: dict[str, Callable[[FleetState, Server], tuple]] = {
    "name": lambda fleet, s: (s.name,),
    "status": lambda fleet, s: (s.status, s.name),
    "lock": lambda fleet, s: (_lock_rank(fleet, s), s.name),
    "location": lambda fleet, s: (s.location, s.name),
    "last snapshot": lambda fleet, s: (fleet.last_snapshot(s.id) or 0.0, s.name),
    "type": lambda fleet, s: (s.server_type, s.name),
}


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
        "last_snapshot": (ago(fleet.last_snapshot(server.id), now), ""),
        "snapshots": (str(fleet.snapshot_count(server.id)), ""),
    }


class ServerFilter:
    """A name substring, or a label selector such as `env=prod,role in (db,web)`."""

    def __init__(self, text: str = "") -> None:
        self.text = text.strip()
        self.selector = None
        if self.text and looks_like_selector(self.text):
            self.selector = parse_selector(self.text)  # LabelError for the caller

    def __bool__(self) -> bool:
        return bool(self.text)

    def matches(self, server: Server) -> bool:
        if not self.text:
            return True
        if self.selector is not None:
            return self.selector.matches(server.labels)
        return self.text.lower() in server.name.lower()


class ServerTable(DataTable):
    """Shows a FleetState. `show()` touches only the cells that changed, keeps the
    cursor on the same server and keeps the scroll position."""

    DEFAULT_CSS = """
    ServerTable {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="servers.down"),
        Binding("k", "cursor_up", "Up", show=False, id="servers.up"),
        Binding(
            "enter",
            "select_cursor",
            "Details",
            id="servers.details",
            tooltip="Details of the highlighted server",
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.fleet = FleetState()
        self.now = 0.0
        self.filter = ServerFilter()
        self.sort_name = "name"
        self.marks: set[int] = set()
        self._cells: dict[str, dict[str, Cell]] = {}
        self._order: list[str] = []
        self._columns_shown: tuple[str, ...] = ()
        self._widths_shown: dict[str, int] = {}

    # ---- public ---------------------------------------------------------------------

    @property
    def highlighted_server_id(self) -> int | None:
        key = self._cursor_key()
        return int(key) if key is not None else None

    @property
    def visible_ids(self) -> list[int]:
        return [int(key) for key in self._order]

    def show(self, fleet: FleetState, now: float) -> None:
        self.fleet = fleet
        self.now = now
        self._apply()

    def set_filter(self, text: str) -> str | None:
        """Apply a filter; returns a message (and keeps the old filter) when it is bad."""
        try:
            new = ServerFilter(text)
        except LabelError as exc:
            return str(exc)
        self.filter = new
        self._apply()
        return None

    def cycle_sort(self) -> str:
        names = list(SORTS)
        self.sort_name = names[(names.index(self.sort_name) + 1) % len(names)]
        self._apply()
        return self.sort_name

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
        widths = {}
        for column in COLUMNS:
            if column.width is not None:
                widths[column.key] = column.width
            else:
                widths[column.key] = max(
                    [len(column.label)]
                    + [cell_length(cells[column.key][0]) for cells in self._cells.values()]
                )
        return widths

    def _wanted_columns(self, widths: dict[str, int]) -> tuple[str, ...]:
        """The columns that fit the width, dropping from the right (by drop_rank)."""
        available = self.size.width or self.app.size.width
        if len(self._order) > max(0, self.size.height - 1):
            available -= 2  # the vertical scrollbar, when the rows overflow
        shown = list(COLUMNS)
        droppable = sorted(
            (c for c in COLUMNS if c.drop_rank is not None), key=lambda c: c.drop_rank
        )
        while sum(widths[c.key] + COLUMN_PADDING for c in shown) > available and droppable:
            shown.remove(droppable.pop(0))
        return tuple(c.key for c in shown)

    def _layout(self) -> tuple[tuple[str, ...], dict[str, int]]:
        widths = self._content_widths()
        # Columns only grow while the set is unchanged, so a refresh rebuilds the table
        # only when a value is wider than any before (a resize starts afresh).
        for key, shown in self._widths_shown.items():
            widths[key] = max(widths[key], shown)
        columns = self._wanted_columns(widths)
        return columns, {key: widths[key] for key in columns}

    def _rebuild(self, columns: tuple[str, ...], widths: dict[str, int]) -> None:
        cursor_key = self._cursor_key()
        self.clear(columns=True)
        for column in COLUMNS:
            if column.key in columns:
                self.add_column(column.label, key=column.key, width=widths[column.key])
        self._columns_shown = columns
        self._widths_shown = widths
        for key in self._order:
            cells = self._cells[key]
            self.add_row(*(Text(*cells[c]) for c in columns), key=key)
        self._restore_cursor(cursor_key, None)

    def _cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value

    def _restore_cursor(self, cursor_key: str | None, scroll_y: float | None) -> None:
        if cursor_key is not None and cursor_key in self._cells:
            row = self.get_row_index(cursor_key)
            if row != self.cursor_row:
                self.move_cursor(row=row, scroll=scroll_y is None)
        if scroll_y is not None and self.scroll_y != scroll_y:
            self.scroll_to(y=scroll_y, animate=False, immediate=True)

    def _apply(self) -> None:
        fleet, now = self.fleet, self.now
        visible = [s for s in fleet.servers.values() if self.filter.matches(s)]
        sort_key = SORTS[self.sort_name]
        visible.sort(key=lambda s: sort_key(fleet, s))
        wanted = {str(s.id): server_cells(s, fleet, now, s.id in self.marks) for s in visible}
        order = [str(s.id) for s in visible]
        cursor_key = self._cursor_key()
        scroll_y = self.scroll_y
        with self.app.batch_update():
            old = self._cells
            self._cells = wanted
            self._order = order
            columns, widths = self._layout()
            if columns != self._columns_shown or widths != self._widths_shown:
                self._rebuild(columns, widths)
                return
            for key in [k for k in old if k not in wanted]:
                self.remove_row(key)
            for key, cells in wanted.items():
                before = old.get(key)
                if before is None:
                    self.add_row(*(Text(*cells[c]) for c in columns), key=key)
                    continue
                for column in columns:
                    if cells[column] != before[column]:
                        self.update_cell(key, column, Text(*cells[column]))
            current = [row.key.value for row in self.ordered_rows]
            if current != order:
                position = {self._cells[k]["name"][0]: i for i, k in enumerate(order)}
                self.sort("name", key=lambda name: position[str(name)])
            self._restore_cursor(cursor_key, scroll_y)

    def on_resize(self) -> None:
        self._widths_shown = {}
        columns, widths = self._layout()
        if columns != self._columns_shown or widths != self._widths_shown:
            with self.app.batch_update():
                self._rebuild(columns, widths)
