"""Policy files: every key checked (file:line: what is wrong), and `hsnap-tui run`
through `main(argv)` against the simulator — snapshot, then prune, per policy."""

from __future__ import annotations

import pytest

from hsnap_tui.core.jobs import LockPolicy
from hsnap_tui.core.keep import KeepRules
from hsnap_tui.core.policy import PolicyError, parse_policies, slug
from tests.test_headless import job_images, mutating, run, server_id

GOOD = """\
# what cron does every night
[[policy]]
name = "prod nightly"
selector = "env=prod"
description = "{server}-{date}-{time}"
labels = { "managed-by" = "hsnap", "policy" = "prod-nightly" }
if_locked = "wait"          # or "skip"
shutdown = false
[policy.keep]
last = 3
daily = 7
weekly = 4
monthly = 6

[[policy]]
name = "db consistent"
selector = "role=db"
shutdown = true
force_poweroff = true
shutdown_timeout = 120
if_locked = "skip"
keep = { last = 2 }
"""


def test_a_good_file_as_the_design_gives_it():
    prod, db = parse_policies(GOOD)
    assert (prod.name, prod.selector, prod.line) == ("prod nightly", "env=prod", 2)
    assert prod.labels == {"managed-by": "hsnap", "policy": "prod-nightly"}
    assert prod.keep == KeepRules(last=3, daily=7, weekly=4, monthly=6)
    assert prod.prune_selector == "managed-by=hsnap,policy=prod-nightly"
    assert (prod.if_locked, prod.shutdown, prod.lock_timeout) == (LockPolicy.WAIT, False, 3600)
    assert (db.shutdown, db.force_poweroff, db.shutdown_timeout) == (True, True, 120.0)
    assert db.if_locked == LockPolicy.SKIP and db.keep == KeepRules(last=2)
    # without labels: managed-by=hsnap and the policy's own, so policies never prune
    # each other's snapshots
    assert db.labels == {"managed-by": "hsnap", "policy": "db-consistent"}
    assert slug("  Prod / nightly!! ") == "Prod-nightly"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("shutdown = false", "shutdwon = false"),
            "8: policy 'prod nightly': unknown key 'shutdwon' (did you mean 'shutdown'?)",
        ),
        (("daily = 7", "dayly = 7"), "11: policy 'prod nightly': keep: unknown rule 'dayly'"),
        (("weekly = 4", "weekly = -1"), "12: policy 'prod nightly': keep weekly: from 0"),
        (("weekly = 4", "weekly = 2.5"), "12: policy 'prod nightly': keep weekly: a whole"),
        (('if_locked = "wait"', 'if_locked = "later"'), "7: policy 'prod nightly': if_locked"),
        (
            ('selector = "role=db"', 'selector = "role in (db"'),
            "17: policy 'db consistent': selector 'role in (db'",
        ),
        (
            ('name = "db consistent"', 'name = "prod nightly"'),
            "16: policy 'prod nightly' is defined twice (also at line 2)",
        ),
        (('selector = "env=prod"', "selector = env=prod"), "4: not valid TOML"),
        (
            ("shutdown = true", 'shutdown = "yes"'),
            "18: policy 'db consistent': shutdown is true or false",
        ),
        (
            ('"{server}-{date}-{time}"', '"{servr}"'),
            "5: policy 'prod nightly': description: unknown placeholder {servr}",
        ),
        (
            ('"policy" = "prod-nightly"', '"hsnap-job" = "x"'),
            "6: policy 'prod nightly': hsnap-job is set by hsnap-tui",
        ),
        (
            ("shutdown_timeout = 120", "shutdown_timeout = 5"),
            "20: policy 'db consistent': shutdown_timeout: from 10 to 3600 seconds",
        ),
        (
            ("keep = { last = 2 }", "keep = { last = 0 }"),
            "22: policy 'db consistent': keep: give at least one rule",
        ),
        (('selector = "role=db"\n', ""), "15: policy 'db consistent': 'selector' is required"),
        (
            ("shutdown = true\n", ""),
            "policy 'db consistent': force_poweroff goes with shutdown = true",
        ),
    ],
)
def test_every_problem_is_named_with_its_line(change, message):
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(PolicyError) as error:
        parse_policies(text, "policy.toml")
    assert str(error.value).startswith("policy.toml:"), str(error.value)
    assert message in str(error.value)


