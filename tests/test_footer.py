"""The footer at 80 columns shows whole keys only: one cut at the edge reads as another."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from tests.conftest import make_app, poll, settle


@pytest.mark.parametrize("keys", [(), ("space", "space"), ("2",), ("3",), ("enter",)])
async def test_every_key_in_the_footer_is_whole_at_80_columns(make_sim, keys):
    app = make_app(make_sim(scenario="demo"))
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot)
        await pilot.press(*keys)
        await settle(pilot)
        await pilot.pause()
        footer_keys = list(app.screen.query(FooterKey))
        palette = next(k for k in footer_keys if k.has_class("-command-palette"))
        shown = [k for k in footer_keys if k.display and k is not palette]
        hidden = [k for k in footer_keys if not k.display]
        assert shown, "the footer shows keys"
        if keys in ((), ("space", "space")):
            assert hidden, "the Servers view has more keys than 80 columns hold"
        assert all(k.region.right <= palette.region.x for k in shown)
        # what is left out is left out whole, from the first that does not fit
        if hidden:
            order = [k for k in footer_keys if k is not palette]
            assert order.index(hidden[0]) == len(shown)
        # wider: they come back
        await pilot.resize_terminal(200, 24)
        await settle(pilot)
        await pilot.pause()
        assert all(k.display for k in app.screen.query(FooterKey))
