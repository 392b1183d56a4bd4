"""The reward side's fallback decode (a response without an rlfactory trajectory, e.g. from
verl's single-turn loop) keeps ``<answer>`` tags that the tokenizer flags as special tokens."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from transformers import AutoTokenizer

from rlfactory_plugins.verl.rows import trajectory_from_item


def _item(ids: list[int], pad: int, total: int = 32) -> SimpleNamespace:
    responses = torch.tensor(ids + [pad] * (total - len(ids)))
    mask = torch.tensor([1] * len(ids) + [0] * (total - len(ids)))
    return SimpleNamespace(
        batch={"responses": responses, "attention_mask": mask},
        non_tensor_batch={"raw_prompt": np.array([{"role": "user", "content": "q"}], dtype=object)},
    )


def test_special_answer_tags_survive_the_fallback_decode(tiny_dir):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.add_special_tokens({"additional_special_tokens": ["<answer>", "</answer>"]})
    ids = tok.encode("<answer>Paris</answer>", add_special_tokens=False)
    assert "<answer>" not in tok.decode(ids, skip_special_tokens=True)  # the premise
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.pad_token_id
    trajectory = trajectory_from_item(_item(ids + [eos], pad=eos), tok)
    assert trajectory.final_answer == "Paris"
    assert "<answer>Paris</answer>" in trajectory.response_text
