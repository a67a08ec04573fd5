"""Server details (`enter`): addresses, type, labels, protection, lock, running and
recent actions, snapshots. The recent actions are fetched once, on open."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.screen import Screen
from textual.widgets import DataTable, Static

from hsnap_tui.core.errors import explain
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.models import Action, Snapshot
from hsnap_tui.ui.format import (
    ACTION_STATUS_STYLES,
    ago,
    duration,
    lock_text,
    size_gb,
    status_text,
)
from hsnap_tui.ui.messages import ServerActionsLoaded
from hsnap_tui.ui.widgets.footer import FittedFooter
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import Column, show_fitted

RECENT_ACTIONS = 10

# what an action is and how it went stay at 80 columns; its ID goes first when narrow
RECENT_COLUMNS = (
    Column("id", "ID", drop_rank=2),
    Column("command", "Command"),
    Column("status", "Status"),
    Column("progress", "Progress", drop_rank=1),
    Column("started", "Started"),
    Column("duration", "Duration"),
)
RECENT_SORTS = {"started": True, "command": False, "status": False, "duration": True}

SNAPSHOT_COLUMNS = (
    Column("description", "Description", shrink=True),
    Column("created", "Created"),
    Column("size", "Size"),
    Column("status", "Status", drop_rank=3),
    Column("protected", "Protected", drop_rank=2),
    Column("id", "ID", drop_rank=1),
)
SNAPSHOT_SORTS = {"created": True, "size": True, "description": False}


def _action_sort_key(action: Action, column: str, now: float) -> tuple:
    if column == "command":
        return (action.command, action.id)
    if column == "status":
        return (action.status, action.id)
    if column == "duration":
        end = action.finished if action.finished is not None else now
        return (end - action.started if action.started else 0.0, action.id)
    return (action.started or 0.0, action.id)


def _snapshot_sort_key(snapshot: Snapshot, column: str) -> tuple:
    if column == "size":
        return (snapshot.image_size_gb or 0.0, snapshot.id)
    if column == "description":
        return (snapshot.description, snapshot.id)
    return (snapshot.created or 0.0, snapshot.id)


class ServerDetailsScreen(Screen):
    BINDINGS = [
        Binding(
            "escape", "app.pop_screen", "Back", id="details.back", tooltip="Back to the servers"
        ),
    ]

    def __init__(self, server_id: int) -> None:
        super().__init__()
        self.server_id = server_id
        self.recent: list[Action] | None = None
        self.recent_error: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with VerticalScroll(id="details"):
            yield Static(id="overview")
            yield Static("Running actions", classes="section")
            yield Static(id="running")
            yield Static(f"Last {RECENT_ACTIONS} actions", classes="section")
            yield NavTable(
                id="recent",
                sorts=RECENT_SORTS,
                open_label="Inspect",
                open_tooltip="The highlighted action in the inspector",
            )
            yield Static(id="recent-note")
            yield Static("Snapshots", classes="section")
            yield NavTable(id="details-snapshots", sorts=SNAPSHOT_SORTS)
        yield FittedFooter()

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    def on_mount(self) -> None:
        if self not in self.app.screen_stack:
            return  # dismissed before it was mounted (keys typed ahead)
        self.app.views.add(self)
        self.query_one("#recent", NavTable).focus()
        self.query_one("#recent-note", Static).update("loading…")
        self.fleet_changed(self.app.fleet, self.app.now())
        self.load_recent_actions()

    def context_changed(self) -> None:
        """Another project: this server, and any screen opened from here, are not in it."""
        app = self.app
        while self in app.screen_stack:
            app.pop_screen()

    _loading = False

    def _reload_if_ended(self, fleet: FleetState) -> None:
        """An action listed as running has ended (it left the fleet's running list): read
        the list again, once, so it does not say `running` forever."""
        if self._loading or not self.recent:
            return
        still = {a.id for a in fleet.running}
        if any(a.running and a.id not in still for a in self.recent):
            self._loading = True
            self.load_recent_actions()

    @work(thread=True, exit_on_error=False, group="details")
    def load_recent_actions(self) -> None:
        try:
            actions = self.app.api.server_actions(self.server_id, RECENT_ACTIONS)
        except Exception as exc:  # shown on screen, never a traceback
            self.post_message(ServerActionsLoaded(self.server_id, None, explain(exc)))
        else:
            self.post_message(ServerActionsLoaded(self.server_id, actions, None))

    def on_server_actions_loaded(self, message: ServerActionsLoaded) -> None:
        self._loading = False
        self.recent = message.actions
        self.recent_error = message.error
        self._show_recent(self.app.now())

    def fleet_changed(self, fleet: FleetState, now: float) -> None:
        server = fleet.servers.get(self.server_id)
        overview = self.query_one("#overview", Static)
        if server is None:
            overview.update(Text("This server is no longer in the project.", style="bold red"))
            return
        self.sub_title = server.name
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", justify="right")
        grid.add_column()
        lock = fleet.lock(server.id)
        grid.add_row("Server", Text.assemble((server.name, "bold"), f"  #{server.id}"))
        grid.add_row("Status", status_text(server.status))
        grid.add_row("Locked", lock_text(lock) if lock.held else Text("no", style="green"))
        grid.add_row("IPv4", server.ipv4 or Text("none (IPv6 only)", style="italic"))
        grid.add_row("IPv6", server.ipv6 or Text("none", style="italic"))
        spec = server.server_type
        if server.cores:
            spec += (
                f"  ({server.cores} vCPU, {server.memory_gb:g} GB RAM, {server.disk_gb} GB disk)"
            )
        grid.add_row("Type", Text(spec))
        grid.add_row("Location", Text(server.location))
        grid.add_row("Image", Text(server.image or "-"))
        grid.add_row("Created", ago(server.created, now, "-"))
        grid.add_row("Backups", f"window {server.backup_window}" if server.backup_window else "off")
        labels = ", ".join(f"{k}={v}" for k, v in sorted(server.labels.items()))
        grid.add_row("Labels", Text(labels) if labels else Text("none", style="italic"))
        protection = [
            name
            for name, on in (
                ("delete", server.protection_delete),
                ("rebuild", server.protection_rebuild),
            )
            if on
        ]
        grid.add_row("Protection", ", ".join(protection) or "none")
        overview.update(grid)

        running = fleet.running_for(server.id)
        self.query_one("#running", Static).update(
            "\n".join(
                f"#{a.id} {a.command} {a.progress}% — started {ago(a.started, now)}"
                for a in running
            )
            or Text(
                "none"
                + (
                    " — but the server is locked by an operation this project's actions do not show"
                    if lock.unexplained
                    else ""
                ),
                style="italic",
            )
        )

        self._server_snapshots = fleet.snapshots_of(server.id)
        self._show_snapshots(now)
        self._show_recent(now)
        self._reload_if_ended(fleet)

    _server_snapshots: list[Snapshot] = []

    def _show_snapshots(self, now: float) -> None:
        table = self.query_one("#details-snapshots", NavTable)
        column = table.sort_column or "created"
        snapshots = sorted(
            self._server_snapshots,
            key=lambda s: _snapshot_sort_key(s, column),
            reverse=table.descending,
        )
        rows: list[tuple[str | None, dict[str, object]]] = [
            (
                str(snap.id),
                {
                    "description": Text(snap.description),
                    "created": ago(snap.created, now),
                    "size": size_gb(snap.image_size_gb),
                    "status": Text(snap.status),
                    "protected": "yes" if snap.protected else "",
                    "id": str(snap.id),
                },
            )
            for snap in snapshots
        ]
        if not rows:
            rows = [(None, {"description": Text("no snapshots", style="italic")})]
        show_fitted(table, SNAPSHOT_COLUMNS, rows)

    def _show_recent(self, now: float) -> None:
        table = self.query_one("#recent", NavTable)
        note = self.query_one("#recent-note", Static)
        if self.recent_error:
            note.update(Text(f"Could not load the actions: {self.recent_error}", style="red"))
            return
        if self.recent is None:
            return
        note.update("" if self.recent else Text("no actions", style="italic"))
        column = table.sort_column or "started"
        actions = sorted(
            self.recent, key=lambda a: _action_sort_key(a, column, now), reverse=table.descending
        )
        rows: list[tuple[str | None, dict[str, object]]] = []
        for action in actions:
            end = action.finished if action.finished is not None else now
            rows.append(
                (
                    str(action.id),
                    {
                        "id": str(action.id),
                        "command": Text(action.command),
                        "status": Text(
                            action.status, style=ACTION_STATUS_STYLES.get(action.status, "")
                        ),
                        "progress": f"{action.progress}%",
                        "started": ago(action.started, now),
                        "duration": duration(end - action.started if action.started else None),
                    },
                )
            )
        show_fitted(table, RECENT_COLUMNS, rows)

    @on(NavTable.SortChanged, "#recent")
    def _recent_sorted(self) -> None:
        self._show_recent(self.app.now())

    @on(NavTable.SortChanged, "#details-snapshots")
    def _snapshots_sorted(self) -> None:
        self._show_snapshots(self.app.now())

    @on(DataTable.RowSelected, "#recent")
    def _action_opened(self, event: DataTable.RowSelected) -> None:
        """`enter` on an action: the inspector, which follows it if it still runs."""
        action = next((a for a in self.recent or () if str(a.id) == event.row_key.value), None)
        if action is not None:
            self.app.inspect(action)

    _moved_by_key = False

    def on_key(self, event: events.Key) -> None:
        self._moved_by_key = isinstance(self.focused, NavTable)

    @on(DataTable.RowHighlighted)
    def _row_on_screen(self, event: DataTable.RowHighlighted) -> None:
        """The page scrolls, its tables scroll too: after a key moved a table's cursor,
        the page shows that row (the one enter opens) — only as far as needed, and never
        on its own (opening the page or a refresh leaves it where it is)."""
        if not self._moved_by_key:
            return
        self._moved_by_key = False
        table = event.data_table
        page = self.query_one("#details", VerticalScroll)
        row = table.virtual_region.y + table.header_height + event.cursor_row - int(table.scroll_y)
        page.scroll_to_region(Region(0, row, 1, 1), animate=False, immediate=True)
