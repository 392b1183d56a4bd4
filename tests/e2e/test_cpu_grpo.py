"""verl's own trainer (`python -m verl.trainer.main_ppo`) runs real GRPO steps on CPU.

The command line is the GPU one (rollout.name=vllm) plus ``+plugins=rlfactory``:
rlfactory's agent loop and reward manager run the rollout and scoring, and CPU mode
swaps in the CPU platform, the transformers rollout and the CPU-only config values
(``rlfactory_device/active.yaml``).
"""

from __future__ import annotations

import math

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers.e2e import grpo_overrides, parse_console_metrics, run_main_ppo

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]

STEPS = 2


@pytest.fixture(scope="module")
def grpo_run(cpu_workspace):
    result = run_main_ppo(cpu_workspace, grpo_overrides(cpu_workspace, steps=STEPS, n_workers=2), timeout=420)
    result.succeeded()
    return result


def test_every_step_logged_metrics(grpo_run):
    metrics = grpo_run.metrics or parse_console_metrics(grpo_run.log)
    assert sorted(metrics) == list(range(1, STEPS + 1)), sorted(metrics)
    for step, m in metrics.items():
        for key in ("actor/grad_norm", "critic/score/mean", "timing_s/step", "training/rollout_probs_diff_max"):
            assert key in m, f"step {step} lacks {key}; has {sorted(m)[:20]}..."


def test_actor_receives_a_gradient(grpo_run):
    for step, m in grpo_run.metrics.items():
        grad = m["actor/grad_norm"]
        assert math.isfinite(grad) and grad > 0, f"step {step}: grad_norm={grad}"
        assert m["critic/rewards/max"] > m["critic/rewards/min"], f"step {step}: reward does not vary"


def test_rollout_and_actor_log_probs_agree(grpo_run):
    for step, m in grpo_run.metrics.items():
        assert m["training/rollout_probs_diff_valid"] == 1, f"step {step}: rollout log-probs missing"
        assert m["training/rollout_probs_diff_max"] < 1e-3, f"step {step}: {m['training/rollout_probs_diff_max']}"


def test_vllm_name_was_served_by_the_cpu_backend(grpo_run):
    assert "served by the transformers CPU backend" in grpo_run.log


def test_rlfactory_worker_shared_one_loop_object(grpo_run):
    """+plugins=rlfactory's agent_loop_manager_class ran: its worker built rlfactory_agent once."""
    assert "one shared rlfactory_plugins.verl.agent_loop.RLFactoryAgentLoop object serves" in grpo_run.log
