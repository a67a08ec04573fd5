"""What a snapshot is called and labelled: the description template, the operator's
labels, and the job label that lets a job recognise its own image."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timezone

from .labels import LabelError, parse_labels
from .models import Server

DEFAULT_TEMPLATE = "{server}-{date}-{time}"
DEFAULT_LABELS = "managed-by=hsnap"
PLACEHOLDERS = ("server", "id", "date", "time")
MAX_DESCRIPTION = 255
# Every image a job asks for carries `hsnap-job=<uid>`: the one thing that tells the
# job's own image from any other, whatever the description, the time or the tool.
JOB_LABEL = "hsnap-job"


class TemplateError(ValueError):
    pass


def new_job_uid() -> str:
    """Unique across jobs, runs and machines: 64 random bits (a valid label value)."""
    return secrets.token_hex(8)


def render_description(template: str, server: Server, when: float) -> str:
    """`{server}-{date}-{time}` → `web-prod-01-2026-11-26-1200` (UTC)."""
    moment = datetime.fromtimestamp(when, tz=timezone.utc)
    values = {
        "server": server.name,
        "id": str(server.id),
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H%M"),
    }
    check_template(template)
    return template.format(**values)


def check_template(template: str) -> None:
    """Raise TemplateError with an operator-readable reason for a bad template."""
    if not template.strip():
        raise TemplateError("the description must not be empty")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"unbalanced braces: {exc}") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise TemplateError(f"unknown placeholder {{{name}}}: use {known}")
        if spec or conv:
            raise TemplateError(f"placeholder {{{name}}} takes no format options")
    if len(template) > MAX_DESCRIPTION:
        raise TemplateError(f"the description is longer than {MAX_DESCRIPTION} characters")


def check_labels(text: str) -> dict[str, str]:
    """Parse `k=v, k2=v2`; TemplateError for anything the API would refuse, and for the
    job label, which hsnap-tui sets itself."""
    try:
        labels = parse_labels(text)
    except LabelError as exc:
        raise TemplateError(str(exc)) from None
    if JOB_LABEL in labels:
        raise TemplateError(f"{JOB_LABEL} is set by hsnap-tui to tell each job's image apart")
    return labels
