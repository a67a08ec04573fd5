"""`hsnap-tui snapshot`: the console's `s`, for cron — the same session, job engine,
template, labels and lock policy; progress on stderr, one result line per job on stdout."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import Job, JobState, LockPolicy
from hsnap_tui.core.labels import (
    LabelError,
    label_key_problem,
    label_value_problem,
    parse_selector,
)
from hsnap_tui.core.models import Server
from hsnap_tui.core.naming import (
    DEFAULT_LABELS,
    JOB_LABEL,
    TemplateError,
    check_labels,
    check_template,
)
from hsnap_tui.core.session import Session

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
    Runtime,
    load_fleet,
)
from .progress import JobDisplay

ENDED_BADLY = frozenset({JobState.FAILED, JobState.SKIPPED, JobState.CANCELLED})


@dataclass(frozen=True)
class SnapshotRequest:
    """What was asked, checked before anything is sent."""

    names: tuple[str, ...]
    selector: str | None
    everything: bool
    template: str
    labels: dict[str, str]
    policy: LockPolicy
    wait: bool
    lock_timeout: float | None = None


def check_request(
    names: Iterable[str],
    selector: str | None,
    everything: bool,
    template: str,
    labels: Iterable[str],
    if_locked: str,
    wait: bool,
    lock_timeout: float | None = None,
) -> SnapshotRequest:
    names = tuple(names)
    chosen = sum([bool(names), selector is not None, everything])
    if chosen == 0:
        raise CommandError("say which servers: their names, -l SELECTOR, or --all")
    if chosen > 1:
        raise CommandError("give server names, -l SELECTOR or --all — one of them")
    if selector is not None:
        try:
            parse_selector(selector)
        except LabelError as exc:
            raise CommandError(f"-l {selector!r}: {exc}") from None
    try:
        check_template(template)
    except TemplateError as exc:
        raise CommandError(f"--description: {exc}") from None
    parsed = check_labels(DEFAULT_LABELS)
    for item in labels:  # each one KEY=VALUE; it may replace a default's value
        key, equals, value = item.partition("=")
        if not equals:
            problem: str | None = "give KEY=VALUE, e.g. --label schedule=nightly"
        elif key == JOB_LABEL:
            problem = f"{JOB_LABEL} is set by hsnap-tui to tell each job's image apart"
        else:
            problem = label_key_problem(key) or label_value_problem(key, value)
        if problem is not None:
            raise CommandError(f"--label {item!r}: {problem}")
        parsed[key] = value
    return SnapshotRequest(
        names, selector, everything, template, parsed, LockPolicy(if_locked), wait, lock_timeout
    )


def pick_servers(fleet: FleetState, request: SnapshotRequest) -> list[Server]:
    servers = sorted(fleet.servers.values(), key=lambda s: (s.name, s.id))
    if request.everything:
        if not servers:
            raise CommandError("--all: this project has no servers")
        return servers
    if request.selector is not None:
        wanted = parse_selector(request.selector)
        picked = [s for s in servers if wanted.matches(s.labels)]
        if not picked:
            raise CommandError(f"-l {request.selector!r}: no server has matching labels")
        return picked
    by_name = {s.name: s for s in servers}
    by_id = {str(s.id): s for s in servers}

    def find(name: str) -> Server | None:
        return by_name.get(name) or by_id.get(name)  # a name, or an ID as hcloud takes

    unknown = [n for n in request.names if find(n) is None]
    if unknown:
        hints = []
        lowered = {n.lower(): n for n in by_name}
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
            hints.append(f"{name} (did you mean {lowered[close[0]]}?)" if close else name)
        raise CommandError(f"no server named {', '.join(hints)} in this project")
    seen: dict[int, Server] = {}
    for name in request.names:
        server = find(name)
        assert server is not None
        seen.setdefault(server.id, server)
    return list(seen.values())


def run_snapshot(
    session: Session, runtime: Runtime, request: SnapshotRequest, as_json: bool
) -> int:
    if session.read_only:
        raise CommandError(
            f"read-only ({session.api.read_only_reason}): snapshot would change the project; "
            "nothing was sent"
        )
    fleet = load_fleet(session, runtime)
    servers = pick_servers(fleet, request)
    started = runtime.clock()
    jobs, refused = session.submit(
        servers, request.template, request.labels, request.policy, request.lock_timeout
    )
    for server, reason in refused:  # not in a fresh session; kept honest anyway
        runtime.note(f"hsnap-tui: {server.name}: {reason}")
    ids = [j.id for j in jobs]
    display = JobDisplay(runtime, jobs, as_json=as_json)
    interrupted = False
    with display:
        try:
            while True:
                result = session.tick()
                current = [j for j in (session.jobs.get(i) for i in ids) if j is not None]
                display.update(current, result.next_delay)
                if request.wait:
                    if not session.jobs.needs_step():
                        break
                elif all(_accepted(j) for j in current):
                    break
                if runtime.wait(result.next_delay):
                    interrupted = True
                    break
        except KeyboardInterrupt:
            # a second Ctrl-C, perhaps mid-request: no more network, but still say
            # what was sent and what Hetzner is finishing
            interrupted = True
    final = [j for j in (session.jobs.get(i) for i in ids) if j is not None]
    if interrupted:
        return _interrupted(session, runtime, display, ids, as_json, started)
    if not request.wait:
        display.accepted(final)
    code = EXIT_OK
    if any(j.state in ENDED_BADLY or j.duplicates for j in final) or refused:
        code = EXIT_FAILED
    display.summary(final, session.budget.sent, runtime.clock() - started, code)
    return code


def _accepted(job: Job) -> bool:
    """The API has the request (running), or the job has ended."""
    return job.state == JobState.RUNNING or not job.active


def _interrupted(
    session: Session,
    runtime: Runtime,
    display: JobDisplay,
    ids: list[int],
    as_json: bool,
    started: float,
) -> int:
    """Ctrl-C: cancel what has not been sent, say what Hetzner is still finishing."""
    for job_id in ids:
        job = session.jobs.get(job_id)
        if job is not None and job.state in (JobState.QUEUED, JobState.WAITING):
            session.cancel(job_id)
    final = [j for j in (session.jobs.get(i) for i in ids) if j is not None]
    display.interrupted(final)
    display.summary(final, session.budget.sent, runtime.clock() - started, EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


__all__ = [
    "SnapshotRequest",
    "check_request",
    "pick_servers",
    "run_snapshot",
]
