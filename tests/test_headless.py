"""The headless commands through their real entry point, `main(argv)`, against the
simulator over HTTP — on the simulator's clock: every wait of a command moves it."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest

from hsnap_tui.cli import main
from hsnap_tui.core.audit import default_audit_path
from hsnap_tui.headless.common import Runtime

MAX_WAITS = 20_000  # a command that never ends fails the test instead of hanging it


@dataclass
class Ran:
    code: int
    out: str
    err: str
    waits: int

    def json(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run(sim, *argv: str, interrupt_after: float | None = None, on_wait=None) -> Ran:
    """`hsnap-tui ARGV` in this process; `interrupt_after`: simulated seconds after which
    Ctrl-C is pressed (the stop the SIGINT handler sets); `on_wait(elapsed)`: called at
    every wait, after the clock moved."""
    out, err = io.StringIO(), io.StringIO()
    start = sim.clock.now()
    waits = 0
    runtime: Runtime

    def sleep(seconds: float) -> None:
        nonlocal waits
        waits += 1
        assert waits < MAX_WAITS, "the command does not end"
        sim.advance(seconds)
        if on_wait is not None:
            on_wait(sim.clock.now() - start)
        if interrupt_after is not None and sim.clock.now() - start >= interrupt_after:
            runtime.stop.set()

    runtime = Runtime(stdout=out, stderr=err, clock=sim.clock.now, now=sim.clock.now, sleep=sleep)
    code = main(list(argv), runtime=runtime)
    return Ran(code, out.getvalue(), err.getvalue(), waits)


def server_id(sim, name: str) -> int:
    return next(s["id"] for s in sim.world.servers.values() if s["name"] == name)


def job_images(sim, name: str) -> list[dict]:
    """Images a job made of this server (they carry the job label)."""
    sid = server_id(sim, name)
    return [
        i
        for i in sim.world.images.values()
        if (i.get("created_from") or {}).get("id") == sid and "hsnap-job" in (i.get("labels") or {})
    ]


def posts(sim) -> list[dict]:
    return [
        r
        for r in sim.requests()
        if r["method"] == "POST" and r["path"].endswith("/actions/create_image")
    ]


def mutating(sim) -> list[dict]:
    return [r for r in sim.requests() if r["method"] in ("POST", "PUT", "DELETE")]


# ---- snapshot -----------------------------------------------------------------------


def test_snapshot_waits_for_another_tools_lock_then_makes_exactly_one_image(env):
    sim = env
    locked = server_id(sim, "web-prod-01")
    action = sim.start_action(locked, "rebuild", 300)
    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01")
    assert ran.code == 0, ran.err
    assert f"web-prod-01  waiting: #{action['id']} rebuild" in ran.err
    lines = ran.out.splitlines()
    assert any(line.startswith("web-prod-01  succeeded  image ") for line in lines)
    assert any(line.startswith("db-prod-01   succeeded  image ") for line in lines)
    assert lines[-1].startswith("2 snapshot jobs: 2 succeeded")
    assert len(job_images(sim, "web-prod-01")) == 1
    assert len(job_images(sim, "db-prod-01")) == 1
    assert len(posts(sim)) == 2  # the locked one waited: no 423 to retry
    # the POST went out after the other tool's action had ended
    web_post = next(p for p in posts(sim) if f"/servers/{locked}/" in p["path"])
    assert web_post["time"] >= action_end(sim, action["id"])
    assert all(len(line) <= 80 for line in lines)


def action_end(sim, action_id: int) -> float:
    action = sim.world.actions[action_id]
    assert action.finished is not None
    return action.finished


def test_if_locked_skip_names_the_blocker_and_exits_1(env):
    sim = env
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 300)
    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01", "--if-locked", "skip")
    assert ran.code == 1
    assert f"web-prod-01  skipped    locked: #{action['id']} rebuild" in ran.out
    assert "1 succeeded, 1 skipped" in ran.out.splitlines()[-1]
    assert job_images(sim, "web-prod-01") == []
    assert len(posts(sim)) == 1


def test_a_post_dropped_after_processing_makes_exactly_one_image(env):
    sim = env
    sim.add_fault("drop", path_prefix="/v1/servers", method="POST", after=True)
    ran = run(sim, "snapshot", "db-prod-01", "--json")
    assert ran.code == 0, ran.err
    jobs = [o for o in ran.json() if o["type"] == "job"]
    images = job_images(sim, "db-prod-01")
    assert len(posts(sim)) == 1 and len(images) == 1
    assert jobs[0]["state"] == "succeeded" and jobs[0]["image_id"] == images[0]["id"]


def test_json_lines_one_object_per_job_then_a_summary(env):
    sim = env
    ran = run(sim, "snapshot", "-l", "env=prod", "--json", "--label", "purpose=nightly")
    assert ran.code == 0, ran.err
    objects = ran.json()
    jobs, summary = objects[:-1], objects[-1]
    prod = sorted(s["name"] for s in sim.world.servers.values() if s["labels"].get("env") == "prod")
    assert sorted(j["server"] for j in jobs) == prod
    for job in jobs:
        assert set(job) >= {
            "server",
            "server_id",
            "state",
            "image_id",
            "action_id",
            "description",
            "request_id",
            "error_code",
            "error",
        }
        assert job["state"] == "succeeded" and job["error"] is None
        image = sim.world.images[job["image_id"]]
        assert image["description"] == job["description"]
        assert image["labels"]["managed-by"] == "hsnap"
        assert image["labels"]["purpose"] == "nightly"
        assert len(job["request_id"]) == 16
        # how long Hetzner took, not when a poll noticed
        action = sim.world.actions[job["action_id"]]
        assert job["seconds"] == round(action.finished - action.started, 1)
    assert summary["type"] == "summary"
    assert (summary["jobs"], summary["succeeded"], summary["exit_code"]) == (
        len(prod),
        len(prod),
        0,
    )
    assert summary["requests"] == len(sim.requests())


def test_no_wait_returns_once_accepted_with_the_action_ids(env):
    sim = env
    ran = run(sim, "snapshot", "db-prod-01", "web-prod-01", "--no-wait")
    assert ran.code == 0, ran.err
    accepted = [line for line in ran.out.splitlines() if "accepted" in line]
    assert len(accepted) == 2
    running = {a.id for a in sim.world.actions.values() if a.status == "running"}
    for line in accepted:
        action_id = int(line.split("action ")[1].split()[0])
        assert action_id in running  # Hetzner is still making it
    assert len(posts(sim)) == 2


def test_every_snapshot_request_is_in_the_audit_log(env):
    sim = env
    run(sim, "snapshot", "db-prod-01")
    entries = [json.loads(line) for line in default_audit_path().read_text().splitlines()]
    assert [e["method"] for e in entries] == ["POST"]
    assert entries[0]["server"] == "db-prod-01" and entries[0]["outcome"].startswith("201")
    assert sim.token not in default_audit_path().read_text()


def test_ctrl_c_while_waiting_cancels_what_was_not_sent_and_exits_130(env):
    sim = env
    sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 3000)
    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01", interrupt_after=20)
    assert ran.code == 130
    assert "web-prod-01  cancelled  nothing was sent" in ran.out
    job = next(j for j in ran.out.splitlines() if j.startswith("db-prod-01"))
    image = job_images(sim, "db-prod-01")[0]
    assert job.startswith(f"db-prod-01   running    image {image['id']}  action ")
    assert "Hetzner is still finishing 1 snapshot;" in ran.err
    assert len(posts(sim)) == 1 and job_images(sim, "web-prod-01") == []


def test_rate_limit_budget_keeps_polling_batched(env):
    """Ten jobs: one POST each, progress read for all of them in one call per tick."""
    sim = env
    names = sorted(s["name"] for s in sim.world.servers.values())[:10]
    ran = run(sim, "snapshot", *names)
    assert ran.code == 0, ran.err
    log = sim.requests()
    per_server = [r for r in log if r["path"].count("/") > 3 and r["method"] == "GET"]
    assert per_server == []  # no GET /servers/{id}/…, no GET /images/{id}
    polls = [r for r in log if r["path"] == "/v1/actions"]
    assert all(len(r["query"]["id"]) <= 10 for r in polls)
    assert len(posts(sim)) == 10


# ---- bad input: exit 2, nothing sent --------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot"], "say which servers"),
        (["snapshot", "web-prod-01", "--all"], "one of them"),
        (["snapshot", "-l", "env in (a"], "-l"),
        (["snapshot", "--all", "--description", "{nope}"], "unknown placeholder"),
        (["snapshot", "--all", "--label", "bad key=x"], "--label"),
        (["snapshot", "--all", "--label", "hsnap-job=1"], "hsnap-job"),
        (["snapshot", "--all", "--read-only"], "--read-only"),
        (["--read-only", "prune", "--keep-last", "3", "--apply"], "--read-only"),
        (["prune"], "keep rule"),
        (["servers", "-l", "a in (b"], "-l"),
    ],
)
def test_bad_input_is_exit_2_with_no_request_sent(env, argv, message):
    sim = env
    ran = run(sim, *argv)
    assert ran.code == 2
    assert message in ran.err
    assert "Traceback" not in ran.err + ran.out
    assert sim.requests() == []


def test_an_unknown_server_is_exit_2_before_anything_changes(env):
    sim = env
    ran = run(sim, "snapshot", "web-prod-01", "web-prd-02")
    assert ran.code == 2
    assert "no server named web-prd-02" in ran.err
    assert mutating(sim) == []
    # only the read that found out: the server list and the locks
    assert {r["path"] for r in sim.requests()} <= {"/v1/servers", "/v1/servers/actions"}


def test_no_token_is_exit_2_with_no_request(sim, monkeypatch):
    ran = run(sim, "snapshot", "--all")
    assert ran.code == 2
    assert "HCLOUD_TOKEN" in ran.err
    assert sim.requests() == []


def test_a_rejected_token_is_exit_2_and_never_shown(sim, monkeypatch):
    monkeypatch.setenv("HCLOUD_TOKEN", "not-the-token-5ecret")
    monkeypatch.setenv("HCLOUD_ENDPOINT", sim.url)
    ran = run(sim, "snapshot", "--all")
    assert ran.code == 2
    assert "rejected the token" in ran.err
    assert "5ecret" not in ran.err + ran.out
    assert mutating(sim) == []
    assert len(ran.err.strip().splitlines()) == 1


def test_an_unreachable_api_ends_in_one_line_and_exit_1(sim, monkeypatch):
    monkeypatch.setenv("HCLOUD_TOKEN", sim.token)
    monkeypatch.setenv("HCLOUD_ENDPOINT", sim.url)
    sim.add_fault("http_503", count=1000)
    ran = run(sim, "servers")
    assert ran.code == 1
    assert ran.err.strip().splitlines()[-1].startswith("hsnap-tui: could not read the server list")
    assert "Traceback" not in ran.err


# ---- prune ----------------------------------------------------------------------------


def managed(sim) -> dict[int, list[dict]]:
    by_server: dict[int, list[dict]] = {}
    for image in sim.world.images.values():
        if image["type"] == "snapshot" and image["labels"].get("managed-by") == "hsnap":
            by_server.setdefault(image["created_from"]["id"], []).append(image)
    return by_server


def test_prune_dry_run_prints_the_plan_and_sends_no_delete(env):
    sim = env
    ran = run(sim, "prune", "--keep-last", "1")
    assert ran.code == 0, ran.err
    expected = sum(
        max(
            0,
            len([i for i in imgs if i["status"] == "available" and not i["protection"]["delete"]])
            - 1,
        )
        for imgs in managed(sim).values()
    )
    assert expected > 0
    assert f"Would delete {expected} snapshots" in ran.out
    assert "--apply" in ran.out
    assert mutating(sim) == []
    assert all(len(line) <= 80 for line in ran.out.splitlines())


def test_prune_apply_deletes_exactly_the_planned_ones(env):
    sim = env
    dry = run(sim, "prune", "--keep-last", "1", "--json")
    planned = {o["snapshot_id"] for o in dry.json() if o.get("action") == "delete"}
    sim.clear_requests()
    ran = run(sim, "prune", "--keep-last", "1", "--apply", "--json")
    assert ran.code == 0, ran.err
    deletes = {int(r["path"].rsplit("/", 1)[1]) for r in mutating(sim)}
    assert all(r["method"] == "DELETE" for r in mutating(sim))
    assert deletes == planned
    summary = ran.json()[-1]
    assert (summary["deleted"], summary["failed"], summary["exit_code"]) == (len(planned), 0, 0)
    for images in managed(sim).values():
        available = [
            i for i in images if i["status"] == "available" and not i["protection"]["delete"]
        ]
        assert len(available) <= 1


def test_prune_apply_rereads_and_deletes_the_recomputed_plan(env, monkeypatch):
    """A snapshot deleted by someone else between the plan and --apply: not sent."""
    from hsnap_tui.core import session as session_module

    sim = env
    first_read = True
    original = session_module.Session.fresh_snapshots

    def fresh(self, selector=None):
        nonlocal first_read
        result = original(self, selector)
        if first_read:
            first_read = False
            victim = next(
                i
                for imgs in managed(sim).values()
                for i in sorted(imgs, key=lambda i: i["created"])[:1]
                if len(imgs) > 1
            )
            with sim.lock:
                sim.world.images.pop(victim["id"])
        return result

    monkeypatch.setattr(session_module.Session, "fresh_snapshots", fresh)
    ran = run(sim, "prune", "--keep-last", "1", "--apply")
    assert ran.code == 0, ran.err
    assert "changed since the plan was made" in ran.out
    assert "no longer deleted" in ran.out
    assert all(r["status"] == 204 for r in mutating(sim))


# ---- action ---------------------------------------------------------------------------


def test_action_running_shows_the_inspector_as_text(env):
    sim = env
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 300)
    sim.advance(60)
    ran = run(sim, "action", str(action["id"]))
    assert ran.code == 0, ran.err
    assert f"#{action['id']}  rebuild" in ran.out
    assert "running" in ran.out and "20%" in ran.out
    assert f"server {server_id(sim, 'web-prod-01')}  web-prod-01" in ran.out
    assert "1m 00s so far" in ran.out


def test_action_follow_until_it_ends(env):
    sim = env
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 60)
    ran = run(sim, "action", str(action["id"]), "--follow")
    assert ran.code == 0
    assert "success" in ran.out and "Finished  2026-11-26" in ran.out


def test_action_failed_shows_the_error(env):
    sim = env
    fail = {"code": "action_failed", "message": "disk full"}
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 30, fail=fail)
    ran = run(sim, "action", str(action["id"]), "--follow", "--json")
    assert ran.code == 1  # followed to an error
    last = ran.json()[-1]
    assert (last["status"], last["error_code"], last["error"]) == (
        "error",
        "action_failed",
        "disk full",
    )


def test_action_unknown_id_is_exit_1(env):
    ran = run(env, "action", "424242")
    assert ran.code == 1
    assert "hsnap-tui: there is no action 424242 in this project." in ran.err


@pytest.mark.parametrize(
    "text",
    [
        "f21b9dc9d1535310",
        "cannot perform operation because server is locked (locked, f21b9dc9d1535310)",
    ],
)
def test_action_correlation_id_gets_the_explanation(env, text):
    sim = env
    ran = run(sim, "action", text)
    assert ran.code == 2
    assert "f21b9dc9d1535310 is a request ID" in ran.out
    assert all(len(line) <= 80 for line in ran.out.splitlines())
    assert sim.requests() == []


# ---- servers --------------------------------------------------------------------------


def test_servers_json_lists_every_server_with_its_lock(env):
    sim = env
    locked = server_id(sim, "web-prod-01")
    action = sim.start_action(locked, "rebuild", 300)
    ran = run(sim, "servers", "--json")
    assert ran.code == 0
    objects = ran.json()
    assert sorted(o["id"] for o in objects) == sorted(sim.world.servers)
    web = next(o for o in objects if o["id"] == locked)
    assert web["locked"] and web["lock"]["actions"][0]["id"] == action["id"]
    paths = {r["path"] for r in sim.requests()}
    assert paths == {"/v1/servers", "/v1/servers/actions", "/v1/images"}


def test_servers_table_fits_80_columns_and_names_the_lock(env):
    sim = env
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 300)
    ran = run(sim, "servers", "-l", "env=prod")
    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].split() == ["Name", "Status", "Type", "Loc", "IP", "Last", "snap"]
    assert f"  locked: #{action['id']} rebuild 0%" in lines
    assert all(len(line) <= 80 for line in lines)
    prod = [s for s in sim.world.servers.values() if s["labels"].get("env") == "prod"]
    assert len(lines) == 1 + len(prod) + 1  # header, servers, the lock under its server
    assert ran.err == f"{len(prod)} of {len(sim.world.servers)} servers, 1 locked\n"


# ---- a real process and a real Ctrl-C -------------------------------------------------


def test_sigint_during_a_wait_in_a_real_process(make_sim, tmp_path):
    """`hsnap-tui snapshot` as cron runs it, interrupted by SIGINT while one server
    waits for another tool's lock and the other's snapshot is being made."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sim = make_sim()  # a stopped clock: the lock and the snapshot stay as they are
    sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 3000)
    env = {
        **os.environ,
        "HCLOUD_TOKEN": sim.token,
        "HCLOUD_ENDPOINT": sim.url,
        "HSNAP_STATE_DIR": str(tmp_path / "state"),
        "HSNAP_LOG_DIR": str(tmp_path / "logs"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hsnap_tui", "snapshot", "web-prod-01", "db-prod-01"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not posts(sim):  # the unlocked server's snapshot has been asked for
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no create_image within 30 s"
            time.sleep(0.05)
        time.sleep(0.3)  # back in its wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "web-prod-01  cancelled  nothing was sent" in out
    assert "db-prod-01   running    image " in out
    assert "Hetzner is still finishing 1 snapshot;" in err
    assert "Traceback" not in err
    assert "2 snapshot jobs: 1 running, 1 cancelled" in out
    assert len(posts(sim)) == 1
    assert sim.token not in out + err


def test_a_lock_that_outlasts_lock_timeout_skips_the_server(env):
    sim = env
    action = sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 7200)
    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01", "--lock-timeout", "600")
    assert ran.code == 1
    line = next(x for x in ran.out.splitlines() if x.startswith("web-prod-01"))
    assert line.startswith(f"web-prod-01  skipped    locked for 10m 00s: #{action['id']} rebuild")
    assert job_images(sim, "web-prod-01") == [] and len(job_images(sim, "db-prod-01")) == 1


def test_action_finished_shows_start_end_and_duration(env):
    sim = env
    action = sim.start_action(server_id(sim, "db-prod-01"), "poweroff", 90)
    sim.advance(600)
    ran = run(sim, "action", f"#{action['id']}")
    assert ran.code == 0
    assert "   Status  success" in ran.out
    assert "Duration  1m 30s\n" in ran.out
    assert "Finished  2026-11-26 12:01:30 UTC  (8 minutes ago)" in ran.out


def test_servers_by_id_labels_replace_defaults_and_hints_ignore_case(env):
    sim = env
    db = server_id(sim, "db-prod-01")
    ran = run(sim, "snapshot", str(db), "--label", "managed-by=ops", "--json")
    assert ran.code == 0, ran.err
    job = ran.json()[0]
    assert job["server"] == "db-prod-01"
    assert sim.world.images[job["image_id"]]["labels"]["managed-by"] == "ops"
    ran = run(sim, "snapshot", "DB-PROD-01")
    assert ran.code == 2
    assert "no server named DB-PROD-01 (did you mean db-prod-01?)" in ran.err
    ran = run(sim, "snapshot", "db-prod-01", "--label", "Bad Key=x")
    assert ran.code == 2 and "--label 'Bad Key=x': label key" in ran.err


# ---- found by attacking the commands ------------------------------------------------


def test_create_image_refused_for_30_minutes_ends_the_run(env):
    """Every create_image answered 503 while reads work: the job backs off, then ends
    failed after 30 minutes instead of sending for ever."""
    sim = env
    sim.add_fault("http_503", count=100_000, path_prefix="/v1/servers/", method="POST")
    ran = run(sim, "snapshot", "db-prod-01")
    assert ran.code == 1
    flat = " ".join(ran.out.split())  # the result line wraps at 80 columns
    assert "create_image has not gone through for 30 minutes" in flat
    assert "(last: service is temporarily unavailable)" in flat
    assert 10 <= len(posts(sim)) <= 40  # backing off to a minute, not every tick


def test_json_reports_jobs_that_never_started(env):
    sim = env
    sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 3000)
    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01", "--if-locked", "skip", "--json")
    assert ran.code == 1, ran.err
    objects = ran.json()
    skipped = next(o for o in objects if o["server"] == "web-prod-01")
    assert (skipped["state"], skipped["seconds"], skipped["started"]) == ("skipped", None, None)
    assert objects[-1]["type"] == "summary" and objects[-1]["skipped"] == 1


