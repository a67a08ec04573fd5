"""Chaos: randomized schedules against the exactly-once promise.

Per seed, two simulated projects (A and B) on stopped clocks, three sessions — A's
console, B's console (the workspace switches between the two, as `c` does), and a
second run on project A (a cron job beside the console) — and a schedule drawn from
the seed: snapshot requests (repeated, on locked servers, with repeating
descriptions), other tools' locks (listed and hidden), every fault kind before and after
processing (latency beyond the client timeout included: the request lands later in
simulated time), the API going away and coming back, context switches and cancels. Then
the schedule stops and every job is given time to end.

Checked per job: exactly one image with its `hsnap-job` label when it succeeded (none
otherwise), the job reports that image, the job ends; and per session, the requests it
sent in any simulated minute, against its budget.

Used by tests/test_chaos.py (asserts) and tests/bench/chaos.py (prints the table).
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from dataclasses import dataclass, field

from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.jobs import LATE_WINDOW, Job, JobState, LockPolicy
from hsnap_tui.core.naming import JOB_LABEL
from hsnap_tui.core.session import Session, Workspace
from hsnap_tui.sim import FAULT_KINDS, ApiError, Simulator

START = 1795694400.0
TOKEN = "chaos-token"
STEP = 10.0  # simulated seconds between ticks
SCHEDULE = 20 * 60.0  # simulated seconds with events
DRAIN = 4 * 3600.0  # at most this long afterwards for every job to end
TIMEOUT = 0.3  # the client's timeout (wall seconds): a latency fault costs this much
TEMPLATES = ("{server}-{date}", "{server}-{date}-{time}", "{server}", "nightly")
LISTS = ("/v1/servers/actions", "/v1/servers", "/v1/images", "/v1/actions")
ERRORS = (
    (500, "server_error"),
    (502, "bad_gateway"),
    (503, "unavailable"),
    (504, "timeout"),
    (500, "weird_new_code"),
    (409, "conflict"),
    (503, "maintenance"),
)
COMMANDS = ("rebuild_server", "reboot_server", "change_type", "migrate_server")


@dataclass
class SeedOutcome:
    seed: int
    jobs: int = 0
    images: int = 0  # images with a job label made during the run
    duplicates: int = 0  # jobs with more than one image
    false_successes: int = 0  # succeeded, but not with its own one image
    unreported: int = 0  # did not succeed, yet an image of its own exists
    lost: int = 0  # failed for a reason the schedule does not justify (a snapshot lost)
    stuck: int = 0  # still active when the run ended
    consistent: int = 0  # jobs that shut their server down first
    left_off: int = 0  # servers a job shut down that were not running at the end
    max_per_minute: int = 0  # most requests one session sent in a simulated minute
    per_minute_bound: float = 0.0
    per_hour: float = 0.0  # the busiest session's average, per simulated hour
    per_hour_bound: float = 0.0
    faults: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Recorded:
    """Every request a session sends, on its project's clock (charged at the hook)."""

    def __init__(self, session: Session, sim: Simulator) -> None:
        self.times: list[float] = []
        charge = session.budget.charge

        def charged(count: int = 1) -> None:
            self.times.extend([sim.clock.now()] * count)
            charge(count)

        session.budget.charge = charged


def _session(sim: Simulator, name: str, job_ids, fleet_view: bool = True) -> Session:
    api = HetznerApi(TOKEN, sim.url, timeout=TIMEOUT)
    # no proxy lookups in the environment on every request: 3 ms each, here
    api.client._client._session.trust_env = False
    return Session(
        api,
        name=name,
        clock=sim.clock.now,
        now=sim.clock.now,
        job_ids=job_ids,
        fleet_view=fleet_view,
    )


def run_seed(seed: int, observers=()) -> SeedOutcome:
    rng = random.Random(seed)
    outcome = SeedOutcome(seed)
    sims = {
        "A": Simulator(
            token=TOKEN, servers=rng.choice((6, 12, 30)), seed=seed, speed=0, start=START
        ),
        "B": Simulator(token=TOKEN, servers=8, seed=seed + 7919, speed=0, start=START),
    }
    for sim in sims.values():
        sim.response_observers.extend(observers)
        sim.start()
    try:
        _run(rng, sims, outcome)
    finally:
        for sim in sims.values():
            sim.stop()
    return outcome


