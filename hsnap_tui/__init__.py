"""hsnap-tui: a keyboard-driven terminal console for Hetzner Cloud."""

import logging

__version__ = "0.1.0"

# Imported as a library (tests, scripts), warnings go nowhere unless the caller logs;
# the commands set up the log file themselves (hsnap_tui.logs).
logging.getLogger("hsnap_tui").addHandler(logging.NullHandler())
