"""View 1: the fleet table with the filter bar."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import Job
from hsnap_tui.core.models import Action
from hsnap_tui.ui.screens.snapshot_dialog import SnapshotDialog, SnapshotRequest
from hsnap_tui.ui.widgets.filter_bar import FilterBar
from hsnap_tui.ui.widgets.footer import FittedFooter
from hsnap_tui.ui.widgets.jobs_panel import JobsPanel
from hsnap_tui.ui.widgets.server_table import ServerTable
from hsnap_tui.ui.widgets.status_bar import StatusBar


class ServersScreen(Screen):
    # most used first: on a narrow footer the last ones are cut. Moving, sorting and
    # `enter` are the table's (NavTable: `table.*`).
    BINDINGS = [
        Binding(
            "s",
            "snapshot",
            "Snapshot",
            id="servers.snapshot",
            tooltip="Snapshot the highlighted server, or all marked ones",
        ),
        # escape undoes one thing a press: the filter first, then the marks (check_action
        # hides the one that does not apply, so the footer says what escape will do); early
        # in the footer, which cuts the last ones at 80 columns
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="servers.clear_filter",
            tooltip="Close the filter bar and show every server (the marks stay)",
        ),
        Binding(
            "escape",
            "clear_marks",
            "Clear marks",
            id="servers.clear_marks",
            tooltip="Unmark every server",
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
            # checked when the key arrives, not in the table's queue: the keys typed
            # right after `/` (a burst, over SSH) then go to the field, none to the table
            priority=True,
            tooltip="Filter by name, or by a label selector such as env=prod",
        ),
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="servers.mark",
            # moving on lets space space space mark a run of servers
            tooltip="Mark or unmark the highlighted server, and move to the next one",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        yield FilterBar("name or label selector (env=prod, role in (db,web))", id="filter-bar")
        yield ServerTable(id="servers")
        yield JobsPanel(id="jobs-panel")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.app.views.add(self)
        self.table.focus()
        self.fleet_changed(self.app.fleet, self.app.now())
        self.jobs_changed(self.app.all_jobs(), self.app.now())

    def on_unmount(self) -> None:
        self.app.views.discard(self)

    def context_changed(self) -> None:
        """Another project: its own column widths, no marks from the last one."""
        self.table.reset_layout()
        self._update_title()
        self._escape_changed()

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
            f"sort: {table.sort_name} {table.sort_arrow()}",
        ]
        if table.filter:
            parts.append(f"filter: {table.filter.text}")
        if table.marks:
            parts.append(f"marked: {len(table.marks)}")
        table.border_title = Text(" · ".join(parts))  # plain: a filter `[/var` is no markup

    # ---- actions --------------------------------------------------------------------

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def action_filter(self) -> None:
        self.filter_bar.open()
        self._escape_changed()

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.table.apply_filter(event.filter)
        self._update_title()
        self._escape_changed()

    def on_filter_bar_closed(self) -> None:
        self.table.focus()
        self._escape_changed()

    def on_nav_table_sort_changed(self) -> None:
        self._update_title()

    def _filtering(self) -> bool:
        bar = self.filter_bar
        return bar.is_open or bool(bar.filter)

    _escape_shown: str | None = None

    def _escape_changed(self) -> None:
        """Have the footer say what escape does now — only when that changed: redrawing
        the footer on every filter keystroke would slow typing at 1000 servers."""
        step = self._escape_step()
        if step != self._escape_shown:
            self._escape_shown = step
            self.refresh_bindings()

    def _escape_step(self) -> str | None:
        """What escape undoes now: "filter", then "marks", else None."""
        if not self.is_mounted:
            return None
        if self._filtering():
            return "filter"
        return "marks" if self.table.marks else None

    def action_clear_filter(self) -> None:
        self.filter_bar.clear()

    def action_clear_marks(self) -> None:
        self.table.clear_marks()
        self._update_title()
        self._escape_changed()

    def action_toggle_mark(self) -> None:
        server_id = self.table.highlighted_server_id
        if server_id is not None:
            self.table.toggle_mark(server_id)
            self.table.action_cursor_down()
            self._update_title()
            self._escape_changed()

    def action_details(self) -> None:
        server_id = self.table.highlighted_server_id
        if server_id is not None:
            from hsnap_tui.ui.screens.details import ServerDetailsScreen

            self.app.push_screen(ServerDetailsScreen(server_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "snapshot" and self.app.read_only:
            return None  # shown greyed out: read-only sessions send nothing that changes
        if action == "filter":  # a `/` typed into the field is text
            return not (self.is_mounted and self.focused is self.filter_bar.input)
        if action == "clear_filter":
            return self._escape_step() == "filter"
        if action == "clear_marks":
            return self._escape_step() == "marks"
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
                self.action_clear_marks()

        self.app.push_screen(SnapshotDialog(servers, locked), confirmed)

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_details()
