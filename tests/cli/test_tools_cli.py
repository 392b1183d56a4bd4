"""``rlfactory tools list/call --mcp`` as subprocesses against an mcp-SDK server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.mcp import DEMO

# each call starts a fresh interpreter that loads the plugin registry (~1 s idle, more on a loaded machine)
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def rlfactory(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from rlfactory_plugins.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def servers(servers_file) -> str:
    # the standard shape, nothing rlfactory-specific
    return servers_file(demo={"command": sys.executable, "args": [DEMO]})


def test_tools_list_and_call_with_mcp(servers: str, no_orphans) -> None:
    listed = rlfactory("tools", "list", "--mcp", servers, "--json")
    assert listed.returncode == 0, listed.stderr
    schemas = {t["function"]["name"]: t["function"] for t in json.loads(listed.stdout)}
    assert schemas["add"]["parameters"]["required"] == ["a", "b"]
    called = rlfactory("tools", "call", "--mcp", servers, "add", '{"a": 20, "b": 22}')
    assert (called.returncode, called.stdout.strip()) == (0, "42"), called.stderr


def test_tools_call_failures_exit_non_zero_with_a_clear_message(servers: str, servers_file, no_orphans) -> None:
    unknown = rlfactory("tools", "call", "--mcp", servers, "ad", "{}")
    assert unknown.returncode == 1 and "unknown tool 'ad'" in unknown.stderr and "did you mean 'add'" in unknown.stderr
    bad_args = rlfactory("tools", "call", "--mcp", servers, "add", '{"a": "x", "b": 1}')
    assert bad_args.returncode == 1 and "[invalid_args] add:" in bad_args.stderr
    not_json = rlfactory("tools", "call", "--mcp", servers, "add", "{a: 1}")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    broken = servers_file(broken={"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]})
    dead = rlfactory("tools", "call", "--mcp", broken, "add", "{}")
    assert dead.returncode == 2 and "MCP server 'broken'" in dead.stderr and "failed to start" in dead.stderr
    assert "Traceback" not in dead.stderr


def test_tools_call_starts_only_the_server_that_offers_the_tool(servers_file, no_orphans) -> None:
    # both would fail to start; neither can offer "add" (a prefix, an explicit tools list), so neither is started
    dead = {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]}
    path = servers_file(demo={"command": sys.executable, "args": [DEMO], "stderr": "devnull"},
                        other={**dead, "prefix": "other."}, listed={**dead, "tools": ["search"]})
    called = rlfactory("tools", "call", "--mcp", path, "add", '{"a": 1, "b": 2}')
    assert (called.returncode, called.stdout.strip()) == (0, "3"), called.stderr
    registry_tool = rlfactory("tools", "call", "--mcp", path, "calculator", '{"expression": "6*7"}')
    assert (registry_tool.returncode, registry_tool.stdout.strip()) == (0, "42"), registry_tool.stderr
    offering_dead = rlfactory("tools", "call", "--mcp", path, "other.add", "{}")
    assert offering_dead.returncode == 2 and "MCP server 'other'" in offering_dead.stderr
