"""``rlfactory report``: metrics + trajectory dumps of a run directory -> report.png/html + summary."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from rlfactory_plugins.cli import app
from rlfactory_plugins.cli.report import ReportError, load_run, summarize, write_report
from rlfactory_plugins.tools.base import ToolResult, ToolStatus
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord

pytestmark = pytest.mark.timeout(60)

STEPS = 8


def _trajectory(step: int, i: int, ok: bool) -> dict:
    result = ToolResult(name="search", arguments={"query": f"q{i}"}, output="Zorvan was born in 1723.") if ok else \
        ToolResult(name="search", status=ToolStatus.invalid_args, error="missing 'query'")
    call = ToolCallRecord(turn=0, name="search", arguments={"query": f"q{i}"}, raw="{}", result=result)
    traj = Trajectory(
        uid=f"{step}-{i}",
        prompt=[{"role": "user", "content": "In which year was Zorvan born?"}],
        turns=[TurnRecord(index=0, assistant_text="<tool_call>{}</tool_call>", tool_calls=[call]),
               TurnRecord(index=1, assistant_text="<answer>1723</answer>")],
        final_answer="1723",
        stop_reason="answer",
        ground_truth="1723",
        step=step,
    )
    return {**traj.model_dump(mode="json"), "reward": 0.1 * step if ok else 0.0}


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "runs" / "demo"
    (root / "trajectories").mkdir(parents=True)
    with open(root / "metrics.jsonl", "w") as f:  # verl's file logger rows
        for step in range(1, STEPS + 1):
            data = {"critic/score/mean": step / STEPS, "response_length/mean": 30.0 + step, "num_turns/mean": 2.0,
                    "reward/qa_em/mean": step / STEPS, "reward/format/mean": 1.0, "reward/total/failed": 0.0}
            f.write(json.dumps({"step": step, "data": data}) + "\n")
    with open(root / "trajectories" / "rollout.jsonl", "w") as f:
        for step in range(1, STEPS + 1):
            for i in range(4):  # step 1: 1 of 4 calls fails; later steps: all succeed
                f.write(json.dumps(_trajectory(step, i, ok=not (step == 1 and i == 0))) + "\n")
    return root


def test_load_run_merges_metrics_and_trajectory_counts(run_dir):
    run = load_run(run_dir)
    assert run.steps == list(range(1, STEPS + 1))
    assert run.metrics[1]["traj/tool_success_rate"] == pytest.approx(0.75)
    assert run.metrics[1]["traj/tool_errors"] == pytest.approx(0.25)
    assert run.metrics[STEPS]["traj/tool_calls"] == pytest.approx(1.0)
    assert run.reward_parts() == ["reward/format/mean", "reward/qa_em/mean"]
    assert len(run.samples) == 3
    assert run.samples[0].step == 1 and {s.step for s in run.samples[1:]} == {STEPS}


def test_summary_figures(run_dir):
    s = summarize(load_run(run_dir))
    assert s["steps"] == STEPS and s["reward_key"] == "critic/score/mean"
    assert s["reward_first"] == pytest.approx(sum(range(1, 6)) / 5 / STEPS)
    assert s["reward_last"] == pytest.approx(sum(range(4, 9)) / 5 / STEPS)
    assert s["tool_success_last"] == pytest.approx(1.0)


def test_cli_writes_png_and_html(run_dir):
    res = CliRunner().invoke(app, ["report", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["steps"] == STEPS
    png = (run_dir / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    page = (run_dir / "report.html").read_text()
    assert "report.png" in page and "call search" in page and "1723" in page


def test_flat_rows_and_no_trajectories(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "critic/score/mean": s}) for s in (1, 2)))
    paths = write_report(tmp_path)
    assert paths.png.exists() and paths.summary["steps"] == 2
    assert math.isnan(paths.summary["tool_success_last"])


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(ReportError, match="no metrics"):
        load_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"data": {}}\n')
    with pytest.raises(ReportError, match="no 'step' key"):
        load_run(tmp_path)
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_reward_parts_rescored_from_trajectories_with_the_runs_config(run_dir):
    """verl logs only the total; the parts come from the run's own rlfactory.rewards (Hydra's saved config)."""
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    with open(run_dir / "metrics.jsonl", "w") as f:
        for row in metrics:
            row["data"] = {k: v for k, v in row["data"].items() if not k.startswith("reward/")}
            f.write(json.dumps(row) + "\n")
    hydra = run_dir / "hydra" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text(
        "rlfactory:\n  rewards:\n  - {name: tool_verify, weight: 0.5}\n  - {name: qa_format, weight: 0.5}\n"
    )
    run = load_run(run_dir)
    assert run.reward_parts() == ["reward/qa_format/mean", "reward/tool_verify/mean"]
    assert run.metrics[1]["reward/tool_verify/mean"] == pytest.approx((0.5 + 3) / 4)  # a failed call: parsed, not ok
    assert run.metrics[STEPS]["reward/tool_verify/mean"] == pytest.approx(1.0)
    assert run.metrics[1]["reward/qa_format/mean"] == pytest.approx(1.0)
    assert "reward/tool_verify/mean" not in load_run(run_dir, rescore=False).metrics[1]
