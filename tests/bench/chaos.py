"""Chaos over many seeds (a script, not a test): prints the table the README shows.

    python tests/bench/chaos.py [--seeds 500] [--first 0] [--jobs 2]

Each seed is one randomized schedule (tests/chaos.py). The columns count, over all seeds:
jobs; images made with a job label; jobs with more than one image (duplicates); jobs
that succeeded without their one image (false successes); jobs that did not succeed
though an image of theirs exists (unreported); jobs that failed for a reason the
schedule does not justify (lost: only a failed Hetzner action may fail a job there);
jobs still active at the end (stuck); consistent snapshots (shut down first) and the
servers such a job shut down that were not running at the end (left off);
and the most requests one session sent in any simulated minute, against its bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.chaos import run_seed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    args = parser.parse_args()
    seeds = range(args.first, args.first + args.seeds)
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(run_seed, seeds, chunksize=4))
    took = time.monotonic() - started
    total = {
        "jobs": sum(o.jobs for o in outcomes),
        "images": sum(o.images for o in outcomes),
        "duplicates": sum(o.duplicates for o in outcomes),
        "false": sum(o.false_successes for o in outcomes),
        "unreported": sum(o.unreported for o in outcomes),
        "lost": sum(o.lost for o in outcomes),
        "stuck": sum(o.stuck for o in outcomes),
        "faults": sum(o.faults for o in outcomes),
        "consistent": sum(o.consistent for o in outcomes),
        "left_off": sum(o.left_off for o in outcomes),
    }
    busiest = max(outcomes, key=lambda o: o.max_per_minute)
    hourly = max(outcomes, key=lambda o: o.per_hour)
    print(
        "| seeds | jobs | images made | duplicates | false successes | unreported | lost | "
        "stuck jobs | consistent (left off) | max requests/min (bound) | "
        "max requests/h (bound) | faults injected |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {len(outcomes)} | {total['jobs']} | {total['images']} | {total['duplicates']} | "
        f"{total['false']} | {total['unreported']} | {total['lost']} | {total['stuck']} | "
        f"{total['consistent']} ({total['left_off']}) | "
        f"{busiest.max_per_minute} ({busiest.per_minute_bound:.0f}) | "
        f"{hourly.per_hour:.0f} ({hourly.per_hour_bound:.0f}) | {total['faults']} |"
    )
    problems = [p for o in outcomes for p in o.problems]
    for problem in problems:
        print(f"- {problem}")
    print(f"\n{len(outcomes)} seeds in {took:.0f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
