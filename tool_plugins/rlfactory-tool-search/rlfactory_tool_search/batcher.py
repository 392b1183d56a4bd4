"""Coalescing: calls that arrive within a few milliseconds are run as one batch.

Both the remote client (many trajectories' queries → one HTTP request) and the server
(many HTTP requests → one index search) use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await submit(item)`` returns ``run_batch(items)[k]`` for the batch the item landed in.

    A batch is sent ``window_s`` after its first item arrives, or as soon as it holds
    ``max_batch`` items. If ``run_batch`` raises, every caller of that batch gets the
    exception. Bound to the event loop of its first ``submit``.
    """

    def __init__(self, run_batch: Callable[[list[T]], Awaitable[list[R]]], window_s: float, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run_batch, self.window_s, self.max_batch = run_batch, window_s, max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self.run_batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} items returned {len(results)} results")
        except BaseException as e:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
