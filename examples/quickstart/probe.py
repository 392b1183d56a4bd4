"""Sample rollouts of a (warm-started) demo model and score them, without verl.

Used to choose the warm start: how often does the model search, answer, and answer right,
sampling at temperature 1 like the GRPO rollout (same token layout, the real BM25 tool, the
parser's observation format), scored with the demo's reward weights. Deterministic with ``--seed``.

    python examples/quickstart/probe.py runs/demo [--n 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from task import PARSER, search_options  # noqa: E402

SEARCH = re.compile(r"<search>(.*?)</search>", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
#: the demo's reward (train.sh): weights of qa_em, qa_format, tool_verify(require_call)
WEIGHTS = {"em": 0.5, "format": 0.25, "tool": 0.25}


def _generate(model, tokenizer, ids: list[int], max_new: int) -> list[int]:
    import torch

    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=max_new, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    new = out[0, len(ids):].tolist()
    return new[: new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new


async def _rollout(model, tokenizer, obs_format, tool, question: str) -> tuple[bool, str | None]:
    """One two-turn rollout: (searched, answer)."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                           tokenize=False)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    first = _generate(model, tokenizer, ids, 32)
    text = tokenizer.decode(first)
    call = SEARCH.search(text)
    if call is None or "<answer>" in text[: call.start()]:
        answer = ANSWER.search(text)
        return False, answer.group(1) if answer else None
    call_ids = tokenizer.encode(text[: call.end()], add_special_tokens=False)
    observation = await tool.acall({"query": call.group(1).strip()}) if call.group(1).strip() else ""
    obs_ids, _ = obs_format.render(tokenizer, call_ids, [observation], max_tokens=64)
    second = tokenizer.decode(_generate(model, tokenizer, ids + call_ids + obs_ids, 24))
    answer = ANSWER.search(second)
    return bool(call.group(1).strip()), answer.group(1) if answer else None


async def probe(run_dir: Path, n: int, seed: int, split: str = "val") -> dict[str, float]:
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlfactory_plugins.plugins import get_registry

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model").eval()
    obs_format = get_registry().parser(PARSER)().observation_format(tokenizer)
    tool = get_registry().tool("search").configure(search_options(run_dir / "world" / "corpus.jsonl"))
    rows = pd.read_parquet(run_dir / "data" / f"{split}.parquet").head(n)
    parts = {"em": 0.0, "format": 0.0, "tool": 0.0, "em_searched": 0.0}
    try:
        for _, row in rows.iterrows():
            searched, answer = await _rollout(model, tokenizer, obs_format, tool, row["prompt"][0]["content"])
            gold = list(row["reward_model"]["ground_truth"])
            parts["em"] += float(answer is not None and answer.strip().lower() in [g.lower() for g in gold])
            parts["format"] += float(bool(answer and answer.strip()))
            parts["tool"] += float(searched)
            parts["em_searched"] += float(searched and answer is not None
                                          and answer.strip().lower() in [g.lower() for g in gold])
    finally:
        await tool.aclose()
    out = {k: v / len(rows) for k, v in parts.items()}
    out["em_searched"] = parts["em_searched"] / parts["tool"] if parts["tool"] else 0.0  # copy accuracy
    out["reward"] = sum(WEIGHTS[k] * out[k] for k in WEIGHTS)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="val", choices=["train", "val"])
    args = p.parse_args()
    print(json.dumps(asyncio.run(probe(args.run_dir, args.n, args.seed, args.split))))


if __name__ == "__main__":
    main()
