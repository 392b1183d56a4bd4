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


def test_samples_go_to_verls_wandb_run_as_a_table_and_next_to_its_file_logger(tmp_path, monkeypatch) -> None:
    """A real offline wandb run (the one verl's wandb backend opens), read back from its files."""
    import json

    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    records = [{TRAJECTORY_KEY: {"prompt": [{"role": "user", "content": f"question {i}"}], "final_answer": str(i),
                                 "stop_reason": "answer", "turns": [{"assistant_text": "<search>q</search>",
                                 "tool_calls": [{"name": "search", "result": {"status": "ok", "output": "hit"}}]}]},
                "reward_extra_info": {"reward/total": 0.5, "reward/qa_em": float(i % 2), "reward/qa_em/failed": 0.0}}
               for i in range(8)]
    config = {"rlfactory": {"log_samples": 3}}
    run = wandb.init(mode="offline", dir=str(tmp_path), project="rlf-test")
    try:
        assert training_metrics.log_samples(config, records, step=2) == 3
    finally:
        wandb.finish()
    tables = list((tmp_path / "wandb").glob("offline-run-*/files/media/table/rlfactory/samples_*.table.json"))
    assert len(tables) == 1, list((tmp_path / "wandb").rglob("*"))
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["step", "prompt", "turns", "answer", "reward", "reward_parts", "stop_reason", "calls"]
    assert [row[1] for row in table["data"]] == ["question 0", "question 2", "question 5"]  # spread over the batch
    assert "[tool search -> ok] hit" in table["data"][0][2] and json.loads(table["data"][2][5]) == {"qa_em": 1.0}
    lines = [json.loads(x) for x in (tmp_path / "rlfactory_samples.jsonl").read_text().splitlines()]
    assert [x["answer"] for x in lines] == ["0", "2", "5"] and run is not None
    assert training_metrics.log_samples({"rlfactory": {"log_samples": 0}}, records, step=3) == 0
    assert training_metrics.log_samples({"rlfactory": {"log_samples_every": 2}}, records, step=3) == 0


def test_the_console_gets_one_compact_line(monkeypatch, capsys) -> None:
    record = {TRAJECTORY_KEY: {"stop_reason": "answer", "turns": [{"tool_calls": [
        {"turn": 0, "name": "search", "result": {"name": "search", "status": "ok", "latency_s": 0.1}}]}]}, STATS_KEY: {"turns": 2.0},
        "reward_extra_info": {"reward/total": 0.75, "reward/qa_em": 1.0, "reward/tool_verify": 0.5}}
    monkeypatch.setattr(training_metrics, "batch_records", lambda batch: [record])
    trainer = Trainer()
    trainer.config = {"trainer": {"logger": ["console", "file"]}, "rlfactory": {"log_samples": 0}}
    trainer._compute_metrics("batch", {}, {}, global_steps=7, epoch=0)
    assert capsys.readouterr().out.strip() == (
        "[rlfactory] step 7 | reward 0.750 (qa_em 1.000 tool_verify 0.500) | calls/traj 1.00 ok 1.00 | stop answer 1.00")
    trainer.config = {"trainer": {"logger": ["wandb"]}, "rlfactory": {"log_samples": 0}}
    trainer._compute_metrics("batch", {}, {}, global_steps=8, epoch=0)
    assert capsys.readouterr().out == ""


def test_a_verl_without_the_names_trains_without_the_metrics(monkeypatch, capsys) -> None:
    """install runs inside verl's import of its trainers: it must warn, never raise."""
    from rlfactory_plugins.verl import compat

    def missing(user):
        raise compat.VerlCompatError("verl 9.9 lacks verl.trainer.ppo.v1.trainer_base.TRAINER_REGISTRY")

    monkeypatch.setattr(compat, "require", missing)
    assert training_metrics.install() == []
    assert "rlfactory: training metrics are off: verl 9.9 lacks" in capsys.readouterr().err
