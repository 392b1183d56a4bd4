"""Per-trajectory MCP servers: ``"session": "trajectory"`` in an ``mcpServers`` entry.

A shared server (the default) has one session per worker process, used by every
trajectory. A per-trajectory server instead gets **one MCP client session per
trajectory**: for a stdio server, one server process of its own (started under the same
launcher as a shared one, so everything it starts ends with it), for an HTTP server its
own MCP session (``Mcp-Session-Id``) on the same URL. State the server keeps (a counter, a
file system, a browser) is then the trajectory's alone.

- Every tool of the server is a :class:`MCPSessionTool` (a ``StatefulTool``), and they all
  share the one session: ``session_group`` is the server's name, so the row's
  ``tool_kwargs`` are keyed by it too. The first call of any of them opens it.
- ``max_sessions`` caps the sessions open at once. A trajectory that would exceed it
  **waits** for another to close; the wait counts toward the open timeout
  (``tool_manager.session_open_timeout_s``), and if that passes the call is ``crashed``
  with "session could not be opened". ``mcp/<server>/sessions_waited`` counts the waits.
- A session whose server dies is **not restarted** (a new process would have lost the
  state): its calls, and the trajectory's later calls of that server, are ``crashed``.
- Start-up time (process start, MCP ``initialize`` and ``list_tools``) is measured per
  session: ``mcp/<server>/start_s_mean`` / ``start_s_max`` / ``start_s_p50``, with
  ``sessions_started``, ``sessions_open``, ``sessions_high_water``, ``start_failed``.
- The server is started once when the tools are built, to list its tools and to fail
  early on a bad command; that probe is stopped before any trajectory runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

import mcp_types as types

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools.base import ToolCrashed
from rlfactory_plugins.tools.mcp import call_remote, remote_spec
from rlfactory_plugins.tools.mcp_connection import MCPConnection
from rlfactory_plugins.tools.mcp_config import MCPServerConfig
from rlfactory_plugins.tools.session import SessionContext, StatefulTool


class MCPSession:
    """One trajectory's session with a per-trajectory server."""

    def __init__(self, key: str, connection: MCPConnection, start_s: float) -> None:
        self.key, self.connection, self.start_s = key, connection, start_s
        self.closed = False

    def pids(self) -> tuple[int | None, int | None]:
        """(launcher PID, server PID) of a stdio session's process; (None, None) for HTTP."""
        status = self.connection.server_status()
        return (status.launcher_pid, status.server_pid) if status else (None, None)


class TrajectoryServer:
    """A per-trajectory MCP server: starts and stops its sessions, caps them, measures start-up."""

    def __init__(self, name: str, config: MCPServerConfig, marker: str) -> None:
        self.name, self.config, self.marker = name, config, marker
        self._cap = asyncio.Semaphore(config.max_sessions) if config.max_sessions else None
        self._open: set[MCPSession] = set()
        self._start_s: list[float] = []
        self.started = self.failed = self.waited = self.high_water = 0

    async def discover(self) -> list[types.Tool]:
        """Start the server once to list its tools, then stop it. Raises PluginError if it cannot start."""
        probe = MCPConnection(self.name, self.config, self.marker, restart=False)
        try:
            return await probe.start()
        finally:
            await probe.aclose()

    def tool(self, remote: types.Tool) -> MCPSessionTool:
        return MCPSessionTool(self, remote, self.config.prefix)

    async def open(self, key: str) -> MCPSession:
        """A new session (stdio: a new server process) for trajectory ``key``; waits while the cap is reached."""
        if self._cap is not None:
            if self._cap.locked():
                self.waited += 1
            await self._cap.acquire()
        connection = MCPConnection(self.name, self.config, self.marker, restart=False)
        start = time.perf_counter()
        try:
            await connection.start()
        except BaseException as e:  # failed, or the open timed out / was cancelled mid-start
            self.failed += 1
            await asyncio.shield(connection.aclose())
            if self._cap is not None:
                self._cap.release()
            if isinstance(e, PluginError):
                raise ToolCrashed(f"{e} (trajectory {key!r})") from None
            raise
        session = MCPSession(key, connection, time.perf_counter() - start)
        self.started += 1
        self._start_s.append(session.start_s)
        self._open.add(session)
        self.high_water = max(self.high_water, len(self._open))
        return session

    async def close(self, session: MCPSession) -> None:
        """Stop the session's server (and everything it started). Idempotent."""
        if session.closed:
            return
        session.closed = True
        try:
            await session.connection.aclose()
        finally:
            self._open.discard(session)
            if self._cap is not None:
                self._cap.release()

    async def aclose(self) -> None:
        """Close every session still open (the shutdown backstop)."""
        await asyncio.gather(*(self.close(s) for s in list(self._open)), return_exceptions=True)

    def metrics(self) -> dict[str, float]:
        prefix = f"mcp/{self.name}/"
        out = {"sessions_started": self.started, "sessions_open": len(self._open),
               "sessions_high_water": self.high_water, "sessions_waited": self.waited, "start_failed": self.failed}
        if self._start_s:
            out |= {"start_s_mean": statistics.fmean(self._start_s), "start_s_max": max(self._start_s),
                    "start_s_p50": statistics.median(self._start_s)}
        return {prefix + k: float(v) for k, v in out.items()}


class MCPSessionTool(StatefulTool):
    """One tool of a per-trajectory MCP server; its calls go to the trajectory's own session."""

    def __init__(self, server: TrajectoryServer, remote: types.Tool, prefix: str = "") -> None:
        super().__init__(remote_spec(remote, prefix))
        self.server, self.remote_name = server, remote.name
        self.timeout = server.config.timeout
        self.max_concurrency = server.config.max_concurrency

    @property
    def session_group(self) -> str:
        return self.server.name  # every tool of the server shares the trajectory's one session

    async def open_session(self, ctx: SessionContext) -> MCPSession:
        return await self.server.open(ctx.key)

    async def acall_in(self, session: MCPSession, arguments: dict[str, Any]) -> str | list[str | types.ImageContent]:
        if session.closed:
            raise ToolCrashed(f"MCP server {self.server.name!r}: the session of trajectory {session.key!r} is closed")
        return await call_remote(session.connection, self.remote_name, arguments)

    async def session_state(self, session: MCPSession) -> dict[str, Any] | None:
        return {"start_s": round(session.start_s, 4)}

    async def close_session(self, session: MCPSession, reason: str) -> None:
        await self.server.close(session)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.server.aclose()
