"""Command line: arguments and settings → which mode runs."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys

from hsnap_tui import __version__
from hsnap_tui.config import ConfigError, Context, Settings, resolve, switchable_contexts
from hsnap_tui.keymap import load_keymap
from hsnap_tui.logs import setup_logging

log = logging.getLogger("hsnap_tui.cli")


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("give a fraction in (0, 1], e.g. 0.25 or 25%")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("give between 1 and 3600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsnap-tui",
        description="A keyboard-driven console for Hetzner Cloud: server status and locks, "
        "snapshots, lock investigation.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in simulated project (no token, no network)",
    )
    parser.add_argument(
        "--context",
        metavar="NAME",
        help="context of the hcloud CLI config (default: HCLOUD_CONTEXT, "
        "then the config's active context)",
    )
    parser.add_argument(
        "--token-env", metavar="NAME", help="read the token from this environment variable"
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="API endpoint (default: HCLOUD_ENDPOINT, the context's, or the Hetzner Cloud API)",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="never send a request that changes anything"
    )
    parser.add_argument(
        "--refresh",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how often to check for locks (default 5; the API budget may stretch it)",
    )
    parser.add_argument(
        "--api-budget",
        type=_fraction,
        default=0.25,
        metavar="FRACTION",
        help="share of the project's rate limit to use (default 0.25)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log every request (method, path, status, request ID) too",
    )
    parser.add_argument(
        "--demo-speed",
        type=float,
        default=1.0,
        metavar="X",
        help="simulated seconds per second in --demo (default 1)",
    )
    parser.add_argument("--version", action="version", version=f"hsnap-tui {__version__}")
    return parser


def run_demo(args: argparse.Namespace) -> int:
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.sim import Simulator
    from hsnap_tui.ui.app import HsnapApp

    token = secrets.token_hex(16)  # only this process knows it
    setup_logging(debug=args.debug, secrets=[token])
    speed = min(max(args.demo_speed, 0.0), 1000.0)
    log.info("hsnap-tui %s --demo (simulator speed %s)", __version__, speed)
    with Simulator(token=token, servers=24, seed=1, speed=speed, scenario="demo") as sim:
        api = HetznerApi(token, sim.url, read_only=args.read_only)
        # The demo's requests go to a simulator: they stay out of the real audit file.
        keymap, problems = load_keymap()
        app = HsnapApp(
            api,
            demo=True,
            now=sim.clock.now,  # what the demo shows runs on the simulated clock
            refresh=args.refresh,
            budget=args.api_budget,
            keymap=keymap,
            warnings=problems,
        )
        app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.demo:
        return run_demo(args)
    try:
        settings = resolve(token_env=args.token_env, endpoint=args.endpoint, context=args.context)
    except ConfigError as exc:
        print(f"hsnap-tui: {exc}", file=sys.stderr)
        return 2
    for warning in settings.warnings:
        print(f"hsnap-tui: warning: {warning}", file=sys.stderr)
    return run_app(args, settings)


def run_app(args: argparse.Namespace, settings: Settings) -> int:
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.core.audit import AuditLog, default_audit_path
    from hsnap_tui.ui.app import HsnapApp

    _, redact = setup_logging(debug=args.debug, secrets=[settings.token])
    log.info(
        "hsnap-tui %s: %s at %s%s",
        __version__,
        settings.label,
        settings.endpoint,
        " (read-only)" if args.read_only else "",
    )

    def connect(context: Context) -> HetznerApi:
        """`c`: the same settings for another context (endpoint: flag, env, context)."""
        if not context.token:
            raise ConfigError(f"context {context.name!r} has an empty token")
        redact.add(context.token)
        environ = {
            k: v for k, v in os.environ.items() if k not in ("HCLOUD_TOKEN", "HCLOUD_CONTEXT")
        }
        chosen = resolve(endpoint=args.endpoint, context=context.name, environ=environ)
        return HetznerApi(chosen.token, chosen.endpoint, read_only=args.read_only)

    api = HetznerApi(settings.token, settings.endpoint, read_only=args.read_only)
    audit = AuditLog(default_audit_path(), context=settings.label, endpoint=settings.endpoint)
    keymap, keymap_problems = load_keymap()
    app = HsnapApp(
        api,
        context=settings.label,
        refresh=args.refresh,
        budget=args.api_budget,
        audit=audit,
        warnings=list(settings.warnings) + keymap_problems,
        keymap=keymap,
        contexts=lambda: switchable_contexts(settings),
        connect=connect,
    )
    app.run()
    return app.return_code or 0
