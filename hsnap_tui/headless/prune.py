"""`hsnap-tui prune`: the console's retention plan (`p`), printed; `--apply` re-reads
the snapshots right before deleting, recomputes the plan from them, prints what changed,
and deletes exactly what that plan says."""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from datetime import datetime, timezone

from hsnap_tui.core.errors import explain
from hsnap_tui.core.keep import RULES, KeepRules
from hsnap_tui.core.labels import LabelError, parse_selector
from hsnap_tui.core.models import Snapshot
from hsnap_tui.core.retention import (
    MANAGED_SELECTOR,
    RetentionPlan,
    plan_change,
    plan_retention,
)
from hsnap_tui.core.session import DeletionProgress, Session
from hsnap_tui.core.units import iso, size_gb

from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, WIDTH, CommandError, Runtime

NO_MATCH = (
    " (-l picks snapshots by their own labels: those hsnap-tui makes carry "
    "managed-by=hsnap and each --label of the snapshot command.)"
)


def check_selector(selector: str | None) -> str:
    selector = selector or MANAGED_SELECTOR
    try:
        parse_selector(selector)
    except LabelError as exc:
        raise CommandError(f"-l {selector!r}: {exc}") from None
    return selector


def _read(
    session: Session,
    selector: str,
    servers: Collection[int] | None = None,
    coming: Collection[Snapshot] = (),
) -> list[Snapshot]:
    try:
        snapshots = session.fresh_snapshots(selector) + list(coming)
        if servers is None:
            return snapshots
        return [s for s in snapshots if s.server_id in servers]
    except Exception as exc:  # explained in one line, never a traceback
        code = getattr(exc, "code", None)
        exit_code = 2 if code in ("unauthorized", "forbidden") else EXIT_FAILED
        raise CommandError(f"could not read the snapshots: {explain(exc)}", exit_code) from None


def run_prune(
    session: Session,
    runtime: Runtime,
    *,
    selector: str | None,
    rules: KeepRules,
    apply: bool,
    as_json: bool,
    servers: Collection[int] | None = None,
    hint: str | None = "Run again with --apply to delete them.",
    coming: Collection[Snapshot] = (),
    empty: str = NO_MATCH,
) -> int:
    """Plan (and with `apply`, carry out) retention over the snapshots `selector`
    picks — of `servers` only, when given. `coming`: snapshots not made yet (negative
    IDs) that a dry run plans with, as the real run will have them."""
    assert not (apply and coming), "only a preview plans with snapshots to come"
    if not rules:
        raise CommandError(NO_RULE)
    selector = check_selector(selector)
    if apply and session.read_only:
        raise CommandError(
            f"read-only ({session.api.read_only_reason}): --apply would delete snapshots; "
            "nothing was sent"
        )
    plan = plan_retention(_read(session, selector, servers, coming), rules, selector)
    show_plan(runtime, plan, as_json, applying=apply, hint=hint, empty=empty)
    if not apply:
        return EXIT_OK
    if not plan.delete:
        return EXIT_OK
    # Right before deleting: the snapshots as they are now, and the plan from them.
    fresh = plan_retention(_read(session, selector, servers), rules, selector)
    change = plan_change(plan, fresh)
    if change:
        if as_json:
            runtime.json(
                {
                    "type": "plan_changed",
                    "now_deleted": [s.id for s in change.now_deleted],
                    "no_longer_deleted": [s.id for s in change.now_kept],
                }
            )
        else:
            runtime.print("The snapshots changed since the plan was made; deleting this instead:")
            for line in change.lines():
                runtime.print(f"  {line}")
    return _delete(session, runtime, fresh, as_json)


def _delete(session: Session, runtime: Runtime, plan: RetentionPlan, as_json: bool) -> int:
    doomed = plan.delete
    if not doomed:
        runtime.print("Nothing to delete any more.")
        return EXIT_OK
    by_id = {s.id: s for s in doomed}
    last = DeletionProgress(0, len(doomed), (), ())

    def progress(report: DeletionProgress) -> None:
        nonlocal last
        new_ids = report.deleted[len(last.deleted) :]
        new_failures = report.failures[len(last.failures) :]
        new_failed = report.failed[len(last.failed) :]
        last = report

        def about(image_id: int) -> dict:
            snap = by_id.get(image_id)
            return {
                "snapshot_id": image_id,
                "server": snap.server_name if snap else None,
                "description": snap.description if snap else None,
            }

        for image_id in new_ids:
            if as_json:
                runtime.json({"type": "deleted", **about(image_id)})
            else:
                name = about(image_id)["description"] or image_id
                runtime.note(f"[{report.done}/{report.total}] deleted {name} (#{image_id})")
        for failure, image_id in zip(new_failures, new_failed, strict=True):
            if as_json:
                runtime.json({"type": "delete_failed", **about(image_id), "error": failure})
            else:
                runtime.note(
                    textwrap.fill(
                        f"[{report.done}/{report.total}] not deleted: {failure}",
                        width=WIDTH,
                        subsequent_indent="    ",
                        break_long_words=False,
                    )
                )

    report = session.delete_snapshots(doomed, progress, pace=runtime.wait)
    freed = sum(by_id[i].image_size_gb or 0.0 for i in report.deleted if i in by_id)
    interrupted = runtime.stopped and report.done < report.total
    code = EXIT_INTERRUPTED if interrupted else (EXIT_FAILED if report.failures else EXIT_OK)
    if as_json:
        runtime.json(
            {
                "type": "summary",
                "planned": len(doomed),
                "deleted": len(report.deleted),
                "failed": len(report.failures),
                "not_attempted": report.total - report.done,
                "freed_gb": round(freed, 1),
                "exit_code": code,
            }
        )
    else:
        line = (
            f"Deleted {len(report.deleted)} of {_count(len(doomed), 'snapshot')}, "
            f"freeing {size_gb(freed)}"
        )
        if report.failures:
            line += f"; {len(report.failures)} failed"
        if interrupted:
            line += f"; interrupted: {report.total - report.done} not attempted"
        runtime.print(textwrap.fill(line + ".", width=WIDTH))
    return code


