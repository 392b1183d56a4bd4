"""An MCP server that starts child processes and leaves them running, for the cleanup tests.

At start it ``Popen``s two ``sleep 3600`` children and appends their PIDs, one a line, to
the file named by ``$CHILD_PIDS_FILE``:

- one plain child, in the server's process group, inheriting its stdin/stdout/stderr
  (what most servers do with a helper process);
- one that calls ``setsid`` with its stdio on /dev/null (a daemon that leaves the group).

It exits cleanly when its stdin closes and never stops the children itself. Written for
the 2.x SDK (``MCPServer``), falling back to 1.x (``FastMCP``), as many servers still use.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

try:
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef]

server = Server("spawner")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer (a call to be in flight when the server is killed)."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


def spawn_children() -> None:
    plain = subprocess.Popen(["sleep", "3600"])
    daemon = subprocess.Popen(["sleep", "3600"], start_new_session=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.environ["CHILD_PIDS_FILE"], "a") as f:
        f.write(f"{plain.pid}\n{daemon.pid}\n")


if __name__ == "__main__":
    spawn_children()
    server.run()
