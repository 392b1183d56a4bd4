"""Plain GRPO vs the agentic-RL options on the ``make demo`` task: reward vs steps and tool calls.

Three runs of ``train.sh`` (verl's ``main_ppo +plugins=rlfactory``) on the same data and the same
warm-started model (``run_demo.prepare``, cached), with the same seed and the same number of
trained samples per step (``--prompts`` x ``--samples``):

- ``grpo``       the demo as it is (``algorithm.adv_estimator=grpo``, reward
                 ``0.5 qa_em + 0.25 qa_format + 0.25 tool_verify``);
- ``branching``  ``rlfactory.rollout.branching`` (M global samples of each group, the rest forked after
                 a search result whose next turn's entropy rises: ``margin=0``) with ``rlfactory_branch_grpo``;
- ``branching_every_call``  the same with ``margin=-100``: a fork after every search result;
- ``qa_otc``     the demo with ``qa_otc`` (``min_calls: 1``) in place of ``qa_em``.

The rewards differ between runs (``qa_otc``), so every run's trajectories are also re-scored with
``qa_em`` alone (``em``: exact match of the final answer). Tool calls are those run: a branch's
inherited turns count in its parent only (``tool/all/calls``). Writes ``<runs>/comparison.json``
and ``<runs>/comparison.md``.

    python examples/quickstart/compare_agentic.py --steps 10 --runs runs/compare
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_demo  # noqa: E402

OTC_REWARDS = ("rlfactory.rewards=[{name: qa_otc, weight: 0.5, options: {min_calls: 1}}, "
               "{name: qa_format, weight: 0.25}, {name: tool_verify, weight: 0.25, options: {require_call: true}}]")
BRANCHING = [
    "algorithm.adv_estimator=rlfactory_branch_grpo",
    "rlfactory.rollout.branching.enabled=true",
    "rlfactory.rollout.branching.global_samples=2",
    "rlfactory.rollout.branching.max_branches=2",
    "rlfactory.rollout.branching.entropy_tokens=8",
]
VARIANTS: dict[str, list[str]] = {
    "grpo": [],
    "branching": [*BRANCHING, "rlfactory.rollout.branching.margin=0.0"],
    "branching_every_call": [*BRANCHING, "rlfactory.rollout.branching.margin=-100"],
    "qa_otc": [OTC_REWARDS],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, default=Path("runs/compare"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--only", nargs="*", choices=sorted(VARIANTS), help="run these variants only")
    return p.parse_args(argv)


def em_by_step(run_dir: Path) -> dict[int, float]:
    """Exact match of every dumped trajectory's answer (``qa_em`` re-scored), per step."""
    from rlfactory_plugins.cli.report import read_trajectories, rescored_metrics
    from rlfactory_plugins.config import RewardEntry

    rows = read_trajectories(run_dir / "trajectories")
    scored = rescored_metrics(rows, [RewardEntry(name="qa_em", weight=1.0)])
    return {step: values["reward/qa_em/mean"] for step, values in sorted(scored.items())}


def summarize(name: str, run_dir: Path, seconds: float) -> dict:
    from rlfactory_plugins.cli.report import read_metrics_file

    metrics = read_metrics_file(run_dir / "metrics.jsonl")
    steps = sorted(metrics)
    em = em_by_step(run_dir)
    reward = [metrics[s].get("critic/score/mean", float("nan")) for s in steps]
    calls = [metrics[s].get("tool/all/calls", 0.0) for s in steps]
    forks = [metrics[s].get("rollout/branch/forks/mean", 0.0) * metrics[s].get("rollout/trajectories", 0.0)
             for s in steps]
    window = max(1, min(3, len(steps) // 2))
    return {
        "variant": name, "steps": steps, "reward": reward, "em": [em.get(s, float("nan")) for s in steps],
        "tool_calls": calls, "forks": forks, "total_tool_calls": sum(calls), "total_forks": sum(forks),
        "trained_samples_per_step": [metrics[s].get("rollout/trajectories", float("nan")) for s in steps],
        "em_first": statistics.fmean([em.get(s, float("nan")) for s in steps[:window]]),
        "em_last": statistics.fmean([em.get(s, float("nan")) for s in steps[-window:]]),
        "reward_first": statistics.fmean(reward[:window]), "reward_last": statistics.fmean(reward[-window:]),
        "window": window, "seconds": round(seconds),
    }


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"{args.steps} GRPO steps x {args.prompts} prompts x {args.samples} samples, seed {args.seed}; "
        f"first/last = mean over the first/last {results[0]['window']} steps",
        "",
        "| variant | reward first -> last | em first -> last | tool calls run (total) | forks (total) | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['variant']} | {r['reward_first']:.3f} -> {r['reward_last']:.3f} | {r['em_first']:.3f} -> "
                     f"{r['em_last']:.3f} | {r['total_tool_calls']:.0f} | {r['total_forks']:.0f} | {r['seconds']} |")
    lines += ["", "em per step:", ""]
    for r in results:
        lines.append(f"- {r['variant']}: " + " ".join(f"{x:.2f}" for x in r["em"]))
    lines += ["", "tool calls run per step:", ""]
    for r in results:
        lines.append(f"- {r['variant']}: " + " ".join(f"{x:.0f}" for x in r["tool_calls"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.runs.resolve()
    root.mkdir(parents=True, exist_ok=True)
    demo = run_demo.parse_args(["--seed", str(args.seed), "--steps", str(args.steps), "--prompts", str(args.prompts),
                                "--samples", str(args.samples)])
    data_dir, model_dir, corpus = run_demo.prepare(demo, root / "shared")
    results = []
    for name in args.only or list(VARIANTS):
        run_dir = root / name
        run_dir.mkdir(parents=True, exist_ok=True)
        demo.overrides = VARIANTS[name]
        start = time.time()
        rc = run_demo.train(demo, run_dir, data_dir, model_dir, corpus)
        if rc != 0:
            return rc
        missing = run_demo.check_outputs(run_dir, args.steps)
        if missing:
            run_demo.log(f"[error] {name}: {missing}")
            return 3
        results.append(summarize(name, run_dir, time.time() - start))
        run_demo.log(f"[compare] {name}: " + json.dumps({k: results[-1][k] for k in (
            "reward_first", "reward_last", "em_first", "em_last", "total_tool_calls", "total_forks", "seconds")}))
    (root / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    (root / "comparison.md").write_text(markdown(results, args))
    print(markdown(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
