"""`hsnap-tui action ID-OR-TEXT`: the action inspector as text; `--follow` until the
action ends. A correlation ID or a pasted error message gets the explanation."""

from __future__ import annotations

import textwrap

from hcloud import APIException

from hsnap_tui.core.actions import (
    ActionIdError,
    fetch_names,
    not_found_message,
    parse_action_id,
)
from hsnap_tui.core.errors import explain
from hsnap_tui.core.models import Action
from hsnap_tui.core.session import Session
from hsnap_tui.core.units import absolute, ago, duration

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Runtime,
)


def _fetch(session: Session, action_id: int) -> Action:
    try:
        return session.api.action(action_id)
    except APIException as exc:
        if exc.code == "not_found":
            raise CommandError(not_found_message(action_id), EXIT_FAILED) from None
        code = EXIT_USAGE if exc.code in ("unauthorized", "forbidden") else EXIT_FAILED
        raise CommandError(f"could not read action {action_id}: {explain(exc)}", code) from None
    except Exception as exc:
        message = f"could not read action {action_id}: {explain(exc)}"
        raise CommandError(message, EXIT_FAILED) from None


def action_lines(action: Action, names: dict[tuple[str, int], str], now: float) -> list[str]:
    rows = [
        ("Action", f"#{action.id}  {action.command}"),
        ("Status", action.status),
        ("Progress", f"{_bar(action.progress)} {action.progress}%"),
        ("Started", f"{absolute(action.started)}  ({ago(action.started, now, '—')})"),
        (
            "Finished",
            "—"
            if action.finished is None
            else f"{absolute(action.finished)}  ({ago(action.finished, now)})",
        ),
    ]
    if action.started is not None:
        end = action.finished if action.finished is not None else now
        so_far = "" if action.finished is not None else " so far"
        rows.append(("Duration", f"{duration(end - action.started)}{so_far}"))
    resources = [
        f"{kind} {rid}  {names.get((kind, rid), '')}".rstrip() for kind, rid in action.resources
    ]
    rows.append(("Resources", resources[0] if resources else "none"))
    rows += [("", r) for r in resources[1:]]
    if action.status == "error" or action.error_code:
        rows.append(("Error", f"{action.error_code}: {action.error_message}"))
    return [f"{label:>9}  {value}".rstrip() for label, value in rows]


def _bar(progress: int, width: int = 20) -> str:
    filled = round(width * max(0, min(progress, 100)) / 100)
    return "█" * filled + "░" * (width - filled)


def action_json(action: Action, names: dict[tuple[str, int], str]) -> dict:
    return {
        "type": "action",
        "id": action.id,
        "command": action.command,
        "status": action.status,
        "progress": action.progress,
        "started": absolute(action.started) if action.started else None,
        "finished": absolute(action.finished) if action.finished else None,
        "resources": [
            {"type": kind, "id": rid, "name": names.get((kind, rid))}
            for kind, rid in action.resources
        ],
        "error_code": action.error_code,
        "error": action.error_message,
    }


def run_action(
    session: Session, runtime: Runtime, text: str, *, follow: bool, as_json: bool
) -> int:
    try:
        action_id = parse_action_id(text)
    except ActionIdError as exc:
        if exc.correlation_id is None:
            raise CommandError(str(exc), EXIT_USAGE) from None
        # a request ID (or an error message with one): the answer is the explanation
        if as_json:
            runtime.json(
                {"type": "explanation", "correlation_id": exc.correlation_id, "text": str(exc)}
            )
        else:
            text = str(exc).replace(
                "highlight it and press i.",
                "run `hsnap-tui servers`: it names the action under each locked server.",
            )
            runtime.print(textwrap.fill(text, width=80))
        return EXIT_USAGE
    action = _fetch(session, action_id)
    names = fetch_names(session.api, action.resources)
    _show(runtime, action, names, as_json)
    while follow and action.running:
        wait = max(session.refresher.refresh, session.budget.wait_for(1))
        if runtime.wait(wait):
            return EXIT_INTERRUPTED
        fresh = _fetch(session, action_id)
        if (fresh.status, fresh.progress) != (action.status, action.progress):
            action = fresh
            if as_json:
                runtime.json(action_json(action, names))
            elif action.running:
                runtime.print(f"{'':>9}  {_bar(action.progress)} {action.progress}%")
            else:
                runtime.print()
                _show(runtime, action, names, as_json)
        action = fresh
    if follow and action.status == "error":
        return EXIT_FAILED
    return EXIT_OK


def _show(runtime: Runtime, action: Action, names: dict, as_json: bool) -> None:
    if as_json:
        runtime.json(action_json(action, names))
        return
    for line in action_lines(action, names, runtime.now()):
        runtime.print(line)
