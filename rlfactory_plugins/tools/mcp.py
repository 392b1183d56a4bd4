"""MCP servers as tools, through the official ``mcp`` SDK client.

- One session per server per worker process (:class:`~rlfactory_plugins.tools.mcp_connection.MCPConnection`),
  shared by every trajectory; a server that dies is restarted, the calls in flight fail as ``crashed``.
- Tools are discovered with ``list_tools`` and exposed under their own names, or
  ``prefix + name`` when the server sets ``prefix``.
- Results are rendered to text: text blocks joined, ``structuredContent`` as JSON when
  there is no text, audio/blobs as placeholders, ``isError`` as ``tool_error``. ``ImageContent``
  blocks of a successful call are decoded into ``ToolResult.images`` by the manager
  (:mod:`~rlfactory_plugins.tools.images`), in place in the text as ``[image WxH fmt]``.
- ``env``/``headers`` values are redacted from every error, log line and output.
- Every process a server started is gone after :meth:`MCPServers.aclose` (the launcher, then a
  sweep by the servers' marker).
- A server marked ``"session": "trajectory"`` gets one session (stdio: one server process)
  per trajectory instead, opened and closed by the trajectory's sessions and never
  restarted (its state would be lost); see :mod:`~rlfactory_plugins.tools.mcp_session`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp_types as types

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools.base import Tool, ToolError, ToolSpec
from rlfactory_plugins.tools.mcp_config import MCPConfig, load_mcp_config
from rlfactory_plugins.tools.mcp_connection import MCPConnection, _live_markers, kill_marked

__all__ = ["MCPConnection", "MCPServers", "MCPTool", "call_remote", "remote_spec", "render_result", "result_parts"]

logger = logging.getLogger("rlfactory.mcp")


# -- rendering -------------------------------------------------------------------------------
def _nbytes(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (ValueError, TypeError):
        return len(data)


def render_block(block: Any) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type}: {block.mime_type}, {_nbytes(block.data)} bytes]"
    if isinstance(block, types.ResourceLink):
        return f"[resource: {block.uri}]"
    if isinstance(block, types.EmbeddedResource):
        res = block.resource
        if isinstance(res, types.TextResourceContents):
            return res.text
        return f"[resource: {res.uri}, {res.mime_type or 'application/octet-stream'}, {_nbytes(res.blob)} bytes]"
    return f"[{getattr(block, 'type', type(block).__name__)} content]"


def render_result(result: types.CallToolResult) -> str:
    """Observation text of an MCP tool result (text joined; structuredContent as JSON if no text)."""
    parts = [render_block(b) for b in result.content]
    has_text = any(isinstance(b, types.TextContent | types.EmbeddedResource) for b in result.content)
    if result.structured_content is not None and not has_text:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


def remote_spec(remote: types.Tool, prefix: str = "") -> ToolSpec:
    """What the model sees of an MCP server's tool: its prefixed name, description and input schema."""
    parameters = remote.input_schema or {"type": "object", "properties": {}}
    return ToolSpec(name=prefix + remote.name, description=remote.description or "", parameters=parameters)


class MCPTool(Tool):
    """One tool of an MCP server; calls go through the server's shared session."""

    def __init__(self, connection: MCPConnection, remote: types.Tool, prefix: str = "") -> None:
        super().__init__(remote_spec(remote, prefix))
        self.connection, self.remote_name = connection, remote.name
        self.timeout = connection.config.timeout
        self.max_concurrency = connection.config.max_concurrency

    async def acall(self, arguments: dict[str, Any]) -> str | list[str | types.ImageContent]:
        return await call_remote(self.connection, self.remote_name, arguments)


def result_parts(result: types.CallToolResult, redact: Callable[[str], str]) -> list[str | types.ImageContent]:
    """A successful result with images: its blocks in order, images as they are, the rest as redacted text."""
    parts: list[str | types.ImageContent] = []
    has_text = any(isinstance(b, types.TextContent | types.EmbeddedResource) for b in result.content)
    if result.structured_content is not None and not has_text:
        parts.append(redact(json.dumps(result.structured_content, ensure_ascii=False, default=str)))
    for block in result.content:
        parts.append(block if isinstance(block, types.ImageContent) else redact(render_block(block)))
    return parts


