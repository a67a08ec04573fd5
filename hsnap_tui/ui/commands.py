"""The command palette (`ctrl+p`): every key of the view it was opened from is a command,
named as in the footer and the help, with its key in the help text, and choosing it does
exactly what pressing the key does. Textual's own commands that make sense here (theme,
screenshot) follow the app's."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.markup import escape
from textual.screen import Screen

# Textual's system commands that the app's own keys already cover: its "Quit" skips the
# question asked while snapshot jobs run, and "Keys" lists Textual's internal bindings.
REPLACED_SYSTEM_COMMANDS = frozenset({"Quit", "Keys"})


@dataclass(frozen=True)
class KeyCommand:
    """One binding of the view, as a palette command."""

    name: str  # the binding's description: as in the footer and the help
    keys: tuple[str, ...]  # every key bound to it, as the footer shows them
    tooltip: str
    binding_id: str
    action: str
    namespace: DOMNode  # where the key runs the action: a widget, the screen or the app
    enabled: bool
    shown: bool  # in the footer

    @property
    def help(self) -> str:
        keys = " ".join(self.keys)
        what = self.tooltip or self.name
        return f"{keys} · {what}"


def key_commands(screen: Screen[Any]) -> list[KeyCommand]:
    """The app's bindings active on `screen`, one command per action: those the footer
    shows first, in its order (the focused widget's, the screen's, the app's), then the
    others. Bindings without an id are Textual's own (the cursor keys of its widgets,
    ctrl+q, ctrl+c) and are left out."""
    app = screen.app
    commands: dict[tuple[int, str], KeyCommand] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.id or not binding.description:
            continue
        group = (id(active.node), binding.action)
        key = app.get_key_display(binding)
        known = commands.get(group)
        if known is not None:
            if key not in known.keys:
                commands[group] = KeyCommand(
                    known.name,
                    (*known.keys, key),
                    known.tooltip,
                    known.binding_id,
                    known.action,
                    known.namespace,
                    known.enabled,
                    known.shown,
                )
            continue
        commands[group] = KeyCommand(
            binding.description,
            (key,),
            binding.tooltip or "",
            binding.id,
            binding.action,
            active.node,
            active.enabled,
            binding.show,
        )
    return sorted(commands.values(), key=lambda c: not c.shown)


def disabled_reason(app: Any) -> str:
    """Why a key is greyed out, in a few words."""
    if getattr(app, "read_only", False):
        reason = getattr(getattr(app, "api", None), "read_only_reason", None)
        return f"read-only ({reason})" if reason else "read-only"
    return "not available here"


class KeyCommandsProvider(Provider):
    """The app's keys first, then the Textual system commands that fit."""

    def _run(self, command: KeyCommand) -> Callable[[], Coroutine[Any, Any, None]]:
        app = self.app

        async def run() -> None:
            if not command.enabled:
                app.notify(
                    f"{command.name} is disabled: {disabled_reason(app)}.",
                    severity="warning",
                    timeout=5,
                )
                return
            # what the key does: the binding's action, run in the binding's namespace
            await app.run_action(command.action, command.namespace)

        return run

    def _help(self, command: KeyCommand) -> str:
        text = command.help
        if not command.enabled:
            text = f"{' '.join(command.keys)} · disabled: {disabled_reason(self.app)}"
        return escape(text)  # the palette reads help text as markup

    def _system_commands(self) -> list[tuple[str, str, Any, bool]]:
        return [
            (title, help_text, callback, discover)
            for title, help_text, callback, discover in self.app.get_system_commands(self.screen)
            if title not in REPLACED_SYSTEM_COMMANDS
        ]

    async def discover(self) -> Hits:
        for command in key_commands(self.screen):
            yield DiscoveryHit(command.name, self._run(command), help=self._help(command))
        for title, help_text, callback, discover in self._system_commands():
            if discover:
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        ours = [(matcher.match(c.name), c) for c in key_commands(self.screen)]
        theirs = [
            (matcher.match(title), title, callback, help_text)
            for title, help_text, callback, _ in self._system_commands()
        ]
        # the palette lists hits by score: the app's commands are lifted above the best
        # of Textual's, so that any of them that matches comes first
        floor = max((score for score, *_ in theirs), default=0.0)
        for score, command in ours:
            if score > 0:
                yield Hit(
                    floor + score,
                    matcher.highlight(command.name),
                    self._run(command),
                    text=command.name,
                    help=self._help(command),
                )
        for score, title, callback, help_text in theirs:
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