def test_a_second_ctrl_c_still_says_what_hetzner_is_finishing(env):
    sim = env
    sim.start_action(server_id(sim, "web-prod-01"), "rebuild", 3000)

    def second_ctrl_c(elapsed: float) -> None:
        if elapsed >= 20:
            raise KeyboardInterrupt  # pressed twice: the handler raises

    ran = run(sim, "snapshot", "web-prod-01", "db-prod-01", on_wait=second_ctrl_c)
    assert ran.code == 130
    assert "web-prod-01  cancelled  nothing was sent" in ran.out
    assert "db-prod-01   running    image " in ran.out
    assert "Hetzner is still finishing 1 snapshot;" in ran.err


def test_ctrl_c_after_a_lost_answer_names_the_label_to_look_for(env):
    """The first POST's answer is lost (it lands 300 s late); another tool then locks
    the server; Ctrl-C while the job waits must not say `nothing was sent`."""
    sim = env
    db = server_id(sim, "db-prod-01")
    sim.add_fault("latency", 1, f"/v1/servers/{db}/", method="POST", seconds=300)
    locked = []

    def lock(elapsed: float) -> None:
        if elapsed >= 60 and not locked:
            locked.append(sim.start_action(db, "rebuild", 200))

    ran = run(sim, "snapshot", "db-prod-01", interrupt_after=200, on_wait=lock)
    assert ran.code == 130
    flat = " ".join(ran.out.split())
    assert "db-prod-01 cancelled an earlier request may still make a snapshot" in flat
    assert job_images(sim, "db-prod-01") == []
    sim.advance(400)  # the late request lands: the label the run named finds its image
    image = job_images(sim, "db-prod-01")[0]
    assert f"look for the label hsnap-job={image['labels']['hsnap-job']}" in flat


