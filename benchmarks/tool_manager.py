"""Tool manager overhead, printed as one JSON line (not a test).

- ``manager_overhead_us``: mean extra microseconds per call of ``ToolManager.call`` over
  awaiting the tool coroutine directly (a no-op async tool);
- ``mcp_ratio``: mean latency of an MCP call through the manager / through the raw SDK
  ``ClientSession.call_tool``, same stdio server, same process.

Run: ``python benchmarks/tool_manager.py [N]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from rlfactory_plugins.config import ToolManagerConfig
from rlfactory_plugins.tools import tool
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.mcp import MCPServers
from rlfactory_plugins.tools.mcp_config import parse_mcp_config

SERVER = str(Path(__file__).resolve().parents[1] / "tests" / "helpers" / "servers" / "demo_server.py")


async def per_call(fn, n: int) -> float:
    await fn()
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n


async def main(n: int) -> dict[str, float]:
    @tool
    async def noop(x: int) -> int:
        return x

    tm = ToolManager({"noop": noop}, ToolManagerConfig())
    direct = await per_call(lambda: noop.acall({"x": 1}), n * 10)
    managed = await per_call(lambda: tm.call("noop", {"x": 1}), n * 10)

    servers = await MCPServers.start(parse_mcp_config(
        {"mcpServers": {"demo": {"command": sys.executable, "args": [SERVER], "stderr": "devnull"}}}))
    mcp_tm = ToolManager(servers.tools(), ToolManagerConfig())
    mcp_tm.add_closer(servers.aclose)
    try:
        ours = await per_call(lambda: mcp_tm.call("add", {"a": 1, "b": 2}), n)
    finally:
        await mcp_tm.aclose()
    async with Client(StdioServerParameters(command=sys.executable, args=[SERVER]), cache=None) as client:
        raw = await per_call(lambda: client.session.call_tool("add", {"a": 1, "b": 2}), n)
    return {
        "direct_us": direct * 1e6,
        "manager_us": managed * 1e6,
        "manager_overhead_us": (managed - direct) * 1e6,
        "mcp_raw_sdk_ms": raw * 1e3,
        "mcp_manager_ms": ours * 1e3,
        "mcp_ratio": ours / raw,
        "calls": n,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))))
