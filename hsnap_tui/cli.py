"""Command line: `hsnap-tui --demo` for now serves the simulator standalone."""

from __future__ import annotations

import sys

from hsnap_tui.sim.__main__ import main as sim_main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--demo" in args:
        print("hsnap-tui: the Servers view is not built yet; serving the demo simulator.")
        return sim_main(["--port", "0", "--demo"])
    print("hsnap-tui: only --demo is available so far", file=sys.stderr)
    return 2
