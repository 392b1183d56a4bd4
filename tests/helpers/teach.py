"""A tiny model taught a few tool-calling conversations, for the e2e runs that need a policy that calls
tools (tests/e2e/): the conversations laid out token by token as the rollout lays them out, the
tokenizer knowing each tool set's system prompt as one token (a prompt of JSON schemas would make CPU
training slow), and a short supervised run on the assistant tokens only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: a conversation (chat messages, assistant tool calls as ``tool_calls``) and the tool schemas it sees
Lesson = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def layout(tokenizer: Any, conv: list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[list[int], list[bool]]:
    """Token ids piece by piece (prompt, each assistant turn, each observation / user turn), and which
    carry loss (the assistant's)."""
    ids: list[int] = []
    trained: list[bool] = []
    rendered = ""
    for i, message in enumerate(conv):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(conv[:i], tools=tools, add_generation_prompt=True, tokenize=False)
        after = tokenizer.apply_chat_template(conv[: i + 1], tools=tools, tokenize=False)
        piece = tokenizer.encode(before[len(rendered):], add_special_tokens=False)
        ids, trained = ids + piece, trained + [False] * len(piece)
        turn = after[len(before):].rstrip("\n")  # the assistant's tokens end at <|im_end|>
        piece = tokenizer.encode(turn, add_special_tokens=False)
        ids, trained = ids + piece, trained + [True] * len(piece)
        rendered = before + turn
    return ids, trained


def system_blocks(tokenizer: Any, tool_sets: list[list[dict[str, Any]]]) -> list[str]:
    """The system prompt each tool set renders (the chat template's tool list)."""
    blocks = set()
    for tools in tool_sets:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tools=tools, tokenize=False)
        blocks.add(text.split("<|im_end|>", 1)[0].removeprefix("<|im_start|>system\n"))
    return sorted(blocks)


def build_taught_model(model_dir: Path, lessons: list[Lesson], *, steps: int, lr: float = 3e-3, seed: int = 0) -> float:
    """The tiny model (rlfactory_plugins.testing.tiny_model) for ``lessons``, its tokenizer knowing each
    system prompt as one token, taught them; returns the final loss."""
    import torch
    from jinja2 import Template
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlfactory_plugins.testing.tiny_model import CHAT_TEMPLATE, build_tiny_model

    corpus = [Template(CHAT_TEMPLATE).render(messages=conv, tools=tools, add_generation_prompt=False)
              for conv, tools in lessons]
    build_tiny_model(model_dir, seed=seed, corpus=corpus)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens(system_blocks(tokenizer, [tools for _, tools in lessons]))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    tokenizer.save_pretrained(model_dir)
    model.save_pretrained(model_dir, safe_serialization=True)
    return teach(model_dir, lessons, steps=steps, lr=lr, seed=seed)


def teach(model_dir: Path, lessons: list[Lesson], *, steps: int, lr: float = 3e-3, seed: int = 0) -> float:
    """Have the model in ``model_dir`` memorise the lessons' assistant turns (all of them in every step:
    a few short sequences are one small batch); saves it and returns the final loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: a second thread only waits on the other, busy, core
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    laid = [layout(tokenizer, conv, tools) for conv, tools in lessons]
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
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
    model.save_pretrained(model_dir, safe_serialization=True)
    return loss_value
