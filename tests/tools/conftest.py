"""Fixtures for the tool tests: real MCP servers (stdio and streamable HTTP) and an orphan check."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

SERVERS = Path(__file__).parent / "servers"
DEMO = str(SERVERS / "demo_server.py")
RAW = str(SERVERS / "raw_jsonrpc_server.py")


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"}


@pytest.fixture
def no_orphans() -> Iterator[Callable[[], None]]:
    """Fails the test if it leaves child processes behind; call the fixture to check mid-test."""
    before = descendants()

    def check() -> None:
        deadline = time.monotonic() + 5
        while (left := descendants() - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"orphan processes: {[psutil.Process(p).cmdline() for p in left]}"

    yield check
    check()


@pytest.fixture
def servers_file(tmp_path: Path) -> Callable[..., str]:
    """Write an mcpServers file; ``servers_file(demo={...})``, default: the demo server on stdio."""

    def write(**servers: dict) -> str:
        servers = servers or {"demo": {"command": sys.executable, "args": [DEMO], "stderr": "devnull"}}
        path = tmp_path / "servers.json"
        path.write_text(json.dumps({"mcpServers": servers}))
        return str(path)

    return write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server() -> Iterator[str]:
    """The demo server on streamable HTTP at 127.0.0.1:<free port>; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, DEMO, "http", str(port)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the HTTP MCP server did not come up"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)
