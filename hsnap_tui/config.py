"""Where the token, the context and the endpoint come from.

Token, in order:
1. `--token-env NAME`, else `HCLOUD_TOKEN`;
2. the context named by `--context` or `HCLOUD_CONTEXT`;
3. the active context of the hcloud CLI config (`HCLOUD_CONFIG`, else
   `~/.config/hcloud/cli.toml`);
4. `HERTZNER_API_KEY`, for people coming from their own scripts.

Endpoint: `--endpoint` or `HCLOUD_ENDPOINT`, else the context's `endpoint` preference,
else the global one, else the Hetzner Cloud API.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsnap_tui.core.api import DEFAULT_ENDPOINT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """Setup the operator must fix; the message says how. Exit code 2."""


NO_TOKEN = (
    "a Hetzner Cloud API token is needed.\n"
    "  Set HCLOUD_TOKEN to a token of your project\n"
    "  (Cloud Console → Security → API tokens),\n"
    "  or create a context with the hcloud CLI (`hcloud context create NAME`),\n"
    "  or try the console first without one:  hsnap-tui --demo"
)


@dataclass(frozen=True)
class Context:
    """One context of the hcloud CLI config."""

    name: str
    token: str = field(repr=False)
    endpoint: str | None = None


@dataclass(frozen=True)
class CliConfig:
    path: Path
    active: str | None
    contexts: tuple[Context, ...]
    endpoint: str | None = None  # global preference
    warnings: tuple[str, ...] = ()

    def context(self, name: str) -> Context:
        for context in self.contexts:
            if context.name == name:
                return context
        known = ", ".join(c.name for c in self.contexts) or "none"
        raise ConfigError(f"no context {name!r} in {self.path} (known: {known})")


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)
    endpoint: str = DEFAULT_ENDPOINT
    context: str | None = None  # shown in the header
    token_source: str = ""  # e.g. "HCLOUD_TOKEN", "context prod"
    config_path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.context or self.token_source


def config_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("HCLOUD_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = Path(environ.get("HOME") or Path.home())
    return home / ".config" / "hcloud" / "cli.toml"


def _endpoint_of(preferences: Any) -> str | None:
    if isinstance(preferences, dict):
        value = preferences.get("endpoint")
        return value if isinstance(value, str) and value else None
    return None


def load_cli_config(path: Path) -> CliConfig | None:
    """The hcloud CLI config, or None when the file does not exist. ConfigError (file
    and line) when it cannot be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    warnings = []
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{path} is readable by other users (mode {stat.filemode(mode)}) and holds "
                f"API tokens: chmod 600 {path}"
            )
    except OSError:
        pass
    contexts = []
    entries = data.get("contexts", [])
    if isinstance(entries, dict):  # `[contexts.NAME]` tables, as some guides write them
        entries = [
            {"name": name, **(body if isinstance(body, dict) else {})}
            for name, body in entries.items()
        ]
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `contexts` must be a list of [[contexts]] tables")
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{path}: context #{index} has no name")
        token = entry.get("token", "")
        if not isinstance(token, str):
            raise ConfigError(f"{path}: the token of context {entry['name']!r} is not text")
        contexts.append(
            Context(entry["name"], token.strip(), _endpoint_of(entry.get("preferences")))
        )
    active = data.get("active_context")
    return CliConfig(
        path=path,
        active=active if isinstance(active, str) and active else None,
        contexts=tuple(contexts),
        endpoint=_endpoint_of(data.get("preferences")),
        warnings=tuple(warnings),
    )


def _check_endpoint(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the endpoint must be an http(s) URL, not {url!r}")
    return url


def resolve(
    *,
    environ: Mapping[str, str] | None = None,
    token_env: str | None = None,
    endpoint: str | None = None,
    context: str | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    override = endpoint or env.get("HCLOUD_ENDPOINT")
    path = config_path(env)

    def finish(
        token: str,
        source: str,
        name: str | None,
        context_endpoint: str | None,
        config: CliConfig | None,
    ) -> Settings:
        if not token:
            raise ConfigError(f"{source} is set but empty.\n{NO_TOKEN}")
        if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
            # it could not go into an HTTP header; never say what it is
            raise ConfigError(
                f"the token from {source} contains a space, a line break or a character "
                "outside ASCII: copy it again (Cloud Console → Security → API tokens)"
            )
        url = override or context_endpoint or (config.endpoint if config else None)
        return Settings(
            token=token,
            endpoint=_check_endpoint(url or DEFAULT_ENDPOINT),
            context=name,
            token_source=source,
            config_path=config.path if config else None,
            warnings=config.warnings if config else (),
        )

    # 1. an explicit variable (a --context flag beats HCLOUD_TOKEN: it names a project)
    exported = "HCLOUD_TOKEN" if "HCLOUD_TOKEN" in env and not context else None
    variable = token_env or exported
    if variable is not None:
        if variable not in env:
            raise ConfigError(f"--token-env {variable}: that variable is not set.\n{NO_TOKEN}")
        return finish(env[variable].strip(), variable, None, None, None)

    # 2. and 3. a context of the hcloud CLI config
    wanted = context or env.get("HCLOUD_CONTEXT")
    config = load_cli_config(path)
    if wanted:
        if config is None:
            raise ConfigError(
                f"context {wanted!r} asked for, but there is no hcloud CLI "
                f"config at {path} (set HCLOUD_CONFIG, or "
                f"`hcloud context create {wanted}`)"
            )
        chosen = config.context(wanted)
        return finish(chosen.token, f"context {chosen.name}", chosen.name, chosen.endpoint, config)
    if config is not None and config.active:
        chosen = config.context(config.active)
        return finish(chosen.token, f"context {chosen.name}", chosen.name, chosen.endpoint, config)

    # 4. the variable older scripts used
    if "HERTZNER_API_KEY" in env:
        return finish(env["HERTZNER_API_KEY"].strip(), "HERTZNER_API_KEY", None, None, None)
    raise ConfigError(NO_TOKEN)


def switchable_contexts(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[Context]:
    """The contexts `c` can switch to (from the hcloud CLI config)."""
    env = os.environ if environ is None else environ
    config = load_cli_config(settings.config_path or config_path(env))
    return list(config.contexts) if config else []
