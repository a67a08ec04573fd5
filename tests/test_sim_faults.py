"""Injected faults through the real hcloud SDK: late requests that land in simulated time,
API and proxy errors before and after processing, answers with a key left out, and
actions that fail. The clock stands still (speed 0) unless a test says otherwise."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from hcloud import APIException

from tests.conftest import sdk_client, wait_until

CLIENT_TIMEOUT = 1.0  # a late request always times out; an answer under load never


def posts(sim):
    return [r for r in sim.requests() if r["method"] == "POST"]


def images_named(sim, description):
    return [i for i in sim.world.images.values() if i["description"] == description]


def create_image_path(server_id):
    return f"/v1/servers/{server_id}/actions/create_image"


def control(sim, method, path, **kwargs):
    return requests.request(method, sim.base_url + "/__sim/" + path, timeout=5, **kwargs)


@pytest.fixture
def server_id(sim):
    return sorted(sim.world.servers)[0]


# ---- latency: a request that lands late -----------------------------------------------


def test_late_create_image_times_out_and_lands_when_due(sim, server_id):
    client = sdk_client(sim, timeout=CLIENT_TIMEOUT)
    server = client.servers.get_by_id(server_id)
    sim.add_fault("latency", path_prefix=create_image_path(server_id), seconds=30)
    arrived = sim.clock.now()
    with pytest.raises(requests.exceptions.Timeout):
        client.servers.create_image(server, description="late")
    assert images_named(sim, "late") == []
    assert posts(sim) == []
    assert sim.pending() == [
        {
            "method": "POST",
            "path": create_image_path(server_id),
            "arrived": arrived,
            "due": arrived + 30,
        }
    ]
    sim.advance(29.5)
    assert images_named(sim, "late") == []
    assert not client.servers.get_by_id(server_id).locked
    sim.advance(0.5)
    assert len(images_named(sim, "late")) == 1
    assert client.servers.get_by_id(server_id).locked
    assert sim.pending() == []
    [post] = posts(sim)
    assert post["status"] == 201
    assert post["fault"] == "latency"
    assert (post["arrived"], post["time"]) == (arrived, arrived + 30)


def test_late_requests_land_in_order_at_their_due_times(sim, server_id):
    client = sdk_client(sim, timeout=CLIENT_TIMEOUT)
    server = client.servers.get_by_id(server_id)
    sim.add_fault("latency", count=2, path_prefix=create_image_path(server_id), seconds=10)
    start = sim.clock.now()
    with pytest.raises(requests.exceptions.Timeout):
        client.servers.create_image(server, description="first")
    sim.advance(1)
    with pytest.raises(requests.exceptions.Timeout):
        client.servers.create_image(server, description="second")
    sim.advance(60)
    log = posts(sim)
    assert [(p["status"], p["arrived"], p["time"]) for p in log] == [
        (201, start, start + 10),
        (423, start + 1, start + 11),  # the first one holds the lock by then
    ]
    assert len(images_named(sim, "first")) == 1
    assert images_named(sim, "second") == []
    image_id = images_named(sim, "first")[0]["id"]
    action = next(
        a for a in sim.world.actions.values() if {"id": image_id, "type": "image"} in a.resources
    )
    assert action.started == start + 10


def test_late_request_lands_before_the_next_request_is_handled(sim, server_id):
    client = sdk_client(sim, timeout=CLIENT_TIMEOUT)
    server = client.servers.get_by_id(server_id)
    sim.add_fault("latency", path_prefix=create_image_path(server_id), seconds=5)
    with pytest.raises(requests.exceptions.Timeout):
        client.servers.create_image(server, description="late")
    sim.clock.advance(5)  # the clock alone, as a caller sharing it might move it
    assert client.servers.get_by_id(server_id).locked  # landed first, then answered
    assert [r["method"] for r in sim.requests()][-2:] == ["POST", "GET"]


def test_late_request_lands_when_the_clock_moves_over_http(sim):
    sim.add_fault("latency", path_prefix="/v1/servers", seconds=5)
    headers = {"Authorization": f"Bearer {sim.token}"}
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(sim.url + "/servers", headers=headers, timeout=CLIENT_TIMEOUT)
    assert control(sim, "GET", "requests").json() == []
    arrived = sim.clock.now()
    assert control(sim, "POST", "clock", json={"advance": 4}).status_code == 200
    assert control(sim, "GET", "requests").json() == []
    control(sim, "POST", "clock", json={"advance": 1})
    [entry] = control(sim, "GET", "requests").json()
    assert entry["status"] == 200 and entry["fault"] == "latency"
    assert (entry["arrived"], entry["time"]) == (arrived, arrived + 5)


def test_a_patient_client_gets_the_answer_when_it_lands(sim, server_id):
    client = sdk_client(sim, timeout=5)
    server = client.servers.get_by_id(server_id)
    sim.add_fault("latency", path_prefix=create_image_path(server_id), seconds=8)
    results = []
    thread = threading.Thread(
        target=lambda: results.append(client.servers.create_image(server, description="slow"))
    )
    thread.start()
    wait_until(lambda: sim.pending())
    sim.advance(8)
    thread.join(5)
    assert results and results[0].image.description == "slow"
    assert results[0].action.status == "running"


def test_stop_releases_a_waiting_handler(make_sim):
    sim = make_sim()
    sim.add_fault("latency", path_prefix="/v1/servers", seconds=5)
    client = sdk_client(sim, timeout=5)
    errors = []

    def call() -> None:
        try:
            client.servers.get_all()
        except requests.exceptions.ConnectionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    started = time.monotonic()
    thread.start()
    wait_until(lambda: sim.pending())
    sim.stop()
    thread.join(5)
    assert errors and time.monotonic() - started < 4


def test_with_a_running_clock_late_requests_land_by_themselves(make_sim):
    sim = make_sim(speed=100)
    server_id = sorted(sim.world.servers)[0]
    client = sdk_client(sim, timeout=5)
    sim.add_fault("latency", path_prefix="/v1/servers", seconds=5)  # 50 ms of wall time
    assert len(client.servers.get_all()) == 24
    server = client.servers.get_by_id(server_id)
    sim.add_fault("latency", path_prefix=create_image_path(server_id), seconds=20)
    impatient = sdk_client(sim, timeout=0.05)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.servers.create_image(server, description="abandoned")
    wait_until(lambda: images_named(sim, "abandoned"))  # ~0.2 s of wall time
    [post] = posts(sim)
    assert post["status"] == 201 and post["time"] - post["arrived"] >= 20


# ---- error and gateway: before or after processing ------------------------------------


def test_error_before_processing_makes_nothing(sim, client, server_id):
    server = client.servers.get_by_id(server_id)
    sim.add_fault("error", path_prefix=create_image_path(server_id))
    with pytest.raises(APIException) as error:
        client.servers.create_image(server, description="never")
    assert error.value.code == "bad_gateway"
    assert error.value.message == "bad gateway"
    assert error.value.correlation_id
    assert images_named(sim, "never") == []
    assert not client.servers.get_by_id(server_id).locked
    assert [(p["status"], p["fault"]) for p in posts(sim)] == [(502, "error")]


def test_error_after_processing_made_the_image(sim, client, server_id):
    server = client.servers.get_by_id(server_id)
    sim.add_fault("error", path_prefix=create_image_path(server_id), after=True)
    with pytest.raises(APIException) as error:
        client.servers.create_image(server, description="made")
    assert error.value.code == "bad_gateway"
    assert len(images_named(sim, "made")) == 1
    assert client.servers.get_by_id(server_id).locked


def test_error_with_its_own_status_and_code(sim, client):
    sim.add_fault("error", path_prefix="/v1/servers", status=409, code="conflict", message="busy")
    response = requests.get(
        sim.url + "/servers", headers={"Authorization": f"Bearer {sim.token}"}, timeout=5
    )
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": "busy", "details": {}}}
    assert "RateLimit-Remaining" in response.headers


@pytest.mark.parametrize("after", [False, True])
def test_gateway_answers_html_without_api_headers(sim, client, server_id, after):
    server = client.servers.get_by_id(server_id)
    sim.add_fault("gateway", path_prefix=create_image_path(server_id), after=after)
    with pytest.raises(APIException) as error:
        client.servers.create_image(server, description="proxied")
    assert error.value.code == 502  # an int: the SDK found no JSON error
    assert error.value.correlation_id is None
    assert len(images_named(sim, "proxied")) == (1 if after else 0)
    assert [(p["status"], p["fault"], p["correlation_id"]) for p in posts(sim)] == [
        (502, "gateway", None)
    ]


def test_gateway_504_over_http(sim):
    sim.add_fault("gateway", path_prefix="/v1/servers", status=504)
    response = requests.get(
        sim.url + "/servers", headers={"Authorization": f"Bearer {sim.token}"}, timeout=5
    )
    assert response.status_code == 504
    assert response.headers["Content-Type"] == "text/html"
    assert "<h1>504 Gateway Timeout</h1>" in response.text
    assert not any(h.lower().startswith("ratelimit-") for h in response.headers)
    assert "X-Correlation-Id" not in response.headers


# ---- strip: a key left out ------------------------------------------------------------


def test_strip_leaves_a_key_out_of_a_processed_answer(sim, server_id):
    sim.add_fault("strip", path_prefix=create_image_path(server_id), field="image")
    response = requests.post(
        sim.url + f"/servers/{server_id}/actions/create_image",
        headers={"Authorization": f"Bearer {sim.token}"},
        json={"description": "no image key"},
        timeout=5,
    )
    assert response.status_code == 201
    body = response.json()
    assert "image" not in body and body["action"]["command"] == "create_image"
    assert len(images_named(sim, "no image key")) == 1
    assert posts(sim)[0]["fault"] == "strip"


# ---- action_failed: started normally, ends in error -----------------------------------


def test_action_failed_on_create_image_removes_the_image(sim, client, server_id):
    server = client.servers.get_by_id(server_id)
    sim.add_fault("action_failed")  # any path: GETs and refusals leave it pending
    client.servers.get_all()
    sim.start_action(server_id, "reboot_server", 5)
    with pytest.raises(APIException):
        client.servers.create_image(server)  # 423: starts nothing
    sim.advance(6)
    response = client.servers.create_image(server, description="doomed")
    assert response.action.status == "running"
    assert client.servers.get_by_id(server_id).locked
    assert images_named(sim, "doomed") != []
    sim.advance(10_000)
    action = client.actions.get_by_id(response.action.id)
    assert action.status == "error"
    assert action.error == {"code": "action_failed", "message": "action failed"}
    assert images_named(sim, "doomed") == []
    with pytest.raises(APIException) as error:
        client.images.get_by_id(response.image.id)
    assert error.value.code == "not_found"
    assert not client.servers.get_by_id(server_id).locked
    assert [(p["status"], p["fault"]) for p in posts(sim)] == [(423, None), (201, "action_failed")]
    assert sim.faults == []


def test_action_failed_on_a_power_action(sim, client, server_id):
    server = client.servers.get_by_id(server_id)
    assert server.status == "running"
    sim.add_fault(
        "action_failed",
        path_prefix=f"/v1/servers/{server_id}/actions/shutdown",
        code="acpi_timeout",
        message="the server ignored the ACPI signal",
    )
    action = client.servers.shutdown(server)
    assert client.servers.get_by_id(server_id).locked
    sim.advance(60)
    done = client.actions.get_by_id(action.id)
    assert done.status == "error"
    assert done.error == {"code": "acpi_timeout", "message": "the server ignored the ACPI signal"}
    after = client.servers.get_by_id(server_id)
    assert (after.status, after.locked) == ("running", False)


# ---- the control endpoint -------------------------------------------------------------


def test_fault_control_accepts_the_new_fields(sim):
    response = control(
        sim, "POST", "faults", json={"kind": "error", "status": 418, "code": "teapot"}
    )
    assert response.status_code == 201
    assert response.json()["fault"] == {
        "kind": "error",
        "count": 1,
        "path_prefix": "",
        "method": None,
        "seconds": 0.0,
        "after": False,
        "status": 418,
        "code": "teapot",
        "message": "bad gateway",
        "field": None,
    }
    gateway = control(sim, "POST", "faults", json={"kind": "gateway", "after": True}).json()
    assert (gateway["fault"]["status"], gateway["fault"]["after"]) == (502, True)
    strip = control(sim, "POST", "faults", json={"kind": "strip", "field": "image"}).json()
    assert strip["fault"]["field"] == "image"
    failed = control(sim, "POST", "faults", json={"kind": "action_failed", "method": "post"})
    assert failed.json()["fault"]["code"] == "action_failed"
    assert failed.json()["fault"]["method"] == "POST"
    late = control(sim, "POST", "faults", json={"kind": "latency", "seconds": 2.5}).json()
    assert late["fault"]["seconds"] == 2.5
    assert [f.kind for f in sim.faults] == ["error", "gateway", "strip", "action_failed", "latency"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "meteor"},
        {},
        {"kind": "error", "colour": "red"},
        {"kind": "error", "status": 200},
        {"kind": "gateway", "status": 500},
        {"kind": "strip"},
        {"kind": "http_500", "field": "image"},
        {"kind": "http_500", "status": 502},
        {"kind": "latency", "seconds": -1},
        {"kind": "drop", "count": 0},
        {"kind": "drop", "after": "yes"},
    ],
)
def test_fault_control_refuses_bad_faults(sim, body):
    response = control(sim, "POST", "faults", json=body)
    assert response.status_code == 400, body
    assert response.json()["error"]["code"] == "invalid_input"
    assert sim.faults == []
