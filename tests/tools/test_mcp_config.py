"""The mcpServers file: files written for common clients (Cline, Roo Code) load as they are."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.mcp_config import CLIENT_ONLY_KEYS, load_mcp_config, parse_mcp_config
from tests.helpers.mcp import DEMO

pytestmark = pytest.mark.timeout(60)


def write(tmp_path: Path, servers: dict) -> str:
    path = tmp_path / "cline_mcp_settings.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def test_cline_and_roo_keys_are_ignored_with_one_warning(tmp_path, caplog) -> None:
    path = write(tmp_path, {
        "cline": {"command": "python", "args": ["a.py"], "autoApprove": ["add"], "disabled": False, "timeout": 60,
                  "transportType": "stdio"},
        "roo": {"url": "http://127.0.0.1:1/sse", "alwaysAllow": [], "watchPaths": ["a.py"], "disabled": False},
    })
    with caplog.at_level(logging.WARNING, logger="rlfactory.mcp"):
        cfg = load_mcp_config(path)
    assert sorted(cfg.enabled()) == ["cline", "roo"]
    assert cfg.mcpServers["cline"].timeout == 60 and cfg.mcpServers["roo"].type == "sse"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert path in warnings[0] and "cline: autoApprove" in warnings[0] and "roo: alwaysAllow, watchPaths" in warnings[0]


def test_client_keys_are_a_small_documented_list() -> None:
    assert set(CLIENT_ONLY_KEYS) == {"autoApprove", "alwaysAllow", "watchPaths"}
    docs = (Path(__file__).parents[2] / "docs" / "tools-and-mcp.md").read_text()
    assert all(f"`{key}`" in docs for key in CLIENT_ONLY_KEYS)


def test_unknown_keys_are_still_rejected_by_name_with_the_allowed_keys(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mcp_config({"mcpServers": {"x": {"command": "python", "autoApprove": [], "comand": "python"}}}, "f.json")
    msg = str(info.value)
    assert "x.comand" in msg and "did you mean 'command'?" in msg and "server keys:" in msg and "startup_timeout" in msg
    assert "autoApprove" not in msg.split("x.comand")[1].split("\n")[0]


async def test_disabled_servers_are_not_started_and_disabled_tools_are_absent(tmp_path, no_orphans) -> None:
    path = write(tmp_path, {
        "off": {"command": "no-such-mcp-server", "disabled": True, "alwaysAllow": ["x"]},
        "demo": {"command": sys.executable, "args": [DEMO], "stderr": "devnull", "autoApprove": ["add"],
                 "disabledTools": ["fail", "picture"]},
    })
    tm = await ToolManager.from_config(RLFactoryConfig(mcp=path))
    try:
        names = {s.name for s in tm.specs()}
        assert {"add", "echo"} <= names and not names & {"fail", "picture"}
        assert (await tm.call("add", {"a": 1, "b": 2})).output == "3"
    finally:
        await tm.aclose()
    no_orphans()
