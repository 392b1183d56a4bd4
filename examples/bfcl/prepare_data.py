"""BFCL v4 multi-turn entries (shipped in the installed bfcl-eval) as verl parquet.

Each row's prompt is the entry's first user turn; the later user turns come from the ``bfcl``
environment, which also reveals a miss_func entry's withheld functions on their turn; the row's
tools, its BFCL entry and the ground truth travel in ``extra_info`` and ``reward_model``
(``rlfactory_env_bfcl.data.row_of``). A fixed, seeded share of every category is held out:

    python examples/bfcl/prepare_data.py --out data/bfcl                       # all four categories
    python examples/bfcl/prepare_data.py --out data/bfcl --categories multi_turn_base --test-fraction 0.25

writes ``train.parquet`` and ``test.parquet`` and prints the counts per category and split.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import pandas as pd

from rlfactory_env_bfcl.backend import CATEGORIES, category_of, load_entries
from rlfactory_env_bfcl.data import row_of


def split(categories: list[str], test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Rows of each category, shuffled with ``seed`` and cut so ``test_fraction`` of each is held out.

    The same entry number is held out in every category (miss_func/miss_param/long_context are
    variants of the base entries), so no test question was trained on in another form."""
    numbers = sorted({int(e["id"].rsplit("_", 1)[1]) for c in categories for e in load_entries(c)})
    random.Random(seed).shuffle(numbers)
    held_out = set(numbers[: round(len(numbers) * test_fraction)])
    train, test = [], []
    for category in categories:
        for entry in load_entries(category):
            is_test = int(entry["id"].rsplit("_", 1)[1]) in held_out
            (test if is_test else train).append(row_of(entry, "test" if is_test else "train"))
    return train, test


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.parquet and test.parquet")
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 < args.test_fraction < 1.0:
        parser.error(f"--test-fraction {args.test_fraction} must be between 0 and 1")
    train, test = split(args.categories, args.test_fraction, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        pd.DataFrame(rows).to_parquet(args.out / f"{name}.parquet")
        counts = Counter(category_of(r["extra_info"]["index"]) for r in rows)
        print(f"{args.out / name}.parquet: {len(rows)} rows " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
