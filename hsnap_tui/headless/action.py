"""`hsnap-tui action ID-OR-TEXT`: the action inspector as text; `--follow` until the
action ends. A correlation ID or a pasted error message gets the explanation."""

from __future__ import annotations

import textwrap

import requests
from hcloud import APIException

from hsnap_tui.core.actions import (
    ActionIdError,
    fetch_names,
    not_found_message,
    parse_action_id,
)
from hsnap_tui.core.errors import explain, explain_error, is_transient
from hsnap_tui.core.models import Action
from hsnap_tui.core.session import Session
from hsnap_tui.core.units import absolute, ago, duration, iso

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Runtime,
)

TRANSIENT_PATIENCE = 120.0  # seconds a lookup retries an API that does not answer


def _fetch(session: Session, runtime: Runtime, action_id: int, as_json: bool) -> Action:
    """`GET /actions/{id}`; a transient failure (no answer, 5xx, a gateway, 429) is
    retried with backoff for up to two minutes."""
    started = runtime.clock()
    delay = 2.0
    while True:
        try:
            return session.api.action(action_id)
        except APIException as exc:
            if exc.code == "not_found":
                if as_json:
                    runtime.json({"type": "not_found", "id": action_id})
                message = not_found_message(action_id)
                raise CommandError(message[:1].lower() + message[1:], EXIT_FAILED) from None
            if exc.code in ("unauthorized", "forbidden"):
                message = f"the API rejected the token: {explain(exc)}"
                raise CommandError(message, EXIT_USAGE) from None
            failure: BaseException = exc
            transient = is_transient(exc)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            failure, transient = exc, True
        if not transient or runtime.clock() - started >= TRANSIENT_PATIENCE:
            message = f"could not read action {action_id}: {explain_error(failure).summary}"
            raise CommandError(message, EXIT_FAILED)
        if runtime.wait(max(delay, session.budget.wait_for(1))):
            raise CommandError("interrupted", EXIT_INTERRUPTED)
        delay = min(30.0, delay * 2)


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
        "started": iso(action.started),
        "finished": iso(action.finished),
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
        text = str(exc).replace(
            "highlight it and press i.",
            "run `hsnap-tui servers`: it names the action under each locked server.",
        )
        if as_json:
            runtime.json(
                {"type": "explanation", "correlation_id": exc.correlation_id, "text": text}
            )
        else:
            runtime.print(textwrap.fill(text, width=80))
        return EXIT_USAGE
    action = _fetch(session, runtime, action_id, as_json)
    names = fetch_names(session.api, action.resources)
    _show(runtime, action, names, as_json)
    shown = (action.status, action.progress)
    while follow and action.running:
        wait = max(session.refresher.refresh, session.budget.wait_for(1))
        if runtime.wait(wait):
            return EXIT_INTERRUPTED
        action = _fetch(session, runtime, action_id, as_json)
        if (action.status, action.progress) == shown:
            continue
        shown = (action.status, action.progress)
        if as_json:
            runtime.json(action_json(action, names))
        elif action.running:
            runtime.print(f"{'Progress':>9}  {_bar(action.progress)} {action.progress}%")
        else:
            runtime.print()
            _show(runtime, action, names, as_json)
    if follow and action.status == "error":
        return EXIT_FAILED
    return EXIT_OK


def _show(runtime: Runtime, action: Action, names: dict, as_json: bool) -> None:
    if as_json:
        runtime.json(action_json(action, names))
        return
    for line in action_lines(action, names, runtime.now()):
        runtime.print(line)