def test_prune_apply_tries_a_transient_delete_failure_again(env):
    sim = env
    sim.add_fault("http_503", count=1, path_prefix="/v1/images/", method="DELETE")
    dry = run(sim, "prune", "--keep-last", "1", "--json")
    planned = {o["snapshot_id"] for o in dry.json() if o.get("action") == "delete"}
    ran = run(sim, "prune", "--keep-last", "1", "--apply")
    assert ran.code == 0, ran.err + ran.out
    assert f"Deleted {len(planned)} of {len(planned)} snapshots" in ran.out
    assert all(i not in sim.world.images for i in planned)


@pytest.mark.parametrize("token", ["abc\ndef", "tökén"])
def test_a_token_that_cannot_be_sent_is_a_setup_error(sim, monkeypatch, token):
    monkeypatch.setenv("HCLOUD_TOKEN", token)
    monkeypatch.setenv("HCLOUD_ENDPOINT", sim.url)
    ran = run(sim, "servers")
    assert ran.code == 2
    assert "copy it again" in ran.err and token not in ran.err
    assert sim.requests() == []


# ---- keep rules by period ---------------------------------------------------------------


def nightly(sim, name: str, days: int, label: str = "nightly") -> list[dict]:
    """A snapshot of `name` every night at 02:30 UTC for `days` days before the start."""
    server = sim.world.servers[server_id(sim, name)]
    made = []
    with sim.lock:
        for day in range(days, 0, -1):
            created = sim.clock.now() - day * 86400 + 9000  # 02:30 on that day
            made.append(
                sim.world.make_image(
                    server,
                    image_type="snapshot",
                    description=f"{name}-nightly-{day}",
                    labels={"managed-by": "hsnap", "schedule": label},
                    created=created,
                    image_size=4.0,
                )
            )
    return made


