"""Per-process rollout state, shared by every trajectory of a worker process.

verl builds one agent-loop object per trajectory, so whatever must outlive a
trajectory lives here: the tool manager, the parser, the pre-tokenized observation
wrappers (tool role, and user role for environment turns), the tool schemas rendered for
the prompt (per row tool set too, :meth:`Runtime.schemas_for`), the tool sessions of
every running trajectory (:attr:`Runtime.sessions`), the environments, the step metrics
and the trajectory dump. :func:`get_runtime` creates one :class:`Runtime` lazily per
(config, tokenizer) and returns the same one afterwards; :func:`close_runtimes`
(also run at interpreter exit) flushes the metrics and closes the tool manager.

Besides the plugin registry this is the only process state rlfactory keeps.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.environments.base import Environment
from rlfactory_plugins.errors import ConfigError, RLFactoryError, UnknownNameError
from rlfactory_plugins.rollout.branching import BranchCoordinator
from rlfactory_plugins.rollout.codec import Codec
from rlfactory_plugins.rollout.dump import dump_trajectory, write_metrics_line
from rlfactory_plugins.rollout.lifecycle import call_each
from rlfactory_plugins.rollout.metrics import StepMetrics
from rlfactory_plugins.rollout.observation import ObservationFormat
from rlfactory_plugins.rollout.parsers import ToolCallParser
from rlfactory_plugins.rollout.stragglers import StepStragglers
from rlfactory_plugins.rollout.turn_reader import reader_of
from rlfactory_plugins.tools.base import Tool
from rlfactory_plugins.tools.runner import ToolRunner
from rlfactory_plugins.tools.session import SessionRegistry, StatefulTool
from rlfactory_plugins.trajectory import Trajectory, TurnRecord

logger = logging.getLogger("rlfactory")


@dataclass
class Runtime:
    config: RLFactoryConfig
    tokenizer: Any
    tool_manager: ToolRunner
    """What the episode runs tool calls through: a :class:`~rlfactory_plugins.tools.manager.ToolManager`."""
    parser: ToolCallParser
    observation: ObservationFormat
    pm: pluggy.PluginManager
    tool_schemas: list[dict[str, Any]] = field(default_factory=list)
    """OpenAI function schemas of every tool, rendered once for the prompts."""
    metrics: StepMetrics = field(default_factory=StepMetrics)
    environments: dict[str, Environment] = field(default_factory=dict)
    """The registered environments by name (``register_environments``)."""
    user_observation: ObservationFormat | ConfigError | None = None
    """The chat template's ``user`` role, pre-tokenized once (or why it cannot be): environment turns."""
    codec: Codec = field(init=False)
    """The tokenizer's encode/decode for the hot path (:mod:`rlfactory_plugins.rollout.codec`)."""
    sessions: SessionRegistry = field(init=False)
    """The tool sessions of every running trajectory (the tool manager's registry when it has one)."""
    _newest_step: int = -1

    def __post_init__(self) -> None:
        rollout = self.config.rollout
        self.codec = Codec(self.tokenizer)
        self.stragglers = StepStragglers(rollout.straggler_fraction, rollout.straggler_grace_s)
        self.tool_names = frozenset(s["function"]["name"] for s in self.tool_schemas)
        self._schemas: dict[frozenset[str], list[dict[str, Any]]] = {}
        own = getattr(self.tool_manager, "sessions", None)
        self._own_sessions = not isinstance(own, SessionRegistry)
        # a ToolRunner without a registry of its own (tests, benchmarks) gets one here
        self.sessions = SessionRegistry.from_config(self.config.tool_manager) if self._own_sessions else own
        self.stateful_tools = _stateful_tools(self.tool_manager)
        """Every stateful tool the manager runs, by name (sessions are opened only for rows that see one)."""
        #: the close of each running trajectory (Episode.close), for the shutdown sweep
        self.running: dict[str, Callable[[str], Awaitable[Any]]] = {}

    @classmethod
    async def create(
        cls,
        config: RLFactoryConfig,
        tokenizer: Any,
        *,
        chat_template_kwargs: dict[str, Any] | None = None,
        tool_manager: ToolRunner | None = None,
        verl_tools: Mapping[str, Tool] | None = None,
    ) -> Runtime:
        from rlfactory_plugins.plugins import load_plugins
        from rlfactory_plugins.tools.manager import ToolManager

        pm, registry = load_plugins()
        parser_cls = registry.parser(config.parser)
        parser = parser_cls(repair_json=config.rollout.repair_json)
        loop = asyncio.get_running_loop()
        observation = await loop.run_in_executor(None, parser.observation_format, tokenizer, chat_template_kwargs)
        user_observation = await loop.run_in_executor(None, _user_format, parser, tokenizer, chat_template_kwargs)
        if tool_manager is None:
            tool_manager = await ToolManager.from_config(config, registry, verl_tools)
        schemas = [spec.openai_schema() for spec in tool_manager.specs()]
        environments = {name: reg.obj for name, reg in registry.environments.items()}
        runtime = cls(
            config, tokenizer, tool_manager, parser, observation, pm, schemas,
            environments=environments, user_observation=user_observation,
        )
        try:
            reader_of(runtime)  # checks, before any generation, that the parser's tags survive the tokenizer
        except BaseException:
            await tool_manager.aclose()
            raise
        return runtime

    # -- per row -------------------------------------------------------------------
    def schemas_for(self, tools: frozenset[str] | None) -> list[dict[str, Any]]:
        """The prompt's tool schemas for a row's tool set (None: all), in the manager's order so
        prompts stay stable for prefix caching; cached per set (rows share a few sets)."""
        if tools is None:
            return self.tool_schemas
        found = self._schemas.get(tools)
        if found is None:
            found = self._schemas[tools] = [s for s in self.tool_schemas if s["function"]["name"] in tools]
        return found

    def check_tools(self, tools: frozenset[str] | None) -> None:
        """Raise :class:`UnknownNameError` (with a did-you-mean) for a row naming a tool this worker lacks."""
        for name in sorted((tools or frozenset()) - self.tool_names):
            raise UnknownNameError(
                "tool", name, self.tool_names,
                "The row's extra_info.rlfactory.tools (or extra_info.tool_selection) names tools of "
                "rlfactory.tools, rlfactory.mcp and the installed packs only",
            )

    def stateful_for(self, tools: frozenset[str] | None) -> list[StatefulTool]:
        """The stateful tools a row with tool set ``tools`` (None: all) can call."""
        return [t for name, t in self.stateful_tools.items() if tools is None or name in tools]

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            raise UnknownNameError(
                "environment", name, self.environments,
                "A row's extra_info.rlfactory.environment.name must be registered by a plugin (register_environments)",
            )
        return self.environments[name]

    @property
    def user_format(self) -> ObservationFormat:
        """How an environment's user message is written into the token stream."""
        fmt = self.user_observation
        if isinstance(fmt, ConfigError):
            raise fmt
        if fmt is None:
            raise RLFactoryError("this runtime was built without a user-role format; build it with Runtime.create")
        return fmt

    # -- per trajectory ------------------------------------------------------------
    def turn_finished(self, trajectory: Trajectory, turn: TurnRecord) -> None:
        call_each(self.pm, "on_turn_finished", trajectory=trajectory, turn=turn)

    async def trajectory_finished(self, trajectory: Trajectory) -> None:
        """Hooks, step metrics and the optional JSONL dump of a finished trajectory."""
        call_each(self.pm, "on_trajectory_finished", trajectory=trajectory)
        step = trajectory.step or 0
        if step > self._newest_step:
            self._newest_step = step
            await asyncio.to_thread(self.flush_metrics, step)
        self.metrics.add(trajectory)
        if self.config.trajectory_dir:
            try:
                await dump_trajectory(self.config.trajectory_dir, trajectory)
            except OSError as e:
                logger.warning("rlfactory: could not dump trajectory to %s: %s", self.config.trajectory_dir, e)

    def flush_metrics(self, before: int | None = None) -> list[dict[str, float]]:
        """Write the aggregate of every step older than ``before`` (all if None) to ``metrics_file``."""
        written = []
        for step in self.metrics.steps():
            if before is not None and step >= before:
                continue
            line = self.metrics.pop(step)
            line.update({f"tool_manager/{k}": v for k, v in self.tool_manager.metrics().items()})
            self.tool_manager.reset_metrics()
            if self._own_sessions and self.sessions.used:
                line.update({f"tool_manager/{k}": v for k, v in self.sessions.metrics().items()})
                self.sessions.reset_metrics()
            written.append(line)
            if self.config.metrics_file:
                try:
                    write_metrics_line(self.config.metrics_file, step, line)
                except OSError as e:
                    logger.warning("rlfactory: could not write metrics to %s: %s", self.config.metrics_file, e)
        return written

    async def aclose(self) -> None:
        """Flush metrics, end the running trajectories' sessions and environments, close the tools."""
        self.flush_metrics()
        closes = [close("shutdown") for close in list(self.running.values())]
        await asyncio.gather(*closes, return_exceptions=True)
        await self.sessions.aclose_all("shutdown")  # anything not closed through an episode
        await self.tool_manager.aclose()


