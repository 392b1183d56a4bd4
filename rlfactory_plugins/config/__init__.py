"""The ``rlfactory:`` config section, validated by pydantic before anything starts.

``validate_section(mapping)`` returns an :class:`RLFactoryConfig` or raises
:class:`~rlfactory_plugins.errors.ConfigError` naming the bad key and what is allowed.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlfactory_plugins.config.rewards import RewardEntry
from rlfactory_plugins.config.rollout import RolloutConfig
from rlfactory_plugins.config.tools import ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import ConfigError

__all__ = [
    "RLFactoryConfig",
    "RewardEntry",
    "RolloutConfig",
    "ToolEntry",
    "ToolManagerConfig",
    "validate_section",
    "check_names",
    "allowed_keys",
]


def _entries(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str | dict):
        value = [value]
    return [{"name": v} if isinstance(v, str) else v for v in value]


class RLFactoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tools: list[ToolEntry] = Field(default_factory=list)
    mcp: str | None = Field(default=None, description="path to an mcpServers JSON/YAML file")
    parser: str = "hermes"
    rewards: list[RewardEntry] = Field(default_factory=list)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    tool_manager: ToolManagerConfig = Field(default_factory=ToolManagerConfig)
    trajectory_dir: str | None = Field(default=None, description="dump every trajectory as JSONL here")
    metrics_file: str | None = Field(default=None, description="append one JSON line of metrics per step here")
    reward_on_deadline: float | None = Field(
        default=None,
        description="score of a trajectory cut by the straggler deadline (stop_reason 'deadline'); null = score it normally",
    )

    _norm_tools = field_validator("tools", mode="before")(lambda cls, v: _entries(v))
    _norm_rewards = field_validator("rewards", mode="before")(lambda cls, v: _entries(v))


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Walk the model along ``loc`` and list the keys allowed at that level."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        nested = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return []
        current = nested[0]
    return sorted(getattr(current, "model_fields", {}))


def format_validation_error(e: pydantic.ValidationError, root: str = "rlfactory") -> str:
    lines = []
    for err in e.errors():
        loc = err["loc"]
        key = ".".join([root, *(str(p) for p in loc)])
        if err["type"] == "extra_forbidden":
            allowed = allowed_keys(RLFactoryConfig, loc)
            lines.append(f"{key}: unknown key (allowed keys: {', '.join(allowed)})")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return "invalid rlfactory config:\n  " + "\n  ".join(lines)


def validate_section(section: Any) -> RLFactoryConfig:
    """Validate a plain mapping (``OmegaConf.to_container(cfg.rlfactory, resolve=True)``)."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"rlfactory: expected a mapping, got {type(section).__name__}")
    try:
        return RLFactoryConfig.model_validate(section)
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def check_names(cfg: RLFactoryConfig) -> None:
    """Check that every tool, reward and the parser named in ``cfg`` is installed."""
    from rlfactory_plugins.plugins import get_registry

    registry = get_registry()
    registry.parser(cfg.parser)
    for entry in cfg.rewards:
        registry.reward(entry.name).parse_options(entry.options)
    if cfg.mcp:  # MCP servers name their tools only once started: ToolManager.from_config checks those
        from rlfactory_plugins.tools.mcp_config import load_mcp_config

        load_mcp_config(cfg.mcp)
    for entry in cfg.tools:
        if cfg.mcp and entry.name not in registry.tools:
            continue
        registry.tool(entry.name).configure(entry.options)
