"""The test MCP servers (tests/helpers/servers/, run as scripts by path) and process helpers for
the tool tests: the children this process has, a free local port."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil

SERVERS = Path(__file__).resolve().parent / "servers"
DEMO = str(SERVERS / "demo_server.py")
RAW = str(SERVERS / "raw_jsonrpc_server.py")


def descendants() -> set[int]:
    """The live (non-zombie) processes started by this one, at any depth."""
    return {p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
