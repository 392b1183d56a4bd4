"""The ``rlfactory:`` config section, validated by pydantic before anything starts.

``validate_section(mapping)`` returns an :class:`RLFactoryConfig` or raises
:class:`~rlfactory_plugins.errors.ConfigError` naming the bad key and what is allowed.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlfactory_plugins.config.credit import CreditConfig
from rlfactory_plugins.config.messages import allowed_keys, format_validation_error
from rlfactory_plugins.config.rewards import RewardEntry
from rlfactory_plugins.config.rollout import RolloutConfig
from rlfactory_plugins.config.tools import ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import ConfigError

__all__ = [
    "CreditConfig",
    "RLFactoryConfig",
    "RewardEntry",
    "RolloutConfig",
    "ToolEntry",
    "ToolManagerConfig",
    "validate_section",
    "check_names",
    "allowed_keys",
    "format_validation_error",
]


def _entries(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list | tuple):  # left to pydantic, which names the key and the type
        return value
    return [{"name": v} if isinstance(v, str) else v for v in value]


class RLFactoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tools: list[ToolEntry] = Field(default_factory=list)
    mcp: str | None = Field(default=None, description="path to an mcpServers JSON/YAML file")
    parser: str = "hermes"
    rewards: list[RewardEntry] = Field(default_factory=list)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    tool_manager: ToolManagerConfig = Field(default_factory=ToolManagerConfig)
    credit: CreditConfig = Field(default_factory=CreditConfig)
    trajectory_dir: str | None = Field(default=None, description="dump every trajectory as JSONL here")
    metrics_file: str | None = Field(default=None, description="append one JSON line of metrics per step here")
    log_samples: int = Field(
        default=4, ge=0, le=256,
        description="sample trajectories per step for the trainer's logger (a wandb Table; JSON lines next to "
        "verl's file logger); 0 = none",
    )
    log_samples_every: int = Field(default=1, ge=1, description="log the samples every N training steps")
    reward_on_deadline: float | None = Field(
        default=None,
        description="score of a trajectory cut by the straggler deadline (stop_reason 'deadline'); null = score it normally",
    )

    _norm_tools = field_validator("tools", mode="before")(lambda cls, v: _entries(v))
    _norm_rewards = field_validator("rewards", mode="before")(lambda cls, v: _entries(v))


def validate_section(section: Any) -> RLFactoryConfig:
    """Validate a plain mapping (``OmegaConf.to_container(cfg.rlfactory, resolve=True)``)."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"rlfactory: expected a mapping, got {type(section).__name__}")
    try:
        return RLFactoryConfig.model_validate(section)
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, "rlfactory", RLFactoryConfig, _named(section))) from None


def _named(section: dict[str, Any]) -> dict[str, Any]:
    """``section`` with tools/rewards in their long form, so error paths can say ``tools[python]``."""
    return {**section, **{key: _entries(section[key]) for key in ("tools", "rewards") if key in section}}


def check_names(cfg: RLFactoryConfig) -> None:
    """Check the parser, every tool and reward (names and options) and the MCP file of ``cfg``.

    The registry-side half of :func:`rlfactory_plugins.config.check.check_config`; see there.
    """
    from rlfactory_plugins.config.check import check_plugins

    check_plugins(cfg)
