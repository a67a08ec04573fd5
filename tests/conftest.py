"""Shared fixtures: a simulator with a stopped clock whose every response is checked
against the vendored OpenAPI schemas, and an hcloud client pointed at it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hcloud import Client

from hsnap_tui.sim import Simulator
from tests.contract.openapi import ContractRecorder

# 2026-11-26T12:00:00Z: every test starts its simulated project at the same instant.
START = 1795694400.0
TOKEN = "test-token-0000"


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory, monkeypatch) -> None:
    """No test reads or writes the user's own files or tokens: state, logs and the
    hcloud CLI config live in a temporary directory, and no token is inherited."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HSNAP_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("HSNAP_LOG_DIR", str(home / "logs"))
    monkeypatch.setenv("HCLOUD_CONFIG", str(home / "hcloud-cli.toml"))
    for name in ("HCLOUD_TOKEN", "HCLOUD_CONTEXT", "HCLOUD_ENDPOINT", "HERTZNER_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    started: list[tuple[Simulator, ContractRecorder]] = []

    def make(**options) -> Simulator:
        options.setdefault("token", TOKEN)
        options.setdefault("servers", 24)
        options.setdefault("seed", 1)
        options.setdefault("speed", 0)
        options.setdefault("start", START)
        sim = Simulator(**options)
        recorder = ContractRecorder()
        sim.response_observers.append(recorder)
        sim.start()
        started.append((sim, recorder))
        return sim

    yield make
    failures = []
    for sim, recorder in started:
        sim.stop()
        failures.extend(recorder.failures)
    assert not failures, "responses that break the OpenAPI contract:\n" + "\n".join(failures)


@pytest.fixture
def sim(make_sim) -> Simulator:
    return make_sim()


def sdk_client(sim: Simulator, *, retries: bool = False, timeout: float | None = 5) -> Client:
    """The real hcloud client. Its retry sleeps are wall time, so tests either turn
    retries off or make the backoff zero."""
    client = Client(token=sim.token, api_endpoint=sim.url, timeout=timeout)
    if retries:
        client._client._retry_interval_func = lambda retries: 0.0
    else:
        client._client._retry_max_retries = 0
    return client


@pytest.fixture
def client(sim: Simulator) -> Client:
    return sdk_client(sim)


def make_app(sim: Simulator, **options):
    """The real app against the simulator, on the simulator's clock, polling only when
    a test says so."""
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.ui.app import HsnapApp

    options.setdefault("demo", True)
    options.setdefault("poll_live", False)
    api = HetznerApi(sim.token, sim.url, timeout=options.pop("timeout", 5.0))
    return HsnapApp(api, now=sim.clock.now, clock=sim.clock.now, **options)


def wait_until(predicate, limit: float = 10.0) -> None:
    """Until another thread makes `predicate()` true, for at most `limit` seconds of
    wall time: no spin-wait without a deadline."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {limit}s"
        time.sleep(0.002)


async def poll(pilot) -> None:
    """Run one refresh poll to the end and let the screen show it."""
    app = pilot.app
    app.start_poll()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def settle(pilot) -> None:
    """Let every worker finish and every message land — including workers that a
    screen mounted by those messages starts: rounds until two in a row found nothing
    running (at most 30; a loaded machine mounts later)."""
    from textual.worker import WorkerState

    quiet = 0
    for _ in range(30):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in pilot.app.workers)
        quiet = 0 if busy else quiet + 1
        if quiet >= 2:
            return


@pytest.fixture
def env(monkeypatch, sim):
    """The simulator, with the token and endpoint a command finds in the environment."""
    monkeypatch.setenv("HCLOUD_TOKEN", sim.token)
    monkeypatch.setenv("HCLOUD_ENDPOINT", sim.url)
    return sim
