"""Config of the multi-turn rollout (``rlfactory.rollout``). See docs/rollout.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rlfactory_plugins.config.branching import BranchingConfig
from rlfactory_plugins.config.recycle import RecycleConfig


class RolloutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(default=4, ge=1, description="assistant turns per trajectory")
    max_calls_per_turn: int = Field(default=4, ge=1, description="tool calls run per turn; extra ones get an error")
    max_response_tokens: int | None = Field(
        default=None, ge=1, description="assistant + observation tokens; default: actor_rollout_ref.rollout.response_length"
    )
    max_observation_tokens: int = Field(default=512, ge=8, description="per observation; longer ones are truncated")
    trajectory_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="wall-time budget per trajectory; when spent it ends with stop_reason=deadline, keeping its tokens",
    )
    straggler_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="per-step policy: once this fraction of a worker's trajectories of the step have finished, "
        "the rest get straggler_grace_s more seconds, then end with stop_reason=deadline",
    )
    straggler_grace_s: float = Field(default=10.0, ge=0, description="see straggler_fraction")
    repair_json: bool = Field(
        default=True, description="repair almost-JSON tool calls with json-repair (the call is flagged 'repaired')"
    )
    max_user_turns: int = Field(
        default=8,
        ge=0,
        description="environment (user) turns per trajectory (rows with user_turns or an environment); "
        "one more ends it with stop_reason=max_user_turns",
    )
    calls_in_think: bool = Field(
        default=False,
        description="run tool calls written inside the parser's reasoning block (<think>…</think> for hermes); "
        "by default they are drafts and do not run",
    )
    branching: BranchingConfig = Field(
        default_factory=BranchingConfig,
        description="ARPO-style branching at high-entropy turns after tool results (docs/agentic-rl.md)",
    )
    recycle: RecycleConfig = Field(
        default_factory=RecycleConfig,
        description="keep groups a step did not need running into later steps instead of dropping them "
        "(verl's colocate_async trainer; docs/recycling.md)",
    )
