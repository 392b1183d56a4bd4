"""verl's own tools as rlfactory tools: a ``BaseTool`` subclass or a ``@function_tool`` function runs unchanged.

verl 0.9.1's agent-loop worker loads its tools once per worker with
``verl.tools.tool_registry.load_all_tools`` from ``actor_rollout_ref.rollout.multi_turn.tool_config_path``
/ ``function_tool_path`` and hands them to every agent loop (``tools=ToolListWrap(...)``).
rlfactory's loop wraps those same objects (:func:`wrap_verl_tools`) and adds them to its tool
manager, so setting verl's own keys is all it takes; :func:`load_verl_tools` loads the files the
same way for ``check-config`` and the command line. Each tool becomes:

- a ``BaseTool`` becomes a :class:`VerlBaseTool`, a ``StatefulTool`` whose session is one verl
  *instance*: ``open_session`` -> ``await tool.create(create_kwargs=...)`` (the call verl makes,
  ``tool_agent_loop.py:486``; ``create_kwargs`` is the row's ``tools_kwargs[name].create_kwargs``,
  or ``extra_info.rlfactory.tool_kwargs[name]``), ``acall_in`` -> ``await tool.execute(instance_id,
  parameters, agent_data=...)``, ``session_state`` -> ``await tool.calc_reward(instance_id)`` plus the
  step rewards ``execute`` returned, ``close_session`` -> ``await tool.release(instance_id)``.
  **The lifecycle spans the trajectory**, where verl 0.9.1 creates and releases an instance around
  every single call; a tool written for 0.9.1 works either way, and one that kept state across
  turns under ``agent_data.request_id`` keeps working too (``request_id`` is the trajectory key).
- a ``@function_tool`` becomes a stateless :class:`VerlFunctionTool` (verl ignores
  ``tools_kwargs`` for them too); its return is normalised exactly as verl does.

The stand-in ``agent_data`` has ``request_id``, ``tools_kwargs``, ``extra_fields`` (one dict per
session), ``metrics``, ``tool_rewards`` and an empty ``messages``: rlfactory's episode does not
hand the chat history to tools, so a tool that reads ``agent_data.messages`` sees ``[]``.
A ``ToolResponse``'s PIL images are returned with its text, so the tool manager types and checks them
like any tool's images (``ToolResult.images``: a vision-language model gets their pixels, a text-only one
reads ``[image WxH fmt]``); videos, and images that are not PIL images, become ``[video x N]`` /
``[image x N]`` placeholders.
The schema the model sees is the tool's OpenAI schema (``get_openai_tool_schema()``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.tools.base import Tool, ToolSpec
from rlfactory_plugins.tools.session import SessionContext, StatefulTool
from rlfactory_plugins.tools.threads import run_in_thread
from rlfactory_plugins.verl import compat

compat.require(__name__)  # verl's tool classes and loader, imported where used

MULTI_TURN = "actor_rollout_ref.rollout.multi_turn"
#: verl's keys of the tool files, as (key, what the file is)
PATH_KEYS = {
    "tool_config_path": "verl's tools YAML ('tools: [{class_name, config, tool_schema}]')",
    "function_tool_path": "a Python file of @function_tool functions",
}


@dataclass
class SessionAgentData:
    """What a verl tool's ``execute(..., agent_data=...)`` gets: the parts of verl's AgentData a session has."""

    request_id: str
    tools_kwargs: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    tool_rewards: list[float] = field(default_factory=list)
    extra_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class VerlInstance:
    """One trajectory's verl tool instance."""

    instance_id: str
    agent_data: SessionAgentData
    step_rewards: list[float] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    released: bool = False


def _spec(schema: Any) -> ToolSpec:
    fn = schema.function
    return ToolSpec(name=fn.name, description=fn.description or "",
                    parameters=fn.parameters.model_dump(exclude_none=True))


def response_text(response: Any, images: int | None = None) -> str:
    """A verl ``ToolResponse`` as observation text, media as placeholders (``images``: how many images the
    placeholder counts; default all of them)."""
    parts = [response.text] if getattr(response, "text", None) else []
    counts = {"image": len(getattr(response, "image", None) or []) if images is None else images,
              "video": len(getattr(response, "video", None) or [])}
    parts += [f"[{kind} x {n}]" for kind, n in counts.items() if n]
    return "\n".join(parts)


def response_value(response: Any) -> str | list[Any]:
    """A verl ``ToolResponse`` as a tool's return value: its text, then its PIL images for the manager to type
    (:mod:`rlfactory_plugins.tools.images`); other media as :func:`response_text` placeholders."""
    images = list(getattr(response, "image", None) or [])
    pil = [im for im in images if type(im).__module__.startswith("PIL.")]
    if not pil:
        return response_text(response)
    text = response_text(response, images=len(images) - len(pil))
    return [text, *pil] if text else pil


