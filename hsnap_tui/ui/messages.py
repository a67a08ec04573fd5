"""Messages that worker threads post back to the app thread."""

from __future__ import annotations

from textual.message import Message

from hsnap_tui.core.models import Action
from hsnap_tui.core.session import DeletionProgress as DeletionReport
from hsnap_tui.core.session import TickResult


class SessionsTicked(Message):
    """A tick of the sessions finished: the live one and those of other contexts that
    still have jobs. Each result names its session."""

    def __init__(self, results: list[TickResult]) -> None:
        super().__init__()
        self.results = results


class ServerActionsLoaded(Message):
    """The last actions of one server, fetched for its details screen."""

    def __init__(self, server_id: int, actions: list[Action] | None, error: str | None) -> None:
        super().__init__()
        self.server_id = server_id
        self.actions = actions
        self.error = error


class DeletionProgress(Message):
    """One more snapshot deleted (or not) by a worker; `finished` after the last."""

    def __init__(self, report: DeletionReport) -> None:
        super().__init__()
        self.done = report.done
        self.total = report.total
        self.deleted = list(report.deleted)
        self.failures = list(report.failures)
        self.failed = list(report.failed)  # the snapshot IDs behind `failures`
        self.finished = report.finished
