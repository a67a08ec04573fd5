"""The simulator's own surface: /__sim/ controls over HTTP, the clock, the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from hsnap_tui.sim import SimClock


def control(sim, method, path, **kwargs):
    return requests.request(method, sim.base_url + "/__sim/" + path, timeout=5, **kwargs)


def auth(sim):
    return {"Authorization": f"Bearer {sim.token}"}


def test_request_log_over_http(sim):
    requests.get(sim.url + "/servers/42?x=1&x=2", headers=auth(sim), timeout=5)
    log = control(sim, "GET", "requests").json()
    assert log == [
        {
            "method": "GET",
            "path": "/v1/servers/42",
            "query": {"x": ["1", "2"]},
            "status": 404,
            "time": sim.clock.now(),
            "arrived": sim.clock.now(),
            "correlation_id": log[0]["correlation_id"],
            "fault": None,
        }
    ]
    assert control(sim, "DELETE", "requests").status_code == 204
    assert control(sim, "GET", "requests").json() == []


def test_start_action_over_http_locks_server(sim):
    server_id = sorted(sim.world.servers)[0]
    response = control(
        sim,
        "POST",
        "actions",
        json={"server_id": server_id, "command": "rebuild_server", "seconds": 30},
    )
    assert response.status_code == 201
    action = response.json()["action"]
    assert action["status"] == "running"
    assert action["resources"] == [{"id": server_id, "type": "server"}]
    server = requests.get(f"{sim.url}/servers/{server_id}", headers=auth(sim), timeout=5).json()
    assert server["server"]["locked"] is True
    again = control(
        sim,
        "POST",
        "actions",
        json={"server_id": server_id, "command": "reboot_server", "seconds": 5},
    )
    assert again.status_code == 423
    missing = control(sim, "POST", "actions", json={"server_id": 1, "command": "x", "seconds": 5})
    assert missing.status_code == 404
    bad = control(sim, "POST", "actions", json={"command": "x"})
    assert bad.status_code == 400


def test_faults_and_clock_over_http(sim):
    response = control(
        sim, "POST", "faults", json={"kind": "http_503", "count": 2, "path_prefix": "/v1/servers"}
    )
    assert response.status_code == 201
    statuses = [
        requests.get(sim.url + "/servers", headers=auth(sim), timeout=5).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    assert control(sim, "POST", "faults", json={"kind": "meteor"}).status_code == 400
    control(sim, "POST", "faults", json={"kind": "http_500", "count": 5})
    assert control(sim, "DELETE", "faults").status_code == 204
    assert requests.get(sim.url + "/servers", headers=auth(sim), timeout=5).status_code == 200

    before = sim.clock.now()
    moved = control(sim, "POST", "clock", json={"advance": 90}).json()
    assert moved["timestamp"] == before + 90
    assert moved["speed"] == 0
    assert control(sim, "POST", "clock", json={"speed": 2}).json()["speed"] == 2


def test_clock_speed_and_advance():
    wall = [100.0]
    clock = SimClock(start=1000.0, speed=2.0, wall=lambda: wall[0])
    wall[0] += 5
    assert clock.now() == 1010.0
    clock.set_speed(0)
    wall[0] += 50
    assert clock.now() == 1010.0
    assert clock.advance(30) == 1040.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_date_header_follows_the_simulated_clock(sim):
    response = requests.get(sim.url + "/servers", headers=auth(sim), timeout=5)
    assert response.headers["Date"] == "Thu, 26 Nov 2026 12:00:00 GMT"


def test_command_line_serves_and_says_where(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hsnap_tui.sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--servers",
            "7",
            "--seed",
            "3",
            "--speed",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("/v1")
        url = line.removeprefix("listening on ")
        body = requests.get(
            url + "/servers", headers={"Authorization": "Bearer cli-token"}, timeout=5
        ).json()
        assert body["meta"]["pagination"]["total_entries"] == 7
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_command_line_rejects_bad_options():
    result = subprocess.run(
        [sys.executable, "-m", "hsnap_tui.sim", "--servers", "-3"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--servers" in result.stderr


def test_acpi_control_over_http_and_the_sdk_sees_the_shutdown(sim):
    from tests.conftest import sdk_client

    client = sdk_client(sim)
    server = client.servers.get_all()[0]
    answer = control(sim, "POST", f"servers/{server.id}", json={"acpi": False})
    assert answer.status_code == 200
    assert answer.json() == {"server": {"id": server.id, "acpi": False, "shutdown_seconds": 20.0}}
    action = client.servers.shutdown(server)
    sim.advance(600)
    assert client.actions.get_by_id(action.id).status == "success"  # the signal went out
    assert client.servers.get_by_id(server.id).status == "running"  # and was ignored
    control(sim, "POST", f"servers/{server.id}", json={"acpi": True, "shutdown_seconds": 5})
    client.servers.shutdown(server)
    sim.advance(2)
    assert client.servers.get_by_id(server.id).status == "stopping"
    sim.advance(5)
    assert client.servers.get_by_id(server.id).status == "off"
    bad = control(sim, "POST", f"servers/{server.id}", json={"acpi": "no"})
    assert bad.status_code == 400
    unknown = control(sim, "POST", f"servers/{server.id}", json={"colour": 1})
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]["message"]
    assert control(sim, "POST", "servers/1", json={"acpi": False}).status_code == 404
