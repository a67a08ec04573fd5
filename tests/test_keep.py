"""Keep rules (restic's `forget` semantics) against a small independent reference: for
each rule, group by period, take the N most recent periods, keep the newest of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsnap_tui.core.keep import RULES, KeepRuleError, KeepRules, keep_reasons


@dataclass(frozen=True)
class Snap:
    id: int
    created: float


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


# the reference's own period keys: tuples, ISO weeks from strftime's %G/%V
REFERENCE_KEYS = {
    "hourly": lambda t: (_when(t).year, _when(t).month, _when(t).day, _when(t).hour),
    "daily": lambda t: (_when(t).year, _when(t).month, _when(t).day),
    "weekly": lambda t: (int(_when(t).strftime("%G")), int(_when(t).strftime("%V"))),
    "monthly": lambda t: (_when(t).year, _when(t).month),
    "yearly": lambda t: (_when(t).year,),
}


def reference(snaps: list[Snap], rules: KeepRules) -> dict[int, set[str]]:
    kept: dict[int, set[str]] = {}
    newest = sorted(snaps, key=lambda s: (s.created, s.id), reverse=True)
    for snap in newest[: rules.last]:
        kept.setdefault(snap.id, set()).add("last")
    for rule, key in REFERENCE_KEYS.items():
        count = getattr(rules, rule)
        periods: dict[tuple, list[Snap]] = {}
        for snap in snaps:
            periods.setdefault(key(snap.created), []).append(snap)
        for period in sorted(periods, reverse=True)[:count]:
            best = max(periods[period], key=lambda s: (s.created, s.id))
            kept.setdefault(best.id, set()).add(rule)
    return kept


def kept_by(snaps: list[Snap], rules: KeepRules) -> dict[int, set[str]]:
    return {i: {r.split()[0] for r in why} for i, why in keep_reasons(snaps, rules).items()}


START, END = utc("2024-12-20T00:00:00"), utc("2027-01-10T00:00:00")
times = st.one_of(
    st.floats(min_value=START, max_value=END, allow_nan=False),
    # clustered: many in one hour, day, week, and across year ends
    st.sampled_from([utc("2026-12-31T23:59:59"), utc("2027-01-01T00:00:00")]),
    st.integers(min_value=0, max_value=200).map(lambda h: utc("2026-11-20T00:00:00") + h * 3600),
)
snapshot_lists = st.lists(times, max_size=60).map(
    lambda ts: [Snap(i + 1, t) for i, t in enumerate(ts)]
)
rule_sets = st.builds(KeepRules, **{r: st.integers(0, 12) for r in RULES})


@settings(max_examples=400, deadline=None)
@given(snapshot_lists, rule_sets)
def test_keep_rules_match_the_reference(snaps, rules):
    assert kept_by(snaps, rules) == reference(snaps, rules)


@settings(max_examples=200, deadline=None)
@given(snapshot_lists, rule_sets)
def test_order_of_the_input_does_not_matter(snaps, rules):
    assert keep_reasons(snaps, rules) == keep_reasons(list(reversed(snaps)), rules)


def test_several_in_one_period_the_newest_wins():
    snaps = [
        Snap(1, utc("2026-11-27T01:00:00")),
        Snap(2, utc("2026-11-27T23:00:00")),
        Snap(3, utc("2026-11-27T12:00:00")),
    ]
    assert keep_reasons(snaps, KeepRules(daily=1)) == {2: ["daily 2026-11-27"]}


def test_empty_periods_do_not_count():
    days = ["2026-11-01", "2026-11-05", "2026-11-09", "2026-11-20"]
    snaps = [Snap(i, utc(f"{d}T03:00:00")) for i, d in enumerate(days, 1)]
    assert set(keep_reasons(snaps, KeepRules(daily=3))) == {4, 3, 2}


def test_iso_weeks_across_the_year_end():
    # Thursday 2026-12-31 and Saturday 2027-01-02 are both in ISO week 2026-W53
    snaps = [
        Snap(1, utc("2026-12-24T03:00:00")),  # 2026-W52
        Snap(2, utc("2026-12-31T03:00:00")),  # 2026-W53
        Snap(3, utc("2027-01-02T03:00:00")),  # 2026-W53, newer
        Snap(4, utc("2027-01-04T03:00:00")),  # 2027-W01
    ]
    assert keep_reasons(snaps, KeepRules(weekly=3)) == {
        4: ["weekly 2027-W01"],
        3: ["weekly 2026-W53"],
        1: ["weekly 2026-W52"],
    }


def test_equal_timestamps_the_larger_id_wins():
    moment = utc("2026-11-27T03:00:00")
    snaps = [Snap(7, moment), Snap(9, moment), Snap(8, moment)]
    assert keep_reasons(snaps, KeepRules(last=1, daily=1)) == {9: ["last 1", "daily 2026-11-27"]}


def test_more_than_the_history_keeps_one_per_period():
    snaps = [Snap(i, utc(f"2026-11-{d:02d}T03:00:00")) for i, d in enumerate((3, 3, 4), 1)]
    assert set(keep_reasons(snaps, KeepRules(daily=30, last=0))) == {2, 3}
    assert set(keep_reasons(snaps, KeepRules(last=100))) == {1, 2, 3}


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", 10**6])
def test_bad_counts_are_refused(bad):
    with pytest.raises(KeepRuleError):
        KeepRules(daily=bad)


def test_no_rule_is_false_and_describe_names_the_rules():
    assert not KeepRules()
    assert KeepRules(last=3, weekly=4).describe() == "last 3, weekly 4"


def test_rules_as_an_operator_types_them():
    from hsnap_tui.core.keep import parse_rules

    assert parse_rules("3") == KeepRules(last=3)
    assert parse_rules(" last 3, daily 7 ") == KeepRules(last=3, daily=7)
    assert parse_rules("daily=7 weekly=4") == KeepRules(daily=7, weekly=4)
    assert parse_rules("Monthly 6") == KeepRules(monthly=6)
    for bad, message in [
        ("", "give a rule"),
        ("dayly 7", "'dayly' is not a rule"),
        ("daily", "give each rule a number"),
        ("daily x", "daily x: a whole number"),
        ("daily 7 daily 3", "daily is given twice"),
        ("last 0", "keep at least 1"),
        ("daily ７", "a whole number"),
    ]:
        with pytest.raises(KeepRuleError, match=message):
            parse_rules(bad)
