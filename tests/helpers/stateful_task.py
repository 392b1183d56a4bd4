"""A small stateful task for the CPU e2e run: rows with their own tool sets, initial states and user turns.

Three kinds of row, each with a scripted second user turn:

- ``kv``: the key-value store pack (``rlfactory-tool-kvstore``), each row with its own subset of
  the four tools and its own initial store; the reward ``kv_state`` compares the final store
  with the row's expected one;
- ``counter``: a verl ``BaseTool`` (``tests/helpers/servers/verl_counter_tool.py``, written against
  verl's interface only) enabled through verl's own ``multi_turn.tool_config_path``, started
  from the row's ``tools_kwargs`` (verl's row shape);
- ``python``: the sandboxed ``python_session`` tool, whose variables persist from the first
  user turn to the second.

A random tiny model calls no tool, so :func:`build_model` first has it memorise each row's
conversation (a few hundred AdamW steps, tokens laid out piece by piece as the rollout lays
them out). The run then really calls the tools; what it shows does not depend on the model
being exact, since every dump records what happened.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.teach import Lesson, build_taught_model

SERVERS = Path(__file__).resolve().parent / "servers"
COUNTER_SCHEMA = {"type": "function", "function": {
    "name": "counter", "description": "Add to this trajectory's counter.",
    "parameters": {"type": "object", "properties": {"by": {"type": "integer", "description": "how much"}},
                   "required": ["by"]}}}


#: ``rlfactory.tools`` of the run, with the verl tool last: the tool manager's order, which is the order a
#: row's schemas are rendered in
TOOLS = ["kv_get", "kv_set", "kv_delete", "kv_list", "python_session", "counter"]


@dataclass
class Row:
    kind: str
    tools: list[str]
    user_turns: list[str]  # the first is the prompt, the rest are scripted environment turns
    calls: list[tuple[str, dict[str, Any], str]]  # per user turn: (tool, arguments, the observation expected)
    extra: dict[str, Any]  # the rest of extra_info (tool kwargs, expected state)


def rows() -> list[Row]:
    return [
        Row("kv", ["kv_get", "kv_set"], ["Set colour to blue.", "Now set size to large."],
            [("kv_set", {"key": "colour", "value": "blue"}, "colour = blue"),
             ("kv_set", {"key": "size", "value": "large"}, "size = large")],
            {"rlfactory": {"open_sessions": "eager", "tool_kwargs": {"kv": {"initial": [{"key": "colour", "value": "red"}]}}},
             "kv_expected_state": [{"key": "colour", "value": "blue"}, {"key": "size", "value": "large"}]}),
        Row("kv", ["kv_set", "kv_list", "kv_delete"], ["Set colour to blue.", "Now set size to large."],
            [("kv_set", {"key": "colour", "value": "blue"}, "colour = blue"),
             ("kv_set", {"key": "size", "value": "large"}, "size = large")],
            {"rlfactory": {"open_sessions": "eager", "tool_kwargs": {"kv": {"initial": [{"key": "shape", "value": "round"}]}}},
             "kv_expected_state": [{"key": "colour", "value": "blue"}, {"key": "shape", "value": "round"},
                                   {"key": "size", "value": "large"}]}),
        Row("counter", ["counter"], ["Add 2 to the counter.", "Add 3 more."],
            [("counter", {"by": 2}, "count=12"), ("counter", {"by": 3}, "count=15")],
            {"tools_kwargs": {"counter": {"create_kwargs": {"start": 10}}}}),
        Row("python", ["python_session"], ["Store 6 times 7 in x.", "Print x plus 1."],
            [("python_session", {"code": "x = 6 * 7"}, "(the code printed nothing; use print() to show results)"), ("python_session", {"code": "print(x + 1)"}, "43")],
            {}),
    ]


def extra_info(row: Row, index: int) -> dict[str, Any]:
    settings = {**row.extra.get("rlfactory", {}), "tools": row.tools, "user_turns": row.user_turns[1:]}
    return {**{k: v for k, v in row.extra.items() if k != "rlfactory"}, "rlfactory": settings,
            "index": index, "kind": row.kind}


def write_tool_config(root: Path) -> Path:
    """verl's multi_turn.tool_config_path for the counter tool, whose module is copied next to it; the
    tool appends its create/release calls to ``root/counter_events.txt``."""
    import yaml

    shutil.copy(SERVERS / "verl_counter_tool.py", root / "verl_counter_tool.py")
    path = root / "tool_config.yaml"
    config = {"type": "native", "events_file": str(root / "counter_events.txt")}
    path.write_text(yaml.safe_dump({"tools": [{"class_name": "verl_counter_tool.CounterTool",
                                               "config": config, "tool_schema": COUNTER_SCHEMA}]}))
    return path


def schemas(names: list[str]) -> list[dict[str, Any]]:
    """The schemas the rollout renders for a row's tools (registry tools and the verl counter)."""
    from rlfactory_plugins.plugins import get_registry

    registry = get_registry()
    ordered = [n for n in TOOLS if n in names]
    return [COUNTER_SCHEMA if n == "counter" else registry.tool(n).bind({}).spec.openai_schema() for n in ordered]


def messages(row: Row) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for user, (tool, arguments, observation) in zip(row.user_turns, row.calls, strict=True):
        out += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                "name": tool, "arguments": arguments}}]},
            {"role": "tool", "content": observation},
            {"role": "assistant", "content": "Done."},
        ]
    return out


def lessons(task: list[Row]) -> list[Lesson]:
    return [(messages(row), schemas(row.tools)) for row in task]


def build_model(model_dir: Path, task: list[Row], *, steps: int = 600) -> tuple[Path, float]:
    """The tiny model taught the rows' conversations (tests/helpers/teach.py); the directory and the final loss."""
    return model_dir, build_taught_model(model_dir, lessons(task), steps=steps)


def write_rows(root: Path, task: list[Row]) -> tuple[Path, Path]:
    import pandas as pd

    records = [{
        "data_source": f"rlfactory_stateful_{row.kind}",
        "prompt": [{"role": "user", "content": row.user_turns[0]}],
        "ability": "tools",
        "reward_model": {"style": "rule", "ground_truth": ""},
        "extra_info": {**extra_info(row, i), "extra_json": json.dumps({"kind": row.kind})},
    } for i, row in enumerate(task)]
    train, val = root / "train.parquet", root / "val.parquet"
    pd.DataFrame(records).to_parquet(train)
    pd.DataFrame(records).to_parquet(val)
    return train, val
