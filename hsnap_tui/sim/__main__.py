"""`python -m hsnap_tui.sim`: serve the simulator until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime

from .http import Simulator


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hsnap_tui.sim",
        description="Serve a simulated Hetzner Cloud API (for demos and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--token", default="sim-token", help="the bearer token it accepts")
    parser.add_argument("--servers", type=int, default=24, help="fleet size")
    parser.add_argument("--seed", type=int, default=1, help="fleet generator seed")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (0 stops the clock)",
    )
    parser.add_argument(
        "--start",
        type=_timestamp,
        default=None,
        help="simulated start time, ISO 8601 (default: now)",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=3600, help="requests per project bucket (default 3600)"
    )
    parser.add_argument(
        "--refill", type=float, default=1.0, help="bucket refill per second (default 1)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the demo's busy servers (a long snapshot and a rebuild)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.servers < 0 or args.speed < 0 or args.rate_limit < 1:
        print("--servers and --speed must be >= 0, --rate-limit >= 1", file=sys.stderr)
        return 2
    sim = Simulator(
        token=args.token,
        servers=args.servers,
        seed=args.seed,
        speed=args.speed,
        host=args.host,
        port=args.port,
        start=args.start,
        rate_limit=args.rate_limit,
        refill_per_second=args.refill,
        scenario="demo" if args.demo else "default",
    )
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"listening on {sim.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
