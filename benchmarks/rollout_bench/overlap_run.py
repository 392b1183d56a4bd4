"""Run the ``train_overlap`` scenario: measure the trainer's step (one no-fault batch), then every
mode of :mod:`.overlap` with rlfactory's loop and verl's ``ToolAgentLoop`` over the same long-tail
workload, and report one JSON line."""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.rollout_bench.agent_loops import LoopRunner, run_agent_loop
from benchmarks.rollout_bench.drivers import build_runtime, rlfactory_cut
from benchmarks.rollout_bench.outcome import Status
from benchmarks.rollout_bench.overlap import MODES, ModeRun, OverlapPlan, Pool, run_mode
from benchmarks.rollout_bench.scenarios import Scenario
from benchmarks.rollout_bench.server import LatencyModelServer
from benchmarks.rollout_bench.tools import BACKEND, verl_tool_for
from benchmarks.rollout_bench.verl_config import compose
from benchmarks.rollout_bench.workload import Workload

LOOPS = ("rlfactory", "verl_tool_agent")
#: the batch size the other scenarios' ``n`` (and the profiles' slots) are given for
REFERENCE_N = 256


def overlap_scenario(scenario: Scenario, plan: OverlapPlan) -> Scenario:
    """The scenario at the plan's batch size, the server's slots scaled with it (the same load per slot
    as the profile's at ``REFERENCE_N``), durations times the plan's ``time_scale``, with trajectories
    enough for every mode."""
    slots = max(1, round(scenario.server.slots * plan.batch / REFERENCE_N))
    n = plan.group_size * max(plan.groups_needed(m) for m in MODES)
    return replace(scenario, n=n, server=replace(scenario.server, slots=slots)).scaled(plan.time_scale)


async def measure_train_s(scenario: Scenario, plan: OverlapPlan, model_dir: Path, tokenizer: Any) -> float:
    """The trainer's seconds per step: rlfactory's wall for one no-fault batch (tools at sigma 1) on
    the same server."""
    from rlfactory_plugins.rollout.runtime import close_runtimes

    no_faults = replace(scenario, name="train_overlap_T", n=plan.batch, tool_sigma=1.0, train_overlap=False)
    workload = Workload(no_faults, tokenizer)
    config = compose(no_faults, model_dir)
    server = LatencyModelServer(workload, tokenizer)
    BACKEND.workload = workload
    BACKEND.reset()
    await build_runtime(config, tokenizer)
    run = await run_agent_loop("rlfactory", "rlfactory_agent", config, workload, server, tokenizer, [],
                               is_cut=rlfactory_cut, worker="rlfactory")
    await close_runtimes()
    return run.wall_s


async def run_loop_mode(
    loop: str, mode: str, plan: OverlapPlan, train_s: float, workload: Workload, config: Any,
    server: LatencyModelServer, tokenizer: Any,
) -> ModeRun:
    from rlfactory_plugins.rollout.runtime import close_runtimes

    server.reset(pausable=True)
    BACKEND.reset()
    gc.collect()
    if loop == "rlfactory":
        await build_runtime(config, tokenizer)
        runner = LoopRunner("rlfactory_agent", config, workload, server, tokenizer, [], worker="rlfactory",
                            is_cut=rlfactory_cut)
    else:
        tools = [verl_tool_for(workload.scenario.tool_name)]
        runner = LoopRunner("tool_agent", config, workload, server, tokenizer, tools)
    start = time.perf_counter()
    pool = Pool(lambda i: runner.run_one(i, start), server, plan.group_size)
    wall, step_end, staleness, trained = await run_mode(mode, plan, pool, train_s)
    in_flight = await pool.close()
    if loop == "rlfactory":
        await close_runtimes()
    trajectories = [i for g in trained for i in range(g * plan.group_size, (g + 1) * plan.group_size)]
    truncated = 0
    for i in trajectories:
        outcome, output = pool.results[i]
        runner.judge(outcome, output)
        truncated += outcome.status is Status.completed and (not outcome.answered or outcome.cut)
    return ModeRun(mode, loop, wall, len(trajectories), step_end, staleness, dropped=pool.dropped, truncated=truncated,
                   in_flight_at_end=in_flight, started=pool.next_group * plan.group_size, server_busy_s=server.busy_s)


