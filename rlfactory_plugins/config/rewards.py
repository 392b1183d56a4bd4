"""Config of the composite reward (``rlfactory.rewards``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RewardEntry(BaseModel):
    """One weighted part of the composite reward. A bare string means weight 1."""

    model_config = ConfigDict(extra="forbid")

    name: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)
    fallback: float = Field(default=0.0, description="score used when this part fails (exception or timeout)")
    alias: str | None = Field(default=None, description="name of this part in logs (default: name)")
    timeout: float | None = Field(default=60.0, gt=0, description="seconds one score may take; null = no limit")

    @property
    def key(self) -> str:
        """The part's name in logs and results: the alias, else the reward name."""
        return self.alias or self.name
