"""Every check the workers make on the config at start, made before anything starts.

:func:`check_config` takes the composed training config (what ``main_ppo +plugins=rlfactory``
runs with) as plain data (:mod:`rlfactory_plugins.verl.config_check` reads those keys of
:data:`READ_KEYS` from verl's DictConfig) and raises the error a worker would raise later, after Ray, the models and the
MCP servers had started. ``rlfactory check-config`` and the launch-time Hydra callback call
it; the rollout runtime calls :func:`check_plugins` too, so the two cannot drift apart.

Nothing here starts a process, a server or Ray, or loads a model: MCP servers are checked
from their file (schema, command on ``PATH``, ``cwd``, ``stderr`` file), not started, so the
names of MCP tools are checked only where the file lists them (a server's ``tools``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.config.messages import problem_lines
from rlfactory_plugins.config.oversample import OVERSAMPLER_MODULES, OVERSAMPLER_NAME, OverSamplingConfig
from rlfactory_plugins.config.section import SECTION_KEY, read_section
from rlfactory_plugins.errors import ConfigError, PluginError, UnknownNameError

if TYPE_CHECKING:
    from rlfactory_plugins.registry import Registry
    from rlfactory_plugins.tools.base import Tool
    from rlfactory_plugins.tools.mcp_config import MCPConfig

RESPONSE_LENGTH_KEY = "actor_rollout_ref.rollout.response_length"
#: verl's own tool files (its worker loads them and rlfactory's agent loop runs them as tools)
VERL_TOOL_KEYS = (
    "actor_rollout_ref.rollout.multi_turn.tool_config_path",
    "actor_rollout_ref.rollout.multi_turn.function_tool_path",
)
OVERSAMPLER_MODULE = OVERSAMPLER_MODULES[0]

#: every key of the training config the checks read (dotted)
READ_KEYS = (
    SECTION_KEY,
    RESPONSE_LENGTH_KEY,
    *VERL_TOOL_KEYS,
    "trainer.v1.sampler.custom_sampler.path",
    "trainer.v1.sampler.custom_sampler.name",
    "trainer.v1.sampler.sampler_kwargs",
    "trainer.v1.trainer_mode",
)


def check_config(cfg: Mapping[str, Any], verl_tools: Mapping[str, Tool] | None = None) -> RLFactoryConfig:
    """Validate a composed training config (plain nested mappings); return its ``rlfactory:`` model.

    ``verl_tools`` are verl's own ``multi_turn`` tools as the workers will see them (loaded by the
    verl adapter). Raises a :class:`~rlfactory_plugins.errors.RLFactoryError` naming the key path, the
    bad value and the fix. A DictConfig goes through :func:`rlfactory_plugins.verl.config_check.check_config`.
    """
    if type(cfg).__module__.startswith("omegaconf"):
        raise TypeError("check_config takes plain data; use rlfactory_plugins.verl.config_check.check_config")
    model = read_section(get_key(cfg, SECTION_KEY))
    check_verl_keys(model, cfg)
    check_plugins(model, verl_tools=verl_tools)
    return model


# -- the rlfactory section against verl's own keys ------------------------------------------------
def check_verl_keys(model: RLFactoryConfig, cfg: Any) -> None:
    """Limits that involve verl's keys: the response budget, the over-sampling replay buffer."""
    response_length = get_key(cfg, RESPONSE_LENGTH_KEY)
    if response_length is not None:
        response_budget(model, int(response_length))
    _check_oversampler(cfg)


def response_budget(model: RLFactoryConfig, response_length: int) -> int:
    """Tokens per trajectory: ``rlfactory.rollout.max_response_tokens``, at most verl's response_length."""
    wanted = model.rollout.max_response_tokens
    if wanted is not None and wanted > response_length:
        raise ConfigError(
            f"rlfactory.rollout.max_response_tokens={wanted} exceeds {RESPONSE_LENGTH_KEY}={response_length}; "
            "lower it or raise response_length (data.max_response_length)"
        )
    return wanted or response_length


def _check_oversampler(cfg: Any) -> None:
    """What :class:`OverSamplingReplayBuffer` checks when verl's V1 trainer builds it."""
    sampler = get_key(cfg, "trainer.v1.sampler")
    custom = get_key(sampler, "custom_sampler") if sampler is not None else None
    path, name = (get_key(custom, "path"), get_key(custom, "name")) if custom is not None else (None, None)
    if name != OVERSAMPLER_NAME or not path or not _is_oversampler_module(str(path)):
        return
    kwargs = get_key(sampler, "sampler_kwargs") or {}
    try:
        OverSamplingConfig.model_validate(kwargs)
    except pydantic.ValidationError as e:
        lines = problem_lines(e, "trainer.v1.sampler.sampler_kwargs", OverSamplingConfig, kwargs)
        raise ConfigError(f"invalid options of {OVERSAMPLER_NAME}:\n  " + "\n  ".join(lines)) from None
    mode = get_key(cfg, "trainer.v1.trainer_mode")
    if mode is not None and mode != "sync":
        raise ConfigError(
            f"trainer.v1.trainer_mode={mode!r}: {OVERSAMPLER_NAME} works with trainer.v1.trainer_mode=sync "
            "(the async trainers already overlap rollout and training); set it to sync or drop custom_sampler"
        )


