"""rlfactory's advantage estimators (verl/turn_credit.py, verl/branch_credit.py, verl/estimators.py) and the
per-turn reward layout in rm_scores (verl/turn_rewards.py), against advantages computed by hand."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest

pytest.importorskip("verl")

import torch  # noqa: E402
import yaml  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from rlfactory_plugins.errors import ConfigError  # noqa: E402
from rlfactory_plugins.verl import estimators, turn_rewards  # noqa: E402
from rlfactory_plugins.verl.branch_credit import ROOT, Branch, branch_grpo_advantages, common_prefix  # noqa: E402
from rlfactory_plugins.verl.group_norm import AdvantageError  # noqa: E402
from rlfactory_plugins.verl.rows import TRAJECTORY_KEY  # noqa: E402
from rlfactory_plugins.verl.turn_credit import turn_grpo_advantages, turn_index  # noqa: E402

S2 = 1 / math.sqrt(2)  # GRPO advantage of a group of two with scores 1 and 0: (1 - 0.5) / std = 0.5 / 0.7071


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def assert_close(actual: torch.Tensor, expected, tol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, tensor(expected), atol=tol, rtol=0)


def algorithm(estimator: str, **credit) -> OmegaConf:
    return OmegaConf.create({"adv_estimator": estimator, "norm_adv_by_std_in_grpo": True,
                             "rlfactory_credit": credit or None})


def verl_v1_advantages(estimator: str, rewards, mask, uids, config) -> torch.Tensor:
    """The advantages verl's V1 trainer computes (its _compute_advantage call, batch keys uid_session_index)."""
    from verl import DataProto
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask.long()},
                               non_tensors={"uid": np.array(uids, dtype=object)})
    keys = [f"{uid}_{i}_0" for i, uid in enumerate(uids)]
    out = compute_advantage_for_multi_trajectories(data, batch_keys=keys, adv_estimator=estimator, config=config)
    return out.batch["advantages"]


# -- the per-turn layout of rm_scores (turn_rewards.py) ------------------------------------------
# sample 0: turns [0,2) [4,6) [7,8), per_turn [0.5, 1.0, 0.2], total 1.0
# sample 1: turns [0,3) [5,7), padding at 7, per_turn [0.0], total 0.0
# sample 2: turns [0,1) [2,4), padding 4.., per_turn [2.0], total 3.0 (alone in its group)
MASK = [[1, 1, 0, 0, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1, 1, 0], [1, 0, 1, 1, 0, 0, 0, 0]]
LENGTHS = [8, 7, 4]
PER_TURN = [[0.5, 1.0, 0.2], [0.0], [2.0]]
TOTALS = [1.0, 0.0, 3.0]
ROWS = [  # per-turn values on each turn's last token but the last turn's; the row sums to the total
    [0, 0.5, 0, 0, 0, 1.0, 0, -0.5],
    [0, 0, 0.0, 0, 0, 0, 0.0, 0],
    [2.0, 0, 0, 1.0, 0, 0, 0, 0],
]


def test_turn_spans_and_the_row_layout_keep_the_total():
    assert turn_rewards.turn_spans(MASK[0]) == [(0, 2), (4, 6), (7, 8)]
    for i in range(3):
        row = turn_rewards.token_rewards(TOTALS[i], PER_TURN[i], MASK[i][: LENGTHS[i]])
        assert row == pytest.approx(ROWS[i][: LENGTHS[i]])
        assert sum(row) == pytest.approx(TOTALS[i])
    # no per-turn vector, or a single turn: verl's own layout (the total on the last token)
    assert turn_rewards.token_rewards(2.0, None, [1, 1, 0, 1]) == [0, 0, 0, 2.0]
    assert turn_rewards.token_rewards(2.0, [5.0], [1, 1, 1]) == [0, 0, 2.0]
    # a shorter vector: the missing turns count 0
    assert turn_rewards.token_rewards(1.0, [0.25], [1, 0, 1, 0, 1]) == [0.25, 0, 0, 0, 0.75]


