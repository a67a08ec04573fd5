"""Print the fault matrix as a Markdown table (a script, not a test).

python tests/bench/fault_matrix.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hsnap_tui.sim import Simulator
from tests.fault_matrix import KINDS, PHASES, run_case, skipped

SAW = 150  # characters of "what the operator saw"


async def main() -> None:
    print(
        "| fault | phase | what the operator saw | recovered after | jobs lost | "
        "duplicate snapshots | create_image sent | reconcile requests |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for phase in PHASES:
        for kind in KINDS:
            reason = skipped(kind, phase)
            if reason is not None:
                print(f"| {kind} | {phase} | not run: {reason} | – | – | – | – | – |")
                continue
            with Simulator(token="t", servers=24, speed=0, start=1795694400.0) as sim:
                outcome = await run_case(sim, kind, phase)
            saw = outcome.saw.replace("|", "/")
            if len(saw) > SAW:
                saw = saw[: SAW - 1] + "…"
            recovered = (
                "never" if outcome.recovered_after is None else f"{outcome.recovered_after:.0f} s"
            )
            crashed = " **crashed**" if outcome.crashed else ""
            print(
                f"| {kind} | {phase} | {saw}{crashed} | {recovered} | "
                f"{outcome.jobs_lost} | {outcome.duplicates} | {outcome.posts} | "
                f"{outcome.reconciles} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
