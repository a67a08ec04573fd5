"""Consistent snapshots: shut down (ACPI), wait for `off`, snapshot, power on again —
every path through the job engine against the simulator, through the real hcloud SDK.
A server the job turned off is on again at the end, whatever happened in between."""

from __future__ import annotations

import pytest

from hsnap_tui.core.jobs import JOB_LABEL, JobState, LockPolicy
from tests.test_core_jobs import LABELS, Rig

NAME = "web-prod-01"


def power_posts(sim) -> list[str]:
    """The mutating requests on servers, as `command status`, in order."""
    return [
        f"{r['path'].rsplit('/', 1)[1]} {r['status']}"
        for r in sim.requests()
        if r["method"] == "POST" and "/actions/" in r["path"]
    ]


def status(sim, server_id: int) -> str:
    return sim.world.servers[server_id]["status"]


def submit(rig: Rig, name: str = NAME, **options):
    jobs, refused = rig.session.submit(
        [rig.server(name)], "{server}-consistent", LABELS, LockPolicy.WAIT, None, **options
    )
    assert not refused
    return jobs[0]


def run(rig: Rig, limit: int = 400, advance: float = 5.0) -> list[str]:
    """Tick until no job is active; the distinct steps the job showed, in order."""
    steps: list[str] = []
    for _ in range(limit):
        jobs = rig.engine.jobs()
        for job in jobs:
            if not steps or steps[-1] != job.step_text:
                steps.append(job.step_text)
        if not rig.engine.active_jobs():
            return steps
        rig.tick(advance)
    raise AssertionError(f"the job did not end: {rig.engine.jobs()}")


def first_step(rig: Rig) -> None:
    """Tick until the job has acted on a server list read after it was queued (the
    slow lane, asked for by the job, comes within MIN_SLOW_GAP)."""
    for _ in range(30):
        rig.tick(2)
        job = rig.engine.jobs()[-1]
        if job.note != "checking the server's status":
            return
    raise AssertionError("the job never read the server list")


def images_of(sim, job) -> list[dict]:
    return [i for i in sim.world.images.values() if i["labels"].get(JOB_LABEL) == job.uid]