def extra_fields(per_turn, turns: int) -> dict:
    import json

    return {"reward_extra_info": {"reward/total": 1.0, turn_rewards.PER_TURN_KEY: json.dumps(per_turn)},
            TRAJECTORY_KEY: {"turns": [{"index": k} for k in range(turns)]}}


def test_a_sample_whose_turns_do_not_match_the_mask_keeps_verls_layout(caplog):
    assert turn_rewards.row_for(1.0, extra_fields([0.5, 0.5], 2), [1, 0, 1]) == [0.5, 0, 0.5]
    assert turn_rewards.row_for(1.0, extra_fields(None, 2), [1, 0, 1]) is None
    assert turn_rewards.row_for(1.0, extra_fields([0.5, 0.5, 0.5], 3), [1, 0, 1]) is None  # a turn of 0 tokens
    assert "3 turns recorded but 2 runs of response_mask" in caplog.text


def test_the_v1_workers_output_carries_the_row_and_verls_plain_output_does_not():
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    fields = dict(prompt_ids=[7, 7], response_ids=[1, 2, 3, 4, 5], response_mask=[1, 1, 0, 0, 1],
                  metrics=AgentLoopMetrics(), extra_fields=extra_fields([0.25, 9.0], 2))
    ours = turn_rewards.TurnRewardOutput(**fields)
    ours.reward_score = 1.0  # as verl's _compute_score sets it, after the loop returned
    assert_close(ours.as_dict()["rm_scores"], [0, 0.25, 0, 0, 0.75])
    plain = AgentLoopOutput(**fields)
    plain.reward_score = 1.0
    assert_close(plain.as_dict()["rm_scores"], [0, 0, 0, 0, 1.0])


def test_the_classic_workers_padded_batch_is_rewritten_row_by_row():
    from types import SimpleNamespace

    response_mask = torch.tensor([m + [0, 0] for m in MASK])
    attention = torch.tensor([[1] * 3 + [1] * n + [0] * (10 - n) for n in LENGTHS])
    rm_scores = torch.zeros(3, 10)
    rm_scores[torch.arange(3), torch.tensor(LENGTHS) - 1] = tensor(TOTALS)  # verl's layout
    batch = {"rm_scores": rm_scores, "response_mask": response_mask, "prompts": torch.zeros(3, 3),
             "attention_mask": attention}
    turns = [len(turn_rewards.turn_spans(m)) for m in MASK]
    inputs = [SimpleNamespace(reward_score=TOTALS[i], extra_fields=extra_fields(PER_TURN[i], turns[i]))
              for i in range(3)]
    turn_rewards.rewrite_rm_scores(batch, inputs)
    assert_close(batch["rm_scores"], [r + [0, 0] for r in ROWS])


def test_the_layout_is_written_only_for_rlfactory_turn_grpo():
    assert turn_rewards.wanted({"algorithm": {"adv_estimator": "rlfactory_turn_grpo"}})
    assert not turn_rewards.wanted({"algorithm": {"adv_estimator": "grpo"}})
    assert not turn_rewards.wanted({})


# -- rlfactory_turn_grpo ----------------------------------------------------------------------
def test_turn_index_numbers_the_runs_of_ones():
    assert turn_index(torch.tensor(MASK)).tolist() == [[1, 1, 0, 0, 2, 2, 0, 3], [1, 1, 1, 0, 0, 2, 2, 0],
                                                        [1, 0, 2, 2, 0, 0, 0, 0]]


# By hand. Group a = samples 0, 1; group b = sample 2.
# outcome: R = (1, 0) -> A_O = (+S2, -S2); sample 2 alone: A_O = 3 (verl keeps a lone score as it is)
# turn rewards of group a (every turn but the last): 0.5, 1.0 (sample 0), 0.0 (sample 1): mean 0.5, std 0.5
#   -> z = 0, 1 (sample 0), -1 (sample 1); reward-to-go: sample 0 turns (1, 1, 0), sample 1 turns (-1, 0)
# group b has one turn reward: no baseline, z = 0
# turn_weight 0.5: A = A_O + 0.5 * to-go on the turn's tokens, 0 on observations and padding
TURN_EXPECTED = [
    [S2 + 0.5, S2 + 0.5, 0, 0, S2 + 0.5, S2 + 0.5, 0, S2],
    [-S2 - 0.5, -S2 - 0.5, -S2 - 0.5, 0, 0, -S2, -S2, 0],
    [3, 0, 3, 3, 0, 0, 0, 0],
]


