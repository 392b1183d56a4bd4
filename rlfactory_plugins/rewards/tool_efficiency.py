"""Tool efficiency (OTC-style): a multiplier on a correctness score that decays with tool calls.

OTC (Optimal Tool Calls, arXiv 2504.14870) scores a trajectory ``r_tool * r_correct``; its PPO
form is ``r_tool = cos(m * pi / (2m + c))`` for ``m`` calls and a smoothing constant ``c``: 1 at no
call, falling towards 0. rlfactory counts from the fewest calls the task needs instead of from
zero, and never rewards an answer reached with fewer:

    m       = tool calls the trajectory made (every call the model wrote, run or not)
    need    = the row's ``extra_info[min_calls_field]``, else the option ``min_calls``
    optimal = max(optimal_calls, need)      (optimal_calls null: need)
    excess  = max(0, m - optimal)
    multiplier = 0                                   if m < need
               = cos(excess * pi / (2 * excess + c)) otherwise

With ``need = optimal = 0`` this is OTC-PPO's ``r_tool``. A multiplier, not a bonus: a wrong
answer scores 0 however few calls it made. Reward packs combine it with their own correctness
(``qa_otc`` in rlfactory-reward-qa).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rlfactory_plugins.errors import RLFactoryError
from rlfactory_plugins.trajectory import Trajectory


class EfficiencyError(RLFactoryError):
    """A data row's ``min_calls`` field is not a non-negative integer."""


class EfficiencyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_calls: int = Field(default=0, ge=0, description="calls a correct answer needs (a row's field overrides it)")
    optimal_calls: int | None = Field(
        default=None, ge=0, description="calls that still score 1 (never below the row's need); null = the need"
    )
    min_calls_field: str = Field(default="min_calls", description="the key of extra_info that gives a row's need")
    smoothing: float = Field(default=2.0, gt=0, description="OTC's c: larger decays more slowly per extra call")


def tool_calls(trajectory: Trajectory) -> int:
    """Every tool call the model wrote, parsed or not, run or skipped over the per-turn limit."""
    return sum(len(turn.tool_calls) for turn in trajectory.turns)


def required_calls(trajectory: Trajectory, opts: EfficiencyOptions) -> int:
    """The row's need (``extra_info[min_calls_field]``), else ``opts.min_calls``."""
    value: Any = (trajectory.extra_info or {}).get(opts.min_calls_field)
    if value is None:
        return opts.min_calls
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or int(value) != value:
        raise EfficiencyError(
            f"extra_info.{opts.min_calls_field}={value!r} in the data row: write a whole number of calls >= 0 "
            f"(or drop the field to use the option min_calls={opts.min_calls})"
        )
    return int(value)


def multiplier(calls: int, need: int, optimal: int, smoothing: float) -> float:
    """The multiplier of the module docstring (``optimal`` is raised to ``need`` if below it)."""
    if calls < need:
        return 0.0
    excess = max(0, calls - max(optimal, need))
    return math.cos(excess * math.pi / (2 * excess + smoothing))


def efficiency(trajectory: Trajectory, opts: EfficiencyOptions) -> tuple[float, dict[str, Any]]:
    """The trajectory's multiplier and what it was computed from (for the part's ``info``)."""
    calls, need = tool_calls(trajectory), required_calls(trajectory, opts)
    optimal = max(opts.optimal_calls if opts.optimal_calls is not None else need, need)
    value = multiplier(calls, need, optimal, opts.smoothing)
    return value, {"calls": calls, "min_calls": need, "optimal_calls": optimal, "multiplier": value}
