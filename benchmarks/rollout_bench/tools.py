"""The benchmark's ``search`` tool: one scripted backend, wrapped as an rlfactory tool and
as a verl tool, so both agent loops call exactly the same thing.

The backend reads the trajectory and step from the query (``task <i> step <j>``) and
sleeps that call's pre-sampled latency, hangs forever, or raises after its latency.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from rlfactory_plugins import hookimpl
from rlfactory_plugins.tools.base import Tool, ToolError, ToolSpec
from benchmarks.rollout_bench.workload import TOOL_NAME, Workload, observation, parse_query

SPEC = ToolSpec(
    name=TOOL_NAME,
    description="Search the web.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


class ScriptedSearchFailed(ToolError):
    pass


class ScriptedBackend:
    """The one implementation behind both wrappers; ``workload`` is swapped per scenario."""

    def __init__(self) -> None:
        self.workload: Workload | None = None

    async def search(self, query: str) -> str:
        if self.workload is None:
            raise RuntimeError("ScriptedBackend.workload is not set")
        index, step = parse_query(query)
        planned = self.workload.plans[index].tools[step]
        if planned.hangs:
            await asyncio.Event().wait()  # never set: a call that never returns
        await asyncio.sleep(planned.latency_s)
        if planned.fails:
            raise ScriptedSearchFailed(f"search backend error for {query!r} (scripted failure)")
        return observation(index, step)


BACKEND = ScriptedBackend()


class RLFactorySearch(Tool):
    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(SPEC)
        self.backend = backend

    async def acall(self, arguments: dict[str, Any]) -> str:
        return await self.backend.search(arguments["query"])


class VerlSearch(BaseTool):
    """The same tool as verl's ``BaseTool`` (create / execute / release lifecycle)."""

    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        self.backend = backend
        self.config = {}
        self.tool_schema = OpenAIFunctionToolSchema.model_validate(SPEC.openai_schema())
        self.name = SPEC.name  # BaseTool.__init__ would print the schema; nothing else to set

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        return ToolResponse(text=await self.backend.search(parameters["query"])), 0.0, {}


class BenchToolsPlugin:
    """rlfactory plugin registering the scripted ``search`` tool."""

    @hookimpl
    def register_tools(self, register) -> None:
        register(RLFactorySearch())
