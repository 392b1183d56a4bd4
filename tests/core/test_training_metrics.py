"""rlfactory's batch metrics join verl's per-step metrics through its V1 trainer classes (verl/training_metrics.py)."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("verl")

from rlfactory_plugins.verl import training_metrics  # noqa: E402
from rlfactory_plugins.verl.rows import STATS_KEY, TRAJECTORY_KEY  # noqa: E402


def test_every_registered_trainer_carries_the_metrics_once() -> None:
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    assert {"sync", "colocate_async", "separate_async"} <= set(TRAINER_REGISTRY)
    for name, cls in TRAINER_REGISTRY.items():
        assert issubclass(cls, training_metrics.TrainingMetrics), name
        assert cls.__mro__[1] is training_metrics.TrainingMetrics  # first: its _compute_metrics wraps verl's
    assert issubclass(get_trainer_cls("sync"), PPOTrainerSync)
    assert training_metrics.install() == []  # already wrapped: nothing wrapped twice


class VerlLike:
    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        metrics["critic/score/mean"] = 0.5


class Trainer(training_metrics.TrainingMetrics, VerlLike):
    pass


def test_the_steps_metrics_gain_the_batch_metrics(monkeypatch) -> None:
    record = {TRAJECTORY_KEY: {"stop_reason": "answer", "turns": []}, STATS_KEY: {"turns": 2.0},
              "reward_extra_info": {"reward/total": 1.0, "reward/qa_em": 1.0}}
    monkeypatch.setattr(training_metrics, "batch_records", lambda batch: [record, record])
    metrics: dict = {}
    Trainer()._compute_metrics("batch", metrics, {}, global_steps=3, epoch=0)
    assert metrics["critic/score/mean"] == 0.5  # verl's own, untouched
    assert metrics["reward/qa_em/mean"] == 1.0 and metrics["rollout/turns/mean"] == 2.0
    assert metrics["rollout/stop_reason/answer"] == 1.0 and metrics["rollout/trajectories"] == 2


def test_a_failure_leaves_verls_metrics_and_says_why(monkeypatch, caplog) -> None:
    def broken(batch):
        raise ConnectionError("transfer queue is gone")

    monkeypatch.setattr(training_metrics, "batch_records", broken)
    metrics: dict = {}
    with caplog.at_level(logging.WARNING, logger="rlfactory"):
        Trainer()._compute_metrics("batch", metrics, {}, global_steps=3, epoch=0)
    assert metrics == {"critic/score/mean": 0.5}
    assert "could not add its metrics to this step's: ConnectionError: transfer queue is gone" in caplog.text
