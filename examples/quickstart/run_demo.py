"""``make demo``: train a tiny search agent end to end with verl's GRPO through rlfactory.

1. data    — the demo's synthetic world (``world.py``) as verl parquet files (``task.py``),
2. model   — a tiny Qwen2 with a tokenizer trained on the corpus, warm-started in two phases:
             demonstrations that all search until learnt, then a short mix where most guess
             instead (``warm_start.py``), so the model starts out searching only sometimes,
3. GRPO    — ``train.sh``: ``python -m verl.trainer.main_ppo +plugins=rlfactory ...``,
             with one summary line per step printed from verl's console logger,
4. report  — ``rlfactory report runs/<name>`` -> ``report.png`` + ``report.html``, and a summary:
             reward (total and each part) over the first vs last 5 steps, tool success at the end.

Everything lands in ``runs/<name>/``. ``--fast`` is the 2-step smoke variant used by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import task  # noqa: E402
import world  # noqa: E402
import warm_start  # noqa: E402

#: the warm start's first phase stops once it has learnt the demonstrations (mean loss of 50 steps)
STOP_LOSS = 0.01
STEP_LINE = re.compile(r"step:(\d+) - (.*)$")
#: what the per-step progress line shows: (label, metric keys tried in order, format)
PROGRESS = (
    ("reward", ("critic/score/mean",), "{:.2f}"),
    ("em", ("reward/qa_em/mean", "reward/qa_em"), "{:.2f}"),
    ("format", ("reward/qa_format/mean", "reward/qa_format"), "{:.2f}"),
    ("tool", ("reward/tool_verify/mean", "reward/tool_verify"), "{:.2f}"),
    ("calls", ("rollout/calls/mean",), "{:.2f}"),
    ("errors", ("rollout/calls_error/mean",), "{:.2f}"),
    ("len", ("response_length/mean",), "{:.0f}"),
    ("s", ("timing_s/step",), "{:.1f}"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", default="demo", help="run name: outputs go to runs/<name>/")
    p.add_argument("--runs", type=Path, default=Path("runs"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30, help="GRPO steps")
    p.add_argument("--prompts", type=int, default=8, help="prompts per GRPO step")
    p.add_argument("--samples", type=int, default=4, help="GRPO group size (rollout.n)")
    p.add_argument("--demos", type=int, default=2400, help="warm-start demonstrations (about other entities)")
    p.add_argument("--demo-search", type=float, default=0.2,
                   help="warm start's second phase: fraction of demonstrations that search (the rest guess)")
    p.add_argument("--sft-steps", type=int, default=3000,
                   help="warm start's first phase (every demonstration searches; stops early once learnt)")
    p.add_argument("--sft-mix-steps", type=int, default=300,
                   help="warm start's second phase (--demo-search); 2 passes over the demonstrations: with one "
                        "(150 steps) the calls were often a search tag around a guessed city, depending on "
                        "rounding in the first phase")
    p.add_argument("--sft-mix-lr", type=float, default=1e-3)
    p.add_argument("--sft-batch", type=int, default=16)
    p.add_argument("--sft-lr", type=float, default=3e-3)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--fast", action="store_true", help="smoke test: 2 GRPO steps, short warm start")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides passed to main_ppo")
    args = p.parse_args(argv)
    if args.fast:
        args.steps, args.prompts, args.samples, args.sft_steps, args.sft_mix_steps, args.demos = 2, 4, 2, 20, 10, 200
    return args


def log(msg: str) -> None:
    print(msg, flush=True)


# -- 1 + 2: data and warm-started model ------------------------------------------------


def prepare(args: argparse.Namespace, run_dir: Path) -> tuple[Path, Path, Path]:
    data_dir, model_dir = run_dir / "data", run_dir / "model"
    w = world.build(run_dir / "world", args.seed, warm=args.demos)
    task.write_parquet(w.rl, data_dir / "train.parquet", "train")
    task.write_parquet(w.val, data_dir / "val.parquet", "test")
    log(f"[data] {len(w.rl)} RL prompts, {len(w.val)} held-out, corpus {w.corpus} -> {data_dir}")

    settings = {k: getattr(args, k) for k in ("seed", "demos", "demo_search", "sft_steps", "sft_mix_steps", "sft_batch",
                                               "sft_lr", "sft_mix_lr", "vocab_size")}
    settings.update(model_size=warm_start.MODEL_SIZE, stop_loss=STOP_LOSS)
    demos = task.demonstrations(w.warm)
    mixed = task.with_guesses(demos, args.demo_search, args.seed)
    key = warm_start.cache_key(settings, demos + mixed, w.texts())
    marker = model_dir / "warm_start.json"
    if marker.exists() and json.loads(marker.read_text()).get("key") == key:
        log(f"[model] reusing the warm-started model in {model_dir} (same settings, data, code and libraries)")
        return data_dir, model_dir, w.corpus
    shutil.rmtree(model_dir, ignore_errors=True)
    start = time.time()
    warm_start.build_model(model_dir, demos + mixed, w.texts(), vocab_size=args.vocab_size, seed=args.seed)
    log(f"[model] tiny Qwen2 {warm_start.MODEL_SIZE}; warm start on {len(demos)} demonstrations about other "
        f"entities ({warm_start.THREADS} threads): up to {args.sft_steps} steps that all search, until learnt, "
        f"then {args.sft_mix_steps} steps where {args.demo_search:.0%} search and the rest guess")
    result = warm_start.train(model_dir, warm_start.encode_all(model_dir, demos), steps=args.sft_steps,
                              batch_size=args.sft_batch, lr=args.sft_lr, seed=args.seed, log=log, stop_loss=STOP_LOSS)
    if not result["stopped_early"] and not args.fast:
        log(f"[model] warning: the first phase never reached a mean loss below {STOP_LOSS}: the model may not "
            "have learnt to copy the answer out of the observation, and GRPO has little to reinforce")
    mix = warm_start.train(model_dir, warm_start.encode_all(model_dir, mixed), steps=args.sft_mix_steps,
                           batch_size=args.sft_batch, lr=args.sft_mix_lr, seed=args.seed, log=log)
    result = {"loss": result["loss"], "steps": result["steps"], "stopped_early": result["stopped_early"],
              "mix_loss": mix["loss"], "mix_steps": mix["steps"], "threads": warm_start.THREADS,
              "seconds": result["seconds"] + mix["seconds"]}
    marker.write_text(json.dumps({"key": key, "settings": settings, **result}, indent=2) + "\n")
    log(f"[model] warm start done in {time.time() - start:.0f}s (final loss {result['loss']:.3f})")
    return data_dir, model_dir, w.corpus


# -- 3: GRPO through verl's main_ppo ---------------------------------------------------


def progress_line(step: int, items: str) -> str:
    values: dict[str, float] = {}
    for item in items.split(" - "):
        key, _, value = item.partition(":")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            pass
    parts = [f"step {step:3d}"]
    for label, keys, fmt in PROGRESS:
        key = next((k for k in keys if k in values), None)
        if key is not None:
            parts.append(f"{label} {fmt.format(values[key])}")
    return "  ".join(parts)


def train(args: argparse.Namespace, run_dir: Path, data_dir: Path, model_dir: Path, corpus: Path) -> int:
    for stale in ("metrics.jsonl", "rlfactory_metrics.jsonl", "trajectories", "checkpoints", "report.png", "report.html"):
        path = run_dir / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        RUN_DIR=str(run_dir), MODEL=str(model_dir), DATA=str(data_dir), CORPUS=str(corpus), STEPS=str(args.steps),
        PROMPTS=str(args.prompts), SAMPLES=str(args.samples), SEED=str(args.seed), PYTHON=sys.executable,
        TOKENIZERS_PARALLELISM="false", HYDRA_FULL_ERROR="1", RAY_DEDUP_LOGS="0",
    )
    env.pop("RAY_ADDRESS", None)  # always a private, local Ray cluster
    cmd = ["bash", str(HERE / "train.sh"), f"hydra.run.dir={run_dir / 'hydra'}", *args.overrides]
    log_path = run_dir / "train.log"
    log(f"[grpo] {args.steps} steps x {args.prompts} prompts x {args.samples} samples; log: {log_path}")
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if line.startswith("+ python -m verl.trainer.main_ppo"):
                    log("[grpo] " + line.strip())
                m = STEP_LINE.search(line)
                if m:
                    log("[grpo] " + progress_line(int(m.group(1)), m.group(2)))
            rc = proc.wait()
        finally:
            _end_session(proc)
    if rc != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-40:])
        log(f"[grpo] main_ppo exited with {rc}; last lines of {log_path}:\n{tail}")
    return rc


def _end_session(proc: subprocess.Popen) -> None:
    """Stop what main_ppo left behind in its process group (Ray's local cluster)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        time.sleep(1)


# -- 4: report ---------------------------------------------------------------------------


def check_outputs(run_dir: Path, steps: int) -> str | None:
    """What is missing from a finished run (None: metrics and trajectories are all there)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return f"{metrics} was not written (verl's file logger: is trainer.logger still [console,file]?)"
    rows = [line for line in metrics.read_text().splitlines() if line.strip()]
    if len(rows) != steps:
        return f"{metrics} has {len(rows)} rows, expected one per step ({steps})"
    if not any((run_dir / "trajectories").glob("*.jsonl")):
        return f"no trajectory dumps in {run_dir / 'trajectories'} (rlfactory.trajectory_dir)"
    return None


def report(run_dir: Path) -> dict:
    from rlfactory_plugins.cli.report import write_report

    paths = write_report(run_dir)
    log(f"[report] {paths.png}  {paths.html}")
    return paths.summary


def summary_lines(s: dict) -> list[str]:
    """The run's headline: total reward and each part, first 5 vs last 5 steps, tool success at the end."""
    lines = [f"{s['steps']} steps: mean reward {s['reward_first']:.3f} (first 5) -> {s['reward_last']:.3f} (last 5), "
             f"gain {s['reward_gain']:+.3f}"]
    for key in sorted(k[: -len("_first")] for k in s if k.startswith("reward/") and k.endswith("_first")):
        lines.append(f"  {key.split('/')[1]:<12} {s[key + '_first']:.3f} -> {s[key + '_last']:.3f}")
    lines.append(f"tool calls per trajectory (last 5) {s['tool_calls_last']:.2f}, "
                 f"tool-call success rate (last 5) {s['tool_success_last']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = (args.runs / args.name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    data_dir, model_dir, corpus = prepare(args, run_dir)
    prepared = time.time()
    rc = train(args, run_dir, data_dir, model_dir, corpus)
    if rc != 0:
        return rc
    trained = time.time()
    missing = check_outputs(run_dir, args.steps)
    if missing:
        log(f"[error] main_ppo exited 0 but {missing}; see {run_dir / 'train.log'}")
        return 3
    summary = report(run_dir)
    seconds = {"prepare": round(prepared - start), "grpo": round(trained - prepared),
               "report": round(time.time() - trained), "total": round(time.time() - start)}
    marker = json.loads((model_dir / "warm_start.json").read_text())
    warm = {k: marker.get(k) for k in ("steps", "stopped_early", "loss", "mix_steps", "mix_loss", "threads", "key")}
    (run_dir / "summary.json").write_text(json.dumps({**summary, "warm_start": warm, "seconds": seconds}, indent=2))
    for line in summary_lines(summary):
        log("[summary] " + line)
    log(f"[summary] warm start: first phase {warm['steps']} steps (loss {warm['loss']:.4f}), second phase "
        f"{warm['mix_steps']} steps, {warm['threads']} threads, key {warm['key']}")
    log(f"[done] {seconds['total']}s (data + warm start {seconds['prepare']}s, GRPO {seconds['grpo']}s, "
        f"report {seconds['report']}s); outputs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
