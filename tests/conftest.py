"""Fixtures used by tests in more than one folder; a folder's own fixtures are in its conftest.py.

Only fixtures here: the helpers they use are modules of tests/helpers/, imported by their full
name (``from tests.helpers.mcp import DEMO``). Nothing heavy is imported at the top (the training
stack is imported inside the fixtures that need it), so collecting a light test stays light.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import venv
from tests.helpers.mcp import DEMO, descendants


@pytest.fixture
def venv_run():
    """:func:`tests.helpers.venv.run`: a command of the test venv as a subprocess."""
    return venv.run


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


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """The offline tiny model (rlfactory_plugins.testing.tiny_model), built once per session."""
    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture
async def tools_plugin(monkeypatch):
    """Built-in plugins + the rollout test tools only (installed packs are left out)."""
    from rlfactory_plugins import plugins
    from rlfactory_plugins.rollout.runtime import close_runtimes
    from tests.helpers.rollout import RolloutTestTools

    monkeypatch.setenv(plugins.ALLOW_ENV, "rollout-test-tools")
    saved = plugins._cache
    pm, registry = plugins.load_plugins(fresh=True)
    plugins.register_plugin(pm, registry, RolloutTestTools(), "rollout-test-tools")
    assert not registry.errors, registry.errors
    try:
        yield registry
    finally:
        await close_runtimes()
        plugins._cache = saved
