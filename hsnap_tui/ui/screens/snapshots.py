"""View 2: every snapshot of the project; delete (`d`) and the retention plan (`p`)."""

from __future__ import annotations

from collections.abc import Callable, Collection

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable

from hsnap_tui.core.deletion import deletion_problem
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.labels import RowFilter
from hsnap_tui.core.models import Snapshot
from hsnap_tui.ui.format import ago, short_ago, size_gb
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.widgets.filter_bar import FilterBar
from hsnap_tui.ui.widgets.footer import FittedFooter
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import Column, FittedTable

# What a delete or keep decision reads (which snapshot, of which server, how old, how
# big, whether it is ready) always stays; the rest drops from the right as the terminal
# narrows: labels first (the widest; the filter finds by them), the disk size of the
# source server next (the image's own size is there), then the ID (`d` and `enter` work
# on the row; it is for typing hcloud commands), and protection last (it decides
# whether `d` can delete, and `d` says so anyway). When even that is not enough, the
# description and the server share the room left, the wider giving up width first,
# each shortened at a word boundary.
COLUMNS = (
    Column("description", "Description", shrink=True),
    Column("server", "Server", shrink=True),
    Column("created", "Created"),
    Column("size", "Size"),
    Column("status", "Status"),
    Column("protected", "Protected", drop_rank=4),
    Column("id", "ID", drop_rank=3),
    Column("disk", "Disk", drop_rank=2),
    Column("labels", "Labels", drop_rank=1),
)


def _created(s: Snapshot) -> tuple[float, int]:
    return (s.created or 0.0, s.id)


# column key → (sort key, natural direction: descending); `o` cycles in this order. Ties
# stay newest first whichever the direction.
SORTS: dict[str, tuple[Callable[[Snapshot], object], bool]] = {
    "created": (_created, True),
    "server": (lambda s: (s.server_name or "").lower(), False),
    "size": (lambda s: s.image_size_gb or 0.0, True),
    "description": (lambda s: s.description.lower(), False),
    "status": (lambda s: s.status, False),
}
STATUS_STYLES = {"available": "green", "creating": "yellow", "unavailable": "red"}


def snapshot_row(snapshot: Snapshot, now: float, servers: Collection[int]) -> dict[str, object]:
    """The cells, by column key."""
    server = Text(snapshot.server_name or "—")
    if snapshot.server_id is not None and snapshot.server_id not in servers:
        server.append(" (deleted)", style="dim")
    labels = ", ".join(f"{k}={v}" for k, v in sorted(snapshot.labels.items()))
    return {
        "description": snapshot.description,
        "server": server,
        "created": short_ago(snapshot.created, now, "—"),
        "size": size_gb(snapshot.image_size_gb),
        "status": Text(snapshot.status, style=STATUS_STYLES.get(snapshot.status, "")),
        "protected": Text("🛡 yes", style="bold") if snapshot.protected else "",
        "id": str(snapshot.id),
        "disk": size_gb(snapshot.disk_size_gb),
        "labels": labels,
    }


def sorted_snapshots(
    snapshots: list[Snapshot], row_filter: RowFilter, column: str, descending: bool
) -> list[Snapshot]:
    matches = row_filter.matches
    shown = [s for s in snapshots if matches(s.labels, s.description, s.server_name)]
    shown.sort(key=_created, reverse=True)
    key, _ = SORTS[column]
    if key is not _created:
        shown.sort(key=key, reverse=descending)  # stable: ties stay newest first
    elif not descending:
        shown.reverse()
    return shown