def test_turn_grpo_matches_the_hand_computed_advantages():
    adv = turn_grpo_advantages(tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"], turn_weight=0.5)
    assert_close(adv, TURN_EXPECTED)


def test_turn_grpo_without_the_std_is_mean_centred():
    # A_O = (0.5, -0.5); z = r - 0.5 = 0, 0.5 (sample 0), -0.5 (sample 1); to-go (0.5, 0.5, 0) and (-0.5, 0)
    adv = turn_grpo_advantages(tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"], turn_weight=1.0, by_std=False)
    assert_close(adv, [[1.0, 1.0, 0, 0, 1.0, 1.0, 0, 0.5], [-1.0, -1.0, -1.0, 0, 0, -0.5, -0.5, 0],
                       [3, 0, 3, 3, 0, 0, 0, 0]])


def test_turn_grpo_through_verls_v1_advantage_step_reads_its_options():
    config = algorithm(estimators.TURN_GRPO, turn_weight=0.5)
    adv = verl_v1_advantages(estimators.TURN_GRPO, tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"], config)
    assert_close(adv, TURN_EXPECTED)
    off = verl_v1_advantages(estimators.TURN_GRPO, tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"],
                             algorithm(estimators.TURN_GRPO, turn_weight=0.0))
    assert_close(off[:2], [[S2 * m for m in MASK[0]], [-S2 * m for m in MASK[1]]])


def test_with_verls_plain_layout_turn_grpo_is_verls_grpo():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    rewards = torch.zeros(3, 8)
    rewards[torch.arange(3), torch.tensor(LENGTHS) - 1] = tensor(TOTALS)
    mask, uids = torch.tensor(MASK), np.array(["a", "a", "b"], dtype=object)
    ours, _ = estimators.turn_grpo(rewards, mask, uids, algorithm(estimators.TURN_GRPO))
    theirs, _ = compute_grpo_outcome_advantage(rewards, mask, uids)
    assert_close(ours, theirs.tolist(), tol=1e-6)


def test_a_bad_credit_option_names_the_key():
    with pytest.raises(ConfigError, match=r"algorithm\.rlfactory_credit\.turn_weight"):
        estimators.turn_grpo(tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"],
                             algorithm(estimators.TURN_GRPO, turn_weight=-1))
    with pytest.raises(AdvantageError, match="differ in shape"):
        turn_grpo_advantages(torch.zeros(2, 3), torch.ones(2, 4), ["a", "a"])


# -- rlfactory_branch_grpo --------------------------------------------------------------------
# Group g: 0 global; 1 forked from 0 after 4 tokens; 2 forked from 0 after 2; 3 forked from 1 after 6.
# Scores (1, 0, 1, 0): mean 0.5, std sqrt(1/3) -> GRPO advantages (+a, -a, +a, -a), a = 0.5 * sqrt(3).
# Common prefixes: c01 = 4, c02 = 2, c03 = min(6, 4) = 4, c12 = 2, c13 = 6, c23 = min(6, 4, 2) = 2.
# Token t of i: the mean advantage of the samples j with c(i, j) > t. Position 5 is an observation (mask 0).
# Group h: two global samples with scores 2 and 0: plain GRPO, (+S2, -S2) everywhere.
A = 0.5 * math.sqrt(3)
BRANCHES = [ROOT, Branch(0, 4), Branch(0, 2), Branch(1, 6), ROOT, ROOT]
BRANCH_UIDS = ["g", "g", "g", "g", "h", "h"]
BRANCH_SCORES = [1.0, 0.0, 1.0, 0.0, 2.0, 0.0]
BRANCH_MASK = [[1, 1, 1, 1, 1, 0, 1, 1]] * 6
BRANCH_EXPECTED = [
    [0, 0, -A / 3, -A / 3, A, 0, A, A],
    [0, 0, -A / 3, -A / 3, -A, 0, -A, -A],
    [0, 0, A, A, A, 0, A, A],
    [0, 0, -A / 3, -A / 3, -A, 0, -A, -A],
    [S2, S2, S2, S2, S2, 0, S2, S2],
    [-S2, -S2, -S2, -S2, -S2, 0, -S2, -S2],
]


def branch_rewards() -> torch.Tensor:
    rewards = torch.zeros(6, 8)
    rewards[:, -1] = tensor(BRANCH_SCORES)
    return rewards


def test_common_prefixes_follow_the_tree():
    c = common_prefix(BRANCHES, [0, 1, 2, 3])
    off_diagonal = [[c[i, j].item() for j in range(4) if j != i] for i in range(4)]
    assert off_diagonal == [[4, 2, 4], [4, 2, 6], [2, 2, 2], [4, 6, 2]]
    assert math.isinf(c[0, 0].item())


def test_branch_grpo_matches_the_hand_computed_attribution():
    adv = branch_grpo_advantages(branch_rewards(), torch.tensor(BRANCH_MASK), BRANCH_UIDS, BRANCHES)
    assert_close(adv, BRANCH_EXPECTED)


def test_branch_grpo_through_verls_v1_advantage_step_with_the_batchs_branches():
    with estimators.batch_context(branches=BRANCHES):
        adv = verl_v1_advantages(estimators.BRANCH_GRPO, branch_rewards(), torch.tensor(BRANCH_MASK), BRANCH_UIDS,
                                 algorithm(estimators.BRANCH_GRPO))
    assert_close(adv, BRANCH_EXPECTED)


def test_without_branches_branch_grpo_is_verls_grpo():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    mask, uids = torch.tensor(BRANCH_MASK), np.array(BRANCH_UIDS, dtype=object)
    ours, _ = estimators.branch_grpo(branch_rewards(), mask, uids, algorithm(estimators.BRANCH_GRPO))
    theirs, _ = compute_grpo_outcome_advantage(branch_rewards(), mask, uids)
    assert_close(ours, theirs.tolist(), tol=1e-6)


@pytest.mark.parametrize(
    ("branches", "message"),
    [
        ([ROOT, Branch(4, 2), ROOT, ROOT, ROOT, ROOT], "a branch belongs to its parent's group"),
        ([Branch(1, 2), Branch(0, 2), ROOT, ROOT, ROOT, ROOT], "cycle"),
        ([ROOT, Branch(0, 9), ROOT, ROOT, ROOT, ROOT], "outside 0..8"),
        ([ROOT, Branch(7, 1), ROOT, ROOT, ROOT, ROOT], "not another row"),
        ([ROOT] * 5, "5 branch records for a batch of 6"),
    ],
)
def test_branch_records_that_do_not_fit_the_batch_are_refused(branches, message):
    with pytest.raises(AdvantageError, match=message):
        branch_grpo_advantages(branch_rewards(), torch.tensor(BRANCH_MASK), BRANCH_UIDS, branches)


# -- registration and config ------------------------------------------------------------------
def test_both_estimators_are_registered_with_verl():
    import verl  # noqa: F401 - loads rlfactory's verl.plugins entry point
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    assert get_adv_estimator_fn(estimators.TURN_GRPO) is estimators.turn_grpo
    assert get_adv_estimator_fn(estimators.BRANCH_GRPO) is estimators.branch_grpo
    estimators.register()  # a second registration of the same functions is fine


def test_options_come_from_the_batch_context_first_and_plus_plugins_leaves_algorithm_alone():
    from rlfactory_plugins.config import CreditConfig

    text = resources.files("rlfactory_plugins.verl.hydra_config").joinpath("plugins/rlfactory.yaml").read_text()
    assert "algorithm" not in yaml.safe_load(text)  # +plugins=rlfactory changes no verl key it need not
    given = algorithm(estimators.TURN_GRPO, turn_weight=0.5)
    assert estimators.credit_options(given).turn_weight == 0.5
    assert estimators.credit_options(None) == CreditConfig()
    with estimators.batch_context(CreditConfig(turn_weight=0.25)):
        assert estimators.credit_options(given).turn_weight == 0.25
        adv = verl_v1_advantages(estimators.TURN_GRPO, tensor(ROWS), torch.tensor(MASK), ["a", "a", "b"],
                                 algorithm(estimators.TURN_GRPO))
    b = S2 + 0.25  # sample 0 of TURN_EXPECTED with turn_weight 0.25
    assert_close(adv[0], [b, b, 0, 0, b, b, 0, S2])


# -- the V1 trainer's advantage step: options and branch records (advantage_context.py) ----------
def test_branch_records_name_their_parent_by_session_and_become_rows():
    from rlfactory_plugins.verl.advantage_context import BRANCH_KEY, branches_of

    keys = ["g_0_0", "g_1_0", "g_2_0", "g_3_0", "h_0_0", "h_1_0"]
    records = [{}, {BRANCH_KEY: {"parent": 0, "prefix": 4}}, {BRANCH_KEY: {"parent": "0", "prefix": 2}},
               {BRANCH_KEY: {"parent": 1, "prefix": 6}}, None, {BRANCH_KEY: None}]
    assert branches_of(keys, records) == BRANCHES
    with pytest.raises(AdvantageError, match="parent session '7' is not in this batch"):
        branches_of(["g_0_0", "g_1_0"], [{}, {BRANCH_KEY: {"parent": "7", "prefix": 1}}])


class VerlLikeTrainer:
    def __init__(self, estimator: str) -> None:
        self.config = {"algorithm": {"adv_estimator": estimator}, "rlfactory": {"credit": {"turn_weight": 0.5}}}
        self.seen = "not called"

    def _compute_advantage(self, batch, metrics):
        self.seen = (estimators._options.get(), estimators._branches.get())
        return batch


@pytest.mark.parametrize(
    ("estimator", "branches"),
    [(estimators.BRANCH_GRPO, [ROOT, Branch(0, 3)]), (estimators.TURN_GRPO, None)],
)
def test_the_advantage_step_runs_inside_the_batchs_context_for_rlfactorys_estimators(monkeypatch, estimator,
                                                                                       branches):
    from types import SimpleNamespace

    from rlfactory_plugins.config import CreditConfig
    from rlfactory_plugins.verl import advantage_context

    class Trainer(advantage_context.AdvantageContext, VerlLikeTrainer):
        pass

    records = [{}, {advantage_context.BRANCH_KEY: {"parent": "0", "prefix": 3}}]
    monkeypatch.setattr(advantage_context, "fetch_records", lambda batch: records)
    batch = SimpleNamespace(keys=["u_0_0", "u_1_0"])
    trainer = Trainer(estimator)
    metrics: dict[str, float] = {}
    assert trainer._compute_advantage(batch, metrics=metrics) is batch
    assert trainer.seen == (CreditConfig(turn_weight=0.5), branches)
    expected = {"rlfactory/credit/branched_samples": 1.0, "rlfactory/credit/shared_prefix_tokens/mean": 3.0}
    assert metrics == (expected if branches else {})
    assert estimators._options.get() is None and estimators._branches.get() is None


def test_verls_estimators_run_outside_any_context():
    from rlfactory_plugins.verl import advantage_context

    class Trainer(advantage_context.AdvantageContext, VerlLikeTrainer):
        pass

    trainer = Trainer("grpo")
    trainer._compute_advantage(object(), metrics={})
    assert trainer.seen == (None, None)


def test_every_registered_v1_trainer_carries_the_context_under_the_metrics():
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    from rlfactory_plugins.verl import advantage_context, training_metrics

    for name, cls in TRAINER_REGISTRY.items():
        assert issubclass(cls, advantage_context.AdvantageContext), name
        assert cls.__mro__[1] is training_metrics.TrainingMetrics, name
    assert advantage_context.install() == []