def test_unknown_top_level_tables_and_empty_files_are_refused():
    with pytest.raises(PolicyError, match=r"p.toml:24: unknown key 'polcy'"):
        parse_policies(GOOD + "\n[polcy]\nname = 1\n", "p.toml")
    with pytest.raises(PolicyError, match=r"p.toml: no \[\[policy\]\] in the file"):
        parse_policies("# nothing yet\n", "p.toml")


# ---- hsnap-tui run --------------------------------------------------------------------

TWO = """\
[[policy]]
name = "web nightly"
selector = "role=web"
labels = { "managed-by" = "hsnap", "schedule" = "nightly" }
[policy.keep]
last = 2

[[policy]]
name = "db consistent"
selector = "role=db"
shutdown = true
keep = { daily = 3 }
"""


def nightly_of(sim, name: str, days: int, labels: dict) -> list[dict]:
    server = sim.world.servers[server_id(sim, name)]
    with sim.lock:
        return [
            sim.world.make_image(
                server,
                image_type="snapshot",
                description=f"{name}-old-{day}",
                labels=labels,
                created=sim.clock.now() - day * 86400,
                image_size=4.0,
            )
            for day in range(days, 0, -1)
        ]


def db_servers(sim) -> list[str]:
    return sorted(s["name"] for s in sim.world.servers.values() if s["labels"].get("role") == "db")


def test_run_two_policies_snapshots_then_prunes_each(env, tmp_path):
    sim = env
    path = tmp_path / "policy.toml"
    path.write_text(TWO)
    old_web = nightly_of(sim, "web-prod-01", 4, {"managed-by": "hsnap", "schedule": "nightly"})
    db = db_servers(sim)[0]
    old_db = nightly_of(sim, db, 5, {"managed-by": "hsnap", "policy": "db-consistent"})
    # a snapshot of another schedule: neither policy's labels mark it
    other = nightly_of(sim, "web-prod-01", 3, {"managed-by": "hsnap", "schedule": "weekly"})
    ran = run(sim, "run", str(path))
    assert ran.code == 0, ran.out + ran.err
    images = sim.world.images
    # web: the new one and the newest old one (last 2); the others deleted
    web_new = [i for i in job_images(sim, "web-prod-01")]
    assert len(web_new) == 1
    assert [i["id"] for i in old_web if i["id"] in images] == [old_web[-1]["id"]]
    assert all(i["id"] in images for i in other)
    # db: consistent snapshot (shut down, snapshot, powered on), then daily 3: today's
    # new one and the two newest old days
    assert [i["id"] for i in old_db if i["id"] in images] == [i["id"] for i in old_db[-2:]]
    assert all(
        s["status"] == "running" for s in sim.world.servers.values() if s["name"] in db_servers(sim)
    )
    out = ran.out
    assert "Policy web nightly: " in out and "Policy db consistent: " in out
    assert "powered on again" in out
    assert out.index("Policy web nightly") < out.index("Deleting") < out.index("Policy db")
    # every change is in the request log: snapshots first, then deletions, per policy
    kinds = [
        "delete" if r["method"] == "DELETE" else r["path"].rsplit("/", 1)[1] for r in mutating(sim)
    ]
    first_db = kinds.index("shutdown")
    assert set(kinds[:first_db]) == {"create_image", "delete"}
    assert kinds[:first_db].index("delete") > kinds[:first_db].index("create_image")


def test_run_dry_run_sends_nothing_that_changes_anything(env, tmp_path):
    sim = env
    path = tmp_path / "policy.toml"
    path.write_text(TWO)
    nightly_of(sim, "web-prod-01", 4, {"managed-by": "hsnap", "schedule": "nightly"})
    ran = run(sim, "run", str(path), "--dry-run")
    assert ran.code == 0, ran.err
    assert mutating(sim) == []
    assert "would snapshot web-prod-01" in ran.out
    assert "shut down, snapshot, power on" in ran.out
    # as the real run will: the new snapshot it makes first pushes one more out
    assert "keep   (new)" in ran.out
    assert "Would delete 3 snapshots on 1 server" in ran.out
    assert "Dry run: nothing was changed" in ran.out


def test_run_json_tags_every_object_with_its_policy(env, tmp_path):
    sim = env
    path = tmp_path / "policy.toml"
    path.write_text(TWO)
    ran = run(sim, "run", str(path), "--json")
    assert ran.code == 0, ran.err
    objects = ran.json()
    assert objects[-1]["type"] == "run_summary" and objects[-1]["exit_code"] == 0
    for obj in objects[:-1]:
        assert obj["policy"] in ("web nightly", "db consistent"), obj
    jobs = [o for o in objects if o["type"] == "job"]
    assert {o["policy"] for o in jobs if o["shutdown"]} == {"db consistent"}
    assert all(o["state"] == "succeeded" for o in jobs)


