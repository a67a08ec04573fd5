"""Where the token and the endpoint come from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from hsnap_tui.core.api import DEFAULT_ENDPOINT


class ConfigError(Exception):
    """Setup the operator must fix; the message says how. Exit code 2."""


NO_TOKEN = (
    "hsnap-tui needs a Hetzner Cloud API token.\n"
    "  Set HCLOUD_TOKEN to a token of your project (Cloud Console → Security → API tokens),\n"
    "  or try it first without one:  hsnap-tui --demo"
)


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)
    endpoint: str = DEFAULT_ENDPOINT
    context: str | None = None
    token_source: str = ""


def resolve(
    *,
    environ: Mapping[str, str] | None = None,
    token_env: str | None = None,
    endpoint: str | None = None,
) -> Settings:
    """Token: `--token-env NAME`, else HCLOUD_TOKEN, else HERTZNER_API_KEY (the name
    older scripts used). Endpoint: `--endpoint`, else HCLOUD_ENDPOINT, else the API."""
    env = os.environ if environ is None else environ
    names = [token_env] if token_env else ["HCLOUD_TOKEN", "HERTZNER_API_KEY"]
    token, source = None, ""
    for name in names:
        value = env.get(name)
        if value is not None:
            token, source = value.strip(), name
            break
    if token is None:
        if token_env:
            raise ConfigError(f"--token-env {token_env}: that variable is not set.\n{NO_TOKEN}")
        raise ConfigError(NO_TOKEN)
    if not token:
        raise ConfigError(f"{source} is set but empty.\n{NO_TOKEN}")
    url = (endpoint or env.get("HCLOUD_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the endpoint must be an http(s) URL, not {url!r}")
    return Settings(token=token, endpoint=url, context=None, token_source=source)
