"""The batch metrics the verl adapter adds to each training step's metrics (rollout/batch_metrics.py)."""

from __future__ import annotations

import pytest

from rlfactory_plugins.rollout.batch_metrics import batch_metrics
from rlfactory_plugins.rollout.metrics import STOP_REASONS, trajectory_stats
from rlfactory_plugins.tools.base import ToolResult, ToolStatus
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord


def traj(stop: str, *calls: ToolCallRecord) -> Trajectory:
    return Trajectory(stop_reason=stop, turns=[TurnRecord(index=0, response_tokens=10, observation_tokens=4,
                                                         tool_calls=list(calls))])


def call(name: str | None, status: ToolStatus | None = ToolStatus.ok, latency: float = 0.1, cached: bool = False,
         parse_error: str | None = None) -> ToolCallRecord:
    result = None if status is None else ToolResult(name=name or "", status=status, latency_s=latency, cached=cached)
    return ToolCallRecord(turn=0, name=name, parse_error=parse_error, result=result)


def metrics_of(trajs: list[Trajectory], rewards: list[dict]) -> dict[str, float]:
    return batch_metrics([t.model_dump(mode="json") for t in trajs], [trajectory_stats(t) for t in trajs], rewards)


def test_tools_stop_reasons_and_rollout_means() -> None:
    trajs = [
        traj("answer", call("search", latency=0.1), call("search", latency=0.3), call("calc", ToolStatus.timeout, 5.0)),
        traj("max_turns", call("search", cached=True), call(None, None, parse_error="bad json")),
        traj("answer", call("made_up", ToolStatus.unknown_tool, 0.0)),
        traj("deadline"),
    ]
    m = metrics_of(trajs, [])
    assert m["tool/search/calls"] == 3 and m["tool/search/ok_rate"] == 1.0
    assert m["tool/search/cache_hit_rate"] == pytest.approx(1 / 3)
    assert m["tool/search/latency_p50_s"] == pytest.approx(0.2)  # the cached call's latency is not a latency
    assert m["tool/calc/errors/timeout"] == 1 and m["tool/calc/ok_rate"] == 0.0
    assert m["tool/_unparsed/errors/parse_error"] == 1
    assert m["tool/_unknown/errors/unknown_tool"] == 1 and "tool/made_up/calls" not in m
    assert m["tool/all/calls"] == 6 and m["tool/all/ok_rate"] == pytest.approx(3 / 6)
    assert m["rollout/trajectories"] == 4
    assert m["rollout/stop_reason/answer"] == 0.5 and m["rollout/stop_reason/deadline"] == 0.25
    assert {f"rollout/stop_reason/{r}" for r in STOP_REASONS} <= set(m)
    assert m["rollout/calls/mean"] == pytest.approx(6 / 4) and m["rollout/response_tokens/mean"] == 10


def test_reward_parts_are_batch_means() -> None:
    infos = [
        {"reward/total": 1.5, "reward/qa_em": 1.0, "reward/qa_em/failed": 0.0, "reward/qa_em/turn_mean": None,
         "reward/per_turn": "[1.0]", "reward/deadline_override": 0.0},
        {"reward/total": 0.5, "reward/qa_em": 0.0, "reward/qa_em/failed": 1.0, "reward/qa_em/turn_mean": None,
         "reward/per_turn": "[]", "reward/deadline_override": 1.0},
    ]
    m = metrics_of([traj("answer"), traj("answer")], infos)
    assert m["reward/total/mean"] == 1.0 and m["reward/qa_em/mean"] == 0.5
    assert m["reward/qa_em/failed"] == 0.5 and m["reward/deadline_override"] == 0.5
    assert "reward/qa_em/turn_mean" not in m and not any("per_turn" in k for k in m)


def test_trajectories_of_other_loops_add_nothing() -> None:
    assert batch_metrics([None, {}], [None], [None]) == {}
