"""Deleting snapshots: refused before any request when the API would refuse, and every
request that is sent recorded in the audit log."""

from __future__ import annotations

import requests
from hcloud import APIException

from .api import HetznerApi
from .audit import AuditLog
from .errors import explain_error
from .models import Snapshot


class DeleteRefused(Exception):
    """Not sent: the message says why and what to do."""


def deletion_problem(snapshot: Snapshot) -> str | None:
    if snapshot.protected:
        return (
            f"{snapshot.description or snapshot.id} is protected against deletion. Lift the "
            f"protection first: Cloud Console → Snapshots → Protection, or "
            f"`hcloud image disable-protection {snapshot.id} delete`."
        )
    if snapshot.status == "creating":
        return (
            f"{snapshot.description or snapshot.id} is still being created; it can be "
            "deleted once it is available."
        )
    if snapshot.image_type not in ("snapshot", "backup"):
        return f"image {snapshot.id} is a {snapshot.image_type} image, not a snapshot"
    return None


def delete_snapshot(api: HetznerApi, audit: AuditLog | None, snapshot: Snapshot) -> None:
    """`DELETE /images/{id}` once. Raises DeleteRefused (nothing sent) or the API's or
    the network's error (sent; recorded)."""
    problem = deletion_problem(snapshot)
    if problem:
        raise DeleteRefused(problem)
    path = f"/images/{snapshot.id}"
    server = snapshot.server_name
    try:
        api.delete_image(snapshot.id)
    except APIException as exc:
        if audit is not None:
            audit.record(
                "DELETE",
                path,
                server=server,
                outcome=f"{api.last_status() or exc.code} {exc.code}",
                request_id=exc.correlation_id,
            )
        raise
    except (requests.RequestException, ValueError) as exc:
        if audit is not None:
            audit.record(
                "DELETE",
                path,
                server=server,
                outcome=f"ambiguous: {explain_error(exc).summary}",
                request_id=None,
            )
        raise
    if audit is not None:
        audit.record(
            "DELETE",
            path,
            server=server,
            outcome="204 deleted",
            request_id=api.last_request_id(),
        )
