"""One JSON line per scenario, from the drivers' measured runs of the same workload."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.rollout_bench.outcome import DriverRun, Status
from benchmarks.rollout_bench.workload import Workload

DRIVERS = ("rlfactory", "verl_tool_agent", "verl_tool_agent_timeout", "turn_sync")


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None


def scenario_line(workload: Workload, runs: dict[str, DriverRun]) -> dict[str, Any]:
    """``{"scenario", "n", "wall_s", "bound_s", "efficiency", "completed", "failed", ...}``;
    a driver missing from ``runs`` (not runnable here) reports null everywhere."""
    bound = workload.lower_bound_s()
    n = len(workload.plans)

    def per_driver(fn) -> dict[str, Any]:
        return {name: (fn(runs[name]) if name in runs else None) for name in DRIVERS}

    def traj_times(run: DriverRun) -> list[float]:
        return sorted(o.done_s for o in run.outcomes)

    wall = per_driver(lambda r: round(r.wall_s, 3))
    line: dict[str, Any] = {
        "scenario": workload.scenario.name,
        "profile": workload.scenario.profile,
        "n": n,
        "wall_s": wall,
        "bound_s": round(bound, 3),
        "efficiency": per_driver(lambda r: round(bound / r.wall_s, 3) if r.wall_s > 0 else None),
        "completed": per_driver(lambda r: r.count(Status.completed)),
        "failed": per_driver(lambda r: r.count(Status.failed, Status.stuck)),
    }
    a, b, bt, c = (runs.get(name) for name in DRIVERS)
    line["speedup"] = {
        "vs_verl": _ratio(b.wall_s, a.wall_s) if a and b else None,
        "vs_verl_timeout": _ratio(bt.wall_s, a.wall_s) if a and bt else None,
        "vs_turn_sync": _ratio(c.wall_s, a.wall_s) if a and c else None,
    }
    line["stuck"] = per_driver(lambda r: r.count(Status.stuck))
    line["cut"] = per_driver(lambda r: sum(o.cut for o in r.outcomes))
    line["answered"] = per_driver(lambda r: sum(o.answered for o in r.outcomes))
    line["median_traj_s"] = per_driver(lambda r: round(statistics.median(traj_times(r)), 3))
    line["p90_traj_s"] = per_driver(lambda r: round(_quantile(traj_times(r), 0.9), 3))
    line["cpu_s"] = per_driver(lambda r: round(r.cpu_s, 3))
    # driver CPU (event loop + its executor threads) per assistant turn of the batch
    turns = sum(len(p.turns) for p in workload.plans)
    line["cpu_ms_per_turn"] = per_driver(lambda r: round(1000 * r.cpu_s / turns, 3))
    line["instantiate_s"] = per_driver(lambda r: round(r.instantiate_s, 3))
    line["loops_built"] = per_driver(lambda r: r.loops_built)
    line["errors"] = per_driver(lambda r: r.first_error)
    line["tool_turns"] = workload.tool_calls  # tool calls the script makes (one per tool turn)
    line["tool_calls"] = per_driver(lambda r: r.tool_calls)  # calls the backend saw start
    stateful = workload.scenario.stateful
    for key in ("sessions_opened", "sessions_closed", "state_errors", "state_lost"):
        line[key] = per_driver(lambda r, key=key: getattr(r, key) if stateful else None)
    return line
