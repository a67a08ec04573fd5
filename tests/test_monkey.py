"""Random key sequences over every view: whatever the operator presses, in whatever
order, the app keeps running (or quits cleanly when asked)."""

from __future__ import annotations

import random

import pytest

from tests.conftest import make_app, poll

KEYS = [
    "q",
    "1",
    "2",
    "3",
    "j",
    "k",
    "down",
    "up",
    "pagedown",
    "home",
    "end",
    "slash",
    "escape",
    "o",
    "space",
    "s",
    "enter",
    "i",
    "a",
    "r",
    "d",
    "p",
    "x",
    "c",
    "question_mark",
    "tab",
    "y",
    "n",
    "e",
    "w",
    "5",
    "hash",
    "backspace",
]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_keys_never_crash(make_sim, seed):
    sim = make_sim(scenario="demo")
    app = make_app(sim)
    rnd = random.Random(seed)
    async with app.run_test(size=(100, 30)) as pilot:
        await poll(pilot)
        for index in range(120):
            await pilot.press(rnd.choice(KEYS))
            if index % 10 == 0:
                sim.advance(5)
                app.refresher.request_fast()
                app.start_poll()
                await app.workers.wait_for_complete()
                await pilot.pause()
            if not app.is_running:
                break
    assert app.return_code in (0, None)
