"""Run the three drivers over one scenario's workload, one after the other, same event loop."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

from benchmarks.rollout_bench.agent_loops import run_agent_loop
from benchmarks.rollout_bench.outcome import DriverRun
from benchmarks.rollout_bench.scenarios import Scenario
from benchmarks.rollout_bench.server import LatencyModelServer
from benchmarks.rollout_bench.tools import BACKEND, verl_tool_for
from benchmarks.rollout_bench.turn_sync import run_turn_sync
from benchmarks.rollout_bench.verl_config import compose
from benchmarks.rollout_bench.workload import Workload


def rlfactory_cut(output: AgentLoopOutput) -> bool:
    return output.extra_fields.get("rlfactory_trajectory", {}).get("stop_reason") == "deadline"


#: drivers whose run does not depend on rlfactory's straggler policy
POLICY_FREE = ("verl_tool_agent", "verl_tool_agent_timeout", "turn_sync")
#: verl's ToolAgentLoop with the same per-call tool timeout as rlfactory's (only where the scenario asks)
VERL_TIMEOUT = "verl_tool_agent_timeout"


async def build_runtime(config: Any, tokenizer: Any) -> None:
    """rlfactory's per-process runtime (tool manager, parser) outlives training steps: built untimed,
    as verl's worker builds its tools before the step."""
    from rlfactory_plugins.rollout.runtime import get_runtime
    from rlfactory_plugins.verl.section import section_config

    await get_runtime(section_config(config.rlfactory), tokenizer, config.data.get("apply_chat_template_kwargs", {}))


def drivers_for(scenario: Scenario, drivers: tuple[str, ...]) -> tuple[str, ...]:
    """``drivers`` with verl's like-for-like timeout run after verl's own where the scenario has one."""
    out = [d for d in drivers if d != VERL_TIMEOUT]
    if scenario.verl_timeout_run and "verl_tool_agent" in out:
        out.insert(out.index("verl_tool_agent") + 1, VERL_TIMEOUT)
    return tuple(out)


async def run_scenario(
    scenario: Scenario,
    model_dir: Path,
    tokenizer: Any,
    drivers: tuple[str, ...],
    reuse: dict[str, DriverRun] | None = None,
) -> tuple[Workload, dict[str, DriverRun]]:
    """Run ``drivers`` in order; a driver found in ``reuse`` (a run of the same workload) is not rerun."""
    from rlfactory_plugins.rollout.runtime import close_runtimes

    workload = Workload(scenario, tokenizer)
    config = compose(scenario, model_dir)
    server = LatencyModelServer(workload, tokenizer)
    BACKEND.workload = workload
    runs: dict[str, DriverRun] = {}
    for name in drivers_for(scenario, drivers):
        if reuse and name in reuse:
            runs[name] = reuse[name]
            continue
        server.reset()
        BACKEND.reset()
        gc.collect()
        if name == "rlfactory":
            await build_runtime(config, tokenizer)
            runs[name] = await run_agent_loop(
                name, "rlfactory_agent", config, workload, server, tokenizer, [],
                wall_budget_s=scenario.wall_budget_s, is_cut=rlfactory_cut, worker="rlfactory",
            )
            await close_runtimes()  # the next scenario's tool manager has other limits
        elif name == "verl_tool_agent":
            runs[name] = await run_agent_loop(
                name, "tool_agent", config, workload, server, tokenizer, [verl_tool_for(scenario.tool_name, BACKEND)],
                wall_budget_s=scenario.wall_budget_s,
            )
        elif name == VERL_TIMEOUT:
            tool = verl_tool_for(scenario.tool_name, BACKEND, timeout_s=scenario.tool_timeout_s)
            runs[name] = await run_agent_loop(
                name, "tool_agent", config, workload, server, tokenizer, [tool], wall_budget_s=scenario.wall_budget_s,
            )
        elif name == "turn_sync":
            runs[name] = await run_turn_sync(workload, server, tokenizer, BACKEND, tool_timeout_s=scenario.tool_timeout_s)
        else:
            raise ValueError(f"unknown driver {name!r} (known: rlfactory, verl_tool_agent, turn_sync)")
        runs[name] = dataclasses.replace(runs[name], **dataclasses.asdict(BACKEND.counts))
    return workload, runs
