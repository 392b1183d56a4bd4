"""MCP servers written with the mcp SDK (stdio and streamable HTTP) and a raw JSON-RPC one, for real."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from rlfactory_plugins.config import RLFactoryConfig, check_names
from rlfactory_plugins.errors import ConfigError, PluginError
from rlfactory_plugins.tools import ToolStatus
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.mcp_config import load_mcp_config
from tests.helpers.mcp import DEMO, RAW

pytestmark = pytest.mark.timeout(90)

SECRET = "sk-live-0123456789abcdef"


def demo(**extra: object) -> dict:
    return {"command": sys.executable, "args": [DEMO], "stderr": "devnull", **extra}


async def start(path: str, **cfg: object) -> ToolManager:
    return await ToolManager.from_config(RLFactoryConfig(mcp=path, **cfg))


async def test_stdio_server_tools_results_and_redaction(servers_file, no_orphans) -> None:
    path = servers_file(demo=demo(env={"API_KEY": SECRET}))
    tm = await start(path)
    try:
        names = [s.name for s in tm.specs()]
        assert {"add", "echo", "sleep", "pid", "env", "fail", "picture"} <= set(names)
        add, image, failed, bad, leak = await tm.call_many([
            ("add", {"a": 2, "b": 3}), ("picture", {}), ("fail", {"message": "boom"}),
            ("add", {"a": "two", "b": 3}), ("env", {"name": "API_KEY"}),
        ])
        assert (add.status, add.output) == (ToolStatus.ok, "5")
        # the demo "picture" is a PNG signature and ten zero bytes: an image that cannot be decoded
        assert image.status is ToolStatus.tool_error and image.images == []
        assert image.error.startswith("cannot decode the mcp image (18 bytes, starting 89504e470d0a1a0a)")
        assert failed.status is ToolStatus.tool_error
        assert bad.status is ToolStatus.invalid_args and "'two' is not of type 'integer'" in bad.error
        assert leak.ok and leak.output == "***"
        assert SECRET not in json.dumps([r.model_dump(mode="json") for r in (add, image, failed, bad, leak)])
        assert SECRET not in repr(load_mcp_config(path)) and SECRET not in str(load_mcp_config(path).model_dump())
    finally:
        await tm.aclose()
        await tm.aclose()  # idempotent
    no_orphans()


async def test_server_killed_mid_call_is_crashed_then_restarted(servers_file, no_orphans) -> None:
    tm = await start(servers_file(demo=demo()))
    try:
        first_pid = int((await tm.call("pid", {})).output)
        in_flight = asyncio.create_task(tm.call("sleep", {"seconds": 30}))
        await asyncio.sleep(0.3)
        psutil.Process(first_pid).kill()
        start_t = time.perf_counter()
        crashed = await asyncio.wait_for(in_flight, 10)
        assert crashed.status is ToolStatus.crashed and time.perf_counter() - start_t < 2
        after = await tm.call("pid", {})
        assert after.ok and int(after.output) != first_pid
        assert (await tm.call("add", {"a": 1, "b": 1})).output == "2"
        assert tm.metrics()["tools/sleep/errors/crashed"] == 1
    finally:
        await tm.aclose()
    no_orphans()


async def test_hung_mcp_call_times_out_within_10_percent(servers_file, no_orphans) -> None:
    tm = await start(servers_file(demo=demo(timeout=0.5)))
    try:
        t0 = time.perf_counter()
        result = await tm.call("sleep", {"seconds": 30})
        assert result.status is ToolStatus.timeout and time.perf_counter() - t0 <= 0.55
        assert (await tm.call("echo", {"text": "still alive"})).output == "still alive"
    finally:
        await tm.aclose()
    no_orphans()


async def test_streamable_http_server(servers_file, http_server, no_orphans) -> None:
    tm = await start(servers_file(web={"url": http_server, "prefix": "web."}))
    try:
        assert "web.add" in [s.name for s in tm.specs()]
        results = await tm.call_many([("web.add", {"a": i, "b": 1}) for i in range(20)])
        assert [r.output for r in results] == [str(i + 1) for i in range(20)]
    finally:
        await tm.aclose()
    no_orphans()


async def test_raw_jsonrpc_1x_style_server_interoperates(servers_file, no_orphans) -> None:
    tm = await start(servers_file(raw={"command": sys.executable, "args": [RAW]}))
    try:
        assert [s.name for s in tm.specs()] == ["upper"]
        assert (await tm.call("upper", {"text": "mcp"})).output == "MCP"
        assert (await tm.call("upper", {})).status is ToolStatus.invalid_args
    finally:
        await tm.aclose()
    no_orphans()


async def test_name_clash_needs_a_prefix_and_tools_filter(servers_file, no_orphans) -> None:
    with pytest.raises(PluginError, match='set "prefix"'):
        await start(servers_file(a=demo(), b=demo()))
    no_orphans()
    tm = await start(servers_file(a=demo(tools=["add"]), b=demo(prefix="b.", tools=["echo"])))
    try:
        assert sorted(s.name for s in tm.specs()) == ["add", "b.echo"]
        assert (await tm.call("b.echo", {"text": "hi"})).output == "hi"
    finally:
        await tm.aclose()
    no_orphans()


async def test_servers_that_fail_to_start_are_reported(servers_file, no_orphans) -> None:
    exits = {"command": sys.executable, "args": ["-c", f"import sys; sys.stderr.write('{SECRET}'); sys.exit(3)"],
             "env": {"TOKEN": SECRET}, "stderr": "devnull"}
    with pytest.raises(PluginError, match="'broken' .* failed to start") as info:
        await start(servers_file(broken=exits, ok=demo()))
    assert SECRET not in str(info.value)
    with pytest.raises(PluginError, match="command 'no-such-mcp-server' not found"):
        await start(servers_file(missing={"command": "no-such-mcp-server"}))
    with pytest.raises(ConfigError, match="either 'command'"):
        await start(servers_file(neither={"args": []}))
    no_orphans()


async def test_check_names_leaves_mcp_tool_names_to_the_manager(servers_file, tmp_path) -> None:
    check_names(RLFactoryConfig(tools=["add"], mcp=servers_file()))
    bad = tmp_path / "bad.yaml"
    bad.write_text("mcpServers:\n  x:\n    comand: python\n")
    with pytest.raises(ConfigError, match="comand"):
        check_names(RLFactoryConfig(tools=["add"], mcp=str(bad)))


def test_stdio_server_dies_with_a_hard_killed_parent(servers_file) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from rlfactory_plugins.tools.manager import ToolManager
        from rlfactory_plugins.config import RLFactoryConfig
        async def main():
            tm = await ToolManager.from_config(RLFactoryConfig(mcp={servers_file(demo=demo())!r}))
            print((await tm.call("pid", {{}})).output, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server = psutil.Process(int(parent.stdout.readline()))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        server.wait(5)  # raises TimeoutExpired if the server outlives its parent
    finally:
        parent.kill()