def test_prune_by_periods_keeps_what_the_rules_say(env):
    """A month of nightly snapshots, `--keep-daily 7 --keep-weekly 4 --keep-monthly 6`."""
    from hsnap_tui.core.keep import KeepRules
    from hsnap_tui.core.models import _ts
    from tests.test_keep import Snap, reference

    sim = env
    made = nightly(sim, "db-prod-01", 30)
    snaps = [Snap(i["id"], _ts(i["created"])) for i in made]
    expected = reference(snaps, KeepRules(daily=7, weekly=4, monthly=6))
    args = ("prune", "-l", "schedule=nightly", "--keep-daily", "7", "--keep-weekly", "4")
    ran = run(sim, *args, "--keep-monthly", "6", "--json")
    assert ran.code == 0, ran.err
    rows = [o for o in ran.json() if o["type"] == "plan"]
    assert {o["snapshot_id"] for o in rows if o["action"] == "keep"} == set(expected)
    for row in rows:
        if row["action"] == "keep":
            assert {r.split()[0] for r in row["rules"]} == expected[row["snapshot_id"]]
    assert len([o for o in rows if o["action"] == "delete"]) == 30 - len(expected)
    text = run(sim, *args, "--keep-monthly", "6")
    assert "Retention plan: keep daily 7, weekly 4, monthly 6 per server" in text.out
    assert "daily 2026-11-25" in text.out
    assert mutating(sim) == []


