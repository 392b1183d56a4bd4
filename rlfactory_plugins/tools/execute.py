"""One tool call run to a :class:`~rlfactory_plugins.tools.base.ToolResult`: steps 5-7 of
:mod:`rlfactory_plugins.tools.manager` (the call under its timeout, retries, the output rendered).

The call runs in its own task and :func:`execute` stops waiting when the slot's timeout is up,
even if the tool ignores cancellation or is a sync function stuck in its thread (threads cannot be
killed; the abandoned thread finishes in the background and its result is dropped). Retries with
exponential backoff (tenacity) are for :class:`TransientToolError` of stateless tools only, all
attempts within the one timeout. Every exception of the tool becomes a status; none is raised.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rlfactory_plugins.config.tools import ToolManagerConfig
from rlfactory_plugins.tools.base import (
    ToolCrashed,
    ToolError,
    ToolResult,
    ToolStatus,
    TransientToolError,
    render_output,
)
from rlfactory_plugins.tools.images import has_images, image_output
from rlfactory_plugins.tools.session import StatefulTool, TrajectorySessions
from rlfactory_plugins.tools.slots import ToolSlot

__all__ = ["execute", "truncate"]

logger = logging.getLogger("rlfactory.tools")


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` characters, ending with a marker the model can see."""
    if len(text) <= limit:
        return text, False
    return f"{text[:limit]}\n[... truncated {len(text) - limit} of {len(text)} characters]", True


def _drop_result(task: asyncio.Task[Any]) -> None:
    """Done-callback of an abandoned call: fetch its outcome so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()


async def execute(
    slot: ToolSlot,
    args: dict[str, Any],
    config: ToolManagerConfig,
    sessions: TrajectorySessions | None = None,
    session: Any = None,
) -> ToolResult:
    """Run ``slot``'s tool on validated ``args`` (inside ``session`` when ``sessions`` is given)."""
    name, limit = slot.tool.name, config.max_output_chars
    attempts = 0
    stateful = slot.tool.stateful

    async def attempt_all() -> Any:
        nonlocal attempts
        attempts = 1
        try:  # the common case skips tenacity's per-call set-up
            if sessions is not None:
                assert isinstance(slot.tool, StatefulTool)
                return await slot.tool.acall_in(session, args)
            return await slot.tool.acall(args)
        except TransientToolError:
            if config.retries == 0 or stateful:  # a stateful call is not idempotent: never retried
                raise
        backoff = config.retry_backoff
        await asyncio.sleep(backoff)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientToolError),
            stop=stop_after_attempt(config.retries),
            wait=wait_exponential(multiplier=backoff * 2, exp_base=2, max=60),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                attempts += 1
                return await slot.tool.acall(args)

    task = asyncio.ensure_future(attempt_all())
    if sessions is not None:
        sessions.track(task)  # the trajectory's close lets an abandoned call settle first
    try:
        done, _ = await asyncio.wait({task}, timeout=slot.timeout)
    except asyncio.CancelledError:  # the caller gave up: stop the tool too
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_drop_result)  # may never finish (hung thread, swallowed cancel)
        abandoned = f"no result within {slot.timeout:g}s; the call was abandoned"
        return ToolResult(name=name, status=ToolStatus.timeout, error=abandoned, attempts=max(attempts, 1))
    status, output, error, images, cut = ToolStatus.ok, "", None, [], False
    try:
        value = task.result()
        if has_images(value):  # decoding is CPU work: off the event loop
            output, images, cut = await asyncio.to_thread(image_output, value, config.images, limit)
        else:
            output, cut = truncate(render_output(value), limit)
    except ToolCrashed as e:
        status, error = ToolStatus.crashed, str(e) or "the tool's backend died"
        if sessions is not None:
            assert isinstance(slot.tool, StatefulTool)
            sessions.mark_broken(slot.tool, error)
    except TransientToolError as e:
        why = "not retried: stateful tool" if stateful else f"gave up after {attempts} attempts"
        status, error = ToolStatus.tool_error, f"{e} ({why})"
    except ToolError as e:
        status, error = ToolStatus.tool_error, str(e) or type(e).__name__
    except Exception as e:  # a bug in the tool: recorded, shown to the model, never raised
        logger.debug("tool %r raised", name, exc_info=True)
        status, error = ToolStatus.tool_error, f"{type(e).__name__}: {e}"
    if error is not None:
        error, _ = truncate(error, limit)
    return ToolResult(name=name, status=status, output=output, error=error, attempts=attempts, truncated=cut,
                      images=images)
