"""Label rules and label selectors (shared by the simulator and the app's filter)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hsnap_tui.core.labels import (
    LabelError,
    RowFilter,
    is_selector,
    label_problems,
    parse_labels,
    parse_selector,
)

LABELS = {"env": "prod", "role": "db", "team": "data"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", True),
        ("env==prod", True),
        ("env=dev", False),
        ("env!=dev", True),
        ("env!=prod", False),
        ("missing!=x", True),
        ("team", True),
        ("missing", False),
        ("!missing", True),
        ("!team", False),
        ("role in (db,web)", True),
        ("role in (web, cache)", False),
        ("role notin (web)", True),
        ("role notin (db)", False),
        ("missing notin (a)", True),
        ("env=prod,role in (db,web),!missing", True),
        ("env=prod, role=web", False),
        ("example.com/owner!=x", True),
    ],
)
def test_selector_semantics(selector, expected):
    assert parse_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "   ",
        "role in (db",
        "role in ()",
        "=prod",
        "env=pr od",
        "a,,b",
        "env=-x",
        "role in db",
        "hetzner.cloud/x=1",
        ")",
    ],
)
def test_bad_selectors_are_refused(selector):
    with pytest.raises(LabelError):
        parse_selector(selector)


def test_label_rules():
    assert label_problems({"managed-by": "hsnap", "a": "", "example.com/k_1": "v.2"}) == []
    assert label_problems({"": "x"})
    assert label_problems({"-bad": "x"})
    assert label_problems({"k": "bad value"})
    assert label_problems({"k": "x" * 64})
    assert label_problems({"hetzner.cloud/x": "1"})
    assert label_problems({"UPPER.example/x": "1"})
    assert label_problems(["not", "a", "dict"])


def test_parse_labels():
    assert parse_labels("managed-by=hsnap, env=prod") == {"managed-by": "hsnap", "env": "prod"}
    assert parse_labels("  ") == {}
    assert parse_labels("empty=") == {"empty": ""}
    for bad in ("novalue", "a=1,a=2", "k=bad!", "bad key=1"):
        with pytest.raises(LabelError):
            parse_labels(bad)


def test_the_one_filter_rule():
    # a selector iff one of = ! ( ) is in the text
    for selector in ("env=prod", "env==prod", "env!=prod", "!team", "role in (db,web)"):
        assert is_selector(selector)
        assert RowFilter.parse(selector).selector == parse_selector(selector)
    for text in ("web-prod", "before upgrade 2", "db, web", "team"):
        assert not is_selector(text)
        assert RowFilter.parse(text).selector is None


def test_a_row_filter_matches_labels_or_texts():
    selector = RowFilter.parse("env=prod, role in (db,web)")
    assert selector.matches(LABELS, "nothing-alike")
    assert not selector.matches({"env": "prod", "role": "cache"}, "env=prod")
    text = RowFilter.parse("  Prod-0 ")
    assert text.text == "Prod-0"
    assert text.matches({}, "db-prod-01") and text.matches({}, None, "web-PROD-02")
    assert not text.matches({"env": "prod-0"}, "db-staging-01", None)
    assert RowFilter.parse("").matches(None) and not RowFilter.parse("")
    with pytest.raises(LabelError, match="unbalanced"):
        RowFilter.parse("role in (db")


@given(st.text(max_size=80))
def test_any_text_parses_or_gives_label_error(text):
    for parse in (parse_selector, parse_labels):
        try:
            parse(text)
        except LabelError as exc:
            assert str(exc)