def test_failed_deletions_are_named_by_id_and_lines_fit_80_columns(env):
    sim = env
    sim.add_fault("http_500", count=100_000, path_prefix="/v1/images/", method="DELETE")
    dry = run(sim, "prune", "--keep-last", "2", "--json")
    planned = {o["snapshot_id"] for o in dry.json() if o.get("action") == "delete"}
    ran = run(sim, "prune", "--keep-last", "2", "--apply", "--json")
    assert ran.code == 1
    failed = [o for o in ran.json() if o["type"] == "delete_failed"]
    assert {o["snapshot_id"] for o in failed} == planned
    assert all(o["server"] and o["description"] for o in failed)
    rules = ("--keep-last", "1", "--keep-hourly", "1", "--keep-yearly", "1", "-l", "managed-by")
    text = run(sim, "prune", *rules, "--apply")
    assert text.code == 1
    assert all(len(line) <= 80 for line in (text.out + text.err).splitlines())
    ran = run(sim, "snapshot", "--all", "--if-locked", "skip")
    assert all(len(line) <= 80 for line in (ran.out + ran.err).splitlines())


# ---- consistent snapshots (--shutdown) ----------------------------------------------


def power_log(sim, name: str) -> list[str]:
    sid = server_id(sim, name)
    return [
        f"{r['path'].rsplit('/', 1)[1]} {r['status']}"
        for r in sim.requests()
        if r["method"] == "POST" and r["path"].startswith(f"/v1/servers/{sid}/actions/")
    ]


