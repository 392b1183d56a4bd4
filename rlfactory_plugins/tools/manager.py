"""The asyncio tool manager: one per agent-loop worker process, shared by all its trajectories.

Every call goes through the same steps, and every problem becomes a typed
:class:`~rlfactory_plugins.tools.base.ToolResult` instead of an exception or a hang:

1. unknown name -> ``unknown_tool`` (with a did-you-mean);
2. arguments checked against the tool's schema -> ``invalid_args``;
3. opt-in result cache (tool name + canonical JSON of the arguments);
4. a global and a per-tool concurrency limit (``asyncio.Semaphore``);
5. the call itself, under a timeout that holds for every tool: the call runs in its own
   task and the manager stops waiting when the time is up, even if the tool ignores
   cancellation or is a sync function stuck in its thread (threads cannot be killed;
   the abandoned thread finishes in the background and its result is dropped);
6. retries with exponential backoff (tenacity) for :class:`TransientToolError` only, all
   attempts within the one timeout;
7. the output rendered to text and cut to ``max_output_chars`` with a visible marker; images a
   tool returned are decoded, checked against ``tool_manager.images`` and kept typed on
   ``ToolResult.images`` (:mod:`~rlfactory_plugins.tools.images`), the text showing each one as
   ``[image WxH fmt]``; an image that cannot be decoded or is over a limit is ``tool_error``.
   A trajectory's per-trajectory image limits are counted over the calls made with its ``sessions``.

Stateful tools (:class:`~rlfactory_plugins.tools.session.StatefulTool`) called with a trajectory's
``sessions`` run inside that trajectory's session. The session opens on the first call, before
the limits and outside the call timeout, under ``session_open_timeout_s``. An open that fails or
hangs gives ``crashed`` and the trajectory's later calls of that group fail fast. A call that
raises ``ToolCrashed`` gives ``crashed`` and also marks the group broken (its state is gone, so it
is not reopened silently). A call that hangs gives ``timeout``; the session stays usable, because
a tool that knows it is dead raises ``ToolCrashed`` on the next call. Other trajectories are never
affected. Stateful calls are **never cached and never retried**: a retried ``set`` or ``write`` is
not idempotent, and a cached result from another trajectory would show state the model never made.
Retries (step 6) therefore apply to stateless tools only.

Where each part lives: a tool's timeout, limit, cache flag and validator (steps 1-4) are its
:class:`~rlfactory_plugins.tools.slots.ToolSlot`; steps 5-7 are
:func:`~rlfactory_plugins.tools.execute.execute`; per-trajectory image limits are
:class:`~rlfactory_plugins.tools.trajectory_images.TrajectoryImageBudgets`. This module routes a
call through them, keeps the cache, the concurrency limits and the metrics, and owns the lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from rlfactory_plugins.config.tools import ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import UnknownNameError
from rlfactory_plugins.tools.base import Tool, ToolResult, ToolSpec, ToolStatus
from rlfactory_plugins.tools.binding import config_entries, external_sources, registry_tools
from rlfactory_plugins.tools.execute import execute, truncate
from rlfactory_plugins.tools.metrics import ManagerMetrics
from rlfactory_plugins.tools.session import SessionBroken, SessionRegistry, StatefulTool, TrajectorySessions
from rlfactory_plugins.tools.slots import ToolSlot, make_slot, unknown_message
from rlfactory_plugins.tools.trajectory_images import TrajectoryImageBudgets
from rlfactory_plugins.tools.validation import InvalidArguments

if TYPE_CHECKING:
    from rlfactory_plugins.config import RLFactoryConfig
    from rlfactory_plugins.registry import Registry

__all__ = ["UNKNOWN_BUCKET", "ToolManager", "cache_key", "truncate"]

logger = logging.getLogger("rlfactory.tools")

#: metrics bucket for calls to names that no tool has
UNKNOWN_BUCKET = "_unknown"


def cache_key(name: str, arguments: dict[str, Any]) -> str:
    return name + "\0" + json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class ToolManager:
    """Runs tool calls for every trajectory of one worker process. See the module docstring."""

    def __init__(
        self,
        tools: dict[str, Tool],
        config: ToolManagerConfig,
        overrides: dict[str, ToolEntry] | None = None,
    ) -> None:
        overrides = overrides or {}
        stray = sorted(set(overrides) - set(tools))
        if stray:
            raise UnknownNameError("tool", stray[0], tools, "Every per-tool setting must name a tool the manager has.")
        self.config = config
        self._slots: dict[str, ToolSlot] = {
            name: make_slot(tool, overrides.get(name), config) for name, tool in tools.items()
        }
        self._global = asyncio.Semaphore(config.max_concurrency)
        self._cache: LRUCache[str, ToolResult] = LRUCache(maxsize=config.cache_size)
        self._metrics = ManagerMetrics()
        self._sessions = SessionRegistry.from_config(config)
        self._in_flight = 0
        self._image_budgets = TrajectoryImageBudgets(config.images)
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._closed = False

    # -- construction from the rlfactory config ------------------------------------------
    @classmethod
    async def from_config(
        cls, cfg: RLFactoryConfig, registry: Registry | None = None, verl_tools: Mapping[str, Tool] | None = None
    ) -> ToolManager:
        """Build the tools named in ``cfg.tools``, every tool of the MCP servers in ``cfg.mcp``, and
        ``verl_tools`` (verl's own ``multi_turn`` tools, wrapped by the verl adapter).

        MCP and verl tools join as they are; an ``rlfactory.tools`` entry naming one sets only its
        overrides. MCP servers are started here (and stopped again if anything below fails).
        """
        from rlfactory_plugins.plugins import get_registry

        registry = registry or get_registry()
        servers = None
        mcp_tools: dict[str, Tool] = {}
        if cfg.mcp:
            from rlfactory_plugins.tools.mcp import MCPServers

            servers = await MCPServers.from_file(cfg.mcp)
            mcp_tools = servers.tools()
        try:
            external = external_sources(mcp_tools, verl_tools or {})
            entries = config_entries(cfg.tools, [*registry.tools, *external])
            tools = registry_tools(registry, entries, external)
            tools.update(mcp_tools)
            tools.update(verl_tools or {})
            manager = cls(tools, cfg.tool_manager, entries)
        except BaseException:
            if servers is not None:
                await servers.aclose()
            raise
        if servers is not None:
            manager.add_closer(servers.aclose)
        return manager

    def add_closer(self, close: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`aclose` also run ``close`` (for resources shared by several tools)."""
        self._closers.append(close)

    # -- what the rollout uses -----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def specs(self) -> list[ToolSpec]:
        return [slot.tool.spec for slot in self._slots.values()]

    @property
    def sessions(self) -> SessionRegistry:
        """The registry of every trajectory's stateful-tool sessions in this process (the Runtime uses it)."""
        return self._sessions

    def stateful_tools(self) -> list[StatefulTool]:
        """The manager's stateful tools, in manager order (what an eager open opens)."""
        return [slot.tool for slot in self._slots.values() if isinstance(slot.tool, StatefulTool)]

    def sessions_registry(self) -> SessionRegistry:
        """:attr:`sessions`, as a method."""
        return self._sessions

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        sessions: TrajectorySessions | None = None,
        allowed: frozenset[str] | None = None,
    ) -> ToolResult:
        """Run one call. Never raises for a tool problem; the result's status says what happened.

        ``allowed``: the trajectory's tool set (None: every tool). ``sessions``: the trajectory's
        sessions, for stateful tools (without it a stateful tool runs a one-shot session per call).
        """
        start = time.perf_counter()
        shown_args = arguments if isinstance(arguments, dict) else None
        slot = self._slots.get(name) if allowed is None or name in allowed else None
        if slot is None:
            error = unknown_message(name, self._slots, allowed)
            return self._done(ToolResult(name=name, arguments=shown_args, status=ToolStatus.unknown_tool, error=error),
                              start, UNKNOWN_BUCKET)
        try:
            args = slot.validate(arguments)
        except InvalidArguments as e:
            return self._done(
                ToolResult(name=name, arguments=shown_args, status=ToolStatus.invalid_args, error=str(e)), start
            )
        session: Any = None
        if sessions is not None and isinstance(slot.tool, StatefulTool):
            try:  # outside the limits and the call timeout: opening has its own (session_open_timeout_s)
                session = await sessions.session(slot.tool)
            except SessionBroken as e:
                error, _ = truncate(str(e), self.config.max_output_chars)
                return self._done(
                    ToolResult(name=name, arguments=shown_args, status=ToolStatus.crashed, error=error), start
                )
        key = cache_key(name, args) if slot.cache else None
        if key is not None and (hit := self._cache.get(key)) is not None:
            hit = hit.model_copy(update={"arguments": shown_args, "cached": True})
            return self._done(self._image_budgets.charge(hit, sessions), start)
        async with self._global, (slot.limit or contextlib.nullcontext()):
            self._in_flight += 1
            self._metrics.max_in_flight = max(self._metrics.max_in_flight, self._in_flight)
            try:
                if session is not None:
                    result = await execute(slot, args, self.config, sessions, session)
                else:
                    result = await execute(slot, args, self.config)
            finally:
                self._in_flight -= 1
        result.arguments = shown_args
        if key is not None and result.ok:
            self._cache[key] = result
        return self._done(self._image_budgets.charge(result, sessions), start)

    async def call_many(
        self,
        calls: Iterable[tuple[str, dict[str, Any] | None]],
        *,
        sessions: TrajectorySessions | None = None,
        allowed: frozenset[str] | None = None,
    ) -> list[ToolResult]:
        """Run calls concurrently; results come back in the order of ``calls``. Keywords as in :meth:`call`."""
        calls = list(calls)
        if len(calls) == 1:  # the common turn: no task to schedule
            name, args = calls[0]
            return [await self.call(name, args, sessions=sessions, allowed=allowed)]
        return list(
            await asyncio.gather(*(self.call(n, a, sessions=sessions, allowed=allowed) for n, a in calls))
        )

    def _done(self, result: ToolResult, start: float, bucket: str | None = None) -> ToolResult:
        result.latency_s = time.perf_counter() - start
        self._metrics.record(result, bucket)
        return result

    # -- metrics and lifecycle -------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Flat metrics since the last :meth:`reset_metrics`: ``tools/<name>/calls``, ``.../latency_p50_s``, ..."""
        out = self._metrics.flat()
        if self._sessions.used:  # only once a stateful tool was used: stateless metrics stay as they were
            out.update(self._sessions.metrics())
        return out

    def reset_metrics(self) -> None:
        self._metrics = ManagerMetrics()
        self._sessions.reset_metrics()

    async def aclose(self) -> None:
        """Close every tool and stop everything the manager started. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if len(self._sessions):  # trajectories still running: close their sessions before their tools
            try:
                await self._sessions.aclose_all("shutdown")
            except Exception:  # e.g. sessions opened on another (closed) event loop; Tool.aclose releases them
                logger.warning("closing the open tool sessions failed", exc_info=True)
        seen: set[int] = set()
        for slot in self._slots.values():
            if id(slot.tool) in seen:
                continue
            seen.add(id(slot.tool))
            try:
                await slot.tool.aclose()
            except Exception:
                logger.warning("closing tool %r failed", slot.tool.name, exc_info=True)
        for close in reversed(self._closers):
            await close()

    async def __aenter__(self) -> ToolManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