async def call_remote(
    connection: MCPConnection, remote_name: str, arguments: dict[str, Any]
) -> str | list[str | types.ImageContent]:
    """Call one tool of ``connection`` and render its result (``isError`` raises :class:`ToolError`).

    Text, or, when the result has ``ImageContent``, its parts in order for the manager to decode.
    """
    result = await connection.call_tool(remote_name, arguments)
    if result.is_error:
        text = connection.redact(render_result(result))
        raise ToolError(text or "the MCP tool reported an error")
    if any(isinstance(b, types.ImageContent) for b in result.content):
        return result_parts(result, connection.redact)
    return connection.redact(render_result(result))


class MCPServers:
    """Every MCP server of one ``mcpServers`` file, started together and stopped together."""

    def __init__(self, config: MCPConfig) -> None:
        self.config = config
        self.marker = f"{os.getpid()}-{uuid.uuid4().hex}"
        enabled = config.enabled()
        self.connections = {name: MCPConnection(name, cfg, self.marker) for name, cfg in enabled.items()
                            if not cfg.per_trajectory}
        self.trajectory_servers: dict[str, Any] = {}  # name -> mcp_session.TrajectoryServer
        if any(cfg.per_trajectory for cfg in enabled.values()):
            from rlfactory_plugins.tools.mcp_session import TrajectoryServer  # only then: needs tools.session

            self.trajectory_servers = {name: TrajectoryServer(name, cfg, self.marker) for name, cfg in enabled.items()
                                       if cfg.per_trajectory}
        self._tools: dict[str, Tool] = {}
        self._closed = False
        _live_markers.add(self.marker)

    @classmethod
    async def from_file(cls, path: str | Path) -> MCPServers:
        return await cls.start(load_mcp_config(path))

    @classmethod
    async def start(cls, config: MCPConfig) -> MCPServers:
        """Start every enabled server concurrently and discover their tools."""
        servers = cls(config)
        names = list(servers.connections)
        # a per-trajectory server is started once here to list its tools (and to fail early), then stopped
        probes = [*(servers.connections[n].start() for n in names),
                  *(s.discover() for s in servers.trajectory_servers.values())]
        results = await asyncio.gather(*probes, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await servers.aclose()
            raise failed[0]
        try:
            for name, remote_tools in zip([*names, *servers.trajectory_servers], results, strict=True):
                servers._add_tools(servers.connections.get(name) or servers.trajectory_servers[name], remote_tools)
        except BaseException:
            await servers.aclose()
            raise
        return servers

    def _add_tools(self, conn: Any, remote_tools: list[types.Tool]) -> None:
        """Expose the wanted tools of ``conn`` (an :class:`MCPConnection` or a per-trajectory server)."""
        wanted = conn.config.tools
        for remote in remote_tools:
            if (wanted is not None and remote.name not in wanted) or remote.name in conn.config.disabled_tools:
                continue
            try:
                tool = conn.tool(remote) if conn.name in self.trajectory_servers else MCPTool(conn, remote,
                                                                                               conn.config.prefix)
            except PluginError as e:
                logger.warning("MCP server %r: skipping tool: %s", conn.name, e)
                continue
            if tool.name in self._tools:
                other = self._server_of(self._tools[tool.name])
                raise PluginError(
                    f"MCP tool {tool.name!r} is offered by servers {other!r} and {conn.name!r}; "
                    f'set "prefix" on one of them (e.g. "prefix": "{conn.name}.")'
                )
            self._tools[tool.name] = tool
        mine = {t.remote_name for t in self._tools.values() if self._server_of(t) == conn.name}  # type: ignore[attr-defined]
        missing = sorted(set(wanted or ()) - mine)
        if missing:
            offered = ", ".join(sorted(t.name for t in remote_tools))
            raise PluginError(f"MCP server {conn.name!r} has no tool {missing[0]!r} (it offers: {offered})")

    def _server_of(self, tool: Tool) -> str:
        return tool.connection.name if isinstance(tool, MCPTool) else tool.server.name  # type: ignore[attr-defined]

    def tools(self) -> dict[str, Tool]:
        return dict(self._tools)

    def metrics(self) -> dict[str, float]:
        """Per-trajectory servers' session counts and start-up times (``mcp/<server>/...``)."""
        return {k: v for server in self.trajectory_servers.values() for k, v in server.metrics().items()}

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(c.aclose() for c in self.connections.values()),
                             *(s.aclose() for s in self.trajectory_servers.values()))
        kill_marked(self.marker)  # anything the SDK's shutdown left behind
        _live_markers.discard(self.marker)
