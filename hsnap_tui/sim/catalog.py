"""Static catalogue of the simulated project: locations, datacenters, server types and
system images, shaped like the API's objects."""

from __future__ import annotations

from typing import Any

LOCATIONS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "fsn1",
        "description": "Falkenstein DC Park 1",
        "country": "DE",
        "city": "Falkenstein",
        "latitude": 50.47612,
        "longitude": 12.370071,
        "network_zone": "eu-central",
    },
    {
        "id": 2,
        "name": "nbg1",
        "description": "Nuremberg DC Park 1",
        "country": "DE",
        "city": "Nuremberg",
        "latitude": 49.452102,
        "longitude": 11.076665,
        "network_zone": "eu-central",
    },
    {
        "id": 3,
        "name": "hel1",
        "description": "Helsinki DC Park 1",
        "country": "FI",
        "city": "Helsinki",
        "latitude": 60.169855,
        "longitude": 24.938379,
        "network_zone": "eu-central",
    },
    {
        "id": 4,
        "name": "ash",
        "description": "Ashburn, VA",
        "country": "US",
        "city": "Ashburn, VA",
        "latitude": 39.045821,
        "longitude": -77.487073,
        "network_zone": "us-east",
    },
    {
        "id": 5,
        "name": "hil",
        "description": "Hillsboro, OR",
        "country": "US",
        "city": "Hillsboro, OR",
        "latitude": 45.54222,
        "longitude": -122.951924,
        "network_zone": "us-west",
    },
    {
        "id": 6,
        "name": "sin",
        "description": "Singapore",
        "country": "SG",
        "city": "Singapore",
        "latitude": 1.283333,
        "longitude": 103.833333,
        "network_zone": "ap-southeast",
    },
]

DATACENTER_NAMES = {
    "fsn1": (4, "fsn1-dc14"),
    "nbg1": (2, "nbg1-dc3"),
    "hel1": (3, "hel1-dc2"),
    "ash": (5, "ash-dc1"),
    "hil": (6, "hil-dc1"),
    "sin": (7, "sin-dc1"),
}

# name: (id, cores, memory GB, disk GB, cpu_type, architecture, monthly EUR)
SERVER_TYPES_SPEC: dict[str, tuple[int, int, float, int, str, str, float]] = {
    "cx22": (104, 2, 4.0, 40, "shared", "x86", 4.59),
    "cx32": (105, 4, 8.0, 80, "shared", "x86", 7.59),
    "cx42": (106, 8, 16.0, 160, "shared", "x86", 18.59),
    "cx52": (107, 16, 32.0, 320, "shared", "x86", 36.09),
    "cpx11": (22, 2, 2.0, 40, "shared", "x86", 5.18),
    "cpx21": (23, 3, 4.0, 80, "shared", "x86", 9.08),
    "cpx31": (24, 4, 8.0, 160, "shared", "x86", 16.85),
    "cax11": (45, 2, 4.0, 40, "shared", "arm", 4.49),
    "cax21": (93, 4, 8.0, 80, "shared", "arm", 7.99),
    "ccx13": (96, 2, 8.0, 80, "dedicated", "x86", 14.86),
    "ccx23": (97, 4, 16.0, 160, "dedicated", "x86", 29.14),
}

# US and Singapore locations do not offer every type, as on the real platform.
TYPE_LOCATIONS = {
    "cx22": ["fsn1", "nbg1", "hel1"],
    "cx32": ["fsn1", "nbg1", "hel1"],
    "cx42": ["fsn1", "nbg1", "hel1"],
    "cx52": ["fsn1", "nbg1", "hel1"],
    "cpx11": ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
    "cpx21": ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
    "cpx31": ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
    "cax11": ["fsn1", "nbg1", "hel1"],
    "cax21": ["fsn1", "nbg1", "hel1"],
    "ccx13": ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
    "ccx23": ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
}

# name: (id, os_flavor, os_version, description, architecture)
SYSTEM_IMAGES_SPEC = [
    ("ubuntu-24.04", 161547269, "ubuntu", "24.04", "Ubuntu 24.04", "x86"),
    ("ubuntu-22.04", 67794396, "ubuntu", "22.04", "Ubuntu 22.04", "x86"),
    ("debian-12", 114690387, "debian", "12", "Debian 12", "x86"),
    ("rocky-9", 76766499, "rocky", "9", "Rocky Linux 9", "x86"),
    ("ubuntu-24.04", 161547270, "ubuntu", "24.04", "Ubuntu 24.04", "arm"),
    ("debian-12", 114690389, "debian", "12", "Debian 12", "arm"),
]


def location(name: str) -> dict[str, Any]:
    for loc in LOCATIONS:
        if loc["name"] == name:
            return dict(loc)
    raise KeyError(name)


def _price(monthly: float, location_name: str) -> dict[str, Any]:
    net_month = monthly / 1.19
    net_hour = net_month / 730
    return {
        "location": location_name,
        "price_hourly": {"net": f"{net_hour:.10f}", "gross": f"{net_hour * 1.19:.10f}"},
        "price_monthly": {"net": f"{net_month:.10f}", "gross": f"{monthly:.10f}"},
        "included_traffic": 21990232555520
        if location_name in ("fsn1", "nbg1", "hel1")
        else 1099511627776,
        "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"},
    }


def server_type(name: str) -> dict[str, Any]:
    type_id, cores, memory, disk, cpu_type, arch, monthly = SERVER_TYPES_SPEC[name]
    locations = TYPE_LOCATIONS[name]
    return {
        "id": type_id,
        "name": name,
        "description": name.upper(),
        "category": "cost_optimized"
        if name.startswith(("cx", "cax"))
        else ("general_purpose" if name.startswith("ccx") else "regular_purpose"),
        "cores": cores,
        "memory": memory,
        "disk": disk,
        "deprecated": False,
        "deprecation": None,
        "prices": [_price(monthly, loc) for loc in locations],
        "storage_type": "local",
        "cpu_type": cpu_type,
        "architecture": arch,
        "locations": [
            # `available` and `recommended` arrived in the API in 2026; hcloud 2.27 needs them.
            {
                "id": location(loc)["id"],
                "name": loc,
                "deprecation": None,
                "available": True,
                "recommended": True,
            }
            for loc in locations
        ],
    }


def datacenter(location_name: str) -> dict[str, Any]:
    dc_id, dc_name = DATACENTER_NAMES[location_name]
    supported = sorted(
        SERVER_TYPES_SPEC[name][0] for name, locs in TYPE_LOCATIONS.items() if location_name in locs
    )
    return {
        "id": dc_id,
        "name": dc_name,
        "description": f"{location(location_name)['city']} virtual DC",
        "location": location(location_name),
        "server_types": {
            "supported": supported,
            "available": supported,
            "available_for_migration": supported,
        },
    }
