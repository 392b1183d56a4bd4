"""Regenerate the shipped corpus and QA set: python scripts/make_synthetic.py [--seed 0]."""

import argparse
from pathlib import Path

from rlfactory_tool_search.synthetic import write_synthetic

DATA = Path(__file__).resolve().parents[1] / "rlfactory_tool_search" / "data"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    for path in write_synthetic(args.out, args.seed):
        print(path)