def test_normal_path_shuts_down_snapshots_and_powers_on(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.clear_requests()
    submit(rig, shutdown=True)
    steps = run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED, job
    assert steps == ["queued", "shutting down", "snapshotting", "starting", "succeeded"]
    assert power_posts(sim) == ["shutdown 201", "create_image 201", "poweron 201"]
    assert status(sim, server_id) == "running"
    made = images_of(sim, job)
    assert [i["id"] for i in made] == [job.image_id] and made[0]["status"] == "available"
    assert job.powered_on and job.power_error is None
    assert rig.events[-1].message.endswith("(powered on again)")
    # the snapshot was taken while the server was off
    log = sim.requests()
    create = next(r for r in log if r["path"].endswith("/create_image"))
    reads = [r for r in log if r["path"] == "/v1/servers" and r["time"] < create["time"]]
    assert reads, "waiting for off reads the server list"
    # waiting for `off` read the fleet's list, never the server alone
    assert not any(r["path"] == f"/v1/servers/{server_id}" for r in log)
    # the audit log has every mutating request
    entries = rig.audit.recent()
    assert [e.path.rsplit("/", 1)[1] for e in entries] == [
        "shutdown",
        "create_image",
        "poweron",
    ]


def test_a_server_off_at_the_start_stays_off(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.world.servers[server_id]["status"] = "off"
    rig.refresher.request_full()
    rig.tick(1)
    sim.clear_requests()
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.stayed_off and not job.powered_on
    assert power_posts(sim) == ["create_image 201"]
    assert status(sim, server_id) == "off"


def test_acpi_ignored_fails_after_the_timeout_and_the_server_keeps_running(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.set_server(server_id, acpi=False)
    sim.clear_requests()
    submit(rig, shutdown=True, shutdown_timeout=120)
    run(rig, advance=10)
    job = rig.job(NAME)
    assert job.state == JobState.FAILED and job.error_code == "shutdown_timeout"
    assert "did not shut down within 2 min" in job.error_message
    assert "--force-poweroff" in job.error_message
    assert status(sim, server_id) == "running"
    assert images_of(sim, job) == []
    assert "create_image 201" not in power_posts(sim)
    # poweron to be sure (it may have been on its way down); it was running all along
    assert power_posts(sim) == ["shutdown 201", "poweron 201"]
    assert job.power_error is None and not job.powered_on
    assert job.note.endswith("it keeps running")


def test_acpi_ignored_with_force_poweroff_powers_off_hard(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.set_server(server_id, acpi=False)
    sim.clear_requests()
    submit(rig, shutdown=True, force_poweroff=True, shutdown_timeout=60)
    steps = run(rig, advance=10)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED, job
    assert "powering off" in steps
    posts = power_posts(sim)
    assert posts[0] == "shutdown 201" and posts[-1] == "poweron 201"
    assert posts.index("poweroff 201") < posts.index("create_image 201")
    assert posts.count("create_image 201") == 1
    assert status(sim, server_id) == "running"
    assert len(images_of(sim, job)) == 1


def test_a_failed_snapshot_action_powers_the_server_on_again(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault("action_failed", path_prefix=f"/v1/servers/{server_id}/actions/create_image")
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.FAILED and job.error_code == "action_failed"
    assert job.powered_on
    assert status(sim, server_id) == "running"
    assert power_posts(sim)[-1] == "poweron 201"
    assert "(powered on again)" in rig.events[-1].message


def test_cancel_while_off_powers_on_and_sends_no_snapshot(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.set_server(server_id, shutdown_seconds=10)
    submit(rig, shutdown=True)
    for _ in range(30):
        rig.tick(2)
        if status(sim, server_id) == "stopping":
            break
    # another tool locks the server while its OS shuts down: once off, the job waits
    sim.start_action(server_id, "change_protection", 60)
    for _ in range(10):
        rig.tick(2)
        if rig.job(NAME).state != JobState.SHUTTING_DOWN:
            break
    job = rig.job(NAME)
    assert job.step_text == "off" and job.state == JobState.WAITING, job
    assert rig.engine.cancel(job.id) is None
    assert rig.job(NAME).step_text == "starting"
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.CANCELLED and job.powered_on
    assert "create_image 201" not in power_posts(sim)
    assert status(sim, server_id) == "running"


def test_cancel_while_shutting_down_powers_on(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    submit(rig, shutdown=True)
    first_step(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SHUTTING_DOWN
    assert rig.engine.cancel(job.id) is None
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.CANCELLED and job.power_error is None
    assert power_posts(sim) == ["shutdown 201", "poweron 201"]
    assert status(sim, server_id) == "running"
    assert images_of(sim, job) == []


def test_a_lost_shutdown_answer_is_asked_again(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault("drop", path_prefix=f"/v1/servers/{server_id}/actions/shutdown")
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.powered_on
    posts = power_posts(sim)
    assert posts[:2] == ["shutdown None", "shutdown 201"]
    assert posts.count("create_image 201") == 1
    assert status(sim, server_id) == "running"


def test_a_refused_poweron_is_said_loudly(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault(
        "error",
        path_prefix=f"/v1/servers/{server_id}/actions/poweron",
        status=403,
        code="forbidden",
        message="insufficient permissions",
    )
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED  # the snapshot itself is fine …
    assert job.power_error and "forbidden" in job.power_error  # … the server is not
    assert status(sim, server_id) == "off"
    message = rig.events[-1].message
    assert f"{NAME} IS STILL OFF" in message and "forbidden" in message


def test_a_locked_shutdown_waits_without_touching_the_server(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault(
        "error",
        path_prefix=f"/v1/servers/{server_id}/actions/shutdown",
        status=423,
        code="locked",
        message="server is locked",
    )
    submit(rig, shutdown=True)
    first_step(rig)
    job = rig.job(NAME)
    assert job.state == JobState.WAITING and not job.turned_off
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.powered_on
    assert power_posts(sim) == [
        "shutdown 423",
        "shutdown 201",
        "create_image 201",
        "poweron 201",
    ]


@pytest.mark.parametrize("policy", [LockPolicy.SKIP, LockPolicy.WAIT])
def test_a_server_that_is_starting_is_waited_for_or_skipped(sim, tmp_path, policy):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.world.servers[server_id]["status"] = "starting"
    rig.refresher.request_full()
    rig.tick(1)
    rig.session.submit([rig.server(NAME)], "{server}-c", LABELS, policy, None, shutdown=True)
    first_step(rig)
    job = rig.job(NAME)
    if policy == LockPolicy.SKIP:
        assert job.state == JobState.SKIPPED and job.blocking == "the server is starting"
        assert power_posts(sim) == []
        return
    assert job.state == JobState.WAITING and job.note == "waiting: the server is starting"
    sim.world.servers[server_id]["status"] = "running"
    run(rig)
    assert rig.job(NAME).state == JobState.SUCCEEDED


def test_a_failing_poweron_is_tried_again_until_the_server_is_on(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault("action_failed", count=2, path_prefix=f"/v1/servers/{server_id}/actions/poweron")
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.powered_on and job.power_error is None
    assert power_posts(sim)[-3:] == ["poweron 201", "poweron 201", "poweron 201"]
    assert status(sim, server_id) == "running"


def test_a_late_shutdown_landing_after_poweron_is_powered_on_again(make_sim, tmp_path):
    """Its first shutdown times out and lands 100 s later — after the job (whose second
    shutdown failed) has powered the server on. The job watches for that and powers it
    on again: the server is running at the end."""
    sim = make_sim()
    rig = Rig(sim, tmp_path, timeout=0.2)
    server_id = rig.server(NAME).id
    shutdown = f"/v1/servers/{server_id}/actions/shutdown"
    sim.add_fault("latency", count=1, seconds=100, path_prefix=shutdown)
    submit(rig, shutdown=True)
    first_step(rig)
    assert "did not answer in time" in rig.job(NAME).note
    sim.add_fault("action_failed", count=1, path_prefix=shutdown)  # the second one fails
    steps = run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.FAILED and job.error_code == "action_failed"
    assert "starting" in steps
    assert status(sim, server_id) == "running"
    posts = power_posts(sim)
    # the late one landed (201) after the first poweron; the job powered on again
    assert posts.count("poweron 201") == 2, posts
    assert "create_image 201" not in posts


# ---- from the attack on the first version -------------------------------------------


def test_cancel_while_the_shutdown_request_is_in_flight_still_ends_with_it_on(make_sim, tmp_path):
    """The shutdown lands 40 s late; the operator cancels meanwhile. The job powers
    on, then watches for its own late shutdown and powers on again."""
    sim = make_sim()
    rig = Rig(sim, tmp_path, timeout=0.2)
    server_id = rig.server(NAME).id
    sim.add_fault(
        "latency", count=1, seconds=40, path_prefix=f"/v1/servers/{server_id}/actions/shutdown"
    )
    submit(rig, shutdown=True)
    first_step(rig)  # a fresh server list, then the shutdown goes out (and times out)
    job = rig.job(NAME)
    assert job.power_sends >= 1, job
    assert rig.engine.cancel(job.id) is None
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.CANCELLED and job.power_error is None
    assert status(sim, server_id) == "running", power_posts(sim)
    assert "create_image 201" not in power_posts(sim)


def test_stop_sending_cancels_a_job_whose_lost_request_made_nothing(sim, tmp_path):
    """A headless run stopping (Ctrl-C): a job whose create_image was lost and made
    nothing ends cancelled instead of sending again, and its server is on again."""
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.add_fault("drop", path_prefix=f"/v1/servers/{server_id}/actions/create_image")
    submit(rig, shutdown=True)
    for _ in range(40):
        rig.tick(5)
        if rig.job(NAME).state == JobState.UNKNOWN:
            break
    assert rig.job(NAME).state == JobState.UNKNOWN
    rig.engine.stop_sending()
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.CANCELLED
    assert power_posts(sim).count("create_image None") == 1
    assert "create_image 201" not in power_posts(sim)
    assert status(sim, server_id) == "running"


def test_starting_ends_when_the_action_poll_keeps_failing(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    submit(rig, shutdown=True)
    for _ in range(200):
        rig.tick(5)
        if rig.job(NAME).state == JobState.STARTING and rig.job(NAME).power_action_id:
            break
    sim.add_fault("http_500", count=10_000, path_prefix="/v1/actions")
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.power_error is None
    assert status(sim, server_id) == "running"


def test_a_server_that_went_off_after_the_last_list_read_stays_off(sim, tmp_path):
    rig = Rig(sim, tmp_path)
    server_id = rig.server(NAME).id
    sim.world.servers[server_id]["status"] = "off"  # the session's list says running
    submit(rig, shutdown=True)
    run(rig)
    job = rig.job(NAME)
    assert job.state == JobState.SUCCEEDED and job.stayed_off
    assert power_posts(sim) == ["create_image 201"]
    assert status(sim, server_id) == "off"