_runtimes: dict[tuple[str, int], asyncio.Task[Runtime]] = {}

#: the GRPO groups of rlfactory.rollout.branching, by uid: process state, because a session must join its
#: group before its first await (before the runtime is looked up); uids are unique across configs
BRANCHES = BranchCoordinator()


async def get_runtime(
    config: RLFactoryConfig,
    tokenizer: Any,
    chat_template_kwargs: dict[str, Any] | None = None,
    verl_tools: Mapping[str, Tool] | None = None,
) -> Runtime:
    """The process's runtime for ``config`` and ``tokenizer``, created on first use (with ``verl_tools``,
    verl's own tools of this worker, added to its tool manager)."""
    key = (config.model_dump_json(), id(tokenizer))
    task = _runtimes.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop() or _failed(task):
        task = asyncio.ensure_future(Runtime.create(
            config, tokenizer, chat_template_kwargs=chat_template_kwargs, verl_tools=verl_tools))
        _runtimes[key] = task
    return await asyncio.shield(task)


def _stateful_tools(runner: ToolRunner) -> dict[str, StatefulTool]:
    """The runner's stateful tools: ``runner.stateful_tools()`` when it has it, else the ToolManager's slots."""
    listed = getattr(runner, "stateful_tools", None)
    if callable(listed):
        tools = list(listed())
    else:
        tools = [slot.tool for slot in getattr(runner, "_slots", {}).values()]
    return {t.name: t for t in tools if isinstance(t, StatefulTool)}


