"""BFCL entries as verl dataset rows (what ``examples/bfcl/prepare_data.py`` writes to parquet).

A row's prompt is the entry's first user turn; the rollout renders the row's tools (every function
of its ``involved_classes`` except those a ``miss_func`` entry withholds) with the chat template.
``extra_info.rlfactory`` selects those tools and the ``bfcl`` environment, which sends the later
user turns. The entry travels as JSON in ``extra_info.bfcl_entry`` (its ``initial_config`` differs
in shape from row to row, which a parquet struct column would not keep) and the ground truth as
JSON in ``reward_model.ground_truth``.

BFCL's ``excluded_function`` field is not used by BFCL's own inference or checker code (every
function of the involved classes is offered), so it is not used here either.
"""

from __future__ import annotations

import json
from typing import Any

from rlfactory_env_bfcl.backend import function_docs
from rlfactory_env_bfcl.calls import qualified
from rlfactory_env_bfcl.environment import question_text
from rlfactory_env_bfcl.episode import ENTRY_FIELD

__all__ = ["DATA_SOURCE", "initial_tools", "row_of"]

#: ``data_source`` of every row (rewards and metrics can tell BFCL rows apart by it)
DATA_SOURCE = "bfcl_multi_turn"


def initial_tools(entry: dict[str, Any]) -> list[str]:
    """The tools the row sees from its first turn: its classes' functions minus the withheld ones."""
    withheld = {name for names in (entry.get("missed_function") or {}).values() for name in names}
    return [
        qualified(c, doc["name"]) for c in entry["involved_classes"] for doc in function_docs(c)
        if doc["name"] not in withheld
    ]


def row_of(entry: dict[str, Any], split: str = "train") -> dict[str, Any]:
    """One verl row for a BFCL entry (with its ``ground_truth`` attached, as ``backend.load_entries`` gives)."""
    kept = {k: entry[k] for k in ("id", "question", "initial_config", "involved_classes", "missed_function") if k in entry}
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": question_text(entry["question"][0])}],
        "ability": "function_calling",
        "reward_model": {"style": "rule", "ground_truth": json.dumps(entry["ground_truth"])},
        "extra_info": {
            "split": split,
            "index": entry["id"],
            ENTRY_FIELD: json.dumps(kept, ensure_ascii=False),
            "rlfactory": {"tools": initial_tools(entry), "environment": {"name": "bfcl"}},
        },
    }
