"""Fixtures for the tool tests (no_orphans and servers_file are in tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.helpers.mcp import DEMO, free_port


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
