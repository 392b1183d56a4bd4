"""One MCP server's connection, through the official ``mcp`` SDK client.

- The session lives in a dedicated long-lived asyncio task (the SDK's anyio cancel scopes must
  be entered and left in one task); calls from any task use it concurrently.
- A server that dies is noticed at once (its message stream ends), the calls in flight fail
  with :class:`ToolCrashed` (status ``crashed``), and the session task starts the server again
  (unless ``restart`` is off); later calls wait for the new session.
- stdio servers run under :mod:`~rlfactory_plugins.tools.mcp_launcher`, which ends every
  process a server started when the server exits (close, crash, restart, or the worker dying),
  and reports the exit status and stderr of a server that would not start. They carry a marker
  in their environment (:data:`MARKER_ENV`), so that :func:`kill_marked` (and ``atexit``) can
  stop any process a close would otherwise leave behind.
- ``env``/``headers`` values are redacted from every error; errors name the server and the
  cause, never the SDK's ``ExceptionGroup`` wrapper.

:mod:`~rlfactory_plugins.tools.mcp` builds the tools and the servers of a file on it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import psutil
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools.base import ToolCrashed, ToolError
from rlfactory_plugins.tools.mcp_config import MCPServerConfig, redact
from rlfactory_plugins.tools.mcp_launcher import (
    PARENT_ENV,
    STATUS_ENV,
    ServerStatus,
    end_session,
    is_gone,
    marked_processes,
    read_status,
)

logger = logging.getLogger("rlfactory.mcp")

#: environment variable carrying the owner's marker into every stdio server we start
MARKER_ENV = "RLFACTORY_MCP_OWNER"
_RESTART_BACKOFF = (0.05, 5.0)  # first and largest pause between restarts, seconds
_CONNECTION_ERRORS = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)


class MCPConnection:
    """One MCP server and the one session this process keeps to it."""

    def __init__(self, name: str, config: MCPServerConfig, marker: str, *, restart: bool = True) -> None:
        self.name, self.config, self.marker = name, config, marker
        self.secrets = config.secrets()
        self.restart = restart  # False for a per-trajectory session: a new server would have lost its state
        self.restarts = 0
        self._ended: str | None = None  # why a session that is not restarted ended
        self._status_path: str | None = None
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._dead = asyncio.Event()
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected_once = False
        self._stderr_file: Any = None
        self._status: ServerStatus | None = None  # what the launcher said about the last stdio server

    # -- the session task ---------------------------------------------------------------
    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        cfg = self.config
        headers = {k: v.get_secret_value() for k, v in cfg.headers.items()}
        if cfg.type == "stdio":
            assert cfg.command is not None
            env = {k: v.get_secret_value() for k, v in cfg.env.items()}
            env |= {MARKER_ENV: self.marker, PARENT_ENV: str(os.getpid())}
            launcher = [sys.executable, "-m", "rlfactory_plugins.tools.mcp_launcher"]
            params = StdioServerParameters(command=launcher[0], args=[*launcher[1:], cfg.command, *cfg.args],
                                           env=env, cwd=cfg.cwd)
            return self._stdio(params)
        assert cfg.url is not None
        if cfg.type == "sse":
            return sse_client(cfg.url, headers=headers or None)
        if headers:
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(headers=headers)
            return _owning(client, streamable_http_client(cfg.url, http_client=client))
        return streamable_http_client(cfg.url)

    @contextlib.asynccontextmanager
    async def _stdio(self, params: StdioServerParameters) -> AsyncIterator[Any]:
        """The SDK's stdio transport, plus the launcher's status once the process is gone."""
        fd, status_path = tempfile.mkstemp(prefix="rlfactory-mcp-", suffix=".json")
        os.close(fd)
        assert params.env is not None
        params.env[STATUS_ENV] = status_path
        self._status, self._status_path = None, status_path
        try:
            async with stdio_client(params, errlog=self._errlog()) as (read, write), anyio.create_task_group() as tg:
                tg.start_soon(_close_when_gone, status_path, read)
                try:
                    yield read, write
                finally:
                    tg.cancel_scope.cancel()
        finally:  # the SDK has stopped (or given up on) the launcher by now
            self._status = read_status(status_path)
            if self._status is not None and self._status.returncode is None:
                end_session(self._status, status_path)  # the launcher was killed before it could clean up
            with contextlib.suppress(OSError):
                os.unlink(status_path)

    def _exit_text(self) -> str | None:
        """How the last stdio server process ended, with its last stderr lines; None if unknown."""
        status = self._status
        if status is None or status.returncode is None:
            return None
        text = f"the server process {status.exit_text()}"
        if status.stderr_tail:
            return text + "; the last lines of its stderr:\n    " + "\n    ".join(status.stderr_tail)
        return text + " (nothing on its stderr)"

    def _failure_text(self, e: BaseException) -> str:
        """Why the session failed: how the server process ended if it ended on its own, else ``e``."""
        exit_text = self._exit_text()
        if exit_text is None:
            return exception_text(e)
        assert self._status is not None
        # status 0 may just be the server obeying our closing its stdin: keep the exception too
        return exit_text if self._status.returncode != 0 else f"{exception_text(e)}; {exit_text}"

    def _errlog(self) -> Any:
        """Where the server's stderr goes: ours (default), nowhere, or appended to a file."""
        target = self.config.stderr
        if target == "inherit":
            return sys.stderr
        if self._stderr_file is None:
            self._stderr_file = open(os.devnull if target == "devnull" else target, "a")  # noqa: SIM115
        return self._stderr_file

    @contextlib.asynccontextmanager
    async def _watched(self, dead: asyncio.Event) -> AsyncIterator[tuple[Any, Any]]:
        """The transport's streams, with ``dead`` set as soon as the server's side ends."""
        async with self._transport() as (read, write):
            send, receive = anyio.create_memory_object_stream[Any](16)

            async def pump() -> None:
                try:
                    async with send:
                        while True:
                            await send.send(await read.receive())
                except (anyio.EndOfStream, *_CONNECTION_ERRORS):
                    pass
                finally:
                    self._mark_dead(dead)

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                try:
                    yield receive, write
                finally:
                    tg.cancel_scope.cancel()

    async def _run(self) -> None:
        pause = _RESTART_BACKOFF[0]
        while not self._stop.is_set():
            dead = self._dead = asyncio.Event()
            try:
                async with Client(_Streams(self._watched(dead)), mode="auto", cache=None) as client:
                    self._client, self._error, self._connected_once = client, None, True
                    pause = _RESTART_BACKOFF[0]
                    self._ready.set()
                    await _first(dead.wait(), self._stop.wait())
            except Exception as e:  # the server would not start, or the session broke
                self._error = self.redact(self._failure_text(e))
                logger.warning("MCP server %r (%s): %s", self.name, self.redact(self.config.describe()), self._error)
            finally:
                self._client = None
                self._ready.clear()
            if self._stop.is_set() or not self._connected_once:
                return
            if not self.restart:
                how = self.redact(self._exit_text() or "its connection ended")
                self._ended = f"MCP server {self.name!r} stopped ({how}); its session is lost (not restarted)"
                logger.warning("%s", self._ended)
                return
            self.restarts += 1
            how = self.redact(self._exit_text() or "its connection ended")
            logger.warning("MCP server %r stopped (%s); restarting it (restart #%d)", self.name, how, self.restarts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
            pause = min(pause * 2, _RESTART_BACKOFF[1])

    def _mark_dead(self, dead: asyncio.Event) -> None:
        """The session behind ``dead`` is gone: new calls wait for the next one."""
        dead.set()
        if dead is self._dead:
            self._client = None
            self._ready.clear()

    # -- public ---------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    async def start(self) -> list[types.Tool]:
        """Start the server, wait for the session, list its tools. Raises PluginError if it fails."""
        cfg = self.config
        if cfg.command and shutil.which(cfg.command, path=None) is None and not Path(cfg.command).exists():
            raise PluginError(f"MCP server {self.name!r}: command {cfg.command!r} not found; install it or fix 'command'")
        self._task = asyncio.create_task(self._run(), name=f"rlfactory-mcp-{self.name}")
        ready = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, timeout=cfg.startup_timeout, return_when="FIRST_COMPLETED")
        ready.cancel()
        if not self._ready.is_set():
            await self.aclose()
            why = self._error or f"no session within startup_timeout={cfg.startup_timeout:g}s"
            if self._error is None and self._status is not None and self._status.stderr_tail:
                why += self.redact("; the last lines of its stderr:\n    " + "\n    ".join(self._status.stderr_tail))
            raise PluginError(f"MCP server {self.name!r} ({self.redact(cfg.describe())}) failed to start: {why}")
        try:
            return await self.list_tools()
        except BaseException:
            await self.aclose()
            raise

    async def _session(self) -> Client:
        """The live session; waits while the server restarts, fails fast while it cannot start."""
        while self._client is None:
            if self._ended is not None:
                raise ToolCrashed(self._ended)
            if self._stop.is_set():
                raise ToolCrashed(f"MCP server {self.name!r} is shut down")
            if self._error is not None:
                raise ToolCrashed(f"MCP server {self.name!r} is unavailable ({self._error}); retrying in the background")
            await self._ready.wait()
        return self._client

    async def list_tools(self) -> list[types.Tool]:
        client = await self._session()
        tools: list[types.Tool] = []
        cursor = None
        for _ in range(1000):
            page = await client.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        client = await self._session()
        dead = self._dead
        try:
            return await client.call_tool(name, arguments)
        except MCPError as e:
            if dead.is_set() or e.code == types.CONNECTION_CLOSED:
                self._mark_dead(dead)
                then = "it is being restarted" if self.restart else "its session is lost (not restarted)"
                raise ToolCrashed(f"MCP server {self.name!r} died during the call; {then}") from None
            raise ToolError(self.redact(f"MCP error {e.code}: {e}")) from None
        except _CONNECTION_ERRORS as e:
            self._mark_dead(dead)
            raise ToolCrashed(self.redact(f"lost the connection to MCP server {self.name!r}: {e!r}")) from None

    def server_status(self) -> ServerStatus | None:
        """What the launcher of the running stdio server says (PIDs); None for HTTP or before it started."""
        return read_status(self._status_path) if self._status_path else None

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=10)
            if not self._task.done():
                self._task.cancel()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None


