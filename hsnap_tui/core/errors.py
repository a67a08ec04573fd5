"""Turn any failure into operator text: what happened, what it means, what to do.

The correlation ID that hcloud appends to API errors (`message (code, f21b9dc9d1535310)`)
identifies the *request*, not an action: it is shown as the request ID for Hetzner
support, never as something to look up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests
from hcloud import APIException

from .api import ReadOnlyError, UnreadableAnswer
from .models import printable

# code: (what it means, what to do) — the API's documented error codes.
API_ERRORS: dict[str, tuple[str, str]] = {
    "forbidden": (
        "the token is not allowed to do this",
        "use a token of this project with read & write permission",
    ),
    "unauthorized": (
        "the API did not accept the token",
        "check the token: it may be revoked, mistyped or for another project",
    ),
    "invalid_input": ("the API refused a value in the request", "correct the input"),
    "json_error": ("the request body was not valid JSON", "report this as a bug in hsnap-tui"),
    "locked": (
        "the server is busy with another action (only one runs at a time)",
        "wait for the running action to finish, or inspect it with i",
    ),
    "not_found": ("it no longer exists in this project", "refresh: it may have been deleted"),
    "rate_limit_exceeded": (
        "the project's request budget is used up (shared with every tool on this project)",
        "hsnap-tui slows down and retries once the budget refills",
    ),
    "resource_limit_exceeded": (
        "the project has reached a resource limit",
        "delete unused resources or ask Hetzner for a higher limit",
    ),
    "resource_unavailable": (
        "the requested resource is currently unavailable",
        "try again later or choose another type or location",
    ),
    "server_error": (
        "the API had an internal error",
        "retry; if it persists, contact Hetzner support with the request ID",
    ),
    "service_error": ("a Hetzner service behind the API failed", "retry in a moment"),
    "uniqueness_error": ("a value that must be unique is already taken", "choose another"),
    "protected": (
        "the resource is protected against this operation",
        "lift the protection first (Cloud Console or `hcloud ... disable-protection`)",
    ),
    "maintenance": ("the API is in maintenance", "retry after the maintenance window"),
    "conflict": ("the resource changed during the request", "refresh and retry"),
    "unsupported_error": ("the resource does not support this action", "nothing to retry"),
    "token_readonly": ("the token is read-only", "use a read & write token to change things"),
    "unavailable": ("the service is temporarily unavailable", "hsnap-tui retries by itself"),
    "timeout": ("the API could not answer in time", "retry"),
    "bad_gateway": (
        "a gateway in front of the API failed; the request may still have been processed",
        "it checks and retries by itself",
    ),
    "gateway_timeout": (
        "a gateway in front of the API gave up waiting; the request may still be processed",
        "it checks and retries by itself",
    ),
    "deprecated_api_endpoint": ("this API endpoint has been removed", "update hsnap-tui"),
    "action_failed": ("the action ended in an error", "see the message; retry if it is transient"),
}

HTTP_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    200: ("the API's answer could not be read (malformed JSON)", "it retries by itself"),
    502: ("a gateway in front of the API failed (502)", "it retries by itself"),
    503: ("the API is unavailable (503)", "it retries by itself"),
    504: ("the API did not answer in time (504)", "it retries by itself"),
}

# API error codes that say "not now" rather than "no": trying again later may succeed
TRANSIENT_CODES = frozenset(
    {"unavailable", "timeout", "bad_gateway", "gateway_timeout", "rate_limit_exceeded", "conflict"}
)


def is_transient(exc: APIException) -> bool:
    """An API error that says "not now" (a 5xx with no code, a gateway, 429…)."""
    return isinstance(exc.code, int) or exc.code in TRANSIENT_CODES


CORRELATION_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Explanation:
    """An error for people: a one-line summary, then what it means and what to do."""

    summary: str
    meaning: str
    advice: str
    code: str | None = None
    request_id: str | None = None

    def __str__(self) -> str:
        advice = self.advice
        if not advice.startswith("hsnap-tui"):
            advice = advice[:1].upper() + advice[1:]
        if _same(self.summary, self.meaning):  # the API's message said it already
            text = f"{self.summary}. {advice}."
        else:
            text = f"{self.summary} — {self.meaning}. {advice}."
        if self.request_id:
            text += f" (request ID {self.request_id} for Hetzner support)"
        return text


def _same(a: str, b: str) -> bool:
    def norm(text: str) -> str:
        text = text.strip().rstrip(".").lower()
        return text[4:] if text.startswith("the ") else text

    return norm(a) == norm(b)


def explain_error(exc: BaseException) -> Explanation:
    """Explain an hcloud APIException, a network error, or anything else."""
    if isinstance(exc, APIException):
        request_id = exc.correlation_id
        if isinstance(exc.code, int) and 200 <= exc.code < 300:
            meaning, advice = HTTP_STATUS_ERRORS[200]
            return Explanation(
                f"unreadable answer (HTTP {exc.code})", meaning, advice, str(exc.code), request_id
            )
        if isinstance(exc.code, int):
            meaning, advice = HTTP_STATUS_ERRORS.get(
                exc.code, (f"the API answered HTTP {exc.code}", "retry")
            )
            return Explanation(f"API error {exc.code}", meaning, advice, str(exc.code), request_id)
        meaning, advice = API_ERRORS.get(exc.code, ("the API refused the request", "retry"))
        summary = printable(exc.message) or exc.code
        if exc.code == "invalid_input" and isinstance(exc.details, dict):
            fields = exc.details.get("fields") or []
            parts = [
                f"{f.get('name')}: {'; '.join(f.get('messages') or [])}"
                for f in fields
                if isinstance(f, dict)
            ]
            if parts:
                summary = f"{summary} ({', '.join(parts)})"
        return Explanation(summary, meaning, advice, exc.code, request_id)
    if isinstance(exc, UnreadableAnswer):
        meaning, advice = HTTP_STATUS_ERRORS[200]
        return Explanation(str(exc), meaning, "it checks for the image by itself")
    if isinstance(exc, ReadOnlyError):
        flag = "--read-only" in str(exc)
        return Explanation(
            "not sent: this session is read-only",
            str(exc),
            "start hsnap-tui without --read-only" if flag else "use a read & write token",
        )
    if isinstance(exc, requests.Timeout):
        return Explanation(
            "the API did not answer in time",
            "the network or the API is slow",
            "it retries by itself",
        )
    if isinstance(exc, requests.ConnectionError):
        return Explanation(
            "cannot reach the API",
            "the connection failed or was dropped",
            "check the network; it retries by itself",
        )
    if isinstance(exc, requests.RequestException):
        return Explanation("the request failed", type(exc).__name__, "it retries by itself")
    return Explanation(
        "unexpected error", f"{type(exc).__name__}: {exc}", "report this as a bug in hsnap-tui"
    )


def explain(exc: BaseException) -> str:
    return str(explain_error(exc))