def _run(rng: random.Random, sims: dict[str, Simulator], outcome: SeedOutcome) -> None:
    from itertools import count

    job_ids = count(1)
    console_a = _session(sims["A"], "A", job_ids)
    console_b = _session(sims["B"], "B", job_ids)
    # a second run on project A: a headless `snapshot` (no fleet view; running jobs
    # are stepped with the action poll alone)
    cron_a = _session(sims["A"], "A-cron", job_ids, fleet_view=False)
    project = {console_a: "A", console_b: "B", cron_a: "A"}
    workspace = Workspace(console_a)
    recorded = {s: _Recorded(s, sims[project[s]]) for s in project}
    ever: dict[str, set[int]] = defaultdict(set)  # job uid → images ever seen with it
    offline: dict[str, int] = {}  # project → steps until it is back
    start = sims["A"].clock.now()

    def tick_all() -> None:
        for session in [*workspace.to_tick(), cron_a]:
            session.tick()
        for sim in sims.values():
            for image in sim.world.images.values():
                uid = image["labels"].get(JOB_LABEL)
                if uid is not None:
                    ever[uid].add(image["id"])

    def advance() -> None:
        for name, sim in sims.items():
            sim.advance(STEP)
            if name in offline:
                offline[name] -= 1
                if offline[name] <= 0:
                    del offline[name]
                    sim.go_online()

    tick_all()
    while sims["A"].clock.now() - start < SCHEDULE:
        _events(rng, sims, workspace, console_a, console_b, cron_a, project, offline, outcome)
        advance()
        tick_all()

    # The schedule ends: faults are cleared, the API is back, every job gets time to end.
    for name, sim in sims.items():
        sim.clear_faults()
        if name in offline:
            sim.go_online()
    offline.clear()
    sessions = list(project)
    drain_end = sims["A"].clock.now() + DRAIN
    while sims["A"].clock.now() < drain_end and any(s.jobs.active_jobs() for s in sessions):
        advance()
        tick_all()
    _judge(sessions, project, sims, ever, recorded, outcome)


def _events(rng, sims, workspace, console_a, console_b, cron_a, project, offline, outcome):
    if rng.random() < 0.10:  # the operator (or cron) snapshots some servers
        session = cron_a if rng.random() < 0.25 else workspace.live
        servers = list(session.fleet.servers.values())
        if servers:
            picked = rng.sample(servers, k=min(len(servers), rng.randint(1, 3)))
            policy = LockPolicy.SKIP if rng.random() < 0.15 else LockPolicy.WAIT
            # cron's `--lock-timeout`: skip a server still locked after it
            limit = rng.choice((None, 30.0, 120.0)) if session is cron_a else None
            consistent = {}
            if rng.random() < 0.3:  # a consistent snapshot: shut down, snapshot, power on
                consistent = {
                    "shutdown": True,
                    "force_poweroff": rng.random() < 0.5,
                    "shutdown_timeout": rng.choice((60.0, 300.0)),
                }
            session.submit(
                picked,
                rng.choice(TEMPLATES),
                {"managed-by": "hsnap"},
                policy,
                limit,
                **consistent,
            )
    if rng.random() < 0.03:  # a server's OS starts (or stops) ignoring ACPI
        sim = sims[rng.choice("AB")]
        server_id = rng.choice(sorted(sim.world.servers))
        sim.set_server(server_id, acpi=rng.random() < 0.5, shutdown_seconds=rng.choice((5, 20, 90)))
    if rng.random() < 0.08:  # another tool locks a server
        sim = sims[rng.choice("AB")]
        server_id = rng.choice(sorted(sim.world.servers))
        command, seconds, visible = rng.choice(COMMANDS), rng.uniform(5, 180), rng.random() < 0.7
        with contextlib.suppress(ApiError):  # already locked: the other tool gives up
            sim.start_action(server_id, command, seconds, visible=visible)
    if rng.random() < 0.15:
        _fault(rng, sims, offline)
        outcome.faults += 1
    if rng.random() < 0.02:  # `c`: switch to the other context
        other = console_b if workspace.live is console_a else console_a
        workspace.switch(other)
    if rng.random() < 0.04:  # `x` on a queued or waiting job
        jobs = [
            (s, j)
            for s in project
            for j in s.jobs.jobs()
            if j.state in (JobState.QUEUED, JobState.WAITING, JobState.SHUTTING_DOWN)
        ]
        if jobs:
            session, job = rng.choice(jobs)
            session.cancel(job.id)


def _fault(rng: random.Random, sims: dict[str, Simulator], offline: dict[str, int]) -> None:
    name = rng.choice("AB")
    sim = sims[name]
    kind = rng.choice((*FAULT_KINDS, "unreachable"))
    if kind == "unreachable":
        if name not in offline:
            sim.go_offline()
            offline[name] = rng.randint(1, 8)
        return
    on_create = kind == "action_failed" or rng.random() < 0.5
    if on_create:
        server_id = rng.choice(sorted(sim.world.servers))
        action = rng.choice(("create_image", "create_image", "shutdown", "po"))  # po: power
        path, method = f"/v1/servers/{server_id}/actions/{action}", "POST"
        if rng.random() < 0.5:
            path = "/v1/servers/"  # any server's actions (and server reads)
    else:
        path, method = rng.choice(LISTS), None
    options: dict = {"count": rng.randint(1, 3), "path_prefix": path, "method": method}
    if kind in ("http_500", "http_503", "rate_limit", "drop", "malformed_json", "error", "gateway"):
        options["after"] = rng.random() < 0.5
    if kind == "latency":
        # beyond the client's timeout: the request lands later, within the late window
        options["seconds"] = rng.uniform(1, LATE_WINDOW * 0.9)
        options["count"] = 1
    elif kind == "error":
        options["status"], options["code"] = rng.choice(ERRORS)
    elif kind == "gateway":
        options["status"] = rng.choice((502, 504))
    elif kind == "strip":
        options["field"] = rng.choice(("image", "action", "meta", "servers", "images"))
    sim.add_fault(kind, **options)


