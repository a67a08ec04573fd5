"""View 1: the fleet table with the filter bar."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import Job
from hsnap_tui.core.models import Action
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog, SnapshotRequest
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
from hsnap_tui.ui.widgets.server_table import ServerTable
from hsnap_tui.ui.widgets.status_bar import StatusBar


class ServersScreen(Screen):
    # most used first: on a narrow footer the last ones are cut
    BINDINGS = [
        Binding(
            "s",
            "snapshot",
            "Snapshot",
            id="servers.snapshot",
            tooltip="Snapshot the highlighted server, or all marked ones",
        ),
        Binding(
            "i",
            "inspect",
            "Inspect lock",
            id="servers.inspect",
            tooltip="The action that holds the highlighted server's lock",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="servers.filter",
            tooltip="Filter by name, or by a label selector such as env=prod",
        ),
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="servers.mark",
            tooltip="Mark or unmark the highlighted server",
        ),
        Binding(
            "o",
            "cycle_sort",
            "Sort",
            id="servers.sort",
            tooltip="Sort by the next column: name, status, lock, location, last snapshot, type",
        ),
        Binding(
            "escape", "clear", "Clear", id="servers.clear", tooltip="Clear the filter and the marks"
        ),
    ]

    _filter_problem: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with Vertical(id="filter-bar"):
            yield Input(
                placeholder="name or label selector (env=prod, role in (db,web))", id="filter-input"
            )
            yield Static("", id="filter-error")
        yield ServerTable(id="servers")
        yield JobsPanel(id="jobs-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.app.views.add(self)
        self.query_one("#filter-bar").display = False
        self.table.focus()
        self.fleet_changed(self.app.fleet, self.app.now())
        self.jobs_changed(self.app.all_jobs(), self.app.now())

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    def context_changed(self) -> None:
        """Another project: its own column widths, no marks from the last one."""
        self.table.reset_layout()
        self._update_title()

    def jobs_changed(self, jobs: list[Job], now: float) -> None:
        self.query_one(JobsPanel).show_jobs(jobs, now)

    @property
    def table(self) -> ServerTable:
        return self.query_one(ServerTable)

    def fleet_changed(self, fleet: FleetState, now: float) -> None:
        self.table.show(fleet, now)
        self._update_title()

    def _update_title(self) -> None:
        table = self.table
        parts = [
            f"Servers {table.visible_count}/{len(table.fleet.servers)}",
            f"sort: {table.sort_name}",
        ]
        if table.filter:
            parts.append(f"filter: {table.filter.text}")
        if table.marks:
            parts.append(f"marked: {len(table.marks)}")
        table.border_title = " · ".join(parts)

    # ---- actions --------------------------------------------------------------------

    def action_filter(self) -> None:
        bar = self.query_one("#filter-bar")
        bar.display = True
        field = self.query_one("#filter-input", Input)
        field.value = self.table.filter.text
        # focus now, not after this message: keys typed right after `/` go to the field
        self.set_focus(field)

    @on(Input.Changed, "#filter-input")
    def _filter_changed(self, event: Input.Changed) -> None:
        problem = self.table.set_filter(event.value)
        self._filter_problem = problem
        self.query_one("#filter-error", Static).update(Text(problem or ""))
        self.query_one("#filter-input").set_class(problem is not None, "-invalid")
        self._update_title()

    @on(Input.Submitted, "#filter-input")
    def _filter_submitted(self) -> None:
        if self._filter_problem is None:
            self.query_one("#filter-bar").display = False
            self.table.focus()

    def action_clear(self) -> None:
        self.query_one("#filter-input", Input).value = ""
        self.query_one("#filter-error", Static).update("")
        self._filter_problem = None
        self.query_one("#filter-bar").display = False
        self.table.set_filter("")
        self.table.clear_marks()
        self.table.focus()
        self._update_title()

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()
        self._update_title()

    def action_toggle_mark(self) -> None:
        server_id = self.table.highlighted_server_id
        if server_id is not None:
            self.table.toggle_mark(server_id)
            self.table.action_cursor_down()
            self._update_title()

    def action_details(self) -> None:
        server_id = self.table.highlighted_server_id
        if server_id is not None:
            from hsnap_tui.ui.screens.details import ServerDetailsScreen

            self.app.push_screen(ServerDetailsScreen(server_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "snapshot" and self.app.read_only:
            return None  # shown greyed out: read-only sessions send nothing that changes
        return True

    def action_inspect(self) -> None:
        from hsnap_tui.ui.screens.inspector import ActionPickScreen, LockExplanationScreen

        server_id = self.table.highlighted_server_id
        fleet = self.app.fleet
        if server_id is None or server_id not in fleet.servers:
            return
        server = fleet.servers[server_id]
        lock = fleet.lock(server_id)
        if not lock.held:
            self.notify(f"{server.name} is not locked.", timeout=3)
        elif lock.unexplained:
            self.app.push_screen(LockExplanationScreen(server.name, fleet.servers_request_id))
        elif len(lock.actions) == 1:
            self.app.inspect(lock.actions[0])
        else:

            def picked(action: Action | None) -> None:
                if action is not None:
                    self.app.inspect(action)

            self.app.push_screen(ActionPickScreen(server.name, list(lock.actions)), picked)

    def action_snapshot(self) -> None:
        if self.app.read_only:
            self.notify(
                f"Read-only ({self.app.api.read_only_reason}): no snapshots.", severity="warning"
            )
            return
        table = self.table
        fleet = table.fleet
        if table.marks:
            ids = [i for i in table.visible_ids if i in table.marks]
            ids += [i for i in table.marks if i not in ids and i in fleet.servers]
        else:
            highlighted = table.highlighted_server_id
            ids = [highlighted] if highlighted is not None else []
        servers = [fleet.servers[i] for i in ids if i in fleet.servers]
        if not servers:
            self.notify(
                "No server to snapshot: highlight one or mark some with space.", severity="warning"
            )
            return
        busy = [s for s in servers if self.app.jobs.active_for(s.id) is not None]
        for server in busy:
            self.notify(
                f"{server.name} already has an active snapshot job; nothing sent.",
                severity="warning",
            )
        servers = [s for s in servers if s not in busy]
        if not servers:
            return
        locked = {s.id for s in servers if fleet.lock(s.id).held}

        def confirmed(request: SnapshotRequest | None) -> None:
            if request is not None:
                self.app.submit_snapshots(request)
                table.clear_marks()
                self._update_title()

        self.app.push_screen(SnapshotDialog(servers, locked), confirmed)

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_details()
