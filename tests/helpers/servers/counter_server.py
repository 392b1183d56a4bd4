"""A stateful MCP server for the per-trajectory session tests: a counter kept in the process.

Run: ``python counter_server.py`` (stdio) or ``python counter_server.py http PORT`` (streamable
HTTP; then the count is kept per MCP session, keyed by the session's id). At start it
``Popen``s one ``sleep 3600`` child (in its process group) and, when ``$CHILD_PIDS_FILE`` is
set, appends the child's PID to that file, so a test can check that closing the session
ends the server's children too.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("counter")
_counts: dict[str, int] = {}


def _key(ctx: Context) -> str:
    """The process on stdio (one session per process); the MCP session over HTTP."""
    headers = ctx.headers or {}
    return headers.get("mcp-session-id", "stdio")


@server.tool()
def incr(ctx: Context, by: int = 1) -> int:
    """Add ``by`` to the counter and return it."""
    key = _key(ctx)
    _counts[key] = _counts.get(key, 0) + by
    return _counts[key]


@server.tool()
def count(ctx: Context) -> int:
    """The counter's value."""
    return _counts.get(_key(ctx), 0)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


if __name__ == "__main__":
    child = subprocess.Popen(["sleep", "3600"])
    if path := os.environ.get("CHILD_PIDS_FILE"):
        with open(path, "a") as f:
            f.write(f"{child.pid}\n")
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