def test_snapshot_shutdown_turns_the_server_off_and_on_again(env):
    sim = env
    ran = run(sim, "snapshot", "web-prod-01", "--shutdown")
    assert ran.code == 0, ran.err
    assert power_log(sim, "web-prod-01") == ["shutdown 201", "create_image 201", "poweron 201"]
    assert sim.world.servers[server_id(sim, "web-prod-01")]["status"] == "running"
    assert len(job_images(sim, "web-prod-01")) == 1
    assert "succeeded" in ran.out and "powered on again" in ran.out
    # the steps, one line each on a non-terminal stderr
    for step in ("shutting down (ACPI)", "snapshotting", "starting: powering the server on"):
        assert step in ran.err, ran.err


def test_snapshot_shutdown_json_says_what_happened_to_the_power(env):
    sim = env
    off = server_id(sim, "api-prod-01")
    sim.world.servers[off]["status"] = "off"
    ran = run(sim, "snapshot", "web-prod-01", "api-prod-01", "--shutdown", "--json")
    assert ran.code == 0, ran.err
    jobs = {o["server"]: o for o in ran.json() if o["type"] == "job"}
    assert jobs["web-prod-01"]["powered_on"] and not jobs["web-prod-01"]["still_off"]
    assert jobs["api-prod-01"]["shutdown"] and not jobs["api-prod-01"]["powered_on"]
    assert power_log(sim, "api-prod-01") == ["create_image 201"]  # it was off: stays off
    assert sim.world.servers[off]["status"] == "off"


