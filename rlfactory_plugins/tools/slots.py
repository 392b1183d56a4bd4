"""A tool as the manager holds it: its :class:`ToolSlot` (timeout, concurrency limit, cache,
argument validator), resolved once from the tool, its ``rlfactory.tools`` entry and
``rlfactory.tool_manager``; and the ``unknown_tool`` message for a name no slot has."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from rlfactory_plugins.config.tools import ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import ConfigError, UnknownNameError
from rlfactory_plugins.tools.base import Tool
from rlfactory_plugins.tools.validation import ArgumentValidator

__all__ = ["ToolSlot", "make_slot", "unknown_message"]


@dataclass
class ToolSlot:
    """A tool with the limits the manager applies to it."""

    tool: Tool
    timeout: float
    limit: asyncio.Semaphore | None
    cache: bool
    validate: ArgumentValidator


def make_slot(tool: Tool, entry: ToolEntry | None, config: ToolManagerConfig) -> ToolSlot:
    """The slot of ``tool``: the entry's settings first, then the tool's own, then the manager's defaults."""
    entry = entry or ToolEntry(name=tool.name)
    timeout = entry.timeout or tool.timeout or config.default_timeout
    concurrency = entry.max_concurrency or tool.max_concurrency
    cache = entry.cache if entry.cache is not None else (tool.cacheable or config.cache)
    if tool.stateful:
        if entry.cache or tool.cacheable:
            raise ConfigError(
                f"rlfactory.tools: {tool.name!r} is a stateful tool; its results depend on the trajectory's "
                "session and are never cached. Remove 'cache: true' for it"
            )
        cache = False  # the global tool_manager.cache does not apply to stateful tools
    limit = asyncio.Semaphore(concurrency) if concurrency else None
    return ToolSlot(tool=tool, timeout=timeout, limit=limit, cache=cache, validate=ArgumentValidator(tool))


def unknown_message(name: str, installed: Iterable[str], allowed: frozenset[str] | None) -> str:
    """The ``unknown_tool`` message: over the trajectory's tool set when it has one."""
    if allowed is None:
        return str(UnknownNameError("tool", name, installed))
    known = sorted(allowed)
    msg = f"tool {name!r} is not available to this trajectory (allowed: {', '.join(known) or 'none'}"
    close = difflib.get_close_matches(name, known, n=1)
    return msg + (f"; did you mean {close[0]!r}?)" if close else ")")
