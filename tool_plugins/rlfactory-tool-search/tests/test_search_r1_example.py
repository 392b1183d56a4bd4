"""examples/search_r1: data preparation on the shipped QA set, and EM evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# the recipe's needs, not the pack's: parquet (the [verl] extra) and the qa reward pack
pd = pytest.importorskip("pandas", reason="examples/search_r1 reads and writes parquet: install rlfactory[verl]")
pytest.importorskip("rlfactory_reward_qa", reason="examples/search_r1 scores EM: pip install reward_plugins/rlfactory-reward-qa")

from rlfactory_plugins.trajectory import Trajectory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "search_r1"

pytestmark = pytest.mark.timeout(120)


def test_prepare_data_on_the_shipped_qa_set(tmp_path, venv_run):
    proc = venv_run("python", str(EXAMPLE / "prepare_data.py"), "--synthetic", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    train, test = pd.read_parquet(tmp_path / "train.parquet"), pd.read_parquet(tmp_path / "test.parquet")
    assert len(train) + len(test) == 600 and len(test) == 120
    row = test.iloc[0]
    assert set(test.columns) == {"data_source", "prompt", "ability", "reward_model", "extra_info", "agent_name"}
    (message,) = row["prompt"]
    assert message["role"] == "user" and "<search> query </search>" in message["content"]
    assert message["content"].endswith(f"Question: {row['extra_info']['question']}\n")
    assert row["agent_name"] == "rlfactory_agent" and row["data_source"] == "synthetic"
    assert row["reward_model"]["style"] == "rule" and len(row["reward_model"]["ground_truth"]["target"]) == 1
    assert set(test["extra_info"].map(lambda e: e["split"])) == {"test"}


def test_prepare_data_from_flashrag_files(tmp_path, venv_run):
    (tmp_path / "nq.jsonl").write_text(
        json.dumps({"id": "n1", "question": "who wrote hamlet", "golden_answers": ["Shakespeare", "W. Shakespeare"]})
        + "\n"
    )
    pd.DataFrame([{"question": "capital of france?", "golden_answers": "Paris"}]).to_parquet(tmp_path / "hq.parquet")
    out = tmp_path / "train.parquet"
    proc = venv_run("python", str(EXAMPLE / "prepare_data.py"), f"nq={tmp_path / 'nq.jsonl'}",
                    f"hotpotqa={tmp_path / 'hq.parquet'}", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    assert list(frame["data_source"]) == ["nq", "hotpotqa"]
    assert list(frame.iloc[0]["reward_model"]["ground_truth"]["target"]) == ["Shakespeare", "W. Shakespeare"]
    assert frame.iloc[0]["extra_info"]["question"] == "who wrote hamlet?"
    bad = venv_run("python", str(EXAMPLE / "prepare_data.py"), f"nq={tmp_path / 'missing.jsonl'}", "--output", str(out))
    assert bad.returncode != 0 and "missing.jsonl" in bad.stderr


def _dump(path: Path, rows: list[tuple[str, str | None, list[str], int]]) -> None:
    lines = [
        Trajectory(data_source=src, final_answer=ans, ground_truth={"target": gold}, step=step).model_dump_json()
        for src, ans, gold, step in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def test_evaluate_trajectory_dumps_per_dataset(tmp_path, venv_run):
    dumps = tmp_path / "trajectories"
    dumps.mkdir()
    _dump(dumps / "step_00001.1.jsonl", [("nq", "wrong", ["Paris"], 1)])
    _dump(dumps / "step_00002.1.jsonl", [
        ("nq", "The Paris.", ["Paris"], 2),  # normalised: articles and punctuation go
        ("nq", None, ["Rome"], 2),
        ("hotpotqa", "yes", ["Yes"], 2),
        ("hotpotqa", "no", ["yes"], 2),
    ])
    proc = venv_run("python", str(EXAMPLE / "evaluate.py"), str(dumps), "--step", "last", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["nq"] == {"em": 0.5, "answered": 0.5, "n": 2}
    assert report["hotpotqa"]["em"] == 0.5 and report["all"] == {"em": 0.5, "answered": 0.75, "n": 4}
    every = json.loads(venv_run("python", str(EXAMPLE / "evaluate.py"), str(dumps), "--json").stdout)
    assert every["nq"]["n"] == 3 and every["nq"]["em"] == pytest.approx(1 / 3, abs=1e-4)


def test_evaluate_generations_parquet(tmp_path, venv_run):
    frame = pd.DataFrame([
        {"data_source": "nq", "reward_model": {"style": "rule", "ground_truth": {"target": ["1932"]}},
         "responses": ["<search> x </search> ... <answer> 1932 </answer>", "<answer>1933</answer>"]},
        {"data_source": "nq", "reward_model": {"style": "rule", "ground_truth": {"target": ["Rogan"]}},
         "responses": ["no answer here", "<answer>rogan</answer>"]},
    ])
    frame.to_parquet(tmp_path / "gen.parquet")
    proc = venv_run("python", str(EXAMPLE / "evaluate.py"), str(tmp_path / "gen.parquet"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["nq"] == {"em": 0.5, "answered": 0.75, "n": 4}
