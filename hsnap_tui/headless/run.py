"""Running a headless command: check what was asked (nothing is sent for bad input),
resolve the token as the console does, open one core `Session` with the console's
budget and audit log, and run the command on it."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hsnap_tui import __version__
from hsnap_tui.config import ConfigError, resolve
from hsnap_tui.core.api import HetznerApi
from hsnap_tui.core.audit import AuditLog, default_audit_path
from hsnap_tui.core.errors import explain
from hsnap_tui.core.keep import RULES, KeepRules
from hsnap_tui.core.labels import LabelError, parse_selector
from hsnap_tui.core.policy import PolicyError, load_policies
from hsnap_tui.core.session import Session
from hsnap_tui.logs import setup_logging

from .action import run_action
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CommandError,
    Runtime,
    ctrl_c_stops,
)
from .policies import run_policies
from .prune import NO_RULE, check_selector, run_prune
from .servers import run_servers
from .snapshot import check_request, run_snapshot

log = logging.getLogger("hsnap_tui.headless")

EXIT_BROKEN_PIPE = 141  # as a shell reports a tool ended by SIGPIPE
MUTATING = {"snapshot": "snapshot", "prune": "prune --apply", "run": "run"}


def keep_rules(args: argparse.Namespace) -> KeepRules:
    """--keep-last/-hourly/-daily/-weekly/-monthly/-yearly, as one set of rules."""
    return KeepRules(**{rule: getattr(args, f"keep_{rule}") or 0 for rule in RULES})


def run_command(args: argparse.Namespace, runtime: Runtime) -> int:
    try:
        with ctrl_c_stops(runtime):
            return _run(args, runtime)
    except CommandError as exc:
        runtime.note(f"hsnap-tui: {exc}")
        return exc.code
    except KeyboardInterrupt:
        runtime.note("hsnap-tui: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as a shell tool would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(args: argparse.Namespace, runtime: Runtime) -> int:
    command = args.command
    # What was asked, checked before the token is even looked at.
    request = None
    policies = []
    if command == "run":
        try:
            policies = load_policies(args.policy_file)
        except PolicyError as exc:
            raise CommandError(str(exc)) from None
    elif command == "snapshot":
        request = check_request(
            args.servers,
            args.selector,
            args.all,
            args.description,
            args.label,
            args.if_locked,
            wait=not args.no_wait,
            lock_timeout=args.lock_timeout or None,
            shutdown=args.shutdown,
            force_poweroff=args.force_poweroff,
            shutdown_timeout=args.shutdown_timeout,
        )
    elif command == "prune":
        if not keep_rules(args):
            raise CommandError(NO_RULE)
        check_selector(args.selector)
    elif command == "servers" and args.selector is not None:
        try:
            parse_selector(args.selector)
        except LabelError as exc:
            raise CommandError(f"-l {args.selector!r}: {exc}") from None
    mutating = (
        command == "snapshot"
        or (command == "prune" and args.apply)
        or (command == "run" and not args.dry_run)
    )
    if args.read_only and mutating:
        raise CommandError(
            f"--read-only: {MUTATING[command]} changes the project; nothing was sent"
        )
    try:
        settings = resolve(token_env=args.token_env, endpoint=args.endpoint, context=args.context)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    for warning in settings.warnings:
        runtime.note(f"hsnap-tui: warning: {warning}")
    setup_logging(debug=args.debug, secrets=[settings.token])
    log.info("hsnap-tui %s %s: %s at %s", __version__, command, settings.label, settings.endpoint)
    api = HetznerApi(settings.token, settings.endpoint, read_only=args.read_only)
    session = Session(
        api,
        name=settings.label,
        audit=AuditLog(
            default_audit_path(),
            context=settings.label,
            endpoint=settings.endpoint,
            now=runtime.now,
        ),
        refresh=args.refresh,
        budget=args.api_budget,
        clock=runtime.clock,
        now=runtime.now,
        # only `servers` shows the whole fleet with its snapshots
        fleet_view=command == "servers",
    )
    try:
        if command == "snapshot":
            assert request is not None
            return run_snapshot(session, runtime, request, args.json)
        if command == "prune":
            return run_prune(
                session,
                runtime,
                selector=args.selector,
                rules=keep_rules(args),
                apply=args.apply,
                as_json=args.json,
            )
        if command == "run":
            return run_policies(session, runtime, policies, dry_run=args.dry_run, as_json=args.json)
        if command == "action":
            return run_action(session, runtime, args.action, follow=args.follow, as_json=args.json)
        return run_servers(session, runtime, selector=args.selector, as_json=args.json)
    except (CommandError, KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # a bug or an unexpected answer: one line, never a traceback
        log.exception("%s failed", command)
        raise CommandError(explain(exc), EXIT_FAILED) from None


__all__ = ["run_command"]