def test_run_bad_file_is_exit_2_with_file_and_line(env, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(TWO.replace("shutdown = true", "shutdown = yes"))
    ran = run(env, "run", str(path))
    assert ran.code == 2
    assert ran.err.startswith(f"hsnap-tui: {path}:11: not valid TOML"), ran.err
    assert env.requests() == []  # nothing sent, not even a read
    ran = run(env, "run", str(tmp_path / "missing.toml"))
    assert ran.code == 2 and "missing.toml: no such file" in ran.err


def test_run_read_only_refuses_but_dry_run_works(env, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(TWO)
    ran = run(env, "run", str(path), "--read-only")
    assert ran.code == 2 and "--read-only: run changes the project" in ran.err
    ran = run(env, "run", str(path), "--read-only", "--dry-run")
    assert ran.code == 0, ran.err


def test_run_does_not_prune_a_server_whose_snapshot_failed(env, tmp_path):
    sim = env
    path = tmp_path / "policy.toml"
    path.write_text(TWO.split('[[policy]]\nname = "db')[0])
    old = nightly_of(sim, "web-prod-01", 4, {"managed-by": "hsnap", "schedule": "nightly"})
    sim.add_fault(
        "action_failed", path_prefix=f"/v1/servers/{server_id(sim, 'web-prod-01')}/actions/"
    )
    ran = run(sim, "run", str(path))
    assert ran.code == 1
    assert "not pruned (no new snapshot in this run): web-prod-01" in ran.err
    assert all(i["id"] in sim.world.images for i in old)
    assert not any(r["method"] == "DELETE" for r in sim.requests())


def test_a_policy_matching_no_server_is_exit_1(env, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[policy]]\nname = "none"\nselector = "role=nothing"\n')
    ran = run(env, "run", str(path))
    assert ran.code == 1 and "no server matches role=nothing" in ran.err
    assert mutating(env) == []


def test_two_policies_with_the_same_labels_are_refused():
    text = (
        '[[policy]]\nname = "prod 日次"\nselector = "env=prod"\nkeep = { last = 5 }\n\n'
        '[[policy]]\nname = "prod 週次"\nselector = "env=prod"\nkeep = { last = 1 }\n'
    )
    with pytest.raises(PolicyError, match=r"p.toml:6: policy 'prod 週次' has the same labels"):
        parse_policies(text, "p.toml")
    assert slug("日次") != slug("週次") and slug("日次").startswith("policy-")


def test_a_policy_always_labels_managed_by_hsnap():
    [policy] = parse_policies('[[policy]]\nname = "n"\nselector = "a=b"\nlabels = { x = "y" }\n')
    assert policy.labels == {"managed-by": "hsnap", "x": "y"}


def test_numbers_beyond_reason_and_deep_nesting_are_one_line_errors(tmp_path):
    from hsnap_tui.core.keep import KeepRuleError, parse_rules

    with pytest.raises(PolicyError, match="not a usable TOML file"):
        parse_policies(
            '[[policy]]\nname = "n"\nselector = "a=b"\nkeep = { last = ' + "9" * 5000 + " }\n"
        )
    with pytest.raises(PolicyError, match="not a usable TOML file"):
        parse_policies("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(KeepRuleError, match="from 0 to"):
        parse_rules("last " + "9" * 5000)


def test_run_dry_run_plans_with_the_snapshot_it_would_make(env, tmp_path):
    sim = env
    path = tmp_path / "policy.toml"
    path.write_text(TWO.split('[[policy]]\nname = "db')[0])
    nightly_of(sim, "web-prod-01", 2, {"managed-by": "hsnap", "schedule": "nightly"})
    dry = run(sim, "run", str(path), "--dry-run")
    assert "keep   (new)" in dry.out
    assert "Would delete 1 snapshot on 1 server" in dry.out  # the new one pushes one out
    real = run(sim, "run", str(path))
    assert real.code == 0
    assert sum(1 for r in sim.requests() if r["method"] == "DELETE") == 1


def test_a_single_policy_table_is_told_to_use_double_brackets():
    with pytest.raises(PolicyError, match=r"p.toml:1: write \[\[policy\]\] \(double brackets"):
        parse_policies('[policy]\nname = "n"\nselector = "a=b"\n', "p.toml")
    with pytest.raises(PolicyError, match="a whole number, not true"):
        parse_policies('[[policy]]\nname = "n"\nselector = "a=b"\nkeep = { last = true }\n')
