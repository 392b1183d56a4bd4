"""A small tool-using task for the agentic-RL CPU e2e runs (tests/e2e/test_cpu_agentic_rl.py).

Each row asks for one sum; the tiny model is taught to call the stateless ``calc`` tool (hermes
format) and then to answer, half the time with the right number and half the time, after a
"Maybe", with a wrong one. So its first turn is nearly deterministic (low entropy) and the turn
after the tool result starts with a coin flip (high entropy): where the branching rollout forks,
and a reward (``qa_em``) that varies within each group, so GRPO has advantages to train on.

``calc`` is a verl ``@function_tool`` in a file of the run's own (:func:`write_tool`), enabled through
verl's ``multi_turn.function_tool_path``; it appends every call it runs to a log, so a run can show
that each tool call ran once.

The teaching lays the tokens out piece by piece as the rollout does (the chat template's own
rendering of each message, assistant turns ending at ``<|im_end|>``), as tests/helpers/stateful_task.py
does for its rows.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.helpers.teach import build_taught_model

#: (question, expression, right answer, wrong answer)
ROWS = [
    ("What is 3 + 4?", "3 + 4", "7", "9"),
    ("Compute 12 * 5.", "12 * 5", "60", "50"),
    ("What is 10 - 3?", "10 - 3", "7", "8"),
    ("What is 2 + 2?", "2 + 2", "4", "5"),
]
TOOL_SOURCE = '''"""The e2e run's tool: a verl @function_tool that logs every call it runs."""
import os

from verl.tools.function_tool import function_tool

LOG = {log!r}


@function_tool
def calc(expression: str) -> str:
    """Evaluate a sum of two integers.

    Args:
        expression: Like "3 + 4" (+, - or *).
    """
    with open(LOG, "a") as f:  # first: a call that then fails ran too
        f.write(f"{{os.getpid()}} {{expression}}\\n")
    a, op, b = expression.split()
    return str({{"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}}[op])
'''


def write_tool(path: Path, log: Path) -> Path:
    """The ``calc`` tool's file (``multi_turn.function_tool_path``), logging its calls to ``log``."""
    path.write_text(TOOL_SOURCE.format(log=str(log)))
    return path


@cache
def schemas() -> list[dict[str, Any]]:
    """The schemas the rollout renders: rlfactory's view of the verl tool."""
    from rlfactory_plugins.verl.verl_tools import load_verl_tools

    with tempfile.TemporaryDirectory() as tmp:
        tools = load_verl_tools(function_tool_path=str(write_tool(Path(tmp) / "calc.py", Path(tmp) / "log")))
        return [tools["calc"].spec.openai_schema()]


def value(expression: str) -> str:
    a, op, b = expression.split()
    return str({"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op])


def messages(question: str, expression: str, answer: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "calc", "arguments": {"expression": expression}}}]},
        {"role": "tool", "content": value(expression)},
        {"role": "assistant", "content": answer},
    ]


def conversations() -> list[list[dict[str, Any]]]:
    """Every row twice: answered right, and wrong after a "Maybe" (the coin flip is the turn's first token)."""
    return [messages(q, e, a) for q, e, right, wrong in ROWS
            for a in (f"<answer>{right}</answer>", f"Maybe <answer>{wrong}</answer>")]


def build_model(model_dir: Path, *, steps: int = 300, lr: float = 3e-3, seed: int = 0) -> tuple[Path, float]:
    """The tiny model taught the conversations (tests/helpers/teach.py); the directory and the final loss."""
    lessons = [(conv, schemas()) for conv in conversations()]
    return model_dir, build_taught_model(model_dir, lessons, steps=steps, lr=lr, seed=seed)


def write_rows(root: Path) -> tuple[Path, Path]:
    import pandas as pd

    records = [{
        "data_source": "rlfactory_agentic_e2e",
        "prompt": [{"role": "user", "content": question}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": right},
        "extra_info": {"index": i},
    } for i, (question, _, right, _) in enumerate(ROWS)]
    train, val = root / "train.parquet", root / "val.parquet"
    pd.DataFrame(records).to_parquet(train)
    pd.DataFrame(records).to_parquet(val)
    return train, val
