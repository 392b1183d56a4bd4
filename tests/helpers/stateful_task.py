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

A random tiny model calls no tool, so :func:`teach` first has it memorise each row's
conversation (a few hundred AdamW steps, tokens laid out piece by piece as the rollout lays
them out). The run then really calls the tools; what it shows does not depend on the model
being exact, since every dump records what happened.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def texts(row: Row) -> list[str]:
    """The rendered conversation, for the tokenizer's corpus (the tokenizer does not exist yet: the
    tiny model's chat template rendered by jinja2, as transformers renders it)."""
    from jinja2 import Template

    from rlfactory_plugins.testing.tiny_model import CHAT_TEMPLATE

    return [Template(CHAT_TEMPLATE).render(messages=messages(row), tools=schemas(row.tools), add_generation_prompt=False)]


def layout(tokenizer: Any, row: Row) -> tuple[list[int], list[bool]]:
    """Token ids piece by piece (prompt, each assistant turn, each observation / user turn), and which
    carry loss (the assistant's)."""
    conv = messages(row)
    tools = schemas(row.tools)
    ids: list[int] = []
    trained: list[bool] = []
    rendered = ""
    for i, message in enumerate(conv):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(conv[:i], tools=tools, add_generation_prompt=True, tokenize=False)
        after = tokenizer.apply_chat_template(conv[: i + 1], tools=tools, tokenize=False)
        piece = tokenizer.encode(before[len(rendered):], add_special_tokens=False)
        ids += piece
        trained += [False] * len(piece)
        turn = after[len(before):].rstrip("\n")  # the assistant's tokens end at <|im_end|>
        piece = tokenizer.encode(turn, add_special_tokens=False)
        ids += piece
        trained += [True] * len(piece)
        rendered = before + turn
    return ids, trained


def system_blocks(tokenizer: Any, task: list[Row]) -> list[str]:
    """The system prompt each row's tool set renders (the chat template's tool list)."""
    blocks = set()
    for row in task:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tools=schemas(row.tools), tokenize=False)
        blocks.add(text.split("<|im_end|>", 1)[0].removeprefix("<|im_start|>system\n"))
    return sorted(blocks)


def build_model(model_dir: Path, task: list[Row], *, steps: int = 600) -> tuple[Path, float]:
    """The tiny model, its tokenizer knowing each row's system prompt as one token (a 400-token prompt
    of JSON schemas would make CPU training slow), taught the rows' conversations."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    build_tiny_model(model_dir, seed=0, corpus=[x for row in task for x in texts(row)])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens(system_blocks(tokenizer, task))
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.resize_token_embeddings(len(tokenizer))
    tokenizer.save_pretrained(model_dir)
    model.save_pretrained(model_dir, safe_serialization=True)
    return model_dir, teach(model_dir, task, steps=steps)


def teach(model_dir: Path, task: list[Row], *, steps: int = 600, lr: float = 3e-3, seed: int = 0) -> float:
    """Have the tiny model memorise each row's conversation; returns the final loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: a second thread only waits on the other, busy, core
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    laid = [layout(tokenizer, row) for row in task]
    width = max(len(ids) for ids, _ in laid)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in laid])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in laid])
    targets = torch.tensor([
        [nxt if keep else -100 for nxt, keep in zip(x[1:], trained[1:])] + [-100] * (width - len(x) + 1)
        for x, trained in laid
    ])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    loss_value = math.nan
    for _ in range(steps):  # every row in every step: four short sequences are one small batch
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
    model.save_pretrained(model_dir, safe_serialization=True)
    return loss_value


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