class SnapshotsScreen(Screen):
    # Moving, sorting and `enter` are the table's (NavTable: `table.*`).
    BINDINGS = [
        Binding(
            "slash",
            "filter",
            "Filter",
            id="snapshots.filter",
            # checked when the key arrives, not in the table's queue: the keys typed
            # right after `/` (a burst, over SSH) then go to the field, none to the table
            priority=True,
            tooltip="Filter by description or server, or a label selector",
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="snapshots.clear_filter",
            tooltip="Close the filter bar and show every snapshot",
        ),
        Binding(
            "d",
            "delete",
            "Delete",
            id="snapshots.delete",
            tooltip="Delete the highlighted snapshot (asks first)",
        ),
        Binding(
            "p",
            "retention",
            "Retention",
            id="snapshots.retention",
            tooltip="Keep the newest N per server: preview, then delete",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._row_cache: dict[int, tuple[tuple[object, ...], dict[str, object]]] = {}
        # the rows on screen; None: show whatever comes next (even no rows)
        self._rows: dict[str, dict[str, object]] | None = None
        self._behind = False

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        yield FilterBar("text, or a label selector (managed-by=hsnap)", id="snapshots-filter-bar")
        yield FittedTable(
            id="snapshots",
            sorts={key: descending for key, (_, descending) in SORTS.items()},
            sort_column="created",
            open_label="Server",
            open_tooltip="Details of the highlighted snapshot's server",
            zebra_stripes=True,
        )
        yield FittedFooter()

    def on_mount(self) -> None:
        self.app.views.add(self)
        self.table.focus()
        self.fleet_changed(self.app.fleet, self.app.now())

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    @property
    def table(self) -> FittedTable:
        return self.query_one("#snapshots", FittedTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    @property
    def filter(self) -> RowFilter:
        return self.filter_bar.filter

    @property
    def sort_name(self) -> str:
        return self.table.sort_column or "created"

    @property
    def highlighted(self) -> Snapshot | None:
        key = self.table.cursor_key
        if key is None:
            return None
        return next((s for s in self.app.fleet.snapshots if str(s.id) == key), None)

    def on_screen_resume(self) -> None:
        if self._behind:
            self._reshow()

    def fleet_changed(self, fleet: FleetState, now: float) -> None:
        if not self.is_current:
            # Hidden behind another view: catch up when shown, not on every tick.
            self._behind = True
            return
        self._behind = False
        table = self.table
        shown = sorted_snapshots(fleet.snapshots, self.filter, self.sort_name, table.descending)
        servers = fleet.servers
        cache, fresh = self._row_cache, {}
        rows = {}
        for snapshot in shown:
            # a row is made again only when what it shows changed (most do not: a
            # refresh of thousands of snapshots changes a few ages)
            gone = snapshot.server_id is not None and snapshot.server_id not in servers
            basis = (snapshot, short_ago(snapshot.created, now, "—"), gone)
            hit = cache.get(snapshot.id)
            row = hit[1] if hit is not None and hit[0] == basis else None
            if row is None:
                row = snapshot_row(snapshot, now, servers)
            fresh[snapshot.id] = (basis, row)
            rows[str(snapshot.id)] = row
        self._row_cache = fresh
        if self._rows is None or list(rows.items()) != list(self._rows.items()):
            table.show(COLUMNS, list(rows.items()))
            self._rows = rows
        total = sum(s.image_size_gb or 0 for s in fleet.snapshots)
        parts = [
            f"Snapshots {len(rows)}/{len(fleet.snapshots)}",
            f"{size_gb(total)} stored",
            f"sort: {self.sort_name} {table.sort_arrow()}",
        ]
        if self.filter:
            parts.append(f"filter: {self.filter.text}")
        table.border_title = Text(" · ".join(parts))  # plain: a filter `[/var` is no markup

    def _reshow(self) -> None:
        self._rows = None
        self.fleet_changed(self.app.fleet, self.app.now())

    # ---- filter, sort, enter --------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_bar.open()
        self._escape_changed()

    def on_filter_bar_changed(self) -> None:
        self._reshow()
        self._escape_changed()

    def on_filter_bar_closed(self) -> None:
        self.table.focus()
        self._escape_changed()

    _escape_shown = False

    def _escape_changed(self) -> None:
        """Have the footer say whether escape clears a filter, when that changed."""
        filtering = self._filtering()
        if filtering != self._escape_shown:
            self._escape_shown = filtering
            self.refresh_bindings()

    def _filtering(self) -> bool:
        if not self.is_mounted:
            return False
        bar = self.filter_bar
        return bar.is_open or bool(bar.filter)

    def action_clear_filter(self) -> None:
        self.filter_bar.clear()

    def on_nav_table_sort_changed(self) -> None:
        self._reshow()

    @on(DataTable.RowSelected, "#snapshots")
    def _open_server(self) -> None:
        snapshot = self.highlighted
        if snapshot is None:
            return
        if snapshot.server_id is None:
            self.notify("This snapshot names no server it was made from.", timeout=4)
            return
        if snapshot.server_id not in self.app.fleet.servers:
            name = snapshot.server_name or f"Server {snapshot.server_id}"
            self.notify(f"{name} has been deleted: no details to show.", timeout=4)
            return
        from hsnap_tui.ui.screens.details import ServerDetailsScreen

        self.app.push_screen(ServerDetailsScreen(snapshot.server_id))

    # ---- delete and retention -------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "delete" and getattr(self.app, "read_only", False):
            return None  # greyed out; the retention preview works, only its apply does not
        if action == "filter":  # a `/` typed into the field is text
            return not (self.is_mounted and self.focused is self.filter_bar.input)
        if action == "clear_filter":
            return self._filtering()
        return True

    def action_delete(self) -> None:
        snapshot = self.highlighted
        if snapshot is None:
            return
        problem = deletion_problem(snapshot)
        if problem:
            self.notify(problem, title="Not deleted", severity="error", timeout=10)
            return
        where = f" of {snapshot.server_name}" if snapshot.server_name else ""
        message = (
            f"Delete snapshot {snapshot.description!r} (#{snapshot.id}){where}, "
            f"{size_gb(snapshot.image_size_gb)}, created "
            f"{ago(snapshot.created, self.app.now())}?\n\nThis cannot be undone."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.delete_snapshots([snapshot])

        self.app.push_screen(
            ConfirmScreen("Delete snapshot?", message, yes="Delete", no="Keep"), answered
        )

    def action_retention(self) -> None:
        from hsnap_tui.ui.screens.retention import RetentionScreen

        self.app.push_screen(RetentionScreen(getattr(self.app, "policies", [])))
