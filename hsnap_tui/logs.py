"""Logging to the user's log directory, rotated, with every known secret redacted."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

import platformdirs

LOG_NAME = "hsnap-tui.log"
MAX_BYTES = 1_000_000
BACKUPS = 3


def default_log_dir() -> Path:
    return Path(os.environ.get("HSNAP_LOG_DIR") or platformdirs.user_log_dir("hsnap-tui"))


class RedactSecrets(logging.Filter):
    """Replaces each secret with *** in the final message and in exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets.append(secret)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(
    *, debug: bool = False, secrets: Iterable[str] = (), directory: Path | None = None
) -> tuple[Path | None, RedactSecrets]:
    """Log to `directory/hsnap-tui.log` (rotated). Returns the file (None when it cannot
    be written) and the redaction filter, to which new secrets can be added."""
    redact = RedactSecrets(secrets)
    root = logging.getLogger("hsnap_tui")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    directory = directory or default_log_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            directory / LOG_NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        path: Path | None = directory / LOG_NAME
    except OSError:
        handler, path = logging.NullHandler(), None
    handler.addFilter(redact)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path, redact
