"""One training batch's metrics, for the trainer's own logger: reward parts, tools, stop reasons, turns.

:func:`batch_metrics` aggregates what every trajectory of the batch carries: its record (the
``Trajectory`` as dumped, ``model_dump(mode="json")``), its statistics
(:func:`~rlfactory_plugins.rollout.metrics.trajectory_stats`) and its reward parts (the composite
reward's ``reward_extra_info``). The verl adapter calls it on the step's whole batch (every
worker's trajectories), so the numbers are those of what the step trained on. Names (stable,
documented in docs/rollout.md):

- ``reward/total/mean``; per part ``reward/<part>/mean`` and ``reward/<part>/failed`` (the share of
  trajectories whose part fell back to its ``on_error`` score);
- ``tool/<name>/calls`` (count), ``ok_rate``, ``errors/<kind>`` (count), ``latency_p50_s``,
  ``latency_p90_s``, ``cache_hit_rate``; ``tool/all/...`` over every tool; a call with no
  parsable name counts under ``tool/_unparsed``, a call of a name no tool has (or outside the
  row's tool set) under ``tool/_unknown``; the calls counted are the calls run: the turns a branch
  inherited from its parent (``rlfactory.rollout.branching``) count in the parent only;
- ``rollout/<stat>/mean`` for every per-trajectory statistic (turns, calls, calls_ok,
  response_tokens, observation_tokens, user_turns, sessions/exported, branch/branched, branch/forks,
  branch/calls_inherited, ...), ``rollout/trajectories``
  and ``rollout/stop_reason/<reason>`` (fractions; every reason present, 0.0 when none).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlfactory_plugins.rollout.metrics import STOP_REASONS
from rlfactory_plugins.tools.base import ToolStatus
from rlfactory_plugins.trajectory import ToolCallRecord

UNPARSED = "_unparsed"
#: calls of names no tool has (the model's inventions): one bucket, so they cannot flood the logger with keys
UNKNOWN = "_unknown"
ALL_TOOLS = "all"


@dataclass
class _ToolCalls:
    calls: int = 0
    ok: int = 0
    cached: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def add(self, call: ToolCallRecord) -> None:
        self.calls += 1
        kind = call.error_kind
        if kind is None:
            self.ok += 1
        else:
            self.errors[kind] += 1
        if call.result is not None and call.result.cached:
            self.cached += 1
        elif call.result is not None:
            self.latencies.append(call.result.latency_s)

    def flat(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}/calls": float(self.calls), f"{prefix}/ok_rate": self.ok / self.calls,
               f"{prefix}/cache_hit_rate": self.cached / self.calls}
        out.update({f"{prefix}/errors/{kind}": float(n) for kind, n in sorted(self.errors.items())})
        if self.latencies:
            p50, p90 = np.percentile(np.asarray(self.latencies, dtype=float), [50, 90])
            out[f"{prefix}/latency_p50_s"], out[f"{prefix}/latency_p90_s"] = float(p50), float(p90)
        return out


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def batch_metrics(
    trajectories: Iterable[Mapping[str, Any] | None],
    stats: Iterable[Mapping[str, float] | None],
    reward_infos: Iterable[Mapping[str, Any] | None],
) -> dict[str, float]:
    """The batch's metrics (see the module docstring); the three iterables run over the same trajectories.

    A trajectory without a record (another agent loop's) adds nothing to the tool and rollout
    metrics; one without reward info adds nothing to the reward metrics.
    """
    out: dict[str, float] = {}
    out.update(_reward_metrics([r for r in reward_infos if r]))
    records = [t for t in trajectories if t]
    out.update(_tool_metrics(records))
    out.update(_rollout_metrics(records, [s for s in stats if s]))
    return out


def _reward_metrics(infos: list[Mapping[str, Any]]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for info in infos:
        for key, value in info.items():
            if not key.startswith("reward/") or isinstance(value, str) or value is None:
                continue  # reward/per_turn is a JSON string; turn means may be None
            values[key].append(float(value))
    out: dict[str, float] = {}
    for key, vals in values.items():
        mean = _mean(vals)
        if mean is None:
            continue
        # reward/<part> -> reward/<part>/mean; reward/<part>/failed and /turn_mean stay as they are (means)
        name = key if key.endswith(("/failed", "/turn_mean", "/deadline_override")) else f"{key}/mean"
        out[name] = mean
    return out


def _tool_metrics(records: list[Mapping[str, Any]]) -> dict[str, float]:
    per_tool: dict[str, _ToolCalls] = defaultdict(_ToolCalls)
    every = _ToolCalls()
    for record in records:
        # calls run: a branch's first turns are its parent's (rlfactory.rollout.branching), counted there
        inherited = int((record.get("branch") or {}).get("turn", 0))
        for turn in (record.get("turns") or [])[inherited:]:
            for raw in turn.get("tool_calls") or ():
                call = ToolCallRecord.model_validate(raw)  # the dumped record: its own ok / error_kind
                per_tool[_bucket(call)].add(call)
                every.add(call)
    out: dict[str, float] = {}
    for name, calls in sorted(per_tool.items()):
        out.update(calls.flat(f"tool/{name}"))
    if every.calls:
        out.update(every.flat(f"tool/{ALL_TOOLS}"))
    return out


def _bucket(call: ToolCallRecord) -> str:
    if not call.name:
        return UNPARSED
    if call.result is not None and call.result.status is ToolStatus.unknown_tool:
        return UNKNOWN
    return call.name


def _rollout_metrics(records: list[Mapping[str, Any]], stats: list[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    if stats:
        sums: Counter[str] = Counter()
        for s in stats:
            sums.update({k: float(v) for k, v in s.items()})
        out.update({f"rollout/{key}/mean": total / len(stats) for key, total in sorted(sums.items())})
    if records:
        reasons = Counter(str(r.get("stop_reason")) for r in records)
        out["rollout/trajectories"] = float(len(records))
        for reason in STOP_REASONS:
            out[f"rollout/stop_reason/{reason}"] = reasons.get(reason, 0) / len(records)
    return out
