"""hsnap-tui: a keyboard-driven terminal console for Hetzner Cloud."""

__version__ = "0.1.0"