def _user_format(parser: ToolCallParser, tokenizer: Any, kwargs: dict[str, Any] | None) -> ObservationFormat | ConfigError:
    """The parser's user-role format (``parser.user_format`` if it has one, else the chat template's
    ``user`` role). A template that cannot render it is an error only for rows with environment turns."""
    try:
        own = getattr(parser, "user_format", None)
        if callable(own):
            fmt = own(tokenizer, kwargs)
            if isinstance(fmt, ObservationFormat):
                return fmt
        return ObservationFormat.user_from_chat_template(tokenizer, kwargs)
    except ConfigError as e:
        return e


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def cut_running(reason: str) -> int:
    """End every trajectory running on this process's runtimes now (``stop_reason="deadline"``)."""
    return sum(
        task.result().stragglers.cut_all(reason) for task in list(_runtimes.values()) if task.done() and not _failed(task)
    )


async def close_runtimes() -> None:
    """Flush metrics and close every runtime of this process."""
    tasks = list(_runtimes.values())
    _runtimes.clear()
    for task in tasks:
        if task.done() and not _failed(task):
            await task.result().aclose()


def _close_at_exit() -> None:
    for task in list(_runtimes.values()):
        if not task.done() or _failed(task):
            continue
        runtime = task.result()
        try:
            runtime.flush_metrics()
            # a new event loop: sessions opened on the worker's loop may be unusable here, so only the
            # tools' own aclose runs; by contract it releases every session the tool still holds
            asyncio.run(runtime.tool_manager.aclose())
        except Exception as e:  # the worker is going away; never hide its real exit status
            logger.warning("rlfactory: closing the rollout runtime at exit failed: %s", e)
    _runtimes.clear()


atexit.register(_close_at_exit)
