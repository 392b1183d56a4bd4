"""Config of rlfactory's advantage estimators (``rlfactory.credit``). See docs/agentic-rl.md.

The estimators run in verl's trainer, which hands them ``algorithm`` only; under verl's V1
trainers rlfactory's advantage step hands them this section
(:mod:`rlfactory_plugins.verl.advantage_context`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CreditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turn_weight: float = Field(
        default=1.0, ge=0,
        description="rlfactory_turn_grpo: weight of the normalised per-turn reward-to-go added to the outcome "
        "advantage (0 = plain GRPO)",
    )
    epsilon: float = Field(default=1e-6, gt=0, description="added to every group standard deviation before dividing")
