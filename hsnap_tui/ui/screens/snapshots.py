"""View 2: every snapshot of the project; delete (`d`) and the retention plan (`p`)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from hsnap_tui.core.deletion import deletion_problem
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.labels import LabelError, parse_selector
from hsnap_tui.core.models import Snapshot
from hsnap_tui.ui.format import ago, size_gb
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import fill_table

COLUMNS = (
    "description",
    "id",
    "server",
    "created",
    "size",
    "disk",
    "status",
    "protected",
    "labels",
)
LABELS = ("Description", "ID", "Server", "Created", "Size", "Disk", "Status", "Protected", "Labels")

SORTS: dict[str, Callable[[Snapshot], tuple]] = {
    "created": lambda s: (-(s.created or 0.0), -s.id),
    "server": lambda s: (s.server_name or "", -(s.created or 0.0)),
    "size": lambda s: (-(s.image_size_gb or 0.0), -s.id),
    "description": lambda s: (s.description, -s.id),
}
STATUS_STYLES = {"available": "green", "creating": "yellow", "unavailable": "red"}


class SnapshotFilter:
    """A label selector when the text reads as one, else text in the description or
    server name (descriptions have spaces, so anything that is not a selector is text).
    `note` says why a selector-looking text is searched as text."""

    def __init__(self, text: str = "") -> None:
        self.text = text.strip()
        self.selector = None
        self.note: str | None = None
        if self.text and any(ch in self.text for ch in "=!()"):
            try:
                self.selector = parse_selector(self.text)
            except LabelError as exc:
                self.note = f"searching as text — not a label selector: {exc}"

    def matches(self, snapshot: Snapshot) -> bool:
        if not self.text:
            return True
        if self.selector is not None:
            return self.selector.matches(snapshot.labels)
        needle = self.text.lower()
        return (
            needle in snapshot.description.lower() or needle in (snapshot.server_name or "").lower()
        )


def snapshot_row(snapshot: Snapshot, now: float, servers: set[int]) -> tuple:
    server = Text(snapshot.server_name or "—")
    if snapshot.server_id is not None and snapshot.server_id not in servers:
        server.append(" (deleted)", style="dim")
    labels = ", ".join(f"{k}={v}" for k, v in sorted(snapshot.labels.items()))
    return (
        snapshot.description,
        str(snapshot.id),
        server,
        ago(snapshot.created, now, "—"),
        size_gb(snapshot.image_size_gb),
        size_gb(snapshot.disk_size_gb),
        Text(snapshot.status, style=STATUS_STYLES.get(snapshot.status, "")),
        Text("🛡 yes", style="bold") if snapshot.protected else "",
        labels,
    )


class SnapshotsScreen(Screen):
    BINDINGS = [
        Binding(
            "slash",
            "filter",
            "Filter",
            id="snapshots.filter",
            tooltip="Filter by description or server, or a label selector",
        ),
        Binding("escape", "clear", "Clear", id="snapshots.clear", tooltip="Clear the filter"),
        Binding(
            "o",
            "cycle_sort",
            "Sort",
            id="snapshots.sort",
            tooltip="Sort by created, server, size or description",
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
        self.filter = SnapshotFilter()
        self.sort_name = "created"
        self._rows: dict[str, tuple] = {}
        self._behind = False
        self._order: list[str] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with Vertical(id="snapshots-filter-bar"):
            yield Input(
                placeholder="text, or a label selector (managed-by=hsnap)",
                id="snapshots-filter-input",
            )
            yield Static(id="snapshots-filter-error")
        yield DataTable(id="snapshots", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.app.views.add(self)
        table = self.table
        self.query_one("#snapshots-filter-bar").display = False
        table.focus()
        self.fleet_changed(self.app.fleet, self.app.now())

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    @property
    def table(self) -> DataTable:
        return self.query_one("#snapshots", DataTable)

    @property
    def highlighted(self) -> Snapshot | None:
        table = self.table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
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
        shown = sorted(
            (s for s in fleet.snapshots if self.filter.matches(s)), key=SORTS[self.sort_name]
        )
        servers = set(fleet.servers)
        rows = {str(s.id): snapshot_row(s, now, servers) for s in shown}
        order = list(rows)
        if rows == self._rows and order == self._order:
            return
        table = self.table
        cursor_key = None
        if table.row_count:
            cursor_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        with self.app.batch_update():
            fill_table(table, list(zip(COLUMNS, LABELS, strict=True)), list(rows.items()))
            if cursor_key is not None and cursor_key.value in rows:
                table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        self._rows, self._order = rows, order
        total = sum(s.image_size_gb or 0 for s in fleet.snapshots)
        parts = [
            f"Snapshots {len(rows)}/{len(fleet.snapshots)}",
            f"{size_gb(total)} stored",
            f"sort: {self.sort_name}",
        ]
        if self.filter.text:
            parts.append(f"filter: {self.filter.text}")
        table.border_title = " · ".join(parts)

    def _reshow(self) -> None:
        self._rows = {}
        self.fleet_changed(self.app.fleet, self.app.now())

    # ---- filter and sort ------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#snapshots-filter-bar").display = True
        field = self.query_one("#snapshots-filter-input", Input)
        field.value = self.filter.text
        self.set_focus(field)  # at once: keys typed right after `/` go to the field

    @on(Input.Changed, "#snapshots-filter-input")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = SnapshotFilter(event.value)
        note = self.filter.note
        self.query_one("#snapshots-filter-error", Static).update(
            Text(note, style="yellow") if note else ""
        )
        self._reshow()

    @on(Input.Submitted, "#snapshots-filter-input")
    def _filter_submitted(self) -> None:
        self.query_one("#snapshots-filter-bar").display = False
        self.table.focus()

    def action_clear(self) -> None:
        self.filter = SnapshotFilter()
        self.query_one("#snapshots-filter-input", Input).value = ""
        self.query_one("#snapshots-filter-bar").display = False
        self.table.focus()
        self._reshow()

    def action_cycle_sort(self) -> None:
        names = list(SORTS)
        self.sort_name = names[(names.index(self.sort_name) + 1) % len(names)]
        self._reshow()

    # ---- delete and retention -------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "delete" and getattr(self.app, "read_only", False):
            return None  # greyed out; the retention preview works, only its apply does not
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
