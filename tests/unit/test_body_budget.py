"""Large bodies are read and decided a few at a time, whatever the number of request threads; small ones pass."""

from __future__ import annotations

import asyncio

from webhook.server import BodyBudget


def test_large_bodies_share_the_budget_and_small_ones_pass_whatever_is_taken():
    async def scenario() -> list[bool]:
        budget = BodyBudget(limit=100, small=10, wait=0.05)
        taken = [await budget.take(60), await budget.take(60), await budget.take(10), await budget.take(40)]
        await budget.give(60)
        return [*taken, await budget.take(60)]

    assert asyncio.run(scenario()) == [True, False, True, True, True]


def test_a_body_waiting_for_the_budget_gets_it_when_another_gives_it_back():
    async def scenario() -> bool:
        budget = BodyBudget(limit=100, small=10, wait=5)
        await budget.take(100)
        waiting = asyncio.ensure_future(budget.take(100))
        await asyncio.sleep(0)
        assert not waiting.done()
        await budget.give(100)
        return await waiting

    assert asyncio.run(scenario()) is True
