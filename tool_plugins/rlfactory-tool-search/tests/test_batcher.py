"""The coalescer both the remote client and the server batch with."""

from __future__ import annotations

import asyncio

import pytest

from rlfactory_tool_search.batcher import Coalescer

pytestmark = pytest.mark.timeout(30)


async def test_window_and_max_batch():
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        return [i * 10 for i in items]

    coalescer = Coalescer(run, window_s=0.05, max_batch=4)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert [len(b) for b in batches] == [4, 4, 2]  # full batches leave at once, the rest after the window
    assert coalescer.batches == 3 and coalescer.items == 10


async def test_separate_windows_are_separate_batches():
    sizes: list[int] = []

    async def run(items: list[str]) -> list[str]:
        sizes.append(len(items))
        return items

    coalescer = Coalescer(run, window_s=0.01, max_batch=100)
    assert await coalescer.submit("a") == "a"
    assert await asyncio.gather(coalescer.submit("b"), coalescer.submit("c")) == ["b", "c"]
    assert sizes == [1, 2]


async def test_a_failing_batch_fails_every_caller_and_the_next_batch_works():
    fail = True

    async def run(items: list[int]) -> list[int]:
        if fail:
            raise RuntimeError("backend down")
        return items

    coalescer = Coalescer(run, window_s=0.01, max_batch=10)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "backend down" in str(r) for r in results)
    fail = False
    assert await coalescer.submit(7) == 7


async def test_wrong_result_count_is_an_error():
    async def run(items: list[int]) -> list[int]:
        return items[:-1]

    coalescer = Coalescer(run, window_s=0.0, max_batch=10)
    with pytest.raises(RuntimeError, match="batch of 2 items returned 1 results"):
        await asyncio.gather(coalescer.submit(1), coalescer.submit(2))


async def test_a_cancelled_caller_does_not_break_the_batch():
    async def run(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        return items

    coalescer = Coalescer(run, window_s=0.01, max_batch=10)
    slow = asyncio.ensure_future(coalescer.submit(1))
    other = asyncio.ensure_future(coalescer.submit(2))
    await asyncio.sleep(0.02)
    slow.cancel()
    assert await other == 2
