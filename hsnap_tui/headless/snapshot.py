"""`hsnap-tui snapshot`: the console's `s`, for cron — the same session, job engine,
template, labels and lock policy; progress on stderr, one result line per job on stdout."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from hsnap_tui.core.fleet import FleetState
from hsnap_tui.core.jobs import SHUTDOWN_TIMEOUT, Job, JobState, LockPolicy
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
    wrapped,
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
    shutdown: bool = False  # consistent: shut down, snapshot, power on again
    force_poweroff: bool = False
    shutdown_timeout: float = SHUTDOWN_TIMEOUT


def check_request(
    names: Iterable[str],
    selector: str | None,
    everything: bool,
    template: str,
    labels: Iterable[str],
    if_locked: str,
    wait: bool,
    lock_timeout: float | None = None,
    *,
    shutdown: bool = False,
    force_poweroff: bool = False,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
) -> SnapshotRequest:
    names = tuple(names)
    if force_poweroff and not shutdown:
        raise CommandError("--force-poweroff goes with --shutdown")
    if shutdown and not wait:
        raise CommandError(
            "--shutdown waits for its snapshots: each server is powered on again after"
        )
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
        names,
        selector,
        everything,
        template,
        parsed,
        LockPolicy(if_locked),
        wait,
        lock_timeout,
        shutdown=shutdown,
        force_poweroff=force_poweroff,
        shutdown_timeout=shutdown_timeout,
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
    return take_snapshots(session, runtime, servers, request, as_json).code


@dataclass(frozen=True)
class SnapshotRun:
    jobs: list[Job]
    code: int
    interrupted: bool


def take_snapshots(
    session: Session,
    runtime: Runtime,
    servers: list[Server],
    request: SnapshotRequest,
    as_json: bool,
    *,
    whole_session: bool = True,
) -> SnapshotRun:
    """Submit a job per server and tick the session until they end (or, without
    `wait`, until the API has them), showing them as they go. The summary counts the
    session's requests (`whole_session`), or only those sent from here on."""
    started = runtime.clock()
    sent_before = 0 if whole_session else session.budget.sent
    jobs, refused = session.submit(
        servers,
        request.template,
        request.labels,
        request.policy,
        request.lock_timeout,
        shutdown=request.shutdown,
        force_poweroff=request.force_poweroff,
        shutdown_timeout=request.shutdown_timeout,
    )
    for server, reason in refused:  # not in a fresh session; kept honest anyway
        runtime.note(f"hsnap-tui: {server.name}: {reason}")
    ids = [j.id for j in jobs]

    def current() -> list[Job]:
        return [j for j in (session.jobs.get(i) for i in ids) if j is not None]

    display = JobDisplay(runtime, jobs, as_json=as_json)
    interrupted = stopping = False
    with display:
        try:
            while True:
                result = session.tick()
                now = current()
                display.update(now, result.next_delay)
                if stopping:
                    if not any(_still_off(j) for j in now):
                        break
                elif request.wait:
                    if not session.jobs.needs_step():
                        break
                elif all(_accepted(j) for j in now):
                    break
                if stopping:
                    runtime.pause(result.next_delay)  # only a second Ctrl-C stops this
                elif runtime.wait(result.next_delay):
                    interrupted = stopping = True
                    session.jobs.stop_sending()
                    _cancel_unsent(session, ids)
                    off = [j for j in current() if _still_off(j)]
                    if not off:
                        break
                    it = "it" if len(off) == 1 else "them"
                    busy = [j.server_name for j in off if j.state == JobState.RUNNING]
                    after = (
                        f"; {', '.join(busy)} after {'its' if len(busy) == 1 else 'their'} "
                        "snapshot ends (a server being snapshotted cannot be powered on)"
                        if busy
                        else ""
                    )
                    runtime.note(
                        wrapped(
                            "hsnap-tui: powering on what this run shut down first: ",
                            f"{', '.join(j.server_name for j in off)}{after}. Ctrl-C "
                            f"again leaves {it} off.",
                            11,
                        )
                    )
        except KeyboardInterrupt:
            # a second Ctrl-C, perhaps mid-request: no more network, but still say
            # what was sent, what Hetzner is finishing and which servers stay off
            interrupted = True
    final = current()
    requests = session.budget.sent - sent_before
    if interrupted:
        _cancel_unsent(session, ids)
        final = current()
        display.interrupted(final)
        display.summary(final, requests, runtime.clock() - started, EXIT_INTERRUPTED)
        return SnapshotRun(final, EXIT_INTERRUPTED, True)
    if not request.wait:
        display.accepted(final)
    code = EXIT_OK
    badly = any(j.state in ENDED_BADLY or j.duplicates or j.power_error for j in final)
    if badly or refused:
        code = EXIT_FAILED
    display.summary(final, requests, runtime.clock() - started, code)
    return SnapshotRun(final, code, False)


def _still_off(job: Job) -> bool:
    """The job shut its server down and has not powered it on yet."""
    return job.active and job.turned_off and not job.on_again


def _accepted(job: Job) -> bool:
    """The API has the request (running), or the job has ended."""
    return job.state == JobState.RUNNING or not job.active


def _cancel_unsent(session: Session, ids: list[int]) -> None:
    """Ctrl-C: cancel what has not been sent (a server a job shut down is powered on
    again by its job)."""
    for job_id in ids:
        job = session.jobs.get(job_id)
        if job is None:
            continue
        unsent = job.state in (JobState.QUEUED, JobState.WAITING)
        if unsent or job.state == JobState.SHUTTING_DOWN:
            session.cancel(job_id)


__all__ = [
    "SnapshotRequest",
    "SnapshotRun",
    "check_request",
    "pick_servers",
    "run_snapshot",
    "take_snapshots",
]
