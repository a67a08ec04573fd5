"""A faithful, in-process Hetzner Cloud API simulator on a real HTTP socket.

with Simulator(token="t", servers=120, seed=1, speed=0) as sim:
    client = hcloud.Client(token="t", api_endpoint=sim.url)
    sim.advance(60)          # move simulated time
    sim.requests()           # what was asked
"""

from .clock import SimClock
from .http import FAULT_KINDS, Fault, Simulator
from .world import ApiError, World

__all__ = ["FAULT_KINDS", "ApiError", "Fault", "SimClock", "Simulator", "World"]
