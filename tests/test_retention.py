"""The retention plan is pure; these properties hold for any set of snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsnap_tui.core.models import Snapshot
from hsnap_tui.core.retention import RetentionError, parse_keep, plan_retention

MANAGED = {"managed-by": "hsnap"}


@st.composite
def snapshot_sets(draw):
    count = draw(st.integers(0, 40))
    ids = draw(st.lists(st.integers(1, 10**9), min_size=count, max_size=count, unique=True))
    snapshots = []
    for image_id in ids:
        server = draw(st.sampled_from([1, 2, 3, None]))
        labels = draw(
            st.sampled_from([MANAGED, {}, {"managed-by": "terraform"}, {**MANAGED, "env": "prod"}])
        )
        snapshots.append(
            Snapshot(
                id=image_id,
                description=f"snap-{image_id}",
                status=draw(st.sampled_from(["available", "available", "available", "creating"])),
                image_type="snapshot",
                created=float(draw(st.integers(0, 30))),  # few values: ties happen
                server_id=server,
                server_name=None if server is None else f"server-{server}",
                image_size_gb=1.0,
                disk_size_gb=20.0,
                protected=draw(st.booleans()),
                labels=labels,
            )
        )
    return snapshots


def managed(s: Snapshot) -> bool:
    return s.labels.get("managed-by") == "hsnap" and s.server_id is not None


def newer_count(s: Snapshot, snapshots: list[Snapshot]) -> int:
    """How many managed, available snapshots of the same server are newer than s."""
    return sum(
        1
        for other in snapshots
        if other is not s
        and managed(other)
        and other.status == "available"
        and other.server_id == s.server_id
        and (other.created, other.id) > (s.created, s.id)
    )


@settings(max_examples=300, deadline=None)  # a loaded CI machine is slow, not wrong
@given(snapshot_sets(), st.integers(1, 6))
def test_plan_never_touches_what_it_must_not_and_is_exact(snapshots, keep):
    plan = plan_retention(snapshots, keep)
    deleted = {s.id for s in plan.delete}
    for s in snapshots:
        if s.protected or not managed(s) or s.status != "available":
            assert s.id not in deleted
        if managed(s) and s.status == "available" and newer_count(s, snapshots) < keep:
            assert s.id not in deleted  # one of the newest N
    expected = {
        s.id
        for s in snapshots
        if managed(s)
        and s.status == "available"
        and not s.protected
        and newer_count(s, snapshots) >= keep
    }
    assert deleted == expected
    # every considered snapshot is listed exactly once, as kept or deleted
    listed = [s.id for s in plan.delete] + [s.id for s in plan.keep]
    assert sorted(listed) == sorted(s.id for s in snapshots if managed(s))
    assert plan.ignored == sum(1 for s in snapshots if not managed(s))


@settings(deadline=None)
@given(snapshot_sets(), st.integers(1, 6))
def test_a_bigger_n_never_deletes_more(snapshots, keep):
    fewer = {s.id for s in plan_retention(snapshots, keep + 1).delete}
    assert fewer <= {s.id for s in plan_retention(snapshots, keep).delete}


def test_parse_keep():
    assert parse_keep(" 3 ") == 3
    for bad, words in [
        ("", "enter"),
        ("0", "at least 1"),
        ("-2", "not a whole number"),
        ("2.5", "not a whole number"),
        ("３", "not a whole number"),
        ("5000", "at most"),
        ("x" * 100, "not a whole number"),
    ]:
        with pytest.raises(RetentionError, match=words):
            parse_keep(bad)
    with pytest.raises(RetentionError):
        plan_retention([], 0)
