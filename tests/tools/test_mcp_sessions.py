"""Per-trajectory MCP servers (``"session": "trajectory"``): one stdio server process per
trajectory, with its own state, ended with everything it started when the session closes;
the ``max_sessions`` cap (a further trajectory waits); start-up times in the metrics.

The server is tests/helpers/servers/counter_server.py: a counter kept in the process, plus one
``sleep 3600`` child whose PID it writes to ``$CHILD_PIDS_FILE``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.tools import ToolCrashed
from rlfactory_plugins.tools.mcp import MCPServers, MCPTool
from rlfactory_plugins.tools.mcp_config import parse_mcp_config
from rlfactory_plugins.tools.mcp_session import MCPSessionTool
from rlfactory_plugins.tools.session import SessionContext, StatefulTool
from tests.helpers.mcp import SERVERS, descendants

pytestmark = pytest.mark.timeout(120)

COUNTER = str(SERVERS / "counter_server.py")
DEMO = str(SERVERS / "demo_server.py")


def counter(pids_file: Path | None = None, **extra: object) -> dict:
    env = {"CHILD_PIDS_FILE": str(pids_file)} if pids_file else {}
    return {"command": sys.executable, "args": [COUNTER], "env": env, "stderr": "devnull",
            "session": "trajectory", **extra}


async def start(**servers: dict) -> MCPServers:
    return await MCPServers.start(parse_mcp_config({"mcpServers": servers}))


def ctx(key: str) -> SessionContext:
    return SessionContext(key=key, uid="same-uid", kwargs={}, extra_info={})


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(pids: list[int], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def children_written(pids_file: Path, n: int) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        pids = [int(x) for x in pids_file.read_text().split()] if pids_file.exists() else []
        if len(pids) >= n:
            return pids
        assert time.monotonic() < deadline, f"only {pids} in {pids_file}"
        time.sleep(0.05)


async def test_tools_are_stateful_and_share_the_servers_session_group(no_orphans) -> None:
    servers = await start(counter=counter(), demo={"command": sys.executable, "args": [DEMO], "stderr": "devnull",
                                                      "prefix": "demo."})
    try:
        tools = servers.tools()
        assert {"incr", "count", "pid", "demo.add"} <= set(tools)
        assert isinstance(tools["incr"], MCPSessionTool) and isinstance(tools["incr"], StatefulTool)
        assert tools["incr"].stateful and {tools[n].session_group for n in ("incr", "count", "pid")} == {"counter"}
        assert isinstance(tools["demo.add"], MCPTool) and not tools["demo.add"].stateful  # shared: as today
        assert tools["incr"].spec.parameters["properties"]["by"]["type"] == "integer"
        assert servers.metrics()["mcp/counter/sessions_started"] == 0  # the discovery probe is not a session
        assert set(servers.connections) == {"demo"}
    finally:
        await servers.aclose()


async def test_two_trajectories_get_two_processes_with_separate_state(no_orphans) -> None:
    servers = await start(counter=counter())
    tools = servers.tools()
    try:
        a, b = await asyncio.gather(tools["incr"].open_session(ctx("t1")), tools["count"].open_session(ctx("t2")))
        (la, sa), (lb, sb) = a.pids(), b.pids()
        assert None not in (la, sa, lb, sb) and len({la, sa, lb, sb}) == 4
        assert await tools["incr"].acall_in(a, {"by": 2}) == "2"
        assert await tools["incr"].acall_in(a, {}) == "3"
        assert await tools["count"].acall_in(b, {}) == "0"  # t2's counter is its own
        assert await tools["incr"].acall_in(b, {"by": 10}) == "10"
        assert await tools["count"].acall_in(a, {}) == "3"
        # each trajectory's calls reach its own process
        assert await tools["pid"].acall_in(a, {}) == str(sa) and await tools["pid"].acall_in(b, {}) == str(sb)
        assert psutil.Process(sa).ppid() == la and psutil.Process(sb).ppid() == lb
        await tools["incr"].close_session(a, "answer")
        await tools["incr"].close_session(b, "answer")
    finally:
        await servers.aclose()


async def test_closing_a_session_ends_its_process_and_children_only(tmp_path: Path, no_orphans) -> None:
    pids_file = tmp_path / "children"
    servers = await start(counter=counter(pids_file))
    tools = servers.tools()
    try:
        before = len(children_written(pids_file, 1))  # the discovery probe's child (already ended)
        a = await tools["incr"].open_session(ctx("t1"))
        b = await tools["incr"].open_session(ctx("t2"))
        kids = children_written(pids_file, before + 2)[before:]
        assert all(alive(p) for p in kids)
        launcher_a, server_a = a.pids()
        await tools["count"].close_session(a, "max_turns")
        assert gone_within([launcher_a, server_a]), "the closed session's launcher/server outlived close"
        # the child of t1's server is gone, t2's server and child are untouched
        assert sum(alive(p) for p in kids) == 1
        b_pids = b.pids()
        assert all(alive(p) for p in b_pids)
        assert await tools["incr"].acall_in(b, {}) == "1"
        with pytest.raises(ToolCrashed, match="closed"):
            await tools["incr"].acall_in(a, {})
        await tools["incr"].close_session(a, "again")  # idempotent
        assert servers.metrics()["mcp/counter/sessions_open"] == 1
    finally:
        await servers.aclose()  # closes t2's session too (the shutdown backstop)
    assert gone_within([*kids, *b_pids])
    assert servers.metrics()["mcp/counter/sessions_open"] == 0


async def test_the_cap_makes_a_further_trajectory_wait(no_orphans) -> None:
    servers = await start(counter=counter(max_sessions=2))
    tools = servers.tools()
    incr = tools["incr"]
    try:
        a = await incr.open_session(ctx("t1"))
        b = await incr.open_session(ctx("t2"))
        third = asyncio.ensure_future(incr.open_session(ctx("t3")))
        await asyncio.sleep(1.0)
        assert not third.done(), "a third session opened past max_sessions=2"
        # a waiter that gives up (the manager's open timeout) does not take a slot with it
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(incr.open_session(ctx("t4")), 0.2)
        await incr.close_session(a, "answer")
        c = await asyncio.wait_for(third, 30)
        assert await incr.acall_in(c, {}) == "1"
        m = servers.metrics()
        assert m["mcp/counter/sessions_waited"] == 2 and m["mcp/counter/sessions_high_water"] == 2
        assert m["mcp/counter/sessions_started"] == 3 and m["mcp/counter/sessions_open"] == 2
        await incr.close_session(b, "answer")
        await incr.close_session(c, "answer")
        d = await asyncio.wait_for(incr.open_session(ctx("t5")), 30)  # both slots free again
        await incr.close_session(d, "answer")
    finally:
        await servers.aclose()


async def test_start_up_time_is_recorded(no_orphans) -> None:
    servers = await start(counter=counter())
    incr = servers.tools()["incr"]
    try:
        sessions = [await incr.open_session(ctx(f"t{i}")) for i in range(2)]
        m = servers.metrics()
        assert m["mcp/counter/sessions_started"] == 2
        assert 0 < m["mcp/counter/start_s_p50"] <= m["mcp/counter/start_s_max"] < 30
        assert m["mcp/counter/start_s_mean"] > 0 and m["mcp/counter/start_failed"] == 0
        state = await incr.session_state(sessions[0])
        assert state == {"start_s": round(sessions[0].start_s, 4)} and sessions[0].start_s > 0
        for s in sessions:
            await incr.close_session(s, "answer")
    finally:
        await servers.aclose()


async def test_a_dead_session_is_crashed_and_not_restarted(no_orphans) -> None:
    servers = await start(counter=counter())
    tools = servers.tools()
    try:
        a = await tools["incr"].open_session(ctx("t1"))
        assert await tools["incr"].acall_in(a, {}) == "1"
        _, server_pid = a.pids()
        os.kill(server_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        with pytest.raises(ToolCrashed, match="not restarted|lost"):
            while time.monotonic() < deadline:
                await tools["incr"].acall_in(a, {})
                await asyncio.sleep(0.1)
        assert a.connection.restarts == 0
        await tools["incr"].close_session(a, "error")
    finally:
        await servers.aclose()


async def test_one_shot_call_opens_and_closes_a_session(no_orphans) -> None:
    servers = await start(counter=counter())
    incr = servers.tools()["incr"]
    try:
        before = descendants()
        assert await incr.acall({"by": 4}) == "4"  # no trajectory: a fresh server each call (verl 0.9.1's lifecycle)
        assert await incr.acall({"by": 4}) == "4"
        assert gone_within(list(descendants() - before))
        assert servers.metrics()["mcp/counter/sessions_open"] == 0
    finally:
        await servers.aclose()


async def test_a_server_that_cannot_start_fails_the_open_not_the_process(tmp_path: Path, no_orphans) -> None:
    flag = tmp_path / "broken"
    script = tmp_path / "flaky.py"
    script.write_text(f"import os, runpy, sys\nif os.path.exists({str(flag)!r}): sys.exit(3)\n"
                      f"sys.argv = [{COUNTER!r}]\nrunpy.run_path({COUNTER!r}, run_name='__main__')\n")
    servers = await start(flaky={**counter(), "args": [str(script)], "startup_timeout": 20})
    incr = servers.tools()["incr"]
    try:
        flag.write_text("")
        with pytest.raises(ToolCrashed, match="'flaky'.*failed to start.*exit status 3.*'t1'"):
            await incr.open_session(ctx("t1"))
        assert servers.metrics()["mcp/flaky/start_failed"] == 1
    finally:
        await servers.aclose()


@pytest.mark.parametrize(
    ("entry", "message"),
    [({"session": "per_trajectory"}, "session: Input should be 'shared' or 'trajectory'"),
     ({"max_sessions": 2}, "'max_sessions' caps per-trajectory sessions; set \"session\": \"trajectory\""),
     ({"session": "trajectory", "max_sessions": 0}, "max_sessions: Input should be greater than or equal to 1")],
)
def test_bad_session_settings_are_config_errors(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_mcp_config({"mcpServers": {"counter": {"command": "python", **entry}}})
    assert message in str(e.value) and "mcpServers.counter" in str(e.value)


def test_shared_is_the_default() -> None:
    server = parse_mcp_config({"mcpServers": {"s": {"command": "python"}}}).mcpServers["s"]
    assert server.session == "shared" and not server.per_trajectory and server.max_sessions is None


async def test_through_the_tool_manager_each_trajectory_has_its_own_server(tmp_path: Path, no_orphans) -> None:
    import json

    from rlfactory_plugins.config import RLFactoryConfig
    from rlfactory_plugins.tools.manager import ToolManager

    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"counter": counter(max_sessions=4)}}))
    manager = await ToolManager.from_config(RLFactoryConfig(mcp=str(path)))
    try:
        def open_for(key: str):
            return manager.sessions.open(key, lambda tool: SessionContext(key=key, uid="same-uid"))

        t1, t2 = open_for("u/0"), open_for("u/1")  # GRPO siblings: one uid, two trajectories
        r = await asyncio.gather(manager.call("incr", {"by": 2}, sessions=t1), manager.call("incr", {}, sessions=t2))
        assert [x.output for x in r] == ["2", "1"]
        assert (await manager.call("count", {}, sessions=t1)).output == "2"  # another tool, the same session
        p1 = int((await manager.call("pid", {}, sessions=t1)).output)
        p2 = int((await manager.call("pid", {}, sessions=t2)).output)
        assert p1 != p2
        states = await t1.aclose("answer")
        assert set(states) == {"counter"} and states["counter"]["start_s"] > 0
        assert gone_within([p1]) and alive(p2)
        assert (await manager.call("count", {}, sessions=t2)).output == "1"
    finally:
        await manager.aclose()  # t2 still open: Tool.aclose stops its server
    assert gone_within([p2])
