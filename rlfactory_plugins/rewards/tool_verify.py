"""``tool_verify``: did the model's tool calls parse, succeed, stay in budget and not repeat?

With ``n`` calls, of which ``parsed`` parsed, ``ok`` succeeded, ``repeats`` repeated an
earlier call exactly (same tool, same arguments) and ``excess = max(0, n - max_calls)``::

    base  = (parse_weight * parsed/n + success_weight * ok/n) / (parse_weight + success_weight)
    score = clip(base - repeat_penalty * repeats - over_budget_penalty * excess, 0, 1)

With no calls the score is ``0`` when ``require_call`` else ``no_call_score``.
``per_turn[i]`` is the same formula over the calls of turn ``i`` (without the budget term).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from rlfactory_plugins.rewards.base import Reward, RewardOutput
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory


class ToolVerifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parse_weight: float = Field(default=0.5, ge=0)
    success_weight: float = Field(default=0.5, ge=0)
    max_calls: int | None = Field(default=None, ge=0, description="call budget per trajectory; null = unlimited")
    over_budget_penalty: float = Field(default=0.25, ge=0, description="subtracted per call over max_calls")
    repeat_penalty: float = Field(default=0.25, ge=0, description="subtracted per exact repeat of an earlier call")
    require_call: bool = False
    no_call_score: float = Field(default=1.0, ge=0, le=1, description="score without calls when not require_call")


def _call_key(call: ToolCallRecord) -> str | None:
    if call.parse_error is not None or call.name is None:
        return None
    return f"{call.name}:{json.dumps(call.arguments or {}, sort_keys=True, default=str)}"


def _base(calls: list[ToolCallRecord], opts: ToolVerifyOptions) -> float:
    n = len(calls)
    parsed = sum(c.parse_error is None for c in calls)
    ok = sum(c.ok for c in calls)
    total_weight = opts.parse_weight + opts.success_weight
    if total_weight == 0:
        return 1.0
    return (opts.parse_weight * parsed / n + opts.success_weight * ok / n) / total_weight


def _repeats(calls: list[ToolCallRecord], seen: set[str]) -> int:
    count = 0
    for call in calls:
        key = _call_key(call)
        if key is None:
            continue
        if key in seen:
            count += 1
        seen.add(key)
    return count


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


class ToolVerifyReward(Reward):
    """Scores the tool record of a trajectory in [0, 1]; see the module docstring."""

    Options = ToolVerifyOptions

    def __init__(self) -> None:
        super().__init__("tool_verify", "tool calls parsed, succeeded, within budget, not repeated (0..1)")

    async def ascore(self, trajectory: Trajectory, options: BaseModel | None) -> RewardOutput:
        opts = options if isinstance(options, ToolVerifyOptions) else ToolVerifyOptions()
        calls = trajectory.tool_calls
        n = len(calls)
        excess = max(0, n - opts.max_calls) if opts.max_calls is not None else 0
        repeats = _repeats(calls, set())
        info = {"calls": n, "parse_errors": sum(c.parse_error is not None for c in calls),
                "failed": sum(not c.ok for c in calls), "repeats": repeats, "over_budget": excess}
        if n == 0:
            return RewardOutput(score=0.0 if opts.require_call else opts.no_call_score, info=info)
        score = _clip(_base(calls, opts) - opts.repeat_penalty * repeats - opts.over_budget_penalty * excess)
        return RewardOutput(score=score, per_turn=self._per_turn(trajectory, opts), info=info)

    @staticmethod
    def _per_turn(trajectory: Trajectory, opts: ToolVerifyOptions) -> list[float]:
        seen: set[str] = set()
        out = []
        for turn in trajectory.turns:
            if not turn.tool_calls:
                out.append(1.0)
                continue
            repeats = _repeats(turn.tool_calls, seen)
            out.append(_clip(_base(turn.tool_calls, opts) - opts.repeat_penalty * repeats))
        return out
