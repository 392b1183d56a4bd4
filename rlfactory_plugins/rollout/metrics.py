"""Per-trajectory statistics and their per-step aggregate (``rlfactory.metrics_file``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import get_args

from rlfactory_plugins.trajectory import StopReason, Trajectory

STOP_REASONS: tuple[str, ...] = get_args(StopReason)


def trajectory_stats(trajectory: Trajectory) -> dict[str, float]:
    """Numbers describing one trajectory (also put in its ``extra_fields``)."""
    calls = trajectory.tool_calls
    stats: dict[str, float] = {
        "turns": float(trajectory.num_turns),
        "calls": float(len(calls)),
        "calls_ok": float(sum(c.ok for c in calls)),
        "calls_repaired": float(sum(c.repaired for c in calls)),
        "observation_truncated": float(sum(t.observation_truncated for t in trajectory.turns)),
        "response_tokens": float(sum(t.response_tokens for t in trajectory.turns)),
        "observation_tokens": float(sum(t.observation_tokens for t in trajectory.turns)),
        "generate_s": sum(t.generate_s for t in trajectory.turns),
        "tools_s": sum(t.tools_s for t in trajectory.turns),
    }
    for kind, n in Counter(c.error_kind for c in calls if c.error_kind is not None).items():
        stats[f"errors/{kind}"] = float(n)
    # only when there are any, so a run without environments or stateful tools logs what it always did
    # (a key missing from some trajectories still averages over all of them in StepMetrics.pop)
    if trajectory.user_turns:
        stats["user_turns"] = float(trajectory.user_turns)
    if trajectory.tool_state:
        stats["sessions/exported"] = float(len(trajectory.tool_state))
    if trajectory.close_errors:
        stats["sessions/close_errors"] = float(len(trajectory.close_errors))
    if trajectory.branch is not None or trajectory.forks:  # the branching rollout (only when it branched)
        inherited = trajectory.turns[: trajectory.branch.turn] if trajectory.branch is not None else []
        stats["branch/branched"] = float(trajectory.branch is not None)
        stats["branch/prefix_tokens"] = float(trajectory.branch.prefix if trajectory.branch is not None else 0)
        stats["branch/calls_inherited"] = float(sum(len(t.tool_calls) for t in inherited))
        stats["branch/forks"] = float(sum(len(f.sessions) for f in trajectory.forks))
    return stats


class StepMetrics:
    """Accumulates finished trajectories per training step."""

    def __init__(self) -> None:
        self._sums: dict[int, Counter[str]] = defaultdict(Counter)
        self._counts: Counter[int] = Counter()

    def add(self, trajectory: Trajectory) -> None:
        step = trajectory.step or 0
        self._counts[step] += 1
        sums = self._sums[step]
        sums.update(trajectory_stats(trajectory))
        sums[f"stop_reason/{trajectory.stop_reason}"] += 1

    def steps(self) -> list[int]:
        return sorted(self._counts)

    def pop(self, step: int) -> dict[str, float]:
        """The aggregate of ``step`` (means per trajectory, stop reasons as fractions); forgets it."""
        n = self._counts.pop(step, 0)
        sums = self._sums.pop(step, Counter())
        if not n:
            return {}
        out: dict[str, float] = {"rollout/trajectories": float(n)}
        for key, total in sorted(sums.items()):
            if key.startswith("stop_reason/"):
                out[f"rollout/{key}"] = total / n
            else:
                out[f"rollout/{key}/mean"] = total / n
                out[f"rollout/{key}/total"] = float(total)
        for reason in STOP_REASONS:
            out.setdefault(f"rollout/stop_reason/{reason}", 0.0)
        return out
