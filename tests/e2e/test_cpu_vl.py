"""verl's ``main_ppo`` with ``+plugins=rlfactory`` on the tiny vision-language model (Qwen2-VL, random weights,
taught to call the image pack's ``image_zoom`` first): the zoomed image goes back to the model as image tokens,
verl's training side recomputes the log-probs with the same pixels (``multi_modal_data``) and M-RoPE positions,
and they equal the rollout's."""

from __future__ import annotations

import asyncio
import base64
import io
import math
from pathlib import Path

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers.e2e import Workspace, grpo_overrides, read_dumps, run_main_ppo, with_settings
from tests.helpers.teach import layout, system_blocks

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]
pytest.importorskip("rlfactory_tool_image", reason="the image pack (tool_plugins/rlfactory-tool-image)")

STEPS = 2
QUESTIONS = ["What colour is the corner?", "Zoom into the middle.", "What is in the image?", "Look closer."]
SECTION = {"parser": "hermes", "tools": ["image_zoom"], "rollout": {"max_turns": 2}}
# every taught response starts with the same tool call: a reward of the sampled text after the tool result,
# so GRPO groups have non-zero advantages and the actor a real gradient
REWARD_SOURCE = '''\
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return (sum(map(ord, solution_str or "")) % 10) / 10.0
'''
SETTINGS = {  # replaces grpo_overrides' values of these keys
    "data.max_prompt_length": "64",
    "data.max_response_length": "160",
    "actor_rollout_ref.rollout.n": "2",
    "actor_rollout_ref.actor.optim.lr": "1e-5",  # the run checks the image path, not learning: keep the taught policy
    # one micro-batch per worker (4 trajectories): verl's Qwen2-VL forward fails on a micro-batch without any
    # image under transformers 5 (verl/models/transformers/qwen2_vl.py:393-394: model.visual's output has no .mean)
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "4",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "4",
}


def row_image() -> str:
    from PIL import Image

    im = Image.new("RGB", (56, 56), (250, 120, 0))
    im.paste((0, 0, 200), (0, 0, 14, 14))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def lesson(question: str) -> list[dict]:
    call = {"type": "function", "function": {"name": "image_zoom", "arguments": {"x": 28, "y": 28, "factor": 2}}}
    return [{"role": "user", "content": question}, {"role": "assistant", "content": "", "tool_calls": [call]}]


def tool_schemas(tokenizer) -> list[dict]:
    """What the rollout renders in the prompt: the schemas of rlfactory's runtime for the section."""
    from rlfactory_plugins.rollout.runtime import close_runtimes, get_runtime
    from rlfactory_plugins.verl.section import section_config

    async def schemas() -> list[dict]:
        try:
            return (await get_runtime(section_config(SECTION), tokenizer, {}, ())).schemas_for(None)
        finally:
            await close_runtimes()

    return asyncio.run(schemas())


def build_model(model_dir: Path, steps: int = 300) -> float:
    """The tiny VL model, its tokenizer knowing the tool prompt as one token, taught the first (tool-call) turn."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from rlfactory_plugins.testing.tiny_vl_model import build_tiny_vl_model

    build_tiny_vl_model(model_dir, corpus=QUESTIONS)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    schemas = tool_schemas(tokenizer)
    tokenizer.add_tokens(system_blocks(tokenizer, [schemas]))
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    laid = [layout(tokenizer, lesson(q), schemas) for q in QUESTIONS]
    width = max(len(ids) for ids, _ in laid)
    ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x, _ in laid])
    targets = torch.tensor([[n if keep else -100 for n, keep in zip(x[1:], t[1:])] + [-100] * (width - len(x) + 1)
                            for x, t in laid])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    torch.manual_seed(0)
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id).long()).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokenizer.save_pretrained(model_dir)
    model.save_pretrained(model_dir, safe_serialization=True)
    return float(loss.detach())


def write_rows(root: Path) -> tuple[Path, Path]:
    import pandas as pd

    image = row_image()
    records = [{
        "data_source": "rlfactory_vl_e2e",
        "prompt": [{"role": "user", "content": q}],
        "reward_model": {"style": "rule", "ground_truth": "orange"},
        "extra_info": {"index": i, "rlfactory": {"tool_kwargs": {"image": {"image": image}}}},
    } for i, q in enumerate(QUESTIONS)]
    train, val = root / "train.parquet", root / "val.parquet"
    pd.DataFrame(records).to_parquet(train)
    pd.DataFrame(records).to_parquet(val)
    return train, val


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vl")
    loss = build_model(root / "model")
    assert loss < 0.05, f"the tiny VL model did not learn to call image_zoom (loss {loss:.3f})"
    train, val = write_rows(root)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    ws = Workspace(root=root, model=root / "model", train_file=train, val_file=val, reward_file=reward)
    overrides = with_settings(grpo_overrides(ws, steps=STEPS, n_workers=2), SETTINGS) + [
        "actor_rollout_ref.model.trust_remote_code=True",  # the tiny model's image-only processor
        # verl's remove-padding attention for Qwen2-VL is flash-attn only (verl/models/transformers/qwen2_vl.py:
        # _flash_use_top_left_mask is defined only with flash-attn or an NPU, used at line 331)
        "actor_rollout_ref.model.use_remove_padding=False",
        "actor_rollout_ref.rollout.dtype=float32",
        "++actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype: fp32, reduce_dtype: fp32, buffer_dtype: fp32}",
        "rlfactory.parser=hermes",
        "rlfactory.tools=[image_zoom]",
        "rlfactory.rollout.max_turns=2",
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
    ]
    result = run_main_ppo(ws, overrides, timeout=480)
    result.succeeded()
    dumps = read_dumps(root / "trajectories")
    return result, dumps


def test_two_steps_with_a_gradient_and_equal_log_probs(run):
    result, _ = run
    assert sorted(result.metrics) == list(range(1, STEPS + 1)), sorted(result.metrics)
    for step, m in result.metrics.items():
        assert math.isfinite(m["actor/grad_norm"]) and m["actor/grad_norm"] > 0, f"step {step}: {m['actor/grad_norm']}"
        assert m["training/rollout_probs_diff_valid"] == 1, f"step {step}: rollout log-probs missing"
        assert m["training/rollout_probs_diff_max"] < 1e-3, f"step {step}: {m['training/rollout_probs_diff_max']}"


def test_the_image_tool_ran_and_its_image_went_back_to_the_model(run):
    result, dumps = run
    calls = [c for t in dumps for turn in t["turns"] for c in turn["tool_calls"]]
    zooms = [c for c in calls if c["name"] == "image_zoom" and c["result"]["status"] == "ok"]
    assert zooms and len(zooms) >= len(dumps) // 2, f"{len(zooms)} image_zoom calls in {len(dumps)} trajectories"
    assert all(c["result"]["images"][0]["sha256"] for c in zooms)
    assert any("<|image_pad|>" in t["response_text"] for t in dumps)  # the image tokens, not [image WxH png]
    assert not any("[image 56x56 png]" in t["response_text"] for t in dumps)
    assert "served by the transformers CPU backend" in result.log
