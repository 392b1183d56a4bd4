"""Fake stateful tools for the session tests: a key-value store with per-session state, counting opens and closes."""

from __future__ import annotations

import asyncio
from typing import Any

from rlfactory_plugins.tools import SessionContext, StatefulTool, ToolCrashed, ToolSpec

KV_PARAMS = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "integer"}},
    "required": ["key"],
}


class Counts:
    """Opens and closes of every KV tool sharing it (one per test)."""

    def __init__(self) -> None:
        self.opens: list[str] = []
        self.closes: list[tuple[str, str]] = []


class KV(StatefulTool):
    """``kv_set`` / ``kv_get`` style tool: the session is a dict seeded from ``ctx.kwargs["initial"]``.

    Arguments with ``value`` set the key; without, get it. Special keys trigger failures:
    ``hang`` sleeps forever, ``crash`` raises ToolCrashed.
    """

    def __init__(
        self,
        name: str = "kv",
        counts: Counts | None = None,
        *,
        group: str | None = None,
        open_delay: float = 0.0,
        open_error: Exception | None = None,
        open_hang: bool = False,
        state_chars: int = 0,
        close_error: Exception | None = None,
    ) -> None:
        super().__init__(ToolSpec(name=name, description="a per-trajectory key-value store", parameters=KV_PARAMS))
        self.counts = counts or Counts()
        self._group = group
        self.open_delay, self.open_error, self.open_hang = open_delay, open_error, open_hang
        self.state_chars, self.close_error = state_chars, close_error

    @property
    def session_group(self) -> str:
        return self._group or self.name

    async def open_session(self, ctx: SessionContext) -> dict[str, Any]:
        if self.open_delay:
            await asyncio.sleep(self.open_delay)
        if self.open_hang:
            await asyncio.Event().wait()
        if self.open_error is not None:
            raise self.open_error
        self.counts.opens.append(ctx.key)
        return {"_key": ctx.key, **dict(ctx.kwargs.get("initial", {}))}

    async def acall_in(self, session: dict[str, Any], arguments: dict[str, Any]) -> Any:
        key = arguments["key"]
        if key == "hang":
            await asyncio.Event().wait()
        if key == "crash":
            raise ToolCrashed("the store's process died")
        await asyncio.sleep(0)  # yield, so concurrent trajectories interleave
        if arguments.get("value") is not None:
            session[key] = arguments["value"]
            return {"set": key}
        return {"key": key, "value": session.get(key), "owner": session["_key"]}

    async def session_state(self, session: dict[str, Any]) -> dict[str, Any] | None:
        state = {k: v for k, v in session.items() if k != "_key"}
        if self.state_chars:
            state["blob"] = "x" * self.state_chars
        return state

    async def close_session(self, session: dict[str, Any], reason: str) -> None:
        self.counts.closes.append((session["_key"], reason))
        if self.close_error is not None:
            raise self.close_error
