"""`s`: confirm snapshots of the highlighted or marked servers."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from hsnap_tui.core.jobs import LockPolicy
from hsnap_tui.core.models import Server
from hsnap_tui.core.naming import (
    DEFAULT_LABELS,
    DEFAULT_TEMPLATE,
    TemplateError,
    check_labels,
    render_description,
)

SHOWN_NAMES = 6


class OptionBox(Checkbox, inherit_bindings=False):
    """A checkbox that space toggles and enter leaves to the dialog (it confirms)."""

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]


@dataclass(frozen=True)
class SnapshotRequest:
    servers: list[Server]
    template: str
    labels: dict[str, str]
    policy: LockPolicy
    shutdown: bool = False  # consistent: shut down, snapshot, power on again


class SnapshotDialog(ModalScreen[SnapshotRequest | None]):
    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="snapshot.cancel",
            tooltip="Close without taking snapshots",
        ),
        Binding(
            "enter",
            "confirm",
            "Take snapshots",
            show=False,
            id="snapshot.confirm",
            tooltip="Take the snapshots as set here",
        ),
    ]

    def __init__(self, servers: list[Server], locked: set[int]) -> None:
        super().__init__()
        self.servers = servers
        self.locked = locked

    def compose(self) -> ComposeResult:
        count = len(self.servers)
        with Vertical(id="snapshot-dialog") as dialog:
            dialog.border_title = f"Snapshot {count} server{'s' if count != 1 else ''}"
            dialog.border_subtitle = "enter confirms · escape cancels"
            yield Static(self._server_list(), id="snapshot-servers")
            yield Label("Description ({server} {id} {date} {time})")
            yield Input(DEFAULT_TEMPLATE, id="snapshot-template", compact=True)
            yield Static(id="snapshot-preview")
            yield Label("Labels (key=value, comma separated)")
            yield Input(DEFAULT_LABELS, id="snapshot-labels", compact=True)
            yield Label("If a server is locked")
            with RadioSet(id="snapshot-policy", compact=True):
                yield RadioButton("wait for the lock to clear", value=True, id="policy-wait")
                yield RadioButton("skip it", id="policy-skip")
            yield OptionBox(
                "Shut down first (consistent; powered on again after)",
                id="snapshot-shutdown",
                compact=True,
                tooltip="ACPI shutdown, snapshot while off, power on again; a server that "
                "is off stays off; one that does not go off in 5 minutes is not snapshotted",
            )
            yield Static(id="snapshot-shutdown-note")
            yield Static(id="snapshot-error")
            with Horizontal(id="snapshot-buttons"):
                yield Button(
                    "Take snapshots", variant="primary", id="snapshot-confirm", compact=True
                )
                yield Button("Cancel", id="snapshot-cancel", compact=True)

    def on_mount(self) -> None:
        if self not in self.app.screen_stack:
            return  # dismissed before it was mounted (keys typed ahead)
        self.query_one("#snapshot-template", Input).focus()
        self._validate()

    def _server_list(self) -> Text:
        text = Text()
        for server in self.servers[:SHOWN_NAMES]:
            text.append(f"• {server.name}")
            if server.id in self.locked:
                text.append("  🔒 locked now", style="bold yellow")
            text.append("\n")
        if len(self.servers) > SHOWN_NAMES:
            text.append(f"  … and {len(self.servers) - SHOWN_NAMES} more", style="italic")
        text.rstrip()
        return text

    def _validate(self) -> SnapshotRequest | None:
        template = self.query_one("#snapshot-template", Input).value
        labels_text = self.query_one("#snapshot-labels", Input).value
        error = self.query_one("#snapshot-error", Static)
        preview = self.query_one("#snapshot-preview", Static)
        try:
            example = render_description(template, self.servers[0], self.app.now())
        except TemplateError as exc:
            # no preview of the last valid template under an invalid one
            preview.update(Text("→ (no preview while the template is not valid)", style="dim"))
            return self._refuse(str(exc))
        preview.update(Text(f"→ {example}", style="dim"))
        try:
            labels = check_labels(labels_text)
        except TemplateError as exc:
            return self._refuse(str(exc))
        error.update("")
        self.query_one("#snapshot-confirm", Button).disabled = False
        skip = self.query_one("#policy-skip", RadioButton).value
        policy = LockPolicy.SKIP if skip else LockPolicy.WAIT
        shutdown = self.query_one("#snapshot-shutdown", Checkbox).value
        # said in words: the box's mark alone reads the same on and off on some terminals
        note = self.query_one("#snapshot-shutdown-note", Static)
        if shutdown:
            count = len(self.servers)
            who = self.servers[0].name if count == 1 else f"these {count} servers"
            note.update(
                Text(
                    f"→ {who} will be shut down, snapshotted while off, powered on again",
                    style="bold yellow",
                )
            )
        else:
            note.update(Text("→ snapshot of the running server", style="dim"))
        return SnapshotRequest(list(self.servers), template, labels, policy, shutdown)

    def _refuse(self, problem: str) -> None:
        self.query_one("#snapshot-error", Static).update(Text(problem, style="bold red"))
        self.query_one("#snapshot-confirm", Button).disabled = True

    @on(Input.Changed)
    @on(RadioSet.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self._validate()

    @on(Input.Submitted)
    @on(Button.Pressed, "#snapshot-confirm")
    def action_confirm(self) -> None:
        request = self._validate()
        if request is not None:
            self.dismiss(request)

    @on(Button.Pressed, "#snapshot-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
