"""Over-sampling on verl's V1 sync trainer: extra groups are started each step, the first
complete ``train_batch_size`` groups are trained on and the rest are ended and discarded."""

from __future__ import annotations

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers.e2e import build_workspace, grpo_overrides, run_main_ppo

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]

STEPS, BATCH, EXTRA = 2, 4, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ws = build_workspace(tmp_path_factory.mktemp("oversample"))
    overrides = grpo_overrides(ws, steps=STEPS, n_workers=2) + [
        "trainer.v1.sampler.custom_sampler.path=pkg://rlfactory_plugins.verl.oversample",
        "trainer.v1.sampler.custom_sampler.name=OverSamplingReplayBuffer",
        f"+trainer.v1.sampler.sampler_kwargs.oversample={EXTRA / BATCH}",
        "data.gen_batch_size=1",
    ]
    assert f"data.train_batch_size={BATCH}" in overrides
    result = run_main_ppo(ws, overrides, timeout=420)
    result.succeeded()
    return result


def test_each_step_starts_extra_groups_and_trains_on_a_full_batch(run):
    assert sorted(run.metrics) == list(range(1, STEPS + 1)), sorted(run.metrics)
    for step, m in run.metrics.items():
        assert m["training/oversample/extra_prompts"] == EXTRA, step
        # every group dispatched for the step ended; all but train_batch_size of them were dropped
        assert m["training/oversample/discarded_groups"] == EXTRA, step
        assert m["training/oversample/cut_trajectories"] >= 0 and m["training/oversample/drain_s"] >= 0
        assert m["actor/grad_norm"] > 0, step
