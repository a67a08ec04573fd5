"""Randomized schedules of faults, locks, context switches and repeated snapshots
(tests/chaos.py): for every seed, every job made exactly one image and reports it, or
made none and says why; every job ended; every session stayed within its budget.

More seeds: `python tests/bench/chaos.py --seeds 500`."""

from __future__ import annotations

import pytest

from tests.chaos import run_seed
from tests.contract.openapi import ContractRecorder

SEEDS = 24
CHUNK = 4


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_chaos_seeds(first):
    recorder = ContractRecorder()
    problems = []
    jobs = 0
    for seed in range(first, first + CHUNK):
        outcome = run_seed(seed, observers=[recorder])
        jobs += outcome.jobs
        problems += outcome.problems
    assert jobs > 0
    assert not problems, "\n".join(problems)
    # every answer the chaos saw kept the API's contract (but the deliberately broken)
    assert not recorder.failures, "\n".join(recorder.failures)
