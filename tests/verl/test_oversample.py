"""The over-sampling replay buffer's settings, extra-prompt count and its request to the
agent-loop workers (real Ray actors); the whole sampler runs in tests/e2e/test_cpu_oversample.py."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.verl.oversample import OverSamplingReplayBuffer
from rlfactory_plugins.verl.worker import SharedLoopWorker

pytestmark = pytest.mark.timeout(180)


class FakeTrainer:
    """What the buffer reads from verl's trainer: its config, its manager, its refill_fn."""

    def __init__(self, gen_batch_size, workers=()) -> None:
        self.config = OmegaConf.create({"data": {"train_batch_size": 8, "gen_batch_size": gen_batch_size}})
        self.agent_loop_manager = type("Manager", (), {"agent_loop_workers": list(workers)})()
        self.submitted: list[int] = []

    def add_prompts(self, n: int) -> int:
        self.submitted.append(n)
        return n


def buffer(trainer: FakeTrainer, mode: str = "sync", **kwargs) -> OverSamplingReplayBuffer:
    return OverSamplingReplayBuffer(
        trainer_mode=mode, trainer_config={}, max_off_policy_threshold=8, max_off_policy_strategy="drop",
        sampler_kwargs=OmegaConf.create(kwargs), refill_fn=trainer.add_prompts,
    )


def test_settings_are_validated_with_the_key_and_the_fix():
    assert buffer(FakeTrainer(1)).settings.oversample == 0.25
    with pytest.raises(ConfigError, match=r"oversampel.*allowed keys: oversample, poll_interval_s"):
        buffer(FakeTrainer(1), oversampel=0.5)
    with pytest.raises(ConfigError, match=r"oversample: Input should be greater than or equal to 0"):
        buffer(FakeTrainer(1), oversample=-1)
    with pytest.raises(ConfigError, match=r"trainer_mode=sync, not 'async'"):
        buffer(FakeTrainer(1), mode="async")


@pytest.mark.parametrize(("gen_batch_size", "oversample", "extra"), [(1, 0.25, 2), (1, 0.3, 3), (4, 0.25, 4), (2, 0.0, 0)])
def test_extra_prompts_come_in_whole_gen_batches(gen_batch_size, oversample, extra):
    assert buffer(FakeTrainer(gen_batch_size), oversample=oversample)._extra_prompts(8) == extra


def test_cut_request_reaches_rlfactory_workers_and_warns_for_others(caplog):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ours = [ray.remote(SharedLoopWorker).remote() for _ in range(2)]
        assert buffer(FakeTrainer(1, ours))._cut_running() == 0  # nothing runs in them: ended 0, no error

        @ray.remote
        class VerlWorker:
            def ready(self) -> bool:
                return True

        theirs = [VerlWorker.remote()]
        with caplog.at_level(logging.WARNING, logger="rlfactory"):
            assert buffer(FakeTrainer(1, theirs))._cut_running() == 0
        assert "agent_loop_manager_class" in caplog.text
    finally:
        ray.shutdown()