async def _close_when_gone(status_path: str, read: Any, poll: float = 0.5) -> None:
    """End the session once the launcher is gone, even with the server's stdout still open.

    The launcher closes everything when the server exits; only a launcher killed itself
    (SIGKILL, the OOM killer) can leave a server's child holding the pipe, and then no EOF
    would ever tell us the server is dead.
    """
    pid = None
    while True:
        await anyio.sleep(poll)
        if pid is None:
            status = read_status(status_path)
            pid = status.launcher_pid if status is not None else None
        elif is_gone(pid):
            read.close()  # the pump sees the stream end: the calls in flight fail as crashed
            return


def exception_text(e: BaseException) -> str:
    """``Type: message`` of the exceptions inside ``e``, without the ``ExceptionGroup`` wrappers."""
    if isinstance(e, BaseExceptionGroup):
        parts = dict.fromkeys(exception_text(sub) for sub in e.exceptions)  # ordered, no repeats
        return "; ".join(parts)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class _Streams:
    """Adapts an async-context-manager factory result to the SDK's ``Transport`` protocol."""

    def __init__(self, cm: contextlib.AbstractAsyncContextManager[Any]) -> None:
        self._cm = cm

    async def __aenter__(self) -> Any:
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)


@contextlib.asynccontextmanager
async def _owning(client: Any, transport: contextlib.AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    async with client, transport as streams:
        yield streams


async def _first(*aws: Any) -> None:
    """Wait until the first of ``aws`` finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
    finally:
        for t in tasks:
            t.cancel()



_live_markers: set[str] = set()


def kill_marked(marker: str, timeout: float = 3.0) -> list[int]:
    """Terminate (then kill) every process started with ``marker`` in its environment.

    All processes, not only our descendants: one that a server orphaned (or that escaped
    with ``setsid``) after its launcher was killed is re-parented away from us but still
    carries the marker it inherited.
    """
    procs = marked_processes(MARKER_ENV, marker)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return [p.pid for p in procs]


@atexit.register
def _kill_leftovers() -> None:
    for marker in list(_live_markers):
        kill_marked(marker, timeout=1.0)
