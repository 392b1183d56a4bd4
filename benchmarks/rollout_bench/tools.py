"""The benchmark's tools: one scripted backend, wrapped for each driver, so every driver calls
exactly the same thing.

- ``bench_search`` (stateless): an rlfactory ``Tool`` and a verl ``BaseTool``.
- ``bench_kernel`` (per-trajectory stateful, the ``stateful`` scenario): an rlfactory
  ``StatefulTool`` (one session per trajectory, opened on its first call, closed at its end) and a
  verl ``BaseTool`` whose ``create`` opens the session. verl 0.9.1's ``ToolAgentLoop._call_tool``
  runs ``create`` -> ``execute`` -> ``release`` around every call, so it opens one per call.
  The turn-synchronous loop opens a trajectory's session on its first call (:meth:`ScriptedBackend.lazy_call`).

The backend reads the trajectory and step from the query (``task <i> step <j>``) and
sleeps that call's pre-sampled latency, hangs forever, or raises after its latency. A session
(:class:`KernelSession`) is opened for one trajectory (its ``index``, from the row's
``tools_kwargs[<tool>].create_kwargs``) after ``Scenario.session_open_s``, counts its calls
(the count is in the observation) and the backend counts, per driver run:

- ``state_errors``: calls a session saw from another trajectory (or a session opened without
  the row's index): the session is not the trajectory's own. 0 for a correct driver.
- ``state_lost``: calls whose session had not seen the trajectory's earlier calls (a session
  newer than the trajectory: its state from the earlier calls is gone).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from rlfactory_plugins import hookimpl
from rlfactory_plugins.tools.base import Tool, ToolError, ToolSpec
from rlfactory_plugins.tools.session import SessionContext, StatefulTool
from benchmarks.rollout_bench.scenarios import STATEFUL_TOOL, STATELESS_TOOL
from benchmarks.rollout_bench.workload import Workload, observation, parse_query

_PARAMETERS = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
SPEC = ToolSpec(name=STATELESS_TOOL, description="Search the web.", parameters=_PARAMETERS)
KERNEL_SPEC = ToolSpec(
    name=STATEFUL_TOOL, description="Run a query in this task's own kernel session.", parameters=_PARAMETERS
)
SPECS = {spec.name: spec for spec in (SPEC, KERNEL_SPEC)}


def spec_for(tool_name: str) -> ToolSpec:
    return SPECS[tool_name]


class ScriptedSearchFailed(ToolError):
    pass


@dataclass
class KernelSession:
    """One trajectory's session of the stateful tool."""

    index: int | None  # the trajectory it was opened for (the row's create_kwargs)
    calls: int = 0
    closed: bool = False


@dataclass
class SessionCounts:
    """What the backend saw during one driver's run."""

    tool_calls: int = 0
    sessions_opened: int = 0
    sessions_closed: int = 0
    state_errors: int = 0
    state_lost: int = 0


class ScriptedBackend:
    """The one implementation behind every wrapper; ``workload`` is swapped per scenario,
    :meth:`reset` before each driver run."""

    def __init__(self) -> None:
        self.workload: Workload | None = None
        self.counts = SessionCounts()
        self._lazy: dict[int, asyncio.Task[KernelSession]] = {}  # turn-sync: trajectory -> its session

    def reset(self) -> None:
        self.counts = SessionCounts()
        self._lazy = {}

    def _plan(self, query: str):
        if self.workload is None:
            raise RuntimeError("ScriptedBackend.workload is not set")
        index, step = parse_query(query)
        return index, step, self.workload.plans[index].tools[step]

    async def _play(self, query: str, planned) -> None:
        if planned.hangs:
            await asyncio.Event().wait()  # never set: a call that never returns
        await asyncio.sleep(planned.latency_s)
        if planned.fails:
            raise ScriptedSearchFailed(f"search backend error for {query!r} (scripted failure)")

    async def search(self, query: str) -> str:
        """The stateless tool's call."""
        index, step, planned = self._plan(query)
        self.counts.tool_calls += 1
        await self._play(query, planned)
        return observation(index, step)

    # -- the stateful tool ---------------------------------------------------------------
    async def open_session(self, index: Any) -> KernelSession:
        """Open a session for trajectory ``index`` (the modelled open cost: a sandbox starting)."""
        if self.workload is None:
            raise RuntimeError("ScriptedBackend.workload is not set")
        seconds = self.workload.scenario.session_open_s
        await asyncio.sleep(seconds)
        self.counts.sessions_opened += 1
        return KernelSession(index if isinstance(index, int) else None)

    def close_session(self, session: KernelSession) -> None:
        if not session.closed:
            session.closed = True
            self.counts.sessions_closed += 1

    async def call_in(self, session: KernelSession, query: str) -> str:
        """One call inside ``session``; checks that the session is the query's trajectory's own."""
        index, step, planned = self._plan(query)
        self.counts.tool_calls += 1
        if session.index != index or session.closed:
            self.counts.state_errors += 1
        if session.calls != step:  # the trajectory's steps 0..step-1 ran in another session
            self.counts.state_lost += 1
        session.calls += 1
        call = session.calls
        await self._play(query, planned)
        return observation(index, step, session_call=call)

    async def lazy_call(self, trajectory: int, query: str) -> str:
        """The turn-synchronous loop's call for ``trajectory``: its session opens on its first call."""
        task = self._lazy.get(trajectory)
        if task is None:
            task = self._lazy[trajectory] = asyncio.ensure_future(self.open_session(trajectory))
        # shielded: a call's timeout must not cancel the open the trajectory's later calls await
        return await self.call_in(await asyncio.shield(task), query)

    async def close_lazy(self) -> None:
        """End of the turn-synchronous batch: close every trajectory's session."""
        for task in self._lazy.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                self.close_session(task.result())