def _judge(sessions, project, sims, ever, recorded, outcome: SeedOutcome) -> None:
    jobs: list[tuple[Session, Job]] = [(s, j) for s in sessions for j in s.jobs.jobs()]
    outcome.jobs = len(jobs)
    # Every server a job shut down (or tried to) is running again at the end.
    touched: dict[tuple[str, int], list[Job]] = defaultdict(list)
    for session, job in jobs:
        if job.shutdown:
            outcome.consistent += 1
            if job.power_sends:
                touched[(project[session], job.server_id)].append(job)
    for (name, server_id), its_jobs in touched.items():
        status = sims[name].world.servers[server_id]["status"]
        if status in ("off", "stopping"):  # (another tool's rebuild may still run)
            outcome.left_off += 1
            outcome.problems.append(
                f"seed {outcome.seed}: server {server_id} on {name} is {status} after jobs "
                + ", ".join(f"{j.id} ({j.state.value}, {j.note})" for j in its_jobs)
            )
    for session, job in jobs:
        sim = sims[project[session]]
        seen = ever.get(job.uid, set())
        existing = {
            i["id"]: i for i in sim.world.images.values() if i["labels"].get(JOB_LABEL) == job.uid
        }
        outcome.images += len(seen)
        where = f"seed {outcome.seed} job {job.id} ({session.name}, {job.server_name})"
        if len(seen) > 1:
            outcome.duplicates += 1
            outcome.problems.append(f"{where}: {len(seen)} images {sorted(seen)}")
        if job.power_error:
            outcome.problems.append(f"{where}: {job.power_error}")
        if job.active:
            outcome.stuck += 1
            outcome.problems.append(f"{where}: still {job.state.value} ({job.note})")
        elif job.state == JobState.SUCCEEDED:
            image = existing.get(job.image_id)
            if image is None or image["status"] != "available" or seen != {job.image_id}:
                outcome.false_successes += 1
                outcome.problems.append(
                    f"{where}: succeeded with {job.image_id}, its images {sorted(seen)}"
                )
        elif job.state == JobState.FAILED and not (
            # Hetzner's action failed (the fault `action_failed`): its image went with it
            job.error_code == "action_failed"
            or (job.error_code == "image_gone" and seen)
            # a consistent snapshot of a server whose OS ignored ACPI (no --force-poweroff)
            or job.error_code == "shutdown_timeout"
        ):
            outcome.lost += 1
            outcome.problems.append(
                f"{where}: failed ({job.error_code}: {job.error_message}) for no good reason"
            )
        if not job.active and job.state != JobState.SUCCEEDED and existing:
            outcome.unreported += 1
            outcome.problems.append(
                f"{where}: {job.state.value} ({job.error_code}: {job.error_message}) "
                f"but its image {sorted(existing)} exists"
            )
    for session, record in recorded.items():
        times = sorted(record.times)
        budget = session.budget
        rate = budget.rate() if not budget.throttled else budget.rate() * 4
        bound = 60 * rate + budget.capacity() + 5  # a tick in flight, a forced poll
        busiest = 0
        left = 0
        for right, moment in enumerate(times):
            while times[left] <= moment - 60:
                left += 1
            busiest = max(busiest, right - left + 1)
        span = max(times[-1] - times[0], 3600.0) if times else 3600.0
        per_hour = len(times) * 3600.0 / span
        hour_bound = 3600 * rate + budget.capacity() * 3600.0 / span
        outcome.max_per_minute = max(outcome.max_per_minute, busiest)
        outcome.per_minute_bound = max(outcome.per_minute_bound, bound)
        outcome.per_hour = max(outcome.per_hour, per_hour)
        outcome.per_hour_bound = max(outcome.per_hour_bound, hour_bound)
        if busiest > bound:
            outcome.problems.append(
                f"seed {outcome.seed} {session.name}: {busiest} requests in a minute > {bound:.0f}"
            )
        if per_hour > hour_bound:
            outcome.problems.append(
                f"seed {outcome.seed} {session.name}: {per_hour:.0f}/h > {hour_bound:.0f}/h"
            )