NO_RULE = "give a keep rule: --keep-last N, or --keep-daily N (-hourly, -weekly, …)"


def _why(reasons: tuple[str, ...]) -> str:
    """The first rule that keeps a snapshot, and how many more do: `daily 2026-11-27 +1`."""
    if not reasons:
        return "kept"
    more = f" +{len(reasons) - 1}" if len(reasons) > 1 else ""
    return reasons[0] + more


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _created(snapshot: Snapshot) -> str:
    if snapshot.created is None:
        return "-"
    return datetime.fromtimestamp(snapshot.created, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _row(verb: str, snapshot: Snapshot, why: str, why_width: int) -> str:
    ident = f"#{snapshot.id}" if snapshot.id > 0 else "(new)"
    head = (
        f"  {verb:<6} {ident:<11} {_created(snapshot)}  "
        f"{size_gb(snapshot.image_size_gb):>7}  {why:<{why_width}}  "
    )
    description = snapshot.description or ""
    room = WIDTH - len(head)
    server = snapshot.server_name or ""
    if len(description) > room and server and description.startswith(server):
        # under its server's heading the name is said already: `…-2026-11-30-0310`
        description = "…" + description[len(server) :]
    if len(description) > room:
        description = "…" + description[-(room - 1) :] if room > 1 else ""
    return (head + description).rstrip()


def plan_rows(plan: RetentionPlan) -> list[tuple[str, Snapshot, str, str]]:
    """(server name, snapshot, keep/delete, why) for every snapshot the plan is about,
    per server, newest first."""
    rows = []
    for server in plan.servers:
        entries = [(s, "keep", _why(server.reasons.get(s.id, ()))) for s in server.keep]
        entries += [(s, "delete", "kept by no rule") for s in server.delete]
        entries += [(s, "keep", why) for s, why in server.spared]
        entries.sort(key=lambda e: (-(e[0].created or 0.0), -e[0].id))
        rows += [(server.server_name, s, verb, why) for s, verb, why in entries]
    return rows


def _reasons_of(plan: RetentionPlan, snapshot: Snapshot) -> tuple[str, ...]:
    server = next((p for p in plan.servers if p.server_id == snapshot.server_id), None)
    return server.reasons.get(snapshot.id, ()) if server else ()


def show_plan(
    runtime: Runtime,
    plan: RetentionPlan,
    as_json: bool,
    applying: bool,
    hint: str | None = "Run again with --apply to delete them.",
    empty: str = NO_MATCH,
) -> None:
    rows = plan_rows(plan)
    if as_json:
        for server_name, snap, verb, why in rows:
            runtime.json(
                {
                    "type": "plan",
                    "server": server_name,
                    "server_id": snap.server_id,
                    "snapshot_id": snap.id if snap.id > 0 else None,  # None: to be made
                    "description": snap.description,
                    "created": iso(snap.created),
                    "size_gb": snap.image_size_gb,
                    "action": verb,
                    "reason": why,
                    "rules": list(_reasons_of(plan, snap)),
                }
            )
        runtime.json(
            {
                "type": "plan_summary",
                "selector": plan.selector,
                "rules": {r: getattr(plan.rules, r) for r in RULES if getattr(plan.rules, r)},
                "delete": len(plan.delete),
                "keep": len(plan.keep),
                "servers": len(plan.servers),
                "servers_with_deletions": sum(1 for p in plan.servers if p.delete),
                "frees_gb": round(plan.freed_gb, 1),
                "ignored": plan.ignored,
            }
        )
        return
    runtime.print(
        textwrap.fill(
            f"Retention plan: keep {plan.rules.describe()} per server ({plan.selector})",
            width=WIDTH,
            subsequent_indent="  ",
        )
    )
    current = None
    why_width = max([8, *(len(why) for _, _, _, why in rows)])
    for server_name, snap, verb, why in rows:
        if server_name != current:
            current = server_name
            runtime.print(f"{server_name}")
        runtime.print(_row(verb, snap, why, why_width))
    if not rows:
        runtime.print(textwrap.fill(f"No snapshots match {plan.selector}.{empty}", width=WIDTH))
    servers = len({p.server_id for p in plan.servers if p.delete})
    verb = "Deleting" if applying else "Would delete"
    line = (
        f"{verb} {_count(len(plan.delete), 'snapshot')} on {_count(servers, 'server')}, "
        f"freeing {size_gb(plan.freed_gb)}; keeping {len(plan.keep)}."
    )
    if not applying and plan.delete and hint:
        line += f" {hint}"
    runtime.print(textwrap.fill(line, width=80))
