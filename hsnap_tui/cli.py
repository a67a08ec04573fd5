"""Command line: arguments and settings → which mode runs."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import platformdirs

from hsnap_tui import __version__
from hsnap_tui.config import ConfigError, Context, Settings, resolve, switchable_contexts
from hsnap_tui.core.jobs import SHUTDOWN_TIMEOUT
from hsnap_tui.core.naming import DEFAULT_LABELS, DEFAULT_TEMPLATE
from hsnap_tui.core.policy import Policy, PolicyError, load_policies
from hsnap_tui.core.retention import MANAGED_SELECTOR, RetentionError, parse_keep
from hsnap_tui.headless.common import Runtime
from hsnap_tui.headless.run import run_command
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


def _seconds_in(low: float, high: float, advice: str) -> Callable[[str], float]:
    """An argparse type: a number of seconds from `low` to `high`."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(advice)
        return value

    return seconds


_seconds = _seconds_in(1, 3600, "give between 1 and 3600 seconds")
_lock_timeout = _seconds_in(0, 7 * 86400, "give 0 (no limit) to 604800 seconds (a week)")
_shutdown_timeout = _seconds_in(10, 3600, "give 10 to 3600 seconds")


def _connection_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """The options every mode shares. On a command they may come after its name too
    (`hsnap-tui snapshot --all --read-only`); there they default to nothing, so that
    they do not undo one given before it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    parser.add_argument(
        "--context",
        metavar="NAME",
        default=default(None),
        help="context of the hcloud CLI config (default: HCLOUD_CONTEXT, "
        "then the config's active context)",
    )
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        default=default(None),
        help="read the token from this environment variable",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        default=default(None),
        help="API endpoint (default: HCLOUD_ENDPOINT, the context's, or the Hetzner Cloud API)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=default(False),
        help="never send a request that changes anything",
    )
    parser.add_argument(
        "--refresh",
        type=_seconds,
        default=default(5.0),
        metavar="SECONDS",
        help="how often to check for locks (default 5; the API budget may stretch it)",
    )
    parser.add_argument(
        "--api-budget",
        type=_fraction,
        default=default(0.25),
        metavar="FRACTION",
        help="share of the project's rate limit to use (default 0.25)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="log every request (method, path, status, request ID) too",
    )


def _keep(text: str) -> int:
    try:
        return parse_keep(text)
    except RetentionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


EXIT_CODES = "exit codes:\n"
USAGE_EXIT = "  2  bad input or setup: no token, a rejected token, a bad selector…\n130  Ctrl-C"


def _commands(parser: argparse.ArgumentParser) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        title="commands (without one, the console starts)",
    )

    snapshot = commands.add_parser(
        "snapshot",
        help="snapshot servers, exactly once each, and wait for them",
        description="Snapshot the named servers (or IDs), those whose labels match -l, or\n"
        "--all, through the console's job engine: exactly one image per server, locks\n"
        "waited for or skipped. Progress on stderr, one result line per server on\n"
        "stdout.",
        epilog=EXIT_CODES + "  0  every snapshot was made (or, with --no-wait, accepted)\n"
        "  1  one failed or was skipped, or a late request made a second image\n" + USAGE_EXIT,
        formatter_class=raw,
    )
    snapshot.add_argument("servers", nargs="*", metavar="SERVER", help="server names")
    snapshot.add_argument(
        "-l", "--selector", metavar="SELECTOR", help="servers whose labels match (env=prod)"
    )
    snapshot.add_argument("--all", action="store_true", help="every server of the project")
    snapshot.add_argument(
        "--description",
        metavar="TEMPLATE",
        default=DEFAULT_TEMPLATE,
        help="the snapshot's description; {server} {id} {date} {time} "
        f"(default {DEFAULT_TEMPLATE})",
    )
    snapshot.add_argument(
        "--label",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help=f"a label for the snapshots, besides {DEFAULT_LABELS} (repeatable)",
    )
    snapshot.add_argument(
        "--if-locked",
        choices=("wait", "skip"),
        default="wait",
        help="a locked server: wait until its action ends (default) or skip it",
    )
    snapshot.add_argument(
        "--lock-timeout",
        type=_lock_timeout,
        default=3600.0,
        metavar="SECONDS",
        help="with --if-locked wait: skip a server still locked after this long "
        "(default 3600; 0 waits as long as it takes)",
    )
    snapshot.add_argument(
        "--shutdown",
        action="store_true",
        help="a consistent snapshot: shut the server down (ACPI), snapshot it while "
        "off, power it on again (servers already off stay off)",
    )
    snapshot.add_argument(
        "--shutdown-timeout",
        type=_shutdown_timeout,
        default=SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="with --shutdown: how long a server may take to go off (default 300); "
        "then its job fails and the server keeps running",
    )
    snapshot.add_argument(
        "--force-poweroff",
        action="store_true",
        help="with --shutdown: power a server off hard when it is not off in time",
    )
    snapshot.add_argument(
        "--no-wait",
        action="store_true",
        help="return once Hetzner has accepted every snapshot, printing the action IDs",
    )
    snapshot.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _connection_options(snapshot, sub=True)

    prune = commands.add_parser(
        "prune",
        help="delete old snapshots by a keep rule (a dry run without --apply)",
        description="Plan retention per server over the snapshots labelled "
        f"{MANAGED_SELECTOR}\n(or those -l picks by their own labels), print the plan, "
        "and delete only\nwith --apply, after re-reading the snapshots. Deletions are "
        "paced by the API\nbudget.",
        epilog=EXIT_CODES + "  0  the plan was printed (and, with --apply, carried out)\n"
        "  1  a deletion failed, or the snapshots could not be read\n" + USAGE_EXIT,
        formatter_class=raw,
    )
    prune.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help=f"the snapshots to consider, by their labels (default {MANAGED_SELECTOR})",
    )
    prune.add_argument("--keep-last", type=_keep, metavar="N", help="keep the newest N per server")
    for rule, period in (
        ("hourly", "hour"),
        ("daily", "day"),
        ("weekly", "ISO week"),
        ("monthly", "month"),
        ("yearly", "year"),
    ):
        prune.add_argument(
            f"--keep-{rule}",
            type=_keep,
            metavar="N",
            help=f"keep the newest of each of the last N {period}s that have one (UTC)",
        )
    prune.add_argument("--apply", action="store_true", help="delete what the plan says")
    prune.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _connection_options(prune, sub=True)

    run = commands.add_parser(
        "run",
        help="apply a policy file: snapshot, then prune, per policy",
        description="Per [[policy]] of the file: snapshot the servers its selector picks\n"
        "(exactly once each, consistent with shutdown = true), then delete its old\n"
        "snapshots by its [policy.keep] rules. A server whose snapshot did not\n"
        "succeed is not pruned. For cron:\n\n"
        "  30 2 * * *  hsnap-tui run /etc/hsnap/policy.toml >>/var/log/hsnap.log 2>&1",
        epilog=EXIT_CODES + "  0  every policy was carried out (or, with --dry-run, shown)\n"
        "  1  a snapshot failed or was skipped, a deletion failed, a policy matched no server\n"
        "  2  a bad policy file (file:line: what is wrong), no token, read-only…\n130  Ctrl-C",
        formatter_class=raw,
    )
    run.add_argument("policy_file", metavar="POLICY.toml", help="the policy file")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing that changes anything; print what would be done",
    )
    run.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _connection_options(run, sub=True)

    action = commands.add_parser(
        "action",
        help="look an action up by ID (or explain a request ID / error message)",
        description="Print an action: command, status, progress, times, resources, error.\n"
        "Given a request (correlation) ID or a pasted error message, explain it instead.",
        epilog=EXIT_CODES + "  0  the action was shown (with --follow: it ended in success)\n"
        "  1  no such action; it ended in error (--follow); the API did not answer\n"
        "  2  a request ID or an error message, not an action ID; bad input; no token\n"
        "130  Ctrl-C",
        formatter_class=raw,
    )
    action.add_argument("action", metavar="ID-OR-TEXT", help="an action ID, or pasted text")
    action.add_argument("--follow", action="store_true", help="follow it until it ends")
    action.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _connection_options(action, sub=True)

    servers = commands.add_parser(
        "servers",
        help="the fleet with status, locks and last snapshots",
        description="Every server with its status, type, location, IP and the age of its\n"
        "last snapshot, and under each locked server what holds the lock. Scripts:\n"
        "--json.",
        epilog=EXIT_CODES + "  0  the servers were shown\n"
        "  1  the API could not be reached for 2 minutes\n" + USAGE_EXIT,
        formatter_class=raw,
    )
    servers.add_argument(
        "-l", "--selector", metavar="SELECTOR", help="only servers whose labels match"
    )
    servers.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _connection_options(servers, sub=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsnap-tui",
        description="A keyboard-driven console for Hetzner Cloud: server status and locks, "
        "snapshots, lock investigation. With a command, it runs that and exits.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run the console against a built-in simulated project (no token, no network)",
    )
    _connection_options(parser, sub=False)
    parser.add_argument(
        "--demo-speed",
        type=float,
        default=1.0,
        metavar="X",
        help="simulated seconds per second in --demo (default 1)",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="a policy file whose policies the retention plan (p) previews (default: "
        "policy.toml in the config directory, when there is one)",
    )
    parser.add_argument("--version", action="version", version=f"hsnap-tui {__version__}")
    _commands(parser)
    return parser


def default_policy_path() -> Path:
    return Path(platformdirs.user_config_dir("hsnap-tui")) / "policy.toml"


def console_policies(args: argparse.Namespace) -> tuple[list[Policy], list[str]]:
    """The policies `p` previews, and warnings. A bad `--policy FILE` is a setup error
    (PolicyError); a bad default file only a warning (the console still starts)."""
    if args.policy:
        return load_policies(args.policy), []
    path = default_policy_path()
    if not path.is_file():
        return [], []
    try:
        return load_policies(path), []
    except PolicyError as exc:
        return [], [f"policies not loaded: {exc}"]


def run_demo(args: argparse.Namespace) -> int:
    from hsnap_tui.core.api import HetznerApi
    from hsnap_tui.sim import Simulator
    from hsnap_tui.ui.app import HsnapApp

    policies, policy_warnings = args.policies, args.policy_warnings
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
            warnings=problems + policy_warnings,
            policies=policies,
        )
        app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None, runtime: Runtime | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.demo and args.command:
        message = f"--demo is the console's; {args.command} needs a token"
        print(f"hsnap-tui: {message}", file=sys.stderr)
        return 2
    if not args.command:
        try:
            args.policies, args.policy_warnings = console_policies(args)
        except PolicyError as exc:
            print(f"hsnap-tui: {exc}", file=sys.stderr)
            return 2
    if args.demo:
        return run_demo(args)
    if args.command:
        return run_command(args, runtime or Runtime())
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
        warnings=list(settings.warnings) + keymap_problems + args.policy_warnings,
        keymap=keymap,
        policies=args.policies,
        contexts=lambda: switchable_contexts(settings),
        connect=connect,
    )
    app.run()
    return app.return_code or 0
