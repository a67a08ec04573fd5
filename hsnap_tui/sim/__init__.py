"""A faithful, in-process Hetzner Cloud API simulator on a real HTTP socket.

with Simulator(token="t", servers=120, seed=1, speed=0) as sim:
    client = hcloud.Client(token="t", api_endpoint=sim.url)
    sim.advance(60)          # move simulated time
    sim.requests()           # what was asked

`http` has the Simulator and its socket, `routes` the API endpoints, `faults` the
injected faults, `control` the `/__sim/` endpoints, `world` the project itself.
"""

from .clock import SimClock
from .faults import FAULT_KINDS, Fault
from .http import Simulator
from .world import ApiError, World

__all__ = ["FAULT_KINDS", "ApiError", "Fault", "SimClock", "Simulator", "World"]
