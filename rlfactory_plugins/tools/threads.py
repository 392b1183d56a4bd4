"""Run a blocking function in its own daemon thread and await its result.

Not the event loop's default executor: a sync tool that hangs forever keeps only its own
thread busy, so it can neither starve the loop's executor (DNS, ``to_thread`` elsewhere)
nor block the tool calls after it. Python cannot kill a thread, so after a timeout the
thread keeps running in the background until the function returns; its result is dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (timeout or cancellation)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await`` ``fn(*args, **kwargs)`` run in a fresh daemon thread (context vars copied)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    ctx = contextvars.copy_context()

    def target() -> None:
        value, error = None, None
        try:
            value = ctx.run(fn, *args, **kwargs)
        except BaseException as e:  # delivered to the awaiting task, not swallowed
            error = e
        try:
            loop.call_soon_threadsafe(_settle, future, value, error)
        except RuntimeError:  # the loop closed while the thread ran; nobody is waiting
            pass

    name = f"rlfactory-tool-{getattr(fn, '__name__', 'fn')}"
    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
