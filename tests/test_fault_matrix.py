"""The fault matrix: every fault kind in every phase. The app never crashes or
freezes, shows the trouble, recovers by itself, loses no job, makes no duplicate."""

from __future__ import annotations

import pytest

from tests.fault_matrix import KINDS, PHASES, run_case


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("kind", KINDS)
async def test_fault(make_sim, kind, phase):
    sim = make_sim()
    outcome = await run_case(sim, kind, phase)
    assert not outcome.crashed
    assert outcome.recovered_after is not None, f"did not recover: {outcome}"
    assert outcome.jobs_lost == 0
    assert outcome.duplicates == 0
    assert outcome.saw
