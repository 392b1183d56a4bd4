"""Rollout benchmark: rlfactory's agent loop vs verl's ToolAgentLoop vs a turn-synchronous loop.

The same N scripted multi-turn tool-calling trajectories (real token ids of a real
tokenizer, tool latencies pre-sampled from a lognormal with hangs and failures) are rolled
out by each driver against a latency-modelled LLM server with a limited number of batch
slots, on CPU. One JSON line per scenario on stdout::

    {"scenario", "n", "wall_s": {...}, "bound_s", "efficiency": {...}, "completed": {...},
     "failed": {...}, "speedup": {"vs_verl", "vs_turn_sync"}, "median_traj_s", "p90_traj_s", "cut", ...}

``bound_s`` is the critical-path lower bound, ``efficiency`` = bound / wall, and
``speedup.vs_X`` = wall of X / wall of rlfactory (above 1: rlfactory is faster).

Every scenario runs under both server profiles (``light``, ``saturated``; ``"profile"`` in the line);
``train_overlap`` reports trained trajectories per second per scheduling mode instead.

Run: ``make bench`` or ``python benchmarks/rollout.py [--quick] [--scenarios a,b] [--profiles p] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/rollout.py` from anywhere

from benchmarks.rollout_bench.report import DRIVERS, scenario_line  # noqa: E402
from benchmarks.rollout_bench.scenarios import PROFILES, all_scenarios, same_workload  # noqa: E402

QUICK_N, QUICK_SCALE = 24, 0.1
#: train_overlap at --quick: 2 steps of 2 groups of 4, durations x0.4 (the smoke test: ~12 s less)
QUICK_PLAN = dict(steps=2, batch_groups=2, time_scale=0.4)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"N={QUICK_N}, every duration x{QUICK_SCALE} (smoke test)")
    parser.add_argument("--n", type=int, default=256, help="trajectories per batch (default 256)")
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="server profiles (default: all)")
    parser.add_argument("--drivers", default=",".join(DRIVERS), help="comma-separated subset of " + ",".join(DRIVERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    return parser.parse_args(argv)


def _setup(model_dir: Path):
    """Tiny tokenizer, verl's agent loops registered, the benchmark tools in rlfactory's registry."""
    import verl  # noqa: F401  (runs verl's plugin entry point: registers rlfactory_agent)
    import verl.experimental.agent_loop.tool_agent_loop  # noqa: F401  (registers tool_agent)
    from transformers import AutoTokenizer

    from benchmarks.rollout_bench.tools import SPECS, BenchToolsPlugin
    from rlfactory_plugins.plugins import load_plugins, register_plugin
    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    import rlfactory_plugins.verl.agent_loop  # noqa: F401

    build_tiny_model(model_dir)
    pm, registry = load_plugins()
    if not set(SPECS) & set(registry.tools):
        register_plugin(pm, registry, BenchToolsPlugin(), "rollout_bench")
    return AutoTokenizer.from_pretrained(model_dir)


def saved_s(runs: dict, reuse: dict, earlier: tuple | None) -> dict[str, float | None]:
    """Per driver, seconds its straggler policy saved: its wall on the same workload without the
    policy (the earlier scenario, e.g. ``long_tail``) minus its wall here. Only for drivers that
    were rerun with the policy (``reuse`` holds the ones whose earlier run was reused)."""
    out: dict[str, float | None] = {}
    for name, run in runs.items():
        before = earlier[1].get(name) if earlier is not None and name not in reuse else None
        out[name] = None if before is None else round(before.wall_s - run.wall_s, 3)
    return out


async def _main(args: argparse.Namespace, model_dir: Path) -> int:
    from benchmarks.rollout_bench.drivers import POLICY_FREE, run_scenario
    from benchmarks.rollout_bench.overlap import OverlapPlan
    from benchmarks.rollout_bench.overlap_run import run_train_overlap

    tokenizer = _setup(model_dir)
    n = QUICK_N if args.quick else args.n
    profiles = tuple(p for p in args.profiles.split(",") if p)
    if set(profiles) - set(PROFILES):
        print(f"unknown profile in {profiles} (known: {', '.join(PROFILES)})", file=sys.stderr)
        return 2
    scenarios = all_scenarios(n, args.seed, profiles)
    plan = OverlapPlan(**QUICK_PLAN) if args.quick else OverlapPlan()
    if args.quick:
        scenarios = [s.scaled(QUICK_SCALE) for s in scenarios]
    wanted = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(wanted) - {s.name for s in scenarios})
    if unknown:
        print(f"unknown scenario {unknown[0]!r} (known: {', '.join(s.name for s in scenarios)})", file=sys.stderr)
        return 2
    drivers = tuple(d for d in args.drivers.split(",") if d)
    done = {}
    t_all = time.perf_counter()
    for scenario in scenarios:
        if wanted and scenario.name not in wanted:
            continue
        t0 = time.perf_counter()
        print(f"# {scenario.name} [{scenario.profile}] ...", file=sys.stderr, flush=True)
        if scenario.train_overlap:
            line = json.dumps(await run_train_overlap(scenario, model_dir, tokenizer, drivers, plan))
        else:
            reuse, reused = {}, {}
            earlier = done.get((scenario.profile, scenario.same_workload_as))
            if earlier is not None and not same_workload(scenario, earlier[0]):
                earlier = None
            if earlier is not None:
                reuse = {d: run for d, run in earlier[1].items() if d in POLICY_FREE}
                reused = {d: earlier[0].name for d in reuse}
            workload, runs = await run_scenario(scenario, model_dir, tokenizer, drivers, reuse)
            done[scenario.profile, scenario.name] = (scenario, runs)
            line = json.dumps({**scenario_line(workload, runs), "reused": reused,
                               "saved_s": saved_s(runs, reuse, earlier)})
        print(line, flush=True)
        print(f"# {scenario.name} [{scenario.profile}]: {time.perf_counter() - t0:.1f}s "
              f"(total {time.perf_counter() - t_all:.0f}s)", file=sys.stderr, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("VERL_LOGGING_LEVEL", "ERROR")  # before verl's import: it logs every scripted tool failure
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        return asyncio.run(_main(args, Path(tmp) / "tiny"))


if __name__ == "__main__":
    sys.exit(main())
