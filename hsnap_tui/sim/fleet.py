"""A generated project: a fleet that looks like a real one, the same for a given seed and
start time."""

from __future__ import annotations

import ipaddress
from typing import Any

from . import catalog
from .clock import SimClock
from .world import World, iso

DAY = 86400.0

ROLES = [
    ("web", ["cx22", "cx32", "cpx21", "cax11"]),
    ("api", ["cx32", "cpx31", "cax21"]),
    ("db", ["ccx13", "ccx23", "cx42"]),
    ("cache", ["cx22", "cax11"]),
    ("worker", ["cx32", "cpx21", "cx42", "cax21"]),
    ("queue", ["cx22", "cpx11"]),
    ("search", ["cx42", "ccx23"]),
    ("monitoring", ["cx32"]),
    ("ci-runner", ["cx52", "cpx31"]),
    ("bastion", ["cx22"]),
]
ENVS = ["prod", "prod", "prod", "staging", "staging", "dev"]
TEAMS = ["platform", "payments", "search", "data"]
V4_NETS = [
    "49.12.0.0/16",
    "116.203.0.0/16",
    "5.75.128.0/17",
    "162.55.0.0/16",
    "95.217.0.0/16",
    "5.161.0.0/16",
    "178.156.128.0/17",
]
US_LOCATIONS = ("ash", "hil")


def _system_images() -> list[dict[str, Any]]:
    created = {
        "24.04": "2024-04-25T00:00:00+00:00",
        "22.04": "2022-04-21T00:00:00+00:00",
        "12": "2023-06-13T00:00:00+00:00",
        "9": "2022-07-14T00:00:00+00:00",
    }
    return [
        {
            "id": image_id,
            "type": "system",
            "status": "available",
            "name": name,
            "description": description,
            "image_size": None,
            "disk_size": 5.0,
            "created": created[version],
            "created_from": None,
            "bound_to": None,
            "os_flavor": flavor,
            "os_version": version,
            "rapid_deploy": True,
            "protection": {"delete": False},
            "deprecated": None,
            "deleted": None,
            "labels": {},
            "architecture": arch,
        }
        for name, image_id, flavor, version, description, arch in catalog.SYSTEM_IMAGES_SPEC
    ]