BACKEND = ScriptedBackend()


class RLFactorySearch(Tool):
    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(SPEC)
        self.backend = backend

    async def acall(self, arguments: dict[str, Any]) -> str:
        return await self.backend.search(arguments["query"])


class RLFactoryKernel(StatefulTool):
    """The stateful tool for rlfactory: one session per trajectory (``ctx.kwargs`` is the row's
    ``tools_kwargs[bench_kernel].create_kwargs``), its final state exported for the rewards."""

    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(KERNEL_SPEC)
        self.backend = backend

    async def open_session(self, ctx: SessionContext) -> KernelSession:
        return await self.backend.open_session(ctx.kwargs.get("index"))

    async def acall_in(self, session: KernelSession, arguments: dict[str, Any]) -> str:
        return await self.backend.call_in(session, arguments["query"])

    async def session_state(self, session: KernelSession) -> dict[str, Any]:
        return {"index": session.index, "calls": session.calls}

    async def close_session(self, session: KernelSession, reason: str) -> None:
        self.backend.close_session(session)


class _VerlTool(BaseTool):
    def __init__(self, spec: ToolSpec, backend: ScriptedBackend) -> None:
        self.backend = backend
        self.config = {}
        self.tool_schema = OpenAIFunctionToolSchema.model_validate(spec.openai_schema())
        self.name = spec.name  # BaseTool.__init__ would print the schema; nothing else to set


class VerlSearch(_VerlTool):
    """The stateless tool as verl's ``BaseTool`` (create / execute / release lifecycle)."""

    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(SPEC, backend)

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        return ToolResponse(text=await self.backend.search(parameters["query"])), 0.0, {}


class VerlKernel(_VerlTool):
    """The stateful tool as verl's ``BaseTool``: ``create(create_kwargs=...)`` opens a session (the
    open cost), ``execute`` calls in it, ``release`` closes it. verl's loop runs all three per call."""

    def __init__(self, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(KERNEL_SPEC, backend)
        self.instances: dict[str, KernelSession] = {}

    async def create(self, instance_id: str | None = None, **kwargs) -> tuple[str, ToolResponse]:
        instance_id = instance_id or str(uuid.uuid4())
        create_kwargs = kwargs.get("create_kwargs") or {}
        self.instances[instance_id] = await self.backend.open_session(create_kwargs.get("index"))
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        text = await self.backend.call_in(self.instances[instance_id], parameters["query"])
        return ToolResponse(text=text), 0.0, {}

    async def release(self, instance_id: str, **kwargs) -> None:
        session = self.instances.pop(instance_id, None)
        if session is not None:
            self.backend.close_session(session)


class VerlSearchWithTimeout(VerlSearch):
    """``VerlSearch`` whose ``execute`` applies the per-call timeout rlfactory's tool manager applies
    (``asyncio.wait_for``), answering an error text as rlfactory's ``timeout`` observation does:
    what a verl user would write to stop a hung tool from stalling the step (``hangs``, like for like)."""

    def __init__(self, timeout_s: float, backend: ScriptedBackend = BACKEND) -> None:
        super().__init__(backend)
        self.timeout_s = timeout_s

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        try:
            return await asyncio.wait_for(super().execute(instance_id, parameters, **kwargs), self.timeout_s)
        except TimeoutError:
            return ToolResponse(text=f"error: no result within {self.timeout_s:g}s"), 0.0, {}


def verl_tool_for(tool_name: str, backend: ScriptedBackend = BACKEND, timeout_s: float | None = None) -> BaseTool:
    if tool_name == STATEFUL_TOOL:
        return VerlKernel(backend)
    return VerlSearch(backend) if timeout_s is None else VerlSearchWithTimeout(timeout_s, backend)


class BenchToolsPlugin:
    """rlfactory plugin registering the scripted tools (stateless ``bench_search``, stateful ``bench_kernel``)."""

    @hookimpl
    def register_tools(self, register) -> None:
        register(RLFactorySearch())
        register(RLFactoryKernel())
