"""Turn QA files into verl's RL parquet for the Search-R1 recipe.

Inputs are the files users already have in FlashRAG's layout: JSONL (or JSON/parquet)
rows with ``question`` and ``golden_answers`` (a list, or one string). Each output row:

- ``prompt``: one user message, Search-R1's instruction followed by the question
- ``data_source``: the name given on the command line (``nq``, ``hotpotqa``, ...)
- ``ability``: ``fact-reasoning``
- ``reward_model``: ``{"style": "rule", "ground_truth": {"target": [answers]}}``
- ``extra_info``: ``{"split", "index", "id", "question"}``
- ``agent_name``: ``rlfactory_agent``

Examples::

    # Search-R1's training mix: NQ + HotpotQA train, and their test/dev sets
    python examples/search_r1/prepare_data.py nq=data/nq/train.jsonl hotpotqa=data/hotpotqa/train.jsonl \\
        --split train --output data/search_r1/train.parquet
    python examples/search_r1/prepare_data.py nq=data/nq/test.jsonl hotpotqa=data/hotpotqa/dev.jsonl \\
        --split test --output data/search_r1/test.parquet

    # the synthetic QA set shipped with rlfactory-tool-search (CPU demo)
    python examples/search_r1/prepare_data.py --synthetic --out-dir data/synthetic
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

# Search-R1's instruction (PeterGriffinJin/Search-R1, scripts/data_process/nq_search.py), so that
# the search_r1 parser's tags and the qa_em reward's <answer> match what the model is told.
INSTRUCTION = (
    "Answer the given question. You must conduct reasoning inside <think> and </think> first every time "
    "you get new information. After reasoning, if you find you lack some knowledge, you can call a search "
    "engine by <search> query </search> and it will return the top searched results between <information> "
    "and </information>. You can search as many times as your want. If you find no further external "
    "knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed "
    "illustrations. For example, <answer> Beijing </answer>. Question: {question}\n"
)
AGENT_NAME = "rlfactory_agent"


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else data.get("data", [])
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def golden(row: dict[str, Any], where: str) -> list[str]:
    answers = row.get("golden_answers")
    if answers is None:
        raise SystemExit(f"{where}: no 'golden_answers' (fields: {', '.join(sorted(row))}); "
                         "use FlashRAG's {question, golden_answers} rows")
    if isinstance(answers, str):
        return [answers]
    return [str(a) for a in list(answers)]


def question_text(question: str) -> str:
    question = question.strip()
    return question if question.endswith("?") else question + "?"


def to_verl(row: dict[str, Any], source: str, split: str, index: int, where: str) -> dict[str, Any]:
    if not str(row.get("question", "")).strip():
        raise SystemExit(f"{where}: row {index} has no 'question'")
    question = question_text(str(row["question"]))
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": INSTRUCTION.format(question=question)}],
        "ability": "fact-reasoning",
        "reward_model": {"style": "rule", "ground_truth": {"target": golden(row, f"{where} row {index}")}},
        "extra_info": {"split": split, "index": index, "id": str(row.get("id", index)), "question": question},
        "agent_name": AGENT_NAME,
    }


def convert(sources: dict[str, Path], split: str, limit: int | None = None) -> pd.DataFrame:
    rows = []
    for source, path in sources.items():
        found = read_rows(path)
        if found and "split" in found[0]:  # files that hold several splits (the synthetic set)
            found = [r for r in found if r.get("split") == split]
            if not found:
                raise SystemExit(f"{path}: no rows with split {split!r}")
        rows += [to_verl(r, source, split, i, str(path)) for i, r in enumerate(found[:limit])]
    return pd.DataFrame(rows)


def synthetic(out_dir: Path) -> list[Path]:
    """train/test parquet from the pack's synthetic QA set (its ``split`` field decides)."""
    from rlfactory_tool_search.data import shipped_qa

    outputs = []
    for split in ("train", "test"):
        frame = convert({"synthetic": shipped_qa()}, split)
        out = out_dir / f"{split}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out)
        outputs.append(out)
    return outputs


def parse_sources(specs: list[str]) -> dict[str, Path]:
    sources = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"bad input {spec!r}: write NAME=FILE, e.g. nq=data/nq/train.jsonl")
        if not Path(path).is_file():
            raise SystemExit(f"input file {path!r} (for {name!r}) not found")
        sources[name] = Path(path)
    return sources


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="NAME=FILE (FlashRAG JSONL/JSON/parquet); NAME becomes data_source")
    parser.add_argument("--split", default="train", help="recorded in extra_info.split (and picks rows with a split)")
    parser.add_argument("--output", type=Path, help="parquet to write")
    parser.add_argument("--limit", type=int, default=None, help="at most this many rows per input")
    parser.add_argument("--synthetic", action="store_true", help="convert the shipped synthetic QA set instead")
    parser.add_argument("--out-dir", type=Path, default=Path("data/synthetic"), help="with --synthetic")
    args = parser.parse_args(argv)
    if args.synthetic:
        for out in synthetic(args.out_dir):
            print(f"wrote {out} ({len(pd.read_parquet(out))} rows)")
        return
    if not args.inputs or args.output is None:
        parser.error("give NAME=FILE inputs and --output (or --synthetic)")
    frame = convert(parse_sources(args.inputs), args.split, args.limit)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.output)
    counts = frame["data_source"].value_counts().to_dict()
    print(f"wrote {args.output} ({len(frame)} rows: {counts})", file=sys.stdout)


if __name__ == "__main__":
    main()
