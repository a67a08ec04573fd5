"""Lock investigation: the action inspector (`i`, `a`), the action-ID prompt, the pick
list for a server with several running actions, and the explanation of a lock that no
action accounts for."""

from __future__ import annotations

from hcloud import APIException
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Static

from hsnap_tui.core.actions import (
    ActionIdError,
    fetch_names,
    names_in_fleet,
    not_found_message,
    parse_action_id,
    unexplained_lock_message,
)
from hsnap_tui.core.errors import explain
from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.models import Action
from hsnap_tui.ui.format import ACTION_STATUS_STYLES, absolute, ago, duration
from hsnap_tui.ui.widgets.footer import FittedFooter
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.status_bar import StatusBar
from hsnap_tui.ui.widgets.tables import fill_table


class ResourcesResolved(Message):
    def __init__(self, names: dict[tuple[str, int], str]) -> None:
        super().__init__()
        self.names = names


class ActionInspectorScreen(Screen):
    """One action, followed live through the app's shared `GET /actions?id=…` poll."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="inspector.back"),
        Binding(
            "enter",
            "open_server",
            "Open server",
            id="inspector.server",
            tooltip="Details of the server this action works on",
        ),
    ]

    def __init__(self, action: Action, *, note: str | None = None) -> None:
        super().__init__()
        self.action = action
        self.note = note
        self.names: dict[tuple[str, int], str] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(self.app.status_text, id="status")
        with VerticalScroll(id="inspector"):
            yield Static(id="inspector-body")
            yield Static(id="inspector-note")
        yield FittedFooter()

    def on_mount(self) -> None:
        if self not in self.app.screen_stack:
            return  # dismissed before it was mounted (keys typed ahead)
        self.sub_title = f"action {self.action.id}"
        self.app.views.add(self)
        self.session = self.app.session  # followed there, even after a context switch
        self.session.follow(self.action.id)
        self._learn_names(self.app.fleet)
        self._draw()
        if self.note:
            self.query_one("#inspector-note", Static).update(Text(self.note, style="yellow"))
        unknown = [r for r in self.action.resources if r not in self.names]
        if unknown:
            self.resolve_resources(unknown)

    def on_unmount(self) -> None:
        self.app.views.discard(self)
        session = getattr(self, "session", None)
        if session is not None:
            session.unfollow(self.action.id)

    # ---- live updates ---------------------------------------------------------------

    def fleet_changed(self, fleet: FleetState, now: float) -> None:
        running = next((a for a in fleet.running if a.id == self.action.id), None)
        if running is not None:
            self.action = running
        self._learn_names(fleet)
        self._draw()

    def action_changed(self, action: Action) -> None:
        if action.id == self.action.id:
            self.action = action
            self._draw()

    def _learn_names(self, fleet: FleetState) -> None:
        self.names.update(names_in_fleet(fleet, self.action.resources))

    @work(thread=True, exit_on_error=False, group="inspector")
    def resolve_resources(self, resources: list[tuple[str, int]]) -> None:
        self.post_message(ResourcesResolved(fetch_names(self.app.api, resources)))

    def on_resources_resolved(self, message: ResourcesResolved) -> None:
        self.names.update(message.names)
        self._draw()

    # ---- drawing --------------------------------------------------------------------

    def _draw(self) -> None:
        action, now = self.action, self.app.now()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", justify="right")
        grid.add_column()
        grid.add_row(
            "Action", Text.assemble((f"#{action.id}", "bold"), "  ", (action.command, "bold cyan"))
        )
        grid.add_row(
            "Status", Text(action.status, style=ACTION_STATUS_STYLES.get(action.status, ""))
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=100, completed=action.progress, width=30), f"{action.progress}%"
        )
        grid.add_row("Progress", bar)
        grid.add_row("Started", f"{absolute(action.started)}  ({ago(action.started, now, '—')})")
        finished = (
            "—"
            if action.finished is None
            else (f"{absolute(action.finished)}  ({ago(action.finished, now)})")
        )
        grid.add_row("Finished", finished)
        if action.started is not None:
            end = action.finished if action.finished is not None else now
            running = "" if action.finished is not None else " so far"
            grid.add_row("Duration", f"{duration(end - action.started)}{running}")
        resources = Text()
        for kind, rid in action.resources:
            name = self.names.get((kind, rid), "…")
            resources.append(f"{kind} {rid}  ", style="bold")
            resources.append(f"{name}\n")
        resources.rstrip()
        grid.add_row("Resources", resources or Text("none", style="italic"))
        if action.status == "error" or action.error_code:
            grid.add_row(
                "Error", Text(f"{action.error_code}: {action.error_message}", style="bold red")
            )
        if action.running:
            grid.add_row("", Text("following live", style="dim italic"))
        self.query_one("#inspector-body", Static).update(grid)

    def action_open_server(self) -> None:
        server_ids = self.action.server_ids
        if not server_ids:
            self.notify("This action does not work on a server.", severity="warning")
            return
        if server_ids[0] not in self.app.fleet.servers:
            self.notify(
                f"Server {server_ids[0]} is not in the fleet (deleted?).", severity="warning"
            )
            return
        from hsnap_tui.ui.screens.details import ServerDetailsScreen

        self.app.push_screen(ServerDetailsScreen(server_ids[0]))


class ActionLoaded(Message):
    def __init__(self, action: Action | None, error: str | None) -> None:
        super().__init__()
        self.action = action
        self.error = error


class ActionIdDialog(ModalScreen[Action | None]):
    """`a`: ask for an action ID, check it, fetch it; dismiss with the action.
    (Screen's AUTO_FOCUS puts the cursor in the input.)"""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="action_id.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="action-id-dialog") as dialog:
            dialog.border_title = "Inspect an action"
            dialog.border_subtitle = "enter looks it up · escape cancels"
            yield Static("Action ID (a whole number; #42 works too)")
            yield Input(placeholder="1930144902", id="action-id-input", compact=True)
            yield Static(id="action-id-message")

    def _say(self, text: str, style: str = "bold red") -> None:
        self.query_one("#action-id-message", Static).update(Text(text, style=style))

    @on(Input.Changed)
    def _changed(self) -> None:
        self._say("")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            action_id = parse_action_id(event.value)
        except ActionIdError as exc:
            self._say(str(exc), "bold yellow" if exc.correlation_id else "bold red")
            return
        self._say(f"looking up action {action_id}…", "italic")
        self.look_up(action_id)

    @work(thread=True, exit_on_error=False, group="action_id", exclusive=True)
    def look_up(self, action_id: int) -> None:
        try:
            action = self.app.api.action(action_id)
        except APIException as exc:
            text = not_found_message(action_id) if exc.code == "not_found" else explain(exc)
            self.post_message(ActionLoaded(None, text))
        except Exception as exc:  # any failure is shown, never raised
            self.post_message(ActionLoaded(None, explain(exc)))
        else:
            self.post_message(ActionLoaded(action, None))

    def on_action_loaded(self, message: ActionLoaded) -> None:
        if message.action is not None:
            self.dismiss(message.action)
        else:
            self._say(message.error or "lookup failed")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ActionPickScreen(ModalScreen[Action | None]):
    """A server held by several running actions: choose one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick.cancel")]

    def __init__(self, server_name: str, actions: list[Action]) -> None:
        super().__init__()
        self.server_name = server_name
        self.actions = actions

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-dialog") as dialog:
            dialog.border_title = f"{self.server_name}: {len(self.actions)} running actions"
            dialog.border_subtitle = "enter inspects · escape cancels"
            yield NavTable(
                id="pick-list",
                open_label="Inspect",
                open_tooltip="The highlighted action in the inspector",
            )

    def on_mount(self) -> None:
        now = self.app.now()
        rows = [
            (
                str(a.id),
                (f"#{a.id}", a.command, f"{a.progress}%", ago(a.started, now, "—")),
            )
            for a in self.actions
        ]
        table = self.query_one("#pick-list", NavTable)
        columns = [("id", "ID"), ("command", "Command"), ("progress", "Progress")]
        fill_table(table, [*columns, ("started", "Started")], rows)
        table.focus()

    @on(DataTable.RowSelected, "#pick-list")
    def _picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(next(a for a in self.actions if str(a.id) == event.row_key.value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class LockExplanationScreen(ModalScreen[None]):
    """`i` on a server that is locked with no running action naming it."""

    BINDINGS = [Binding("escape,enter", "close", "Close", id="lock_explanation.close")]

    def __init__(self, server_name: str, request_id: str | None, source: str | None = None) -> None:
        super().__init__()
        self.server_name = server_name
        self.request_id = request_id
        self.source = source

    def compose(self) -> ComposeResult:
        with Vertical(id="lock-explanation") as dialog:
            dialog.border_title = f"{self.server_name} is locked"
            dialog.border_subtitle = "escape closes"
            args = (self.server_name, self.request_id) + ((self.source,) if self.source else ())
            yield Static(Text(unexplained_lock_message(*args)))

    def action_close(self) -> None:
        self.dismiss(None)
