"""BFCL multi-turn accuracy of dumped trajectories, judged by BFCL's own checker.

Reads the JSONL trajectory dumps of any policy run through rlfactory (``rlfactory.trajectory_dir``:
``step_00010.<pid>.jsonl``, one trajectory a line; training or validation), keeps the BFCL rows
(their ``env_state`` is the ``bfcl`` environment's per-turn record) and scores each with
``multi_turn_checker`` from the installed bfcl-eval, re-executing the recorded calls and the
ground truth from the entry's initial state (a run whose number of completed user turns differs
from the ground truth's is force-terminated, as in BFCL's eval runner). Prints, in BFCL's terms,
the accuracy of each multi-turn category, the multi-turn overall accuracy (the unweighted mean of
the categories present) and the error types; ``--json`` for a machine-readable report. With
several samples of one entry, its accuracy is their mean.

    python examples/bfcl/evaluate.py runs/bfcl/trajectories --step last
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rlfactory_env_bfcl.backend import category_of
from rlfactory_env_bfcl.data import DATA_SOURCE
from rlfactory_env_bfcl.episode import Entry
from rlfactory_env_bfcl.rewards import ground_truth_of, reference_verdict
from rlfactory_plugins.trajectory import Trajectory


def load(paths: list[Path], step: str | None) -> list[Trajectory]:
    files = [f for p in paths for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
    if not files:
        raise SystemExit(f"no .jsonl trajectory dumps under {', '.join(map(str, paths))}")
    found = [Trajectory.model_validate_json(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    found = [t for t in found if t.data_source == DATA_SOURCE]
    if step == "last":
        steps = [t.step for t in found if t.step is not None]
        step = str(max(steps)) if steps else None
    return [t for t in found if step is None or str(t.step) == step]


def score(trajectories: list[Trajectory]) -> dict[str, Any]:
    per_entry: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for t in trajectories:
        entry = Entry.from_extra_info(t.extra_info)
        record = t.env_state if isinstance(t.env_state, dict) else {"turns": []}
        result = reference_verdict(record, ground_truth_of(t), entry)
        per_entry[entry.id].append(float(result["valid"]))
        if not result["valid"]:
            errors[result.get("error_type", "unknown")] += 1
    by_category: dict[str, list[float]] = defaultdict(list)
    for entry_id, values in per_entry.items():
        by_category[category_of(entry_id)].append(sum(values) / len(values))
    accuracy = {c: sum(v) / len(v) for c, v in sorted(by_category.items())}
    return {
        "trajectories": len(trajectories),
        "entries": {c: len(v) for c, v in sorted(by_category.items())},
        "accuracy": accuracy,
        "multi_turn_overall": sum(accuracy.values()) / len(accuracy) if accuracy else 0.0,
        "error_types": dict(errors.most_common()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="dump folders or .jsonl files")
    parser.add_argument("--step", default=None, help="only this trainer step ('last': the newest)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    trajectories = load(args.paths, args.step)
    if not trajectories:
        raise SystemExit(f"no BFCL trajectories (data_source={DATA_SOURCE!r}) in the dumps")
    report = score(trajectories)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'category':<28}{'entries':>8}{'accuracy':>10}")
    for category, value in report["accuracy"].items():
        print(f"{category:<28}{report['entries'][category]:>8}{value:>10.2%}")
    print(f"{'multi-turn overall':<28}{sum(report['entries'].values()):>8}{report['multi_turn_overall']:>10.2%}")
    for kind, n in report["error_types"].items():
        print(f"  {kind}: {n}")


if __name__ == "__main__":
    main()
