"""A verl tool written against verl 0.9.1's documented ``BaseTool`` interface only (no rlfactory imports).

A per-instance counter: ``create`` starts it at ``create_kwargs["start"]`` (default 0), each
``execute`` adds ``by`` and returns the value with a step reward of 0.1, ``calc_reward`` is
the value, ``release`` drops the instance. ``CounterTool.events`` records the lifecycle calls
so a test can check that every created instance is released; with ``config["events_file"]`` they
are also appended to that file (one ``create <id>`` / ``release <id>`` line each), for a test whose
tool runs in another process.
"""

from __future__ import annotations

from typing import Any, Optional
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse


class CounterTool(BaseTool):
    events: list[tuple[str, str]] = []

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema):
        super().__init__(config, tool_schema)
        self._instances: dict[str, int] = {}
        self.step = float(config.get("step_reward", 0.1))
        self.events_file = config.get("events_file")

    def _event(self, kind: str, instance_id: str) -> None:
        self.events.append((kind, instance_id))
        if self.events_file:
            with open(self.events_file, "a") as f:
                f.write(f"{kind} {instance_id}\n")

    async def create(self, instance_id: Optional[str] = None, **kwargs) -> tuple[str, ToolResponse]:
        instance_id = instance_id or str(uuid4())
        create_kwargs = kwargs.get("create_kwargs", {})
        self._instances[instance_id] = int(create_kwargs.get("start", 0))
        self._event("create", instance_id)
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        self._instances[instance_id] += int(parameters.get("by", 1))
        value = self._instances[instance_id]
        return ToolResponse(text=f"count={value}"), self.step, {"value": value}

    async def calc_reward(self, instance_id: str, **kwargs) -> float:
        return float(self._instances[instance_id])

    async def release(self, instance_id: str, **kwargs) -> None:
        self._event("release", instance_id)
        del self._instances[instance_id]
