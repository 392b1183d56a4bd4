"""``ray_actor: true``: one shared named actor serves the tool, with the same Tool interface."""

from __future__ import annotations

import os
from typing import Any

import pytest

from rlfactory_plugins import hookimpl
from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.tools import ToolError, ToolStatus, tool
from rlfactory_plugins.tools.manager import ToolManager

ray = pytest.importorskip("ray")

# starting a local Ray node takes several seconds
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@tool
def where(x: int) -> str:
    """The process that ran the call."""
    if x < 0:
        raise ToolError("x must be >= 0")
    return f"{os.getpid()}:{x}"


class Pack:
    @hookimpl
    def register_tools(self, register: Any) -> None:
        register(where)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


async def test_tool_runs_in_one_shared_actor(local_ray, rlfactory_register) -> None:
    registry = rlfactory_register(Pack(), "pack")
    cfg = RLFactoryConfig(tools=[{"name": "where", "ray_actor": True}])
    one, two = await ToolManager.from_config(cfg, registry), await ToolManager.from_config(cfg, registry)
    try:
        assert [s.name for s in one.specs()] == ["where"]
        results = await one.call_many([("where", {"x": i}) for i in range(8)]) + [await two.call("where", {"x": 9})]
        assert all(r.ok for r in results), results
        pids = {r.output.split(":")[0] for r in results}
        assert len(pids) == 1 and pids != {str(os.getpid())}  # same actor process, not ours
        failed, invalid = await one.call_many([("where", {"x": -1}), ("where", {"x": "a"})])
        assert (failed.status, failed.error) == (ToolStatus.tool_error, "x must be >= 0")
        assert invalid.status is ToolStatus.invalid_args
    finally:
        await one.aclose()
        await two.aclose()
