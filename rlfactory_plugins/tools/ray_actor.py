"""Serve a tool from one shared, named Ray actor (``rlfactory.tools[].ray_actor: true``).

Every worker process that enables the tool gets a :class:`RayActorTool` proxy with the
same spec; the first one creates the actor (``get_if_exists=True``), the others attach to
it, so a heavy tool (an index, a model, a sandbox pool) is loaded once per cluster rather
than once per worker. The configured tool object travels to the actor by pickle; the
actor is async, so calls from every worker run concurrently in it.

Exceptions keep their type across the hop (Ray re-raises the tool's ``ToolError`` /
``TransientToolError``), so the manager's retry and status rules apply unchanged; an
actor that dies turns into :class:`ToolCrashed`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import cloudpickle

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools.base import Tool, ToolCrashed
from rlfactory_plugins.tools.validation import ArgumentValidator

NAMESPACE = "rlfactory"


class _ToolHost:
    """The actor body: holds one configured tool and runs its calls."""

    def __init__(self, pickled_tool: bytes) -> None:
        self.tool: Tool = cloudpickle.loads(pickled_tool)

    async def call(self, arguments: dict[str, Any]) -> Any:
        return await self.tool.acall(arguments)

    async def close(self) -> None:
        await self.tool.aclose()


def actor_name(tool: Tool, options: dict[str, Any] | None) -> str:
    digest = hashlib.sha1(json.dumps(options or {}, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"rlfactory.tool.{tool.name}.{digest}"


class RayActorTool(Tool):
    """A proxy with the wrapped tool's spec and limits; calls run in the shared actor."""

    def __init__(self, tool: Tool, options: dict[str, Any] | None = None, *, num_cpus: float = 0) -> None:
        super().__init__(tool.spec)
        self.inner = tool
        self.timeout, self.max_concurrency, self.cacheable = tool.timeout, tool.max_concurrency, tool.cacheable
        self.actor_name = actor_name(tool, options)
        self._validate = ArgumentValidator(tool)
        self._num_cpus = num_cpus
        self._actor: Any = None

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._validate(arguments)

    def _handle(self) -> Any:
        if self._actor is None:
            import ray

            if not ray.is_initialized():
                raise PluginError(f"tool {self.name!r} has ray_actor: true but Ray is not initialised in this process")
            try:
                pickled = cloudpickle.dumps(self.inner)
            except Exception as e:
                raise PluginError(f"tool {self.name!r} cannot be sent to a Ray actor ({e}); set ray_actor: false") from e
            host = ray.remote(_ToolHost).options(
                name=self.actor_name, namespace=NAMESPACE, get_if_exists=True,
                num_cpus=self._num_cpus, max_concurrency=1000,
            )
            self._actor = host.remote(pickled)
        return self._actor

    async def acall(self, arguments: dict[str, Any]) -> Any:
        import ray

        try:
            return await self._handle().call.remote(arguments)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            self._actor = None  # the next call attaches to (or starts) a fresh actor
            raise ToolCrashed(f"the Ray actor serving tool {self.name!r} died: {type(e).__name__}") from None
        except ray.exceptions.RayTaskError as e:  # a tool exception that is not a ToolError
            cause = e.cause if isinstance(e.cause, Exception) else e
            raise cause from None