class VerlBaseTool(StatefulTool):
    """A verl ``BaseTool`` whose create/execute/release lifecycle maps onto a trajectory's session."""

    def __init__(self, verl_tool: Any) -> None:
        super().__init__(_spec(verl_tool.get_openai_tool_schema()))
        self.verl_tool = verl_tool

    async def open_session(self, ctx: SessionContext) -> VerlInstance:
        kwargs = dict(ctx.kwargs)
        # rows in verl's own shape ({create_kwargs: {...}}) and rlfactory's (the create_kwargs themselves)
        create_kwargs = kwargs["create_kwargs"] if isinstance(kwargs.get("create_kwargs"), dict) else kwargs
        created = await self.verl_tool.create(create_kwargs=create_kwargs)
        instance_id = created[0] if isinstance(created, tuple) else created  # 0.9.x: (id, ToolResponse)
        agent_data = SessionAgentData(request_id=ctx.key, tools_kwargs={self.name: {"create_kwargs": create_kwargs}})
        return VerlInstance(str(instance_id), agent_data)

    async def acall_in(self, session: VerlInstance, arguments: dict[str, Any]) -> str | list[Any]:
        result = await self.verl_tool.execute(session.instance_id, arguments, agent_data=session.agent_data)
        response, reward, metrics = result if isinstance(result, tuple) else (result, 0.0, {})
        if reward is not None:
            session.step_rewards.append(float(reward))
            session.agent_data.tool_rewards.append(float(reward))
        if metrics:
            session.metrics.append(dict(metrics))
        return response_value(response) if not isinstance(response, str) else response

    async def session_state(self, session: VerlInstance) -> dict[str, Any]:
        # verl never calls calc_reward; the final state is where a reward can read it
        state: dict[str, Any] = {"instance_id": session.instance_id, "step_rewards": session.step_rewards}
        try:
            state["reward"] = float(await self.verl_tool.calc_reward(session.instance_id))
        except Exception as e:  # a tool without a meaningful calc_reward: keep the rest of the state
            state["reward_error"] = f"{type(e).__name__}: {e}"
        if session.metrics:
            state["metrics"] = session.metrics
        return state

    async def close_session(self, session: VerlInstance, reason: str) -> None:
        if not session.released:
            session.released = True
            await self.verl_tool.release(session.instance_id)


class VerlFunctionTool(Tool):
    """A verl ``@function_tool`` function (stateless; its return normalised as verl does)."""

    def __init__(self, function_tool: Any) -> None:
        super().__init__(_spec(function_tool.tool_schema))
        self.function_tool = function_tool

    async def acall(self, arguments: dict[str, Any]) -> str | list[Any]:
        from verl.tools.function_tool import normalize_function_tool_return

        ft = self.function_tool
        # a sync function runs in rlfactory's own daemon thread (as FunctionTool does), not the loop's executor
        raw = await ft.fn(**arguments) if ft.is_async else await run_in_thread(ft.fn, **arguments)
        response, _reward, _metrics = normalize_function_tool_return(raw)
        return response_value(response)


def wrap_verl_tools(loaded: Iterable[Any]) -> dict[str, Tool]:
    """verl's loaded tool objects (what ``load_all_tools`` returns) as rlfactory tools by name."""
    from verl.tools.base_tool import BaseTool
    from verl.tools.function_tool import FunctionTool

    tools: dict[str, Tool] = {}
    for verl_tool in loaded:
        if isinstance(verl_tool, FunctionTool):
            tool: Tool = VerlFunctionTool(verl_tool)
        elif isinstance(verl_tool, BaseTool):
            tool = VerlBaseTool(verl_tool)
        else:
            raise ConfigError(f"{MULTI_TURN}: {type(verl_tool).__name__} is neither a verl BaseTool nor a @function_tool")
        tools[tool.name] = tool
    return tools


def load_verl_tools(tool_config_path: str | None = None, function_tool_path: str | None = None) -> dict[str, Tool]:
    """The tools of verl's tool files, loaded by verl's own ``load_all_tools`` as its worker does."""
    from verl.tools.tool_registry import load_all_tools

    paths = {"tool_config_path": tool_config_path, "function_tool_path": function_tool_path}
    for key, path in paths.items():
        if not path:
            continue
        paths[key] = _resolve(path)
        if not Path(paths[key]).is_file():
            raise ConfigError(f"{MULTI_TURN}.{key}: no such file {path!r}; point it at {PATH_KEYS[key]} or unset it")
    if not any(paths.values()):
        return {}
    if paths["tool_config_path"]:
        _check_class_names(paths["tool_config_path"])
    try:
        loaded = load_all_tools(paths["tool_config_path"] or None, paths["function_tool_path"] or None)
    except Exception as e:  # verl's own errors (bad class_name, schema, name collision): keep its message
        raise ConfigError(f"{MULTI_TURN}: verl could not load the tools ({type(e).__name__}: {e})") from e
    return wrap_verl_tools(loaded)


def _resolve(path: str) -> str:
    """A relative tool file looked up as verl's worker looks it up (cwd, then verl's root), with verl's own
    ``resolve_config_path`` (``verl.utils.import_utils`` in 0.9.1, ``verl.experimental.agent_loop.utils``
    in 0.9.0); ``path`` itself where it finds nothing."""
    import importlib

    for module in ("verl.utils.import_utils", "verl.experimental.agent_loop.utils"):
        try:
            resolve = importlib.import_module(module).resolve_config_path
        except (ImportError, AttributeError):
            continue
        try:
            return str(resolve(path))
        except FileNotFoundError:
            return path
    return path


def _check_class_names(path: str) -> None:
    """Each ``class_name`` of verl's tools YAML names an importable module (verl's own loader fails on a
    missing one with ``'NoneType' object has no attribute 'loader'``)."""
    import importlib.util

    import yaml

    entries = (yaml.safe_load(Path(path).read_text()) or {}).get("tools") or []
    for i, entry in enumerate(entries):
        class_name = str((entry or {}).get("class_name", ""))
        module, _, _ = class_name.rpartition(".")
        try:
            found = bool(module) and importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that does not exist
            found = False
        if not found:
            raise ConfigError(
                f"{MULTI_TURN}.tool_config_path ({path}): tools[{i}].class_name={class_name!r}: no module "
                f"{module or class_name!r} can be imported; give 'package.module.ClassName' of an installed "
                "module, or put its folder on PYTHONPATH (for every Ray worker too)"
            )
