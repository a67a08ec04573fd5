"""User key remapping: binding ID → keys, from `keymap.toml` in the user config
directory (`HSNAP_KEYMAP` overrides the path). Example:

    [keymap]
    "servers.snapshot" = "S"
    "app.quit" = "ctrl+q,q"

The binding IDs are the ones the help screen (`?`) lists.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = re.compile(r"^[A-Za-z0-9_+,.\-]+$")


def default_keymap_path() -> Path:
    explicit = os.environ.get("HSNAP_KEYMAP")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir("hsnap-tui")) / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """(binding ID → keys, problems). A missing file is no keymap and no problem."""
    path = path or default_keymap_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"cannot read the keymap {path}: {exc}"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"the keymap {path} is not valid TOML: {exc}"]
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        return {}, [f'{path}: [keymap] must be a table of binding ID = "keys"']
    keymap, problems = {}, []
    for binding_id, keys in table.items():
        if not isinstance(keys, str) or not keys.strip() or not _KEYS.match(keys.strip()):
            problems.append(
                f'{path}: {binding_id!r} = {keys!r} is not a key list such as "S" or "ctrl+s,S"'
            )
            continue
        keymap[str(binding_id)] = keys.strip()
    return keymap, problems
