"""The command line as a new user meets it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hsnap_tui.config import ConfigError, Settings, resolve


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "HERTZNER_"))}
    return subprocess.run(
        [sys.executable, "-m", "hsnap_tui", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_no_token_says_how_and_exits_2(tmp_path):
    result = run_cli(env={"HCLOUD_CONFIG": str(tmp_path / "absent.toml")})
    assert result.returncode == 2
    assert "HCLOUD_TOKEN" in result.stderr and "--demo" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_empty_token_is_refused(tmp_path):
    result = run_cli(env={"HCLOUD_TOKEN": "  "})
    assert result.returncode == 2
    assert "HCLOUD_TOKEN is set but empty" in result.stderr


@pytest.mark.parametrize(
    "args", [["--api-budget", "2"], ["--api-budget", "x"], ["--refresh", "0"], ["--bogus"]]
)
def test_bad_options_exit_2_without_traceback(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("hsnap-tui ")


def test_token_and_endpoint_resolution():
    settings = resolve(environ={"HCLOUD_TOKEN": "abc", "HCLOUD_ENDPOINT": "http://x/v1/"})
    assert (settings.token, settings.endpoint, settings.token_source) == (
        "abc",
        "http://x/v1",
        "HCLOUD_TOKEN",
    )
    assert "abc" not in repr(settings)
    legacy = resolve(environ={"HERTZNER_API_KEY": "old"})
    assert legacy.token_source == "HERTZNER_API_KEY"
    chosen = resolve(
        environ={"MY_TOKEN": "t", "HCLOUD_TOKEN": "u"},
        token_env="MY_TOKEN",
        endpoint="https://example.test/v1",
    )
    assert (chosen.token, chosen.endpoint) == ("t", "https://example.test/v1")
    with pytest.raises(ConfigError, match="MISSING"):
        resolve(environ={}, token_env="MISSING")
    with pytest.raises(ConfigError, match="http"):
        resolve(environ={"HCLOUD_TOKEN": "t", "HCLOUD_ENDPOINT": "ftp://x"})
    assert Settings(token="secret").__repr__().count("secret") == 0


def test_console_policy_file_bad_is_exit_2_default_bad_is_a_warning(tmp_path, monkeypatch, capsys):
    from hsnap_tui.cli import build_parser, console_policies, default_policy_path, main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[policy]]\nname = "x"\nselector = "env=prod"\nkeep = { dayly = 7 }\n')
    assert main(["--policy", str(bad)]) == 2
    assert f"{bad}:4: policy 'x': keep: unknown rule 'dayly'" in capsys.readouterr().err
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    default = default_policy_path()
    assert default == tmp_path / "config" / "hsnap-tui" / "policy.toml"
    args = build_parser().parse_args([])
    assert console_policies(args) == ([], [])  # no file: no policies, no warning
    default.parent.mkdir(parents=True)
    default.write_text(bad.read_text())
    policies, warnings = console_policies(args)
    assert policies == [] and "policies not loaded" in warnings[0] and "dayly" in warnings[0]
    default.write_text('[[policy]]\nname = "x"\nselector = "env=prod"\nkeep = { daily = 7 }\n')
    [policy], warnings = console_policies(args)
    assert policy.name == "x" and warnings == []
