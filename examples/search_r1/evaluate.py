"""Exact match per dataset, from trajectory dumps or a generations parquet.

- Trajectory dumps: the JSONL files ``rlfactory.trajectory_dir`` collects
  (``step_00010.<pid>.jsonl``, one trajectory a line); the answer is the trajectory's
  ``final_answer`` (else its last ``<answer>``), the dataset its ``data_source``.
- A generations parquet (``verl.trainer.main_generation``): ``responses`` (one or more
  texts per prompt), ``data_source`` and ``reward_model.ground_truth``.

EM uses Search-R1's normalisation (lower case, no punctuation, no articles a/an/the,
single spaces) through the ``qa`` reward pack, so it scores exactly like ``qa_em``.
With several samples per question, EM is their mean. Prints a table, or ``--json``.

    python examples/search_r1/evaluate.py runs/search_r1/trajectories --step last
    python examples/search_r1/evaluate.py outputs/generations.parquet --json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from rlfactory_plugins.rewards.answer import answer_text, extract_tagged, gold_answers, plain
from rlfactory_plugins.trajectory import Trajectory
from rlfactory_reward_qa import exact_match

Sample = tuple[str, str | None, list[str]]  # data_source, answer (None: no answer given), gold answers


def trajectory_samples(files: list[Path], step: str | None) -> Iterator[Sample]:
    trajectories = [
        Trajectory.model_validate_json(line) for f in files for line in f.read_text().splitlines() if line.strip()
    ]
    if step == "last":
        steps = [t.step for t in trajectories if t.step is not None]
        step = str(max(steps)) if steps else None
    for t in trajectories:
        if step is None or str(t.step) == step:
            yield t.data_source or "unknown", answer_text(t), gold_answers(t.ground_truth)


def parquet_samples(path: Path) -> Iterator[Sample]:
    frame = pd.read_parquet(path)
    if "responses" not in frame.columns:
        raise SystemExit(f"{path}: no 'responses' column (columns: {', '.join(frame.columns)})")
    for row in frame.to_dict("records"):
        golds = gold_answers(plain(row["reward_model"])["ground_truth"])
        responses = plain(row["responses"])
        for response in [responses] if isinstance(responses, str) else responses:
            yield row.get("data_source") or "unknown", extract_tagged(response), golds


def samples(paths: list[Path], step: str | None) -> Iterator[Sample]:
    for path in paths:
        if path.suffix == ".parquet":
            yield from parquet_samples(path)
        else:
            files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
            if not files:
                raise SystemExit(f"{path}: no *.jsonl trajectory dumps in it")
            yield from trajectory_samples(files, step)


def exact_match_report(items: Iterator[Sample]) -> dict[str, dict[str, Any]]:
    """``{dataset: {"em", "answered", "n"}}`` plus ``"all"`` (mean over datasets, as Search-R1 reports)."""
    hits: dict[str, list[float]] = defaultdict(list)
    answered: dict[str, int] = defaultdict(int)
    for source, answer, golds in items:
        hits[source].append(float(answer is not None and exact_match(answer, golds)))
        answered[source] += answer is not None
    report = {
        source: {"em": round(sum(v) / len(v), 4), "answered": round(answered[source] / len(v), 4), "n": len(v)}
        for source, v in sorted(hits.items())
    }
    if report:
        report["all"] = {
            "em": round(sum(r["em"] for r in report.values()) / len(report), 4),
            "answered": round(sum(r["answered"] for r in report.values()) / len(report), 4),
            "n": sum(r["n"] for r in report.values()),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="trajectory dump dirs/files or a generations parquet")
    parser.add_argument("--step", default=None, help="only trajectories of this training step ('last': the latest)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = exact_match_report(samples(args.paths, args.step))
    if not report:
        raise SystemExit("no samples found")
    if args.json:
        print(json.dumps(report))
        return
    print(f"{'dataset':<16}{'EM':>8}{'answered':>10}{'n':>8}")
    for source, r in report.items():
        print(f"{source:<16}{r['em']:>8.4f}{r['answered']:>10.4f}{r['n']:>8}")


if __name__ == "__main__":
    main()
