"""Helpers for end-to-end runs of verl's real trainer on the CPU backend (tests/e2e/): a tiny workspace
(model, parquet data, reward file), the GRPO launch overrides, ``main_ppo`` in its own Ray session, metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]

# A reward that varies with the (random) model's output, so GRPO groups have
# non-zero advantages and the actor gets a real gradient.
REWARD_SOURCE = '''\
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """Length- and content-sensitive score in [0, 1]."""
    text = solution_str or ""
    digits = sum(ch.isdigit() for ch in text)
    score = min(len(text), 40) / 40.0 * 0.5 + min(digits, 5) / 5.0 * 0.3
    if str(ground_truth) in text:
        score += 0.2
    return float(score)
'''

PROMPTS = [
    "What is 3 + 4?",
    "Compute 12 * 5.",
    "How many apples are there?",
    "Name the capital of France.",
    "What is 2 + 2?",
    "Count from 1 to 5.",
    "What is 10 - 3?",
    "Say the answer is 42.",
]


@dataclass
class Workspace:
    root: Path
    model: Path
    train_file: Path
    val_file: Path
    reward_file: Path
    metrics_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.metrics_file = self.root / "metrics.jsonl"


def build_workspace(root: Path) -> Workspace:
    """Tiny model + tiny parquet dataset + reward file under ``root``."""
    import pandas as pd

    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    root.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(root / "model", seed=0, corpus=PROMPTS)
    rows = []
    for i, prompt in enumerate(PROMPTS):
        answer = str([7, 60, 5, "Paris", 4, 5, 7, 42][i])
        rows.append(
            {
                "data_source": "rlfactory_cpu_e2e",
                "prompt": [{"role": "user", "content": prompt}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"index": i, "split": "train"},
            }
        )
    df = pd.DataFrame(rows)
    train = root / "train.parquet"
    val = root / "val.parquet"
    df.to_parquet(train)
    df.head(4).to_parquet(val)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    return Workspace(root=root, model=model, train_file=train, val_file=val, reward_file=reward)


def grpo_overrides(ws: Workspace, *, steps: int = 2, n_workers: int = 2) -> list[str]:
    """The GPU launch line for a tiny GRPO run; in CPU mode `+plugins=rlfactory` adds what the CPU needs."""
    return [
        "+plugins=rlfactory",
        "algorithm.adv_estimator=grpo",
        f"data.train_files={ws.train_file}",
        f"data.val_files={ws.val_file}",
        "data.train_batch_size=4",
        "data.max_prompt_length=64",
        "data.max_response_length=16",
        "data.dataloader_num_workers=0",
        f"actor_rollout_ref.model.path={ws.model}",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.actor.use_kl_loss=False",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        f"reward.custom_reward_function.path={ws.reward_file}",
        "reward.custom_reward_function.name=compute_score",
        "trainer.logger=[console,file]",
        "trainer.project_name=rlfactory_cpu_e2e",
        "trainer.experiment_name=grpo",
        "trainer.nnodes=1",
        f"trainer.n_gpus_per_node={n_workers}",
        f"trainer.total_training_steps={steps}",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={ws.root / 'ckpt'}",
    ]


@dataclass
class RunResult:
    returncode: int
    seconds: float
    log: str
    metrics: dict[int, dict[str, float]]

    def succeeded(self) -> RunResult:
        """This result; fails the test with the log's tail if the run exited non-zero."""
        if self.returncode != 0:
            import pytest

            pytest.fail(f"the run exited with {self.returncode} after {self.seconds:.0f}s; log tail:\n{self.log[-6000:]}")
        return self


def with_settings(overrides: list[str], settings: dict[str, object]) -> list[str]:
    """``overrides`` with every key of ``settings`` set to its value (replaced where present, else added)."""
    return [o for o in overrides if o.split("=", 1)[0] not in settings] + [f"{k}={v}" for k, v in settings.items()]


def read_dumps(directory: Path) -> list[dict]:
    """Every trajectory of the JSONL dumps in ``directory`` (``rlfactory.trajectory_dir``), file by file."""
    return [json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines()]


def run_main_ppo(
    ws: Workspace, overrides: list[str], *, timeout: float = 420, pythonpath: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
) -> RunResult:
    """Run ``python -m verl.trainer.main_ppo`` in its own Ray cluster; always clean it up."""
    return run_verl("verl.trainer.main_ppo", ws.root, overrides, timeout=timeout, pythonpath=pythonpath,
                    env_extra=env_extra)


def run_verl(
    module: str, root: Path, overrides: list[str], *, timeout: float = 420, pythonpath: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
) -> RunResult:
    """Run ``python -m <module>`` (a verl trainer entry point) under ``root`` in its own Ray cluster, verl's
    file logger writing ``root/metrics.jsonl`` and the output ``root/<last part of module>.log``; always
    clean it up."""
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), *pythonpath, env.get("PYTHONPATH", "")) if p)
    metrics_file = root / "metrics.jsonl"
    env["VERL_FILE_LOGGER_PATH"] = str(metrics_file)
    env.setdefault("RLFACTORY_CPU", "auto")
    env["RAY_DEDUP_LOGS"] = "0"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["HYDRA_FULL_ERROR"] = "1"
    # A private Ray session directory keeps this run's processes and files apart.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rlf_ray_", dir="/tmp"))
    env["RAY_TMPDIR"] = str(ray_tmp)
    env.pop("RAY_ADDRESS", None)
    log_path = root / f"{module.rsplit('.', 1)[-1]}.log"
    cmd = [sys.executable, "-m", module, *overrides, f"hydra.run.dir={root / 'hydra'}"]
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = -9
        finally:
            _kill_session(proc)
            _stop_ray(ray_tmp, env)
    seconds = time.time() - start
    return RunResult(rc, seconds, log_path.read_text(errors="replace"), read_metrics(metrics_file))


def _kill_session(proc: subprocess.Popen) -> None:
    """Terminate the driver's process group (Ray workers started by it live there too)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _stop_ray(ray_tmp: Path, env: dict) -> None:
    """Kill any process of this run's private Ray session that escaped the process group."""
    marker = str(ray_tmp)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
            environ = (pid_dir / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline or f"RAY_TMPDIR={marker}" in environ:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def read_metrics(path: Path) -> dict[int, dict[str, float]]:
    """verl's file logger: one ``{"step": n, "data": {...}}`` JSON object per line."""
    metrics: dict[int, dict[str, float]] = {}
    if not path.exists():
        return metrics
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            metrics.setdefault(int(rec["step"]), {}).update(rec["data"])
    return metrics


def parse_console_metrics(log: str) -> dict[int, dict[str, float]]:
    """Fallback parser for verl's console logger lines ``step:N - key:value - ...``."""
    out: dict[int, dict[str, float]] = {}
    for m in re.finditer(r"^step:(\d+) - (.*)$", log, flags=re.M):
        step = int(m.group(1))
        for item in m.group(2).split(" - "):
            key, _, value = item.partition(":")
            try:
                out.setdefault(step, {})[key] = float(value)
            except ValueError:
                pass
    return out

