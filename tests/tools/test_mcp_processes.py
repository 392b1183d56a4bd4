"""Processes of stdio MCP servers: nothing a server started survives close, crash or restart,
and a server that exits at start-up is reported by name, exit status and stderr.

These use a real server (tests/helpers/servers/spawning_server.py) that leaves two ``sleep 3600``
children running, one of them in its own session, and check by PID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools import ToolStatus
from rlfactory_plugins.tools.manager import ToolManager
from tests.helpers.mcp import SERVERS, free_port

pytestmark = pytest.mark.timeout(90)

SPAWNER = str(SERVERS / "spawning_server.py")


def spawner(pids_file: Path, **extra: object) -> dict:
    return {"command": sys.executable, "args": [SPAWNER], "env": {"CHILD_PIDS_FILE": str(pids_file)},
            "stderr": "devnull", **extra}


def child_pids(pids_file: Path, at_least: int = 2) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        pids = [int(line) for line in pids_file.read_text().split()] if pids_file.exists() else []
        if len(pids) >= at_least:
            return pids
        assert time.monotonic() < deadline, f"the server wrote only {pids} to {pids_file}"
        time.sleep(0.05)


def is_our_sleep(pid: int) -> bool:
    """Alive and still the ``sleep 3600`` the server started (not a reused PID)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.cmdline() == ["sleep", "3600"]
    except psutil.Error:
        return False


def still_alive(pids: list[int], within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while (alive := [p for p in pids if is_our_sleep(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.fixture
def pids_file(tmp_path: Path) -> Iterator[Path]:
    """Where the spawning server writes its children's PIDs; any still alive after the test are killed."""
    path = tmp_path / "children"
    yield path
    for pid in child_pids(path, at_least=0):
        if is_our_sleep(pid):
            os.kill(pid, signal.SIGKILL)


async def start(path: str) -> ToolManager:
    return await ToolManager.from_config(RLFactoryConfig(mcp=path))


async def test_children_of_a_server_end_with_aclose(servers_file, pids_file, no_orphans) -> None:
    tm = await start(servers_file(spawner=spawner(pids_file)))
    try:
        assert (await tm.call("pid", {})).ok
        kids = child_pids(pids_file)
        assert still_alive(kids, within=0) == kids
    finally:
        await tm.aclose()
    assert still_alive(kids) == [], "processes started by the MCP server outlived ToolManager.aclose()"
    no_orphans()


async def test_children_of_a_crashed_server_end_before_the_restart(servers_file, pids_file, no_orphans) -> None:
    tm = await start(servers_file(spawner=spawner(pids_file, timeout=40)))
    try:
        server = int((await tm.call("pid", {})).output)
        first = child_pids(pids_file)
        in_flight = asyncio.create_task(tm.call("sleep", {"seconds": 30}))
        await asyncio.sleep(0.3)
        psutil.Process(server).kill()
        # the plain child holds the server's stdout open: the crash must be noticed anyway
        t0 = time.perf_counter()
        crashed = await asyncio.wait_for(in_flight, 10)
        assert crashed.status is ToolStatus.crashed and time.perf_counter() - t0 < 3, crashed
        while (after := await tm.call("pid", {})).status is not ToolStatus.ok or int(after.output) == server:
            assert time.perf_counter() < t0 + 15, f"no restarted server: {after}"
            await asyncio.sleep(0.1)
        assert still_alive(first) == [], "processes of the crashed server outlived its restart"
        second = child_pids(pids_file, at_least=4)[2:]
        assert still_alive(second, within=0) == second
    finally:
        await tm.aclose()
    assert still_alive(second) == []
    no_orphans()


async def test_children_of_a_server_whose_launcher_is_killed_end_too(servers_file, pids_file, no_orphans) -> None:
    """The supervisor itself SIGKILLed: the crash is still noticed, and the backstop ends the children."""
    tm = await start(servers_file(spawner=spawner(pids_file, timeout=40)))
    try:
        server = psutil.Process(int((await tm.call("pid", {})).output))
        first = child_pids(pids_file)
        in_flight = asyncio.create_task(tm.call("sleep", {"seconds": 30}))
        await asyncio.sleep(0.3)
        server.parent().kill()  # the launcher
        t0 = time.perf_counter()
        crashed = await asyncio.wait_for(in_flight, 10)
        assert crashed.status is ToolStatus.crashed and time.perf_counter() - t0 < 3, crashed
        while (after := await tm.call("pid", {})).status is not ToolStatus.ok:
            assert time.perf_counter() < t0 + 15, f"no restarted server: {after}"
            await asyncio.sleep(0.1)
        assert still_alive(first) == [], "processes of a server whose launcher was killed outlived the restart"
    finally:
        await tm.aclose()
    no_orphans()


def test_children_of_a_server_end_with_a_hard_killed_worker(servers_file, pids_file) -> None:
    script = textwrap.dedent(f"""
        import asyncio
        from rlfactory_plugins.tools.manager import ToolManager
        from rlfactory_plugins.config import RLFactoryConfig
        async def main():
            tm = await ToolManager.from_config(RLFactoryConfig(mcp={servers_file(s=spawner(pids_file))!r}))
            print((await tm.call("pid", {{}})).output, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip().isdigit()
        kids = child_pids(pids_file)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(5)
        assert still_alive(kids) == [], "processes started by the MCP server outlived a SIGKILLed worker"
    finally:
        worker.kill()
        worker.wait(5)


async def test_server_exiting_at_startup_is_named_with_status_and_stderr(servers_file, no_orphans) -> None:
    code = ("import sys; print('loading tools', file=sys.stderr); "
            "print('fatal: DB_URL is not set', file=sys.stderr); sys.exit(3)")
    with pytest.raises(PluginError) as info:
        await start(servers_file(broken={"command": sys.executable, "args": ["-c", code], "stderr": "devnull"}))
    msg = str(info.value)
    assert "'broken'" in msg and "exit status 3" in msg, msg
    assert "loading tools" in msg and "fatal: DB_URL is not set" in msg, msg
    assert "ExceptionGroup" not in msg and "TaskGroup" not in msg and "sub-exception" not in msg, msg
    shown = "".join(traceback.format_exception(info.value))  # what a user sees, chained exceptions included
    assert "ExceptionGroup" not in shown and "sub-exception" not in shown, shown
    no_orphans()


async def test_server_killed_by_a_signal_at_startup_is_reported(servers_file, no_orphans) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(PluginError, match=r"'doomed' .*killed by signal 9 \(SIGKILL\)"):
        await start(servers_file(doomed={"command": sys.executable, "args": ["-c", code], "stderr": "devnull"}))
    no_orphans()


async def test_unreachable_http_server_is_reported_without_exception_group(servers_file) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(PluginError) as info:
        await start(servers_file(web={"url": url, "startup_timeout": 10}))
    msg = str(info.value)
    assert "'web'" in msg and url in msg and "ExceptionGroup" not in msg and "sub-exception" not in msg, msg