def _is_oversampler_module(path: str) -> bool:
    if path.startswith("pkg://"):
        return path.removeprefix("pkg://") in OVERSAMPLER_MODULES
    return Path(path).name == "oversample.py" and Path(path).parent.name in ("verl", "rollout")


# -- names and options of the parser, tools, rewards; the MCP file ----------------------------------
def check_plugins(
    model: RLFactoryConfig, registry: Registry | None = None, verl_tools: Mapping[str, Tool] | None = None
) -> None:
    """What the runtime, the tool manager and the reward manager check when they are built."""
    if registry is None:
        from rlfactory_plugins.plugins import get_registry

        registry = get_registry()
    _check_parser(model, registry)
    _check_rewards(model, registry)
    _check_tools(model, registry, _check_mcp(model.mcp) if model.mcp else None, verl_tools or {})


def _check_parser(model: RLFactoryConfig, registry: Registry) -> None:
    try:
        parser_cls = registry.parser(model.parser)
    except UnknownNameError as e:
        raise ConfigError(f"rlfactory.parser={model.parser!r}: {e}") from None
    try:  # as the runtime builds it
        parser_cls(repair_json=model.rollout.repair_json)
    except Exception as e:  # noqa: BLE001 - a plugin's constructor: report it by key, whatever it raised
        raise PluginError(
            f"rlfactory.parser={model.parser!r}: the parser cannot be built: {type(e).__name__}: {e}"
        ) from None


def _check_rewards(model: RLFactoryConfig, registry: Registry) -> None:
    if not model.rewards:  # the reward manager falls back to verl's compute_score
        return
    for entry in model.rewards:
        try:
            reward = registry.reward(entry.name)
        except UnknownNameError as e:
            raise ConfigError(f"rlfactory.rewards[{entry.name}]: {e}") from None
        reward.parse_options(entry.options)
    from rlfactory_plugins.rewards.composite import CompositeReward

    CompositeReward.from_config(model, registry)  # what the reward manager builds: its own checks too


def _check_tools(
    model: RLFactoryConfig, registry: Registry, mcp: MCPConfig | None, verl_tools: Mapping[str, Tool]
) -> None:
    """What the tool manager checks, knowing of the MCP tools only those ``mcp`` lists."""
    from rlfactory_plugins.tools.binding import bind_entry, config_entries, external_sources
    from rlfactory_plugins.tools.manager import ToolManager

    external = external_sources(listed_mcp_tools(mcp) if mcp is not None else (), verl_tools)
    # a server without a 'tools' list names its tools only once started: then leave unknown names to it
    all_listed = mcp is None or all(server.tools is not None for server in mcp.enabled().values())
    seen = config_entries(model.tools, [*registry.tools, *external], strict=all_listed)
    tools = {}
    for name, entry in seen.items():
        if name not in external and name not in registry.tools:
            if not all_listed:
                continue
            unknown = UnknownNameError("tool", name, {*registry.tools, *external}, registry.hint())
            raise ConfigError(f"rlfactory.tools[{name}]: {unknown}")
        tool = bind_entry(registry, entry, external)  # what the worker does with the entry (no Ray is started)
        if tool is not None:
            tools[name] = tool
    tools.update(verl_tools)
    ToolManager(tools, model.tool_manager, {n: e for n, e in seen.items() if n in tools})


def _check_mcp(path: str) -> MCPConfig:
    """Load the file as the tool manager does and check what starting each stdio server needs."""
    from rlfactory_plugins.tools.mcp_config import load_mcp_config

    config = load_mcp_config(path)
    for name, server in config.enabled().items():
        where = f"rlfactory.mcp ({path}): server {name!r}"
        if server.command and shutil.which(server.command) is None and not Path(server.command).exists():
            raise ConfigError(
                f"{where}: command {server.command!r} is not on PATH and not a file; install it or fix 'command'"
            )
        if server.cwd and not Path(server.cwd).is_dir():
            raise ConfigError(f"{where}: cwd {server.cwd!r} is not a directory; create it or fix 'cwd'")
        if server.command and server.stderr not in ("inherit", "devnull") and not Path(server.stderr).parent.is_dir():
            raise ConfigError(
                f"{where}: stderr file {server.stderr!r} is in a folder that does not exist; "
                "create it, or use 'inherit' or 'devnull'"
            )
    return config


def listed_mcp_tools(config: MCPConfig) -> set[str]:
    """The names (with prefix) of the tools the enabled servers list in their ``tools`` key."""
    return {server.prefix + t for server in config.enabled().values() for t in (server.tools or ())}


# -- dotted keys ---------------------------------------------------------------------------------------
def get_key(cfg: Any, dotted: str) -> Any:
    """``cfg.a.b`` resolved (interpolations included), or None where a key is missing."""
    node = cfg
    for part in dotted.split("."):
        if node is None:
            return None
        try:
            node = node.get(part) if isinstance(node, Mapping) or hasattr(node, "get") else None
        except Exception:  # noqa: BLE001 - a config object (the adapter's DictConfig): an unresolvable interpolation
            return None
    return node