def _limit_vs_sync(mode: str, sync: ModeRun | None, plan: OverlapPlan, train_s: float, slots: int) -> float | None:
    """The most a mode can gain over this loop's sync run, given the server's work ``W`` per batch
    (sync's busy slot-seconds / slots / steps) and the trainer's ``T`` (benchmarks/README.md):
    colocated recycling cannot generate while it trains, so a step takes at least ``W + T``; fully-async
    after the same first rollout as sync's trains back to back, a step taking ``max(W, T + sync)``."""
    if sync is None or not sync.step_end_s:
        return None
    work = sync.server_busy_s / slots / plan.steps
    if mode == "sync":
        limit = sync.wall_s
    elif mode == "recycle":
        limit = plan.steps * (work + train_s)
    else:
        step = train_s * (1 + plan.sync_fraction)
        limit = (sync.step_end_s[0] - train_s) + step + (plan.steps - 1) * max(work, step)
    return round(sync.wall_s / limit, 3)


def overlap_line(scenario: Scenario, plan: OverlapPlan, train_s: float, runs: dict[tuple[str, str], ModeRun]) -> dict:
    def per(fn) -> dict:
        return {mode: {loop: fn(runs[mode, loop]) for loop in LOOPS if (mode, loop) in runs} for mode in MODES}

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    rate = per(lambda r: round(r.trained_per_s, 3))
    slots = scenario.server.slots
    paused = {"sync": plan.steps * train_s, "recycle": plan.steps * train_s,
              "async": plan.steps * plan.sync_fraction * train_s}
    steady = per(lambda r: None if r.steady_per_s is None else round(r.steady_per_s, 3))
    return {
        "scenario": scenario.name,
        "profile": scenario.profile,
        "batch": plan.batch,
        "group_size": plan.group_size,
        "steps": plan.steps,
        "slots": scenario.server.slots,
        "time_scale": plan.time_scale,
        "train_s": round(train_s, 3),
        "wall_s": per(lambda r: round(r.wall_s, 3)),
        "trained": per(lambda r: r.trained),
        "trained_per_s": rate,
        "steady_trained_per_s": steady,
        "vs_sync": {m: {lp: ratio(rate[m].get(lp), rate["sync"].get(lp)) for lp in LOOPS} for m in MODES},
        "steady_vs_sync": {m: {lp: ratio(steady[m].get(lp), steady["sync"].get(lp)) for lp in LOOPS} for m in MODES},
        "rlfactory_vs_verl": {m: ratio(rate[m].get("rlfactory"), rate[m].get("verl_tool_agent")) for m in MODES},
        "dropped": per(lambda r: r.dropped),
        "truncated": per(lambda r: r.truncated),
        "mean_staleness": per(lambda r: round(r.mean_staleness, 3)),
        "max_staleness": per(lambda r: max(r.staleness, default=0)),
        "in_flight_at_end": per(lambda r: r.in_flight_at_end),
        "started": per(lambda r: r.started),
        "server_busy": per(lambda r: round(r.server_busy_s / (r.wall_s * slots), 3)),
        "server_busy_unpaused": per(lambda r: round(r.server_busy_s / ((r.wall_s - paused[r.mode]) * slots), 3)),
        "limit_vs_sync": {m: {lp: _limit_vs_sync(m, runs.get(("sync", lp)), plan, train_s, slots) for lp in LOOPS}
                          for m in MODES},
        "step_end_s": per(lambda r: [round(t, 2) for t in r.step_end_s]),
    }


async def run_train_overlap(
    scenario: Scenario, model_dir: Path, tokenizer: Any, drivers: tuple[str, ...], plan: OverlapPlan = OverlapPlan(),
) -> dict:
    scenario = overlap_scenario(scenario, plan)
    train_s = await measure_train_s(scenario, plan, model_dir, tokenizer)
    workload = Workload(scenario, tokenizer)
    config = compose(scenario, model_dir)
    server = LatencyModelServer(workload, tokenizer)
    BACKEND.workload = workload
    runs: dict[tuple[str, str], ModeRun] = {}
    for mode in MODES:
        for loop in (lp for lp in LOOPS if lp in drivers):
            runs[mode, loop] = await run_loop_mode(loop, mode, plan, train_s, workload, config, server, tokenizer)
    return overlap_line(scenario, plan, train_s, runs)