def test_snapshot_shutdown_ctrl_c_powers_the_server_on_before_quitting(env):
    sim = env
    ran = run(sim, "snapshot", "web-prod-01", "--shutdown", interrupt_after=40)
    assert ran.code == 130
    assert "powering on what this run shut down first: web-prod-01" in ran.err
    log = power_log(sim, "web-prod-01")
    assert log[0] == "shutdown 201" and log[-1] == "poweron 201"
    assert sim.world.servers[server_id(sim, "web-prod-01")]["status"] == "running"
    assert "STILL OFF" not in ran.out + ran.err


def test_snapshot_shutdown_second_ctrl_c_names_the_server_left_off(env):
    sim = env
    presses = 0

    def second_press(elapsed: float) -> None:
        nonlocal presses
        if elapsed >= 60 and presses == 0:
            presses = 1
        elif presses == 1 and elapsed >= 70:
            presses = 2
            raise KeyboardInterrupt  # what the handler does on a second Ctrl-C

    ran = run(
        sim, "snapshot", "web-prod-01", "--shutdown", interrupt_after=40, on_wait=second_press
    )
    assert ran.code == 130
    assert "web-prod-01 IS STILL OFF" in ran.err
    assert "hcloud server poweron web-prod-01" in ran.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--force-poweroff",), "--force-poweroff goes with --shutdown"),
        (("--shutdown", "--no-wait"), "--shutdown waits for its snapshots"),
    ],
)
def test_snapshot_shutdown_usage_errors(env, argv, message):
    ran = run(env, "snapshot", "web-prod-01", *argv)
    assert ran.code == 2 and message in ran.err
    assert mutating(env) == []


