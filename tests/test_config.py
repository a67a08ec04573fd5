"""Token, context and endpoint resolution, and what the operator is told when the setup
is wrong — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hsnap_tui.config import ConfigError, resolve, switchable_contexts

CONFIG = """\
active_context = "prod"

[preferences]
endpoint = "https://global.example/v1"

[[contexts]]
name = "prod"
token = "prod-token-aaaa"

[[contexts]]
name = "staging"
token = "staging-token-bbbb"

[contexts.preferences]
endpoint = "https://staging.example/v1"
"""


def write_config(tmp_path: Path, text: str = CONFIG, mode: int = 0o600) -> Path:
    path = tmp_path / "cli.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), **values}


def test_order_token_env_first(tmp_path):
    config = write_config(tmp_path)
    settings = resolve(
        environ=env(tmp_path, HCLOUD_CONFIG=str(config), HCLOUD_TOKEN="t1", HERTZNER_API_KEY="t4")
    )
    assert (settings.token, settings.token_source) == ("t1", "HCLOUD_TOKEN")
    chosen = resolve(environ=env(tmp_path, MINE="t0", HCLOUD_TOKEN="t1"), token_env="MINE")
    assert chosen.token == "t0"


def test_named_context_then_active_context_then_legacy_variable(tmp_path):
    config = write_config(tmp_path)
    base = env(tmp_path, HCLOUD_CONFIG=str(config), HERTZNER_API_KEY="legacy")
    named = resolve(environ=base, context="staging")
    assert (named.token, named.context, named.endpoint) == (
        "staging-token-bbbb",
        "staging",
        "https://staging.example/v1",
    )
    by_env = resolve(environ={**base, "HCLOUD_CONTEXT": "staging"})
    assert by_env.context == "staging"
    active = resolve(environ=base)
    assert (active.token, active.context, active.endpoint) == (
        "prod-token-aaaa",
        "prod",
        "https://global.example/v1",
    )
    overridden = resolve(environ={**base, "HCLOUD_ENDPOINT": "http://127.0.0.1:9/v1"})
    assert overridden.endpoint == "http://127.0.0.1:9/v1"
    assert resolve(environ=base, endpoint="https://flag.example/v1/").endpoint == (
        "https://flag.example/v1"
    )
    legacy = resolve(
        environ=env(
            tmp_path, HERTZNER_API_KEY="legacy", HCLOUD_CONFIG=str(tmp_path / "absent.toml")
        )
    )
    assert (legacy.token, legacy.token_source) == ("legacy", "HERTZNER_API_KEY")


def test_default_config_location_and_table_form(tmp_path):
    home_config = tmp_path / ".config" / "hcloud" / "cli.toml"
    home_config.parent.mkdir(parents=True)
    home_config.write_text('active_context = "one"\n[contexts.one]\ntoken = "tok-one-1234"\n')
    home_config.chmod(0o600)
    assert resolve(environ=env(tmp_path)).token == "tok-one-1234"


def test_unknown_context_lists_the_known_ones(tmp_path):
    config = write_config(tmp_path)
    with pytest.raises(ConfigError, match=r"no context 'qa' .*known: prod, staging"):
        resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(config)), context="qa")


def test_malformed_toml_names_file_and_line(tmp_path):
    config = write_config(tmp_path, 'active_context = "prod"\n[[contexts]]\nname = prod\n')
    with pytest.raises(ConfigError) as error:
        resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(config)))
    assert str(config) in str(error.value) and "line 3" in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        'active_context = "prod"\n[[contexts]]\nname = "prod"\ntoken = ""\n',
        'active_context = "prod"\n[[contexts]]\nname = "prod"\ntoken = "   "\n',
    ],
)
def test_empty_token(tmp_path, text):
    config = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match="context prod is set but empty"):
        resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(config)))
    with pytest.raises(ConfigError, match="HCLOUD_TOKEN is set but empty"):
        resolve(environ=env(tmp_path, HCLOUD_TOKEN=""))


def test_config_readable_by_others_warns(tmp_path):
    config = write_config(tmp_path, mode=0o644)
    settings = resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(config)))
    assert any("readable by other users" in w and "chmod 600" in w for w in settings.warnings)
    private = write_config(tmp_path, mode=0o600)
    assert resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(private))).warnings == ()


def test_absent_config_changes_nothing(tmp_path):
    settings = resolve(
        environ=env(tmp_path, HCLOUD_TOKEN="t", HCLOUD_CONFIG=str(tmp_path / "nope.toml"))
    )
    assert settings.token == "t" and settings.warnings == ()
    with pytest.raises(ConfigError, match="HCLOUD_TOKEN"):
        resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(tmp_path / "nope.toml")))


def test_switchable_contexts(tmp_path):
    config = write_config(tmp_path)
    settings = resolve(environ=env(tmp_path, HCLOUD_CONFIG=str(config)))
    names = [c.name for c in switchable_contexts(settings, env(tmp_path))]
    assert names == ["prod", "staging"]
    assert "aaaa" not in repr(switchable_contexts(settings, env(tmp_path)))


def run_cli(tmp_path, *args, **variables):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "HERTZNER_"))}
    return subprocess.run(
        [sys.executable, "-m", "hsnap_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**base, "HOME": str(tmp_path), **variables},
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("malformed", "line 3"),
        ("unknown", "known: prod, staging"),
        ("empty", "is set but empty"),
    ],
)
def test_cli_setup_errors_exit_2_without_traceback(tmp_path, case, expected):
    if case == "malformed":
        config = write_config(tmp_path, 'active_context = "prod"\n[[contexts]]\nname = x\n')
        result = run_cli(tmp_path, HCLOUD_CONFIG=str(config))
    elif case == "unknown":
        config = write_config(tmp_path)
        result = run_cli(tmp_path, "--context", "qa", HCLOUD_CONFIG=str(config))
    else:
        result = run_cli(tmp_path, HCLOUD_TOKEN="")
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_context_flag_beats_hcloud_token(tmp_path):
    """`--context staging` names a project: a token exported for another one must not
    quietly win (a prune --apply would run on the wrong project)."""
    config = write_config(tmp_path)
    base = env(tmp_path, HCLOUD_CONFIG=str(config), HCLOUD_TOKEN="exported-prod")
    chosen = resolve(environ=base, context="staging")
    assert (chosen.token, chosen.context) == ("staging-token-bbbb", "staging")
    with pytest.raises(ConfigError, match="no context 'nosuch'"):
        resolve(environ=base, context="nosuch")
    # HCLOUD_CONTEXT (a variable, like HCLOUD_TOKEN) does not override the token
    assert resolve(environ={**base, "HCLOUD_CONTEXT": "staging"}).token == "exported-prod"
