"""``make demo``'s fast variant: the whole pipeline (data, warm start, verl GRPO via train.sh, report) in 2 steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlfactory_plugins.cpu import cpu_mode_requested

REPO = Path(__file__).resolve().parents[2]
STEPS = 2

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not cpu_mode_requested(), reason="the fast demo is sized for CPU mode"),
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(runs)}
    cmd = [sys.executable, str(REPO / "examples/quickstart/run_demo.py"), "--fast", "--runs", str(runs), "--name", "fast"]
    proc = subprocess.run(cmd, cwd=runs, env=env, capture_output=True, text=True, timeout=280)
    if proc.returncode != 0:
        pytest.fail(f"run_demo.py --fast exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}")
    return runs / "fast"


def test_one_metrics_row_per_step(demo_run):
    rows = [json.loads(line) for line in (demo_run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    for row in rows:
        assert "critic/score/mean" in row["data"] and "actor/grad_norm" in row["data"]


def test_trajectories_dumped_for_every_step(demo_run):
    dumped = [json.loads(line) for f in (demo_run / "trajectories").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert {t["step"] for t in dumped} == set(range(1, STEPS + 1))
    assert all(t["prompt"] and t["turns"] for t in dumped)


def test_report_png_and_summary(demo_run):
    png = (demo_run / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert "sample 1" in (demo_run / "report.html").read_text() or "step" in (demo_run / "report.html").read_text()
    summary = json.loads((demo_run / "summary.json").read_text())
    assert summary["steps"] == STEPS
    assert "reward/qa_em/mean_first" in summary  # reward parts re-scored with the run's own rlfactory.rewards


def test_progress_lines_printed(demo_run):
    log = (demo_run / "train.log").read_text()
    assert "python -m verl.trainer.main_ppo +plugins=rlfactory" in log