def test_snapshot_shutdown_acpi_ignored(env):
    sim = env
    sim.set_server(server_id(sim, "web-prod-01"), acpi=False)
    ran = run(sim, "snapshot", "web-prod-01", "--shutdown", "--shutdown-timeout", "60")
    assert ran.code == 1
    out = " ".join(ran.out.split())
    assert "shutdown_timeout" in out and "did not shut down within 1 min" in out
    assert "powered on" not in out
    assert power_log(sim, "web-prod-01") == ["shutdown 201", "poweron 201"]
    assert sim.world.servers[server_id(sim, "web-prod-01")]["status"] == "running"
    ran = run(
        sim,
        "snapshot",
        "web-prod-01",
        "--shutdown",
        "--shutdown-timeout",
        "60",
        "--force-poweroff",
    )
    assert ran.code == 0, ran.out + ran.err
    assert "poweroff 201" in power_log(sim, "web-prod-01")
    assert sim.world.servers[server_id(sim, "web-prod-01")]["status"] == "running"


def test_snapshot_shutdown_cancelled_says_not_snapshotted_and_json_names_a_hard_poweroff(env):
    sim = env
    sid = server_id(sim, "web-prod-01")
    sim.set_server(sid, acpi=False)
    ran = run(
        sim,
        "snapshot",
        "web-prod-01",
        "--shutdown",
        "--shutdown-timeout",
        "30",
        "--force-poweroff",
        "--json",
    )
    assert ran.code == 0, ran.err
    [job] = [o for o in ran.json() if o["type"] == "job"]
    assert job["forced_poweroff"] and job["powered_on"] and not job["still_off"]
    # Ctrl-C while it shuts down: cancelled, not snapshotted, powered on again
    sim.set_server(sid, acpi=True, shutdown_seconds=60)
    ran = run(sim, "snapshot", "web-prod-01", "--shutdown", interrupt_after=15)
    assert ran.code == 130
    line = next(line for line in ran.out.splitlines() if line.startswith("web-prod-01"))
    assert "cancelled" in line and "not snapshotted" in line and "nothing was sent" not in line
    assert sim.world.servers[sid]["status"] == "running"
