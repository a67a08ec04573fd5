"""Fitting columns into the width there is, and shortening a text without cutting a word."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from hsnap_tui.ui.widgets.tables import COLUMN_PADDING, Column, fit_columns, shorten


def test_shorten_ends_at_a_word_break():
    assert shorten("before upgrade 2", 16) == "before upgrade 2"  # fits: whole
    assert shorten("before upgrade 2", 15) == "before upgrade…"
    assert shorten("db-prod-01-pre-migration", 19) == "db-prod-01-pre…"
    # the cut falls on a break: the word before it stays
    assert shorten("monitoring-staging-02-2026-11-12", 19) == "monitoring-staging…"
    assert shorten("averyveryverylongword", 10) == "averyvery…"  # one word: no choice


@given(st.text(alphabet="ab -_.🛡", max_size=40), st.integers(min_value=1, max_value=40))
def test_shorten_fits_and_keeps_a_prefix(text, width):
    short = shorten(text, width)
    assert cell_len(short) <= max(width, 1)
    if short != text:
        assert short.endswith("…") and text.startswith(short.removesuffix("…"))


def test_columns_drop_in_their_order_and_the_others_always_stay():
    columns = [
        Column("name", "Name"),
        Column("a", "A", drop_rank=2),
        Column("b", "B", drop_rank=1),
        Column("c", "C", drop_rank=3),
    ]
    widths = {"name": 10, "a": 5, "b": 20, "c": 5}
    pad = COLUMN_PADDING
    everything = sum(widths.values()) + 4 * pad
    assert fit_columns(columns, widths, everything) == ("name", "a", "b", "c")
    assert fit_columns(columns, widths, everything - 1) == ("name", "a", "c")
    assert fit_columns(columns, widths, 10 + 5 + pad * 2) == ("name", "c")
    assert fit_columns(columns, widths, 5) == ("name",)  # never dropped, even when too wide


def test_shrinking_shares_the_room_the_widest_giving_first():
    from hsnap_tui.ui.widgets.tables import MIN_SHRUNK, shrink_columns

    columns = [Column("d", "Description", shrink=True), Column("s", "Server", shrink=True)]
    columns.append(Column("fixed", "Fixed"))
    pad = COLUMN_PADDING
    widths = {"d": 37, "s": 16, "fixed": 20}
    shrink_columns(columns, widths, ["d", "s", "fixed"], 30 + 16 + 20 + 3 * pad)
    assert widths == {"d": 30, "s": 16, "fixed": 20}  # only the widest gave
    widths = {"d": 37, "s": 21, "fixed": 20}
    shrink_columns(columns, widths, ["d", "s", "fixed"], 36 + 20 + 3 * pad)
    assert widths["fixed"] == 20 and widths["d"] + widths["s"] == 36
    assert abs(widths["d"] - widths["s"]) <= 1  # shared
    widths = {"d": 37, "s": 21, "fixed": 20}
    shrink_columns(columns, widths, ["d", "s", "fixed"], 10)
    assert widths == {"d": MIN_SHRUNK, "s": MIN_SHRUNK, "fixed": 20}  # no lower


def test_shorten_keeps_the_style_of_rich_text():
    from rich.text import Text

    short = shorten(Text("bastion-staging-01 (deleted)", style="bold"), 20)
    assert isinstance(short, Text)
    assert short.plain == "bastion-staging-01…"
    assert short.spans[0].style == "bold" or short.style == "bold"
