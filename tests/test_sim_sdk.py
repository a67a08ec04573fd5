"""The simulator through the real hcloud SDK over HTTP, as the app and any other client
would use it. Every response here is also checked against the OpenAPI contract."""

from __future__ import annotations

import re
import threading

import pytest
import requests
from hcloud import APIException

from tests.conftest import sdk_client

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def api_requests(sim, method=None, path=None):
    return [
        r
        for r in sim.requests()
        if (method is None or r["method"] == method) and (path is None or r["path"] == path)
    ]


def raw(sim, method, path, token=None, headers=None, **kwargs):
    headers = {"Authorization": f"Bearer {token or sim.token}", **(headers or {})}
    return requests.request(method, sim.url + path, headers=headers, timeout=5, **kwargs)


# ---- listing and pagination -----------------------------------------------------------


def test_get_all_pages_through_120_servers(make_sim):
    sim = make_sim(servers=120)
    client = sdk_client(sim)
    servers = client.servers.get_all()
    assert len(servers) == 120
    assert len({s.id for s in servers}) == 120
    pages = api_requests(sim, "GET", "/v1/servers")
    assert [r["query"]["page"] for r in pages] == [["1"], ["2"], ["3"]]
    assert all(r["query"]["per_page"] == ["50"] for r in pages)
    # hcloud 2.27 reads location, and the deprecated datacenter is still there.
    assert servers[0].location.name in {"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}
    assert servers[0].server_type.name


def test_pagination_meta_has_all_six_fields(make_sim):
    sim = make_sim(servers=60)
    body = raw(sim, "GET", "/servers").json()
    assert body["meta"]["pagination"] == {
        "page": 1,
        "per_page": 25,
        "previous_page": None,
        "next_page": 2,
        "last_page": 3,
        "total_entries": 60,
    }
    assert len(body["servers"]) == 25
    last = raw(sim, "GET", "/servers", params={"page": 3}).json()
    assert len(last["servers"]) == 10
    assert last["meta"]["pagination"]["next_page"] is None
    assert last["meta"]["pagination"]["previous_page"] == 2
    clamped = raw(sim, "GET", "/servers", params={"per_page": 500}).json()
    assert clamped["meta"]["pagination"]["per_page"] == 50
    beyond = raw(sim, "GET", "/servers", params={"page": 9}).json()
    assert beyond["servers"] == []


def test_servers_carry_complete_objects(sim, client):
    body = raw(sim, "GET", "/servers", params={"per_page": 50}).json()
    v6_only = [s for s in body["servers"] if s["public_net"]["ipv4"] is None]
    assert v6_only, "some servers are IPv6-only"
    assert all(s["public_net"]["ipv6"]["ip"].endswith("/64") for s in body["servers"])
    first = body["servers"][0]
    for key in (
        "server_type",
        "location",
        "datacenter",
        "image",
        "labels",
        "protection",
        "locked",
        "backup_window",
        "created",
        "primary_disk_size",
    ):
        assert key in first
    assert first["datacenter"]["location"]["name"] == first["location"]["name"]
    server = client.servers.get_by_id(first["id"])
    assert server.name == first["name"]
    assert server.public_net.ipv6.ip == first["public_net"]["ipv6"]["ip"]


def test_filters_name_status_and_label_selectors(sim, client):
    everything = client.servers.get_all()
    name = everything[5].name
    assert [s.name for s in client.servers.get_all(name=name)] == [name]
    off = client.servers.get_all(status=["off"])
    assert {s.status for s in off} <= {"off"}
    assert len(off) == sum(s.status == "off" for s in everything)

    def names(selector):
        return {s.name for s in client.servers.get_all(label_selector=selector)}

    def expect(predicate):
        return {s.name for s in everything if predicate(s.labels)}

    assert names("env=prod") == expect(lambda lab: lab.get("env") == "prod")
    assert names("env==prod") == expect(lambda lab: lab.get("env") == "prod")
    assert names("env!=prod") == expect(lambda lab: lab.get("env") != "prod")
    assert names("team") == expect(lambda lab: "team" in lab)
    assert names("!team") == expect(lambda lab: "team" not in lab)
    assert names("role in (db,web)") == expect(lambda lab: lab.get("role") in ("db", "web"))
    assert names("role notin (db,web)") == expect(lambda lab: lab.get("role") not in ("db", "web"))
    assert names("env=prod,role in (db,web)") == expect(
        lambda lab: lab.get("env") == "prod" and lab.get("role") in ("db", "web")
    )
    assert 1 < len(names("env=prod")) < len(everything)
    with pytest.raises(APIException) as error:
        client.servers.get_all(label_selector="role in (db")
    assert error.value.code == "invalid_input"


def test_sorting(sim, client):
    params = {"sort": "name:desc", "per_page": 50}
    by_name = [s["name"] for s in raw(sim, "GET", "/servers", params=params).json()["servers"]]
    assert by_name == sorted(by_name, reverse=True)
    ids = [s.id for s in client.servers.get_all()]
    assert ids == sorted(ids)
    params = {"sort": ["created:desc"], "type": "snapshot", "per_page": 50}
    created = [i["created"] for i in raw(sim, "GET", "/images", params=params).json()["images"]]
    assert created == sorted(created, reverse=True)
    response = raw(sim, "GET", "/servers", params={"sort": "colour"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"][0]["name"] == "sort"


# ---- actions --------------------------------------------------------------------------


def test_running_actions_of_all_servers_in_one_call(make_sim):
    sim = make_sim(scenario="demo")
    client = sdk_client(sim)
    running = client.servers.actions.get_all(status=["running"])
    assert sorted(a.command for a in running) == ["create_image", "rebuild_server"]
    assert len(api_requests(sim, "GET", "/v1/servers/actions")) == 1
    for action in running:
        server_ids = [r["id"] for r in action.resources if r["type"] == "server"]
        assert client.servers.get_by_id(server_ids[0]).locked


def test_action_history_per_server_sorted(sim, client):
    server = client.servers.get_all()[0]
    actions = client.servers.get_actions_list(server, sort=["started:desc"]).actions
    assert actions, "every server has a finished history"
    started = [a.started for a in actions]
    assert started == sorted(started, reverse=True)
    assert actions[-1].command == "create_server"
    one = client.servers.actions.get_by_id(actions[0].id)
    assert one.id == actions[0].id
    other = client.servers.get_all()[1]
    response = raw(sim, "GET", f"/servers/{other.id}/actions/{actions[0].id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_create_image_lifecycle_to_success(sim, client):
    server = client.servers.get_all()[3]
    response = client.servers.create_image(
        server, description="web-snap", type="snapshot", labels={"managed-by": "hsnap"}
    )
    assert response.image.status == "creating"
    assert response.image.description == "web-snap"
    assert response.image.created_from.id == server.id
    assert response.action.command == "create_image"
    assert response.action.status == "running"
    assert {"id": server.id, "type": "server"} in response.action.resources
    post = api_requests(sim, "POST")[0]
    assert post["status"] == 201
    assert client.servers.get_by_id(server.id).locked

    progress = []
    for _ in range(4):
        sim.advance(20)
        action = client.actions.get_by_id(response.action.id)
        progress.append(action.progress)
    assert progress == sorted(progress) and progress[0] < progress[-1] < 100
    assert action.status == "running"

    sim.advance(10_000)
    action = client.actions.get_by_id(response.action.id)
    assert (action.status, action.progress) == ("success", 100)
    assert action.finished is not None
    image = client.images.get_by_id(response.image.id)
    assert image.status == "available"
    assert image.image_size and image.image_size > 0
    assert image.labels == {"managed-by": "hsnap"}
    assert not client.servers.get_by_id(server.id).locked


def test_snapshot_time_grows_with_disk_usage(sim, client):
    world = sim.world
    small, large = sorted(world.servers, key=lambda sid: world.disk_used[sid])[::23][:2]
    assert world.disk_used[small] < world.disk_used[large]
    a = client.servers.create_image(client.servers.get_by_id(small)).action
    b = client.servers.create_image(client.servers.get_by_id(large)).action
    sim.advance(30)
    assert client.actions.get_by_id(a.id).progress > client.actions.get_by_id(b.id).progress


def test_second_create_image_while_locked_is_refused_with_correlation_id(sim, client):
    server = client.servers.get_all()[0]
    client.servers.create_image(server)
    with pytest.raises(APIException) as error:
        client.servers.create_image(server, description="again")
    exc = error.value
    assert exc.code == "locked"
    assert exc.message == "cannot perform operation because server is locked"
    assert HEX16.match(exc.correlation_id)
    assert str(exc) == (
        f"cannot perform operation because server is locked (locked, {exc.correlation_id})"
    )
    posts = api_requests(sim, "POST")
    assert [p["status"] for p in posts] == [201, 423]
    assert posts[1]["correlation_id"] == exc.correlation_id


def test_foreign_action_locks_server_and_power_actions(sim, client):
    server = client.servers.get_all()[2]
    sim.start_action(server.id, "rebuild_server", 60)
    assert client.servers.get_by_id(server.id).status == "rebuilding"
    with pytest.raises(APIException) as error:
        client.servers.power_off(server)
    assert error.value.code == "locked"
    sim.advance(61)
    assert client.servers.get_by_id(server.id).status == "running"
    action = client.servers.power_off(server)
    assert action.command == "stop_server"
    sim.advance(5)
    assert client.servers.get_by_id(server.id).status == "off"
    client.servers.power_on(server)
    sim.advance(10)
    assert client.servers.get_by_id(server.id).status == "running"
    client.servers.reboot(server)
    sim.advance(15)
    client.servers.shutdown(server)
    sim.advance(2)  # the action ends once the ACPI signal is sent …
    assert client.servers.get_by_id(server.id).status == "stopping"
    sim.advance(20)  # … and the OS takes the server off a while later
    assert client.servers.get_by_id(server.id).status == "off"


def test_hidden_lock_sets_locked_without_a_listed_action(sim, client):
    server = client.servers.get_all()[4]
    sim.start_action(server.id, "migrate_server", 120, visible=False)
    assert client.servers.get_by_id(server.id).locked
    assert client.servers.actions.get_all(status=["running"]) == []


def test_failed_action_carries_error(sim, client):
    server = client.servers.get_all()[1]
    action = sim.start_action(
        server.id, "rebuild_server", 10, fail={"code": "action_failed", "message": "rebuild failed"}
    )
    sim.advance(11)
    done = client.actions.get_by_id(action["id"])
    assert done.status == "error"
    assert done.error == {"code": "action_failed", "message": "rebuild failed"}


def test_multi_id_actions_and_removed_listing(sim, client):
    servers = client.servers.get_all()[:3]
    ids = [client.servers.create_image(s).action.id for s in servers]
    body = client.request("GET", "/actions", params={"id": [*ids, 999_999]})
    assert sorted(a["id"] for a in body["actions"]) == sorted(ids)
    assert len(api_requests(sim, "GET", "/v1/actions")) == 1
    with pytest.raises(APIException) as error:
        client.request("GET", "/actions")
    assert error.value.code == "invalid_input"
    assert error.value.details["fields"][0]["name"] == "id"
    with pytest.raises(APIException) as error:
        client.actions.get_by_id(12345)
    assert error.value.code == "not_found"
    response = raw(sim, "GET", "/actions", params={"id": "f21b9dc9d1535310"})
    assert response.json()["error"]["code"] == "invalid_input"


# ---- images ---------------------------------------------------------------------------


def test_image_type_filter_update_protection_delete(sim, client):
    snapshots = client.images.get_all(type="snapshot")
    assert snapshots and all(i.type == "snapshot" for i in snapshots)
    systems = client.images.get_all(type="system")
    assert systems and all(i.type == "system" for i in systems)
    both = client.images.get_all(type=["snapshot", "backup"])
    assert len(both) > len(snapshots)
    managed = client.images.get_all(type="snapshot", label_selector="managed-by=hsnap")
    assert managed and all(i.labels["managed-by"] == "hsnap" for i in managed)

    image = snapshots[0]
    updated = client.images.update(image, description="renamed", labels={"keep": "yes"})
    assert (updated.description, updated.labels) == ("renamed", {"keep": "yes"})

    action = client.images.change_protection(image, delete=True)
    assert action.command == "change_protection"
    with pytest.raises(APIException) as error:
        client.images.delete(image)
    assert error.value.code == "protected"
    client.images.change_protection(image, delete=False)
    assert client.images.delete(image) is True
    with pytest.raises(APIException) as error:
        client.images.get_by_id(image.id)
    assert error.value.code == "not_found"
    assert [r["status"] for r in api_requests(sim, "DELETE")] == [423, 204]


def test_snapshots_from_deleted_servers_keep_created_from(sim, client):
    server_ids = {s.id for s in client.servers.get_all()}
    orphans = [
        i
        for i in client.images.get_all(type="snapshot")
        if i.created_from and i.created_from.id not in server_ids
    ]
    assert orphans and all(i.created_from.name for i in orphans)


def test_sdk_image_status_bug_is_visible(sim, client):
    # hcloud's images.get_all(status=...) sends per_page as the status; the API refuses
    # it, and the app filters image status itself instead.
    with pytest.raises(APIException) as error:
        client.images.get_all(type="snapshot", status=["available"])
    assert error.value.code == "invalid_input"
    assert api_requests(sim, "GET", "/v1/images")[0]["query"]["status"] == ["50"]


# ---- auth, rate limit, headers --------------------------------------------------------


def test_unauthorized(sim):
    client = sdk_client(sim)
    client._client._headers["Authorization"] = "Bearer wrong"
    with pytest.raises(APIException) as error:
        client.servers.get_all()
    assert error.value.code == "unauthorized"
    assert raw(sim, "GET", "/servers", token="nope").status_code == 401


def test_every_response_has_correlation_id_and_rate_limit_headers(sim):
    responses = [
        raw(sim, "GET", "/servers"),
        raw(sim, "GET", "/servers/1"),
        raw(sim, "GET", "/servers", token="nope"),
        raw(sim, "GET", "/actions"),
        raw(sim, "POST", "/servers/1/actions/create_image", json={}),
    ]
    ids = [r.headers["X-Correlation-Id"] for r in responses]
    assert all(HEX16.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    for response in responses:
        assert response.headers["RateLimit-Limit"] == "3600"
        int(response.headers["RateLimit-Remaining"])
        int(response.headers["RateLimit-Reset"])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}


def test_rate_limit_bucket_429_and_refill(make_sim):
    sim = make_sim(rate_limit=5)
    remaining = [int(raw(sim, "GET", "/servers").headers["RateLimit-Remaining"]) for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    limited = raw(sim, "GET", "/servers")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) == int(sim.clock.now()) + 5
    client = sdk_client(sim)
    with pytest.raises(APIException) as error:
        client.servers.get_all()
    assert error.value.code == "rate_limit_exceeded"
    sim.advance(2)  # refilled at 1 per second
    assert raw(sim, "GET", "/servers").status_code == 200


def test_sdk_retries_rate_limit_by_itself(sim):
    client = sdk_client(sim, retries=True)
    sim.add_fault("rate_limit", count=2, path_prefix="/v1/servers")
    assert len(client.servers.get_all()) == 24
    assert [r["status"] for r in api_requests(sim, "GET", "/v1/servers")] == [429, 429, 200]


# ---- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("http_500", "server_error"),
        ("http_503", "unavailable"),
        ("rate_limit", "rate_limit_exceeded"),
        ("malformed_json", 200),
    ],
)
def test_error_faults_reach_the_sdk(sim, client, kind, code):
    sim.add_fault(kind, count=1, path_prefix="/v1/servers")
    with pytest.raises(APIException) as error:
        client.servers.get_all()
    assert error.value.code == code
    assert HEX16.match(error.value.correlation_id)
    assert len(client.servers.get_all()) == 24  # one fault, then normal again


def test_faults_are_scoped_to_path_and_count(sim, client):
    sim.add_fault("http_500", count=2, path_prefix="/v1/images")
    assert client.servers.get_all()  # other paths unaffected
    for _ in range(2):
        with pytest.raises(APIException):
            client.images.get_all()
    assert client.images.get_all()


def test_latency_fault_times_out_the_client(sim):
    client = sdk_client(sim, timeout=0.05)
    sim.add_fault("latency", count=1, path_prefix="/v1/servers", seconds=0.3)
    with pytest.raises(requests.exceptions.Timeout):
        client.servers.get_all()


def test_drop_before_processing_changes_nothing(sim, client):
    server = client.servers.get_all()[0]
    sim.add_fault("drop", count=1, path_prefix=f"/v1/servers/{server.id}/actions/create_image")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.servers.create_image(server, description="lost")
    assert not [i for i in client.images.get_all(type="snapshot") if i.description == "lost"]
    assert api_requests(sim, "POST")[0]["status"] is None


def test_drop_after_processing_is_the_ambiguous_outcome(sim, client):
    server = client.servers.get_all()[0]
    sim.add_fault(
        "drop", count=1, path_prefix=f"/v1/servers/{server.id}/actions/create_image", after=True
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        client.servers.create_image(server, description="ambiguous")
    made = [i for i in client.images.get_all(type="snapshot") if i.description == "ambiguous"]
    assert len(made) == 1 and made[0].status == "creating"
    assert client.servers.get_by_id(server.id).locked


# ---- bad input ------------------------------------------------------------------------


def test_bad_parameters_and_bodies(sim):
    cases = [
        ("GET", "/servers", {"params": {"per_page": "x"}}, "per_page"),
        ("GET", "/servers", {"params": {"page": "0"}}, "page"),
        ("GET", "/servers", {"params": {"status": "sleeping"}}, "status"),
        ("GET", "/servers/actions", {"params": {"status": "done"}}, "status"),
        ("GET", "/images", {"params": {"type": "iso"}}, "type"),
        ("GET", "/servers/abc", {}, "id"),
    ]
    server_id = next(iter(sim.world.servers))
    cases.append(
        ("POST", f"/servers/{server_id}/actions/create_image", {"json": {"type": "full"}}, "type")
    )
    cases.append(
        (
            "POST",
            f"/servers/{server_id}/actions/create_image",
            {"json": {"labels": {"bad key!": "x"}}},
            "labels",
        )
    )
    for method, path, kwargs, field in cases:
        response = raw(sim, method, path, **kwargs)
        assert response.status_code == 400, (path, kwargs)
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["details"]["fields"][0]["name"] == field
    malformed = raw(
        sim,
        "POST",
        f"/servers/{server_id}/actions/create_image",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "json_error"
    assert raw(sim, "GET", "/servers/1").json()["error"]["code"] == "not_found"


# ---- determinism and threads ----------------------------------------------------------


def test_same_seed_same_project(make_sim):
    a, b = make_sim(seed=7, servers=30), make_sim(seed=7, servers=30)
    assert raw(a, "GET", "/servers").json() == raw(b, "GET", "/servers").json()
    assert raw(a, "GET", "/images").json() == raw(b, "GET", "/images").json()
    c = make_sim(seed=8, servers=30)
    assert raw(a, "GET", "/servers").json() != raw(c, "GET", "/servers").json()


def test_concurrent_create_image_only_one_wins(sim):
    server_id = sorted(sim.world.servers)[0]
    statuses: list[int] = []

    def post() -> None:
        response = raw(sim, "POST", f"/servers/{server_id}/actions/create_image", json={})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [423] * 7