def build_world(
    clock: SimClock,
    *,
    servers: int = 24,
    seed: int = 1,
    scenario: str = "default",
) -> World:
    """Populate a World with `servers` servers, their snapshots, backups and history."""
    world = World(clock, seed)
    rng = world.rng
    now = clock.now()
    system_images = _system_images()
    for image in system_images:
        world.images[image["id"]] = image

    counters: dict[tuple[str, str], int] = {}
    next_server_id = 50_000_000 + rng.randrange(1_000_000)
    v4_used: set[str] = set()
    for index in range(servers):
        role, types = ROLES[index % len(ROLES)] if index < len(ROLES) else rng.choice(ROLES)
        env = rng.choice(ENVS)
        counters[(role, env)] = counters.get((role, env), 0) + 1
        name = f"{role}-{env}-{counters[(role, env)]:02d}"
        type_name = rng.choice(types)
        locations = catalog.TYPE_LOCATIONS[type_name]
        loc_name = rng.choice(locations if rng.random() < 0.25 else locations[:3])
        stype = catalog.server_type(type_name)
        arch = stype["architecture"]
        base = rng.choice([i for i in system_images if i["architecture"] == arch])
        created = now - rng.uniform(20, 900) * DAY
        server_id = next_server_id
        next_server_id += 1 + rng.randrange(5000)

        ipv6_only = rng.random() < 0.1
        if ipv6_only:
            ipv4 = None
        else:
            net = ipaddress.ip_network(rng.choice(V4_NETS))
            while True:
                address = str(net[rng.randrange(2, net.num_addresses - 2)])
                if address not in v4_used:
                    v4_used.add(address)
                    break
            reverse = ".".join(reversed(address.split(".")))
            ipv4 = {
                "id": 70_000_000 + index,
                "ip": address,
                "blocked": False,
                "dns_ptr": f"static.{reverse}.clients.your-server.de",
            }
        net6 = "8" if loc_name != "hel1" else "9"
        v6_prefix = f"2a01:4f{net6}:c01{rng.randrange(10)}:{rng.randrange(0x10000):x}::"
        ipv6 = {"id": 80_000_000 + index, "ip": f"{v6_prefix}/64", "blocked": False, "dns_ptr": []}

        labels = {"env": env, "role": role}
        if rng.random() < 0.5:
            labels["team"] = rng.choice(TEAMS)
        if rng.random() < 0.15:
            labels["backup"] = "nightly"
        backups = rng.random() < 0.2
        status = "off" if rng.random() < 0.08 else "running"
        disk = stype["disk"]
        server = {
            "id": server_id,
            "name": name,
            "status": status,
            "created": iso(created),
            "public_net": {"ipv4": ipv4, "ipv6": ipv6, "floating_ips": [], "firewalls": []},
            "private_net": [],
            "server_type": stype,
            "datacenter": catalog.datacenter(loc_name),
            "location": catalog.location(loc_name),
            "image": dict(base),
            "iso": None,
            "rescue_enabled": False,
            "locked": False,
            "backup_window": "22-02" if backups else None,
            "outgoing_traffic": rng.randrange(10**8, 10**12),
            "ingoing_traffic": rng.randrange(10**8, 10**11),
            "included_traffic": stype["prices"][0]["included_traffic"],
            "protection": {
                "delete": env == "prod" and rng.random() < 0.5,
                "rebuild": env == "prod" and rng.random() < 0.5,
            },
            "labels": labels,
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": disk,
            "placement_group": None,
        }
        world.servers[server_id] = server
        world.disk_used[server_id] = round(disk * rng.uniform(0.08, 0.6), 1)
        _history(world, server, created, now, backups)

    # Snapshots of servers deleted long ago keep their `created_from`.
    for gone in range(max(1, servers // 12)):
        fake = {"id": 40_000_000 + gone * 7919, "name": f"legacy-app-{gone + 1:02d}"}
        world.make_image(
            None,
            image_type="snapshot",
            description=f"{fake['name']}-final",
            labels={},
            created=now - rng.uniform(200, 600) * DAY,
            image_size=round(rng.uniform(0.8, 6), 6),
            created_from=fake,
        )

    if scenario == "demo":
        _demo_activity(world)
    return world


def _history(
    world: World, server: dict[str, Any], created: float, now: float, backups: bool
) -> None:
    rng = world.rng
    ref = [{"id": server["id"], "type": "server"}]
    world.finished_action("create_server", ref, created, rng.uniform(20, 60))
    world.finished_action("start_server", ref, created + 60, rng.uniform(5, 15))
    used = world.disk_used[server["id"]]
    snapshot_count = rng.choice([0, 0, 1, 2, 3, 4, 5, 6])
    for n in range(snapshot_count):
        when = now - rng.uniform(0.2, min(180, (now - created) / 86400 - 1)) * DAY
        managed = rng.random() < 0.7
        stamp = iso(when)[:16].replace("T", "-").replace(":", "")
        image = world.make_image(
            server,
            image_type="snapshot",
            description=f"{server['name']}-{stamp}" if managed else f"before upgrade {n + 1}",
            labels={"managed-by": "hsnap"} if managed else {},
            created=when,
            image_size=round(used * rng.uniform(0.5, 0.7), 6),
            protected=not managed and rng.random() < 0.5,
        )
        world.finished_action(
            "create_image",
            [*ref, {"id": image["id"], "type": "image"}],
            when,
            world.snapshot_seconds(server["id"]),
        )
    if backups:
        for n in range(rng.randrange(1, 4)):
            when = now - (n + rng.uniform(0.1, 0.9)) * DAY
            world.make_image(
                server,
                image_type="backup",
                description=None,
                labels={},
                created=when,
                image_size=round(used * 0.6, 6),
            )
    for _ in range(rng.randrange(1, 6)):
        when = now - rng.uniform(0.05, 60) * DAY
        command = rng.choice(
            [
                "reboot_server",
                "reboot_server",
                "shutdown_server",
                "start_server",
                "change_dns_ptr",
                "enable_rescue",
            ]
        )
        error = None
        if rng.random() < 0.08:
            error = {"code": "action_failed", "message": "Action failed"}
        world.finished_action(command, ref, when, rng.uniform(2, 40), error)


def _demo_activity(world: World) -> None:
    """The demo's two busy servers: a long snapshot and a rebuild, as other tools left them."""
    candidates = sorted(world.servers.values(), key=lambda s: s["id"])
    db = next((s for s in candidates if s["name"].startswith("db-")), candidates[0])
    web = next(
        (s for s in candidates if s["name"].startswith("web-") and s["id"] != db["id"]),
        candidates[-1],
    )
    now = world.now()
    # A long snapshot that began a while ago: a quarter done.
    world.disk_used[db["id"]] = max(world.disk_used[db["id"]], 70.0)
    image, action = world.create_image(
        db["id"],
        {
            "description": f"{db['name']}-pre-migration",
            "type": "snapshot",
            "labels": {"managed-by": "terraform"},
        },
    )
    elapsed = world.snapshot_seconds(db["id"]) * 0.25
    action.started = now - elapsed
    image["created"] = iso(now - elapsed)
    # A rebuild someone started from the Console.
    rebuild = world.start_foreign_action(web["id"], "rebuild_server", 300)
    rebuild.started = now - 20
    world.tick()
