"""Messages that worker threads post back to the app thread."""

from __future__ import annotations

from textual.message import Message

from hsnap_tui.core.jobs import JobEvent
from hsnap_tui.core.models import Action
from hsnap_tui.core.refresh import PollResult


class FleetRefreshed(Message):
    """A refresh poll finished (with new data, or with an error), and the snapshot jobs
    took their step."""

    def __init__(
        self,
        result: PollResult,
        events: list[JobEvent] | None = None,
        watched: dict[int, Action] | None = None,
        generation: int = 0,
    ) -> None:
        super().__init__()
        self.generation = generation  # which context the poll was for
        self.result = result
        self.events = events or []
        self.watched = watched or {}  # actions followed by an open inspector


class ServerActionsLoaded(Message):
    """The last actions of one server, fetched for its details screen."""

    def __init__(self, server_id: int, actions: list[Action] | None, error: str | None) -> None:
        super().__init__()
        self.server_id = server_id
        self.actions = actions
        self.error = error
