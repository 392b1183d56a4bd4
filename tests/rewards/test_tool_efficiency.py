"""rlfactory_plugins.rewards.tool_efficiency: the OTC-style multiplier, the call count and a row's need."""

from __future__ import annotations

import math

import pytest

from rlfactory_plugins.rewards.tool_efficiency import (
    EfficiencyError, EfficiencyOptions, efficiency, multiplier, required_calls, tool_calls,
)
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord


@pytest.mark.parametrize(
    ("calls", "need", "optimal", "c", "expected"),
    [
        (0, 0, 0, 2.0, 1.0),                        # OTC-PPO at m = 0
        (1, 0, 0, 2.0, math.cos(math.pi / 4)),      # cos(1 * pi / (2 + 2))
        (3, 0, 0, 1.0, math.cos(3 * math.pi / 7)),  # cos(3 * pi / (6 + 1))
        (0, 1, 1, 2.0, 0.0),                        # fewer calls than the task needs: nothing
        (2, 1, 1, 2.0, math.cos(math.pi / 4)),      # one call beyond the need
        (2, 1, 0, 2.0, math.cos(math.pi / 4)),      # an optimum below the need is raised to it
        (3, 1, 3, 2.0, 1.0),                        # within the optimum
    ],
)
def test_multiplier(calls, need, optimal, c, expected):
    assert multiplier(calls, need, optimal, c) == pytest.approx(expected)


def test_the_multiplier_falls_with_every_call_beyond_the_optimum_and_stays_positive():
    values = [multiplier(m, 1, 1, 2.0) for m in range(1, 30)]
    assert values[0] == 1.0 and all(a > b > 0 for a, b in zip(values, values[1:]))


def test_every_written_call_counts_and_the_row_sets_the_need():
    turns = [TurnRecord(index=0, tool_calls=[ToolCallRecord(turn=0, name="search"),
                                             ToolCallRecord(turn=0, parse_error="bad json")]),
             TurnRecord(index=1, tool_calls=[ToolCallRecord(turn=1, name="search", over_limit=True)]),
             TurnRecord(index=2)]
    t = Trajectory(turns=turns, extra_info={"min_calls": 2.0})
    assert tool_calls(t) == 3
    opts = EfficiencyOptions(min_calls=5)
    assert required_calls(t, opts) == 2 and required_calls(Trajectory(), opts) == 5
    value, info = efficiency(t, EfficiencyOptions(optimal_calls=1))
    assert info == {"calls": 3, "min_calls": 2, "optimal_calls": 2, "multiplier": value}
    assert value == pytest.approx(math.cos(math.pi / 4))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_a_row_need_that_is_not_a_whole_number_is_refused(bad):
    with pytest.raises(EfficiencyError, match="extra_info.min_calls="):
        required_calls(Trajectory(extra_info={"min_calls": bad}), EfficiencyOptions())
