"""Config of the ARPO-style branching rollout (``rlfactory.rollout.branching``). See docs/agentic-rl.md.

Off by default. On, each GRPO group of ``actor_rollout_ref.rollout.n`` samples starts ``global_samples``
trajectories; the others wait and are forked from a running trajectory right after a tool result when
the policy's entropy over the next turn's first ``entropy_tokens`` tokens exceeds that trajectory's
initial entropy by more than ``margin`` (:mod:`rlfactory_plugins.rollout.branching`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BranchingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="fork branches at high-entropy turns after tool results")
    global_samples: int = Field(
        default=2, ge=1,
        description="trajectories of a group started from the prompt (M); the other rollout.n - M are branches",
    )
    max_branches: int = Field(default=2, ge=1, description="branches forked at one high-entropy point (Z)")
    entropy_tokens: int = Field(
        default=8, ge=1, description="the entropy of a turn is measured over its first k generated tokens",
    )
    margin: float = Field(
        default=0.0,
        description="fork when a turn's entropy exceeds the trajectory's initial (first-turn) entropy by more "
        "than this, in nats per token; a large negative value forks at every tool result",
    )
