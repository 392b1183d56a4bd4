"""verl's reward loop running rlfactory's reward manager on a real DataProto.

The config is composed exactly as ``main_ppo +plugins=rlfactory`` composes it, the
tokenizer is the offline tiny model's, and scoring goes through verl's own
``RewardLoopWorker.compute_score_batch`` (per-sample ``run_single``).
"""

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

from rlfactory_plugins.verl.compose import compose_config
from rlfactory_plugins.verl.reward_manager import RLFactoryRewardManager
from rlfactory_plugins.testing.tiny_model import build_tiny_model
from tests.helpers.trajectories import make_trajectory

pytestmark = pytest.mark.timeout(120)

LAUNCH_REWARDS = "rlfactory.rewards=[{name: qa_em, weight: 1.0}, {name: tool_verify, weight: 0.1}]"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def worker(model_dir, *overrides):
    cfg = compose_config([f"actor_rollout_ref.model.path={model_dir}", *overrides])
    return RewardLoopWorker(cfg)


def batch(tokenizer, rows):
    """rows: (prompt_text, response_text, non_tensor dict) -> left-padded prompts, right-padded responses."""
    prompts = [tokenizer.encode(p) for p, _, _ in rows]
    responses = [tokenizer.encode(r) for _, r, _ in rows]
    lp, lr = max(map(len, prompts)), max(map(len, responses)) + 3
    pad = tokenizer.pad_token_id
    P = torch.tensor([[pad] * (lp - len(p)) + p for p in prompts])
    R = torch.tensor([r + [pad] * (lr - len(r)) for r in responses])
    mask = torch.tensor([[0] * (lp - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (lr - len(r))
                         for p, r in zip(prompts, responses)])
    tensors = TensorDict({"prompts": P, "responses": R, "input_ids": torch.cat([P, R], 1), "attention_mask": mask,
                          "position_ids": torch.clamp(mask.cumsum(1) - 1, min=0)}, batch_size=len(rows))
    keys = {k for _, _, nt in rows for k in nt}
    non_tensor = {}
    for k in keys:
        column = np.empty(len(rows), dtype=object)
        column[:] = [nt.get(k) for _, _, nt in rows]
        non_tensor[k] = column
    return DataProto(batch=tensors, non_tensor_batch=non_tensor)


async def test_run_single_on_agent_loop_and_single_turn_samples(model_dir):
    w = worker(model_dir, LAUNCH_REWARDS)
    assert isinstance(w.reward_manager, RLFactoryRewardManager)
    tok = w.input_tokenizer
    recorded = make_trajectory(answer="Paris").model_dump(mode="json")
    recorded["ground_truth"] = None  # filled from the data row
    row = {"data_source": "nq", "reward_model": {"ground_truth": {"target": np.array(["Paris"])}}}
    data = batch(tok, [
        ("What is the capital of France?", "<answer>Paris</answer>",
         {**row, "tool_extra_fields": {"rlfactory_trajectory": recorded}}),
        # verl's single-turn loop: no trajectory -> decode the response
        ("What is the capital of France?", "I think <answer>Lyon</answer>", {**row, "tool_extra_fields": {}}),
        ("What is the capital of France?", "The capital is <answer> the Paris </answer>", dict(row)),
    ])
    outs = await w.compute_score_batch(data)
    scores = [o["reward_score"] for o in outs]
    # sample 0: qa_em 1 + 0.1 * tool_verify 0.75; samples 1-2: no tool calls -> tool_verify 1.0
    assert scores == pytest.approx([1.075, 0.1, 1.1])
    assert outs[0]["reward_extra_info"]["reward/tool_verify"] == pytest.approx(0.75)
    assert outs[1]["reward_extra_info"]["reward/qa_em"] == 0.0
    assert len({frozenset(o["reward_extra_info"]) for o in outs}) == 1
    rm = RLFactoryRewardManager.assemble_rm_scores(data, scores)
    assert rm.sum(1).tolist() == pytest.approx(scores)


async def test_trajectory_as_own_column_and_multi_output(model_dir):
    w = worker(model_dir, LAUNCH_REWARDS)
    tok = w.input_tokenizer
    recorded = make_trajectory(answer="Berlin").model_dump(mode="json")
    data = batch(tok, [("q", "<answer>Paris</answer>", {"rlfactory_trajectory": recorded,
                                                         "reward_model": {"ground_truth": "x"}})])
    out = await w.reward_manager.run_single(data)
    assert out["reward_score"] == pytest.approx(0.075)  # the record (Berlin) wins over the decoded text


async def test_empty_rewards_use_verls_compute_score(model_dir):
    w = worker(model_dir)
    data = batch(w.input_tokenizer, [
        ("What is 6*7?", "So #### 42", {"data_source": "openai/gsm8k", "reward_model": {"ground_truth": "42"}}),
        ("What is 6*7?", "So #### 41", {"data_source": "openai/gsm8k", "reward_model": {"ground_truth": "42"}}),
    ])
    outs = await w.compute_score_batch(data)
    assert [o["reward_score"] for o in outs] == [1.0, 0.0]
    assert outs[0]["reward_extra_info"]["reward/verl"] == 1.0
