"""examples/bfcl: the data preparation and the recipe's config check (CPU, nothing started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="examples/bfcl writes parquet: install rlfactory[verl]")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bfcl"


def test_prepare_data_holds_out_the_same_entries_in_every_category(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE / "prepare_data.py"), "--out", str(tmp_path), "--test-fraction", "0.25"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "train.parquet: 600 rows" in out and "test.parquet: 200 rows" in out
    train, test = (pd.read_parquet(tmp_path / f"{s}.parquet") for s in ("train", "test"))
    numbers = {s: {i.rsplit("_", 1)[1] for i in f["extra_info"].map(lambda e: e["index"])} for s, f in
               (("train", train), ("test", test))}
    assert not numbers["train"] & numbers["test"] and len(numbers["test"]) == 50
    row = test.iloc[0]
    entry = json.loads(row["extra_info"]["bfcl_entry"])
    assert row["prompt"][0]["content"] == entry["question"][0][0]["content"]
    assert row["extra_info"]["rlfactory"]["environment"]["name"] == "bfcl"
    assert len(json.loads(row["reward_model"]["ground_truth"])) == len(entry["question"])
    withheld = test[test["extra_info"].map(lambda e: "miss_func" in e["index"])].iloc[0]["extra_info"]
    hidden = next(iter(json.loads(withheld["bfcl_entry"])["missed_function"].values()))
    assert not {t.split("_", 1)[1] for t in withheld["rlfactory"]["tools"]} & set(hidden)


def test_the_recipe_composes_and_checks_its_config():
    pytest.importorskip("verl", reason="check-config composes verl's config: install rlfactory[verl]")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(EXAMPLE / "train_qwen3_4b_grpo.sh"), "--check"], capture_output=True,
                          text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bfcl_partial" in done.stdout and "could not register" not in done.stderr
