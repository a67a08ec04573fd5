"""The retention plan (`p` in the Snapshots view): what keep rules would delete, per
snapshot with the rule that keeps it; deletes on confirm."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, ProgressBar, Select, Static

from hsnap_tui.core.errors import explain
from hsnap_tui.core.keep import KeepRuleError, parse_rules
from hsnap_tui.core.labels import parse_selector
from hsnap_tui.core.models import Snapshot
from hsnap_tui.core.policy import Policy
from hsnap_tui.core.retention import (
    DEFAULT_KEEP,
    MANAGED_SELECTOR,
    PlanChange,
    RetentionPlan,
    plan_change,
    plan_retention,
)
from hsnap_tui.ui.format import ago, size_gb
from hsnap_tui.ui.messages import DeletionProgress
from hsnap_tui.ui.screens.confirm import ConfirmScreen
from hsnap_tui.ui.widgets.nav_table import NavTable
from hsnap_tui.ui.widgets.tables import Column, show_fitted

# What is deleted, by its whole name, with its age and size, stays at 80 columns; why
# a snapshot is kept, its ID and server go first (the name carries the server).
PLAN_COLUMNS = (
    Column("action", "Action"),
    Column("snapshot", "Snapshot"),
    Column("created", "Created"),
    Column("size", "Size"),
    Column("why", "Why", drop_rank=3, shrink=True),
    Column("id", "ID", drop_rank=2),
    Column("server", "Server", drop_rank=1),
)
VERDICT_STYLES = {"delete": "bold red", "keep": "green", "deleted": "dim", "failed": "bold red"}


def _servers(count: int) -> str:
    return f"{count} server{'s' if count != 1 else ''}"


class PlanRechecked(Message):
    """The plan recomputed from snapshots read just now, and how it differs."""

    def __init__(
        self, plan: RetentionPlan | None, change: PlanChange | None, error: str | None
    ) -> None:
        super().__init__()
        self.plan = plan
        self.change = change
        self.error = error


class RetentionScreen(ModalScreen[None]):
    """Preview what keep rules (`last 3`, `daily 7, weekly 4`, or a policy's) would
    delete, per snapshot with the rule that keeps it; delete on confirm."""

    BINDINGS = [Binding("escape", "close", "Close", id="retention.close")]

    def __init__(self, policies: list[Policy] | None = None) -> None:
        super().__init__()
        self.plan: RetentionPlan | None = None
        self.applying = False
        # after a run: what became of each snapshot it was to delete (shown in its row)
        self.outcomes: dict[int, tuple[str, str]] = {}
        self.policies = list(policies or [])

    def compose(self) -> ComposeResult:
        with Vertical(id="retention") as box:
            box.border_title = "Retention plan"
            box.border_subtitle = "enter previews · tab to the plan · escape closes"
            if self.policies:
                with Horizontal(id="retention-policy-row"):
                    yield Static("Policy", classes="inline-label")
                    yield Select(
                        [(p.name, index) for index, p in enumerate(self.policies)],
                        prompt="none: the rules below",
                        id="retention-policy",
                        compact=True,
                    )
            with Horizontal(id="retention-keep-row"):
                yield Static("Keep", classes="inline-label")
                yield Input(
                    f"last {DEFAULT_KEEP}",
                    id="retention-keep",
                    compact=True,
                    tooltip="Keep rules per server, as restic forget: last N (the newest),"
                    " hourly/daily/weekly/monthly/yearly N (the newest of each of the N"
                    " latest periods that have one); any rule keeping one keeps it",
                )
                yield Static("per server (last/daily/weekly/… N)", classes="inline-label")
            yield Static(id="retention-scope")
            yield Static(id="retention-summary")
            yield NavTable(id="retention-plan")
            yield ProgressBar(id="retention-progress", total=1, show_eta=False)
            with Horizontal(id="retention-buttons"):
                yield Button("Delete these", variant="error", id="retention-apply", compact=True)
                yield Button("Close", id="retention-close", compact=True)

    def on_mount(self) -> None:
        if self not in self.app.screen_stack:
            return  # dismissed before it was mounted (keys typed ahead)
        self.query_one("#retention-progress").display = False
        self.query_one("#retention-keep", Input).focus()
        self._preview()

    def _policy(self) -> Policy | None:
        if not self.policies:
            return None
        chosen = self.query_one("#retention-policy", Select).value
        return self.policies[chosen] if isinstance(chosen, int) else None

    @on(Select.Changed, "#retention-policy")
    def _policy_chosen(self) -> None:
        policy = self._policy()
        if policy is not None and policy.keep is not None:
            self.query_one("#retention-keep", Input).value = policy.keep.describe()
        self._preview()

    @on(Input.Changed, "#retention-keep")
    def _preview(self) -> None:
        if self.applying:
            return
        summary = self.query_one("#retention-summary", Static)
        table = self.query_one("#retention-plan", NavTable)
        apply = self.query_one("#retention-apply", Button)
        try:
            rules = parse_rules(self.query_one("#retention-keep", Input).value)
        except KeepRuleError as exc:
            summary.update(Text(str(exc), style="bold red"))
            table.clear()
            apply.disabled = True
            self.plan = None
            return
        fleet = self.app.fleet
        policy = self._policy()
        scope = self.query_one("#retention-scope", Static)
        if policy is not None and policy.keep is None:
            # such a policy only snapshots: there is nothing of its to preview or apply
            scope.update(Text(f"Policy {policy.name} has no keep rules: it never prunes."))
            summary.update(Text("Choose another policy, or none to use the rules above."))
            table.clear()
            apply.disabled = True
            self.plan = None
            return
        if policy is None:
            scope.update(
                Text(f"Of the snapshots labelled {MANAGED_SELECTOR} (never protected ones)")
            )
            plan = plan_retention(fleet.snapshots, rules)
        else:
            wanted = parse_selector(policy.selector)
            servers = [s.id for s in fleet.servers.values() if wanted.matches(s.labels)]
            text = Text(
                f"Policy {policy.name}: snapshots labelled {policy.prune_selector} of "
                f"the {len(servers)} servers matching {policy.selector}"
            )
            if policy.keep is not None and rules != policy.keep:
                text.append(
                    f" — rules changed from the file's ({policy.keep.describe()})",
                    style="bold yellow",
                )
            scope.update(text)
            plan = plan_retention(fleet.snapshots, rules, policy.prune_selector, servers)
        self._show_plan(plan)

    def _show_plan(self, plan: RetentionPlan) -> None:
        self.plan = plan
        summary = self.query_one("#retention-summary", Static)
        apply = self.query_one("#retention-apply", Button)
        self._fill_plan()
        delete = plan.delete
        text = Text()
        if delete:
            text.append(
                f"Deletes {len(delete)} snapshot{'s' if len(delete) != 1 else ''} "
                f"({size_gb(plan.freed_gb)}) on "
                f"{_servers(sum(1 for s in plan.servers if s.delete))}; ",
                style="bold",
            )
        else:
            text.append("Nothing to delete; ", style="bold green")
        text.append(
            f"keeps {len(plan.keep)}. {plan.ignored} other snapshots are not "
            f"{plan.selector} (or not of these servers) and are not touched."
        )
        summary.update(text)
        apply.disabled = not delete or getattr(self.app, "read_only", False)

    def _fill_plan(self) -> None:
        """Deletions first (newest first), then the kept ones; after a run each deletion
        says what became of it."""
        plan = self.plan
        if plan is None:
            return
        now = self.app.now()
        deleting: list[tuple[Snapshot, str, str, str]] = []
        keeping: list[tuple[Snapshot, str, str, str]] = []
        for server in plan.servers:
            for snapshot in server.delete:
                verdict, why = self.outcomes.get(snapshot.id, ("delete", "no rule keeps it"))
                deleting.append((snapshot, verdict, why, server.server_name))
            for snapshot in server.keep:
                why = ", ".join(server.reasons.get(snapshot.id, ()))
                keeping.append((snapshot, "keep", why, server.server_name))
            keeping += [(s, "keep", why, server.server_name) for s, why in server.spared]
        rows: list[tuple[str | None, dict[str, object]]] = []
        for group in (deleting, keeping):
            group.sort(key=lambda r: (-(r[0].created or 0), r[0].id))
            for snapshot, verdict, why, server_name in group:
                rows.append(
                    (
                        str(snapshot.id),
                        {
                            "action": Text(verdict, style=VERDICT_STYLES[verdict]),
                            "snapshot": snapshot.description,
                            "created": ago(snapshot.created, now),
                            "size": size_gb(snapshot.image_size_gb),
                            "why": why,
                            "id": str(snapshot.id),
                            "server": server_name,
                        },
                    )
                )
        # what does not fit waits past the right edge, whole (→): the rule that keeps a
        # snapshot, its ID and server are what a deletion plan is judged by
        table = self.query_one("#retention-plan", NavTable)
        show_fitted(table, PLAN_COLUMNS, rows, overflow=True)

    @on(Input.Submitted, "#retention-keep")
    def _submitted(self) -> None:
        self._preview()

    @on(Button.Pressed, "#retention-apply")
    def _apply_pressed(self) -> None:
        plan = self.plan
        if plan is None or not plan.delete:
            return
        policy = self._policy()
        whose = f" of policy {policy.name} ({plan.selector})" if policy else ""
        message = (
            f"Delete {len(plan.delete)} snapshots{whose} ({size_gb(plan.freed_gb)}), "
            f"keeping {plan.rules.describe()} per server?\n\nThis cannot be undone."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._apply(plan)

        self.app.push_screen(
            ConfirmScreen("Apply the retention plan?", message, yes="Delete", no="Back"), answered
        )

    def _apply(self, plan: RetentionPlan) -> None:
        self.applying = True
        self.query_one("#retention-apply", Button).disabled = True
        self.query_one("#retention-keep", Input).disabled = True
        self.query_one("#retention-summary", Static).update(
            Text("Reading the snapshots again before deleting…", style="bold")
        )
        self._recheck(plan)

    @work(thread=True, exit_on_error=False, group="retention")
    def _recheck(self, plan: RetentionPlan) -> None:
        """Right before deleting: the same rule over snapshots read just now."""
        try:
            fresh = self.app.session.replan(plan)
        except Exception as exc:  # shown, never raised
            self.post_message(PlanRechecked(None, None, explain(exc)))
            return
        self.post_message(PlanRechecked(fresh, plan_change(plan, fresh), None))

    def on_plan_rechecked(self, message: PlanRechecked) -> None:
        if message.plan is None or message.change is None:
            self.applying = False
            self.query_one("#retention-keep", Input).disabled = False
            self._preview()
            self.query_one("#retention-summary", Static).update(
                Text(f"Nothing deleted: {message.error}", style="bold red")
            )
            return
        if not message.change:
            self._delete(message.plan)
            return
        # The snapshots changed since the preview: show the new plan and ask again.
        self.applying = False
        self.query_one("#retention-keep", Input).disabled = False
        self._preview()
        if not message.plan.delete:
            return
        lines = message.change.lines()
        shown = "\n".join(lines[:8]) + (f"\n… and {len(lines) - 8} more" if len(lines) > 8 else "")
        self.app.push_screen(
            ConfirmScreen(
                "The plan changed",
                "The snapshots changed since the preview:\n\n"
                f"{shown}\n\nDelete {len(message.plan.delete)} snapshots now?",
                yes="Delete",
                no="Back",
            ),
            lambda yes: self._apply(message.plan) if yes else None,
        )

    def _delete(self, plan: RetentionPlan) -> None:
        progress = self.query_one("#retention-progress", ProgressBar)
        progress.display = True
        progress.update(total=len(plan.delete), progress=0)
        self.query_one("#retention-summary", Static).update(
            Text(f"Deleting {len(plan.delete)} snapshots…", style="bold")
        )
        self._run(self.app.session, plan.delete)

    @work(thread=True, exit_on_error=False, group="retention")
    def _run(self, session, snapshots: list[Snapshot]) -> None:
        session.delete_snapshots(
            snapshots, lambda report: self.post_message(DeletionProgress(report))
        )

    def on_deletion_progress(self, message: DeletionProgress) -> None:
        message.stop()  # this dialog says how it went: not the app's toasts as well
        self.query_one("#retention-progress", ProgressBar).update(progress=message.done)
        self.app.snapshots_deleted(set(message.deleted))
        if not message.finished:
            return
        # the plan has run: its rows say what became of each, and it is not offered again
        self.outcomes = {i: ("deleted", "") for i in message.deleted}
        for snapshot_id, failure in zip(message.failed, message.failures, strict=False):
            self.outcomes[snapshot_id] = ("failed", failure)
        self._fill_plan()
        self.query_one("#retention-apply", Button).display = False
        self.query_one("#retention-progress", ProgressBar).display = False
        text = Text(
            f"Deleted {len(message.deleted)} of {message.total} snapshots.",
            style="bold green" if not message.failures else "bold yellow",
        )
        for failure in message.failures:
            text.append(f"\n• {failure}", style="red")
        self.query_one("#retention-summary", Static).update(text)
        self.app.notify(
            f"Retention: deleted {len(message.deleted)} of {message.total}"
            + (f", {len(message.failures)} failed" if message.failures else ""),
            severity="warning" if message.failures else "information",
        )

    @on(Button.Pressed, "#retention-close")
    def action_close(self) -> None:
        self.dismiss(None)
