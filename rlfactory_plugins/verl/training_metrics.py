"""rlfactory's batch metrics in verl's own per-step metrics dict, so every ``trainer.logger`` backend
(console, file, wandb, tensorboard, mlflow, ...) gets them.

verl's V1 trainers build one ``metrics`` dict per step in ``PPOTrainer._compute_metrics(batch, metrics,
...)`` and pass it to ``self.logger.log`` right after; ``batch`` is the step's training batch (keys in
TransferQueue, every worker's trajectories). The trainer classes are found by name in
``TRAINER_REGISTRY`` (``trainer.v1.trainer_mode``). When ``verl.trainer.ppo.v1`` is imported (a
post-import hook, :func:`wrapt.register_post_import_hook`, registered by the ``verl.plugins`` entry
point, :func:`activate`), :func:`install` replaces each registered class by a subclass with :class:`TrainingMetrics`
mixed in first: its ``_compute_metrics`` runs verl's, then reads the batch's ``extra_fields`` from
TransferQueue (as verl's replay buffer reads them) and adds
:func:`rlfactory_plugins.rollout.batch_metrics.batch_metrics`. Nothing in verl is edited and no
second logger is opened. A few trajectories of each step (``rlfactory.log_samples``) go to verl's
wandb run as a Table and next to its file logger as JSON lines (:func:`log_samples`). A failure
here is logged and the step's metrics are verl's own.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from rlfactory_plugins.verl import compat

logger = logging.getLogger("rlfactory")

V1 = "verl.trainer.ppo.v1"
#: the attribute marking a class built here (so a second install does not wrap it again)
MARK = "_rlfactory_training_metrics"


def batch_records(batch: Any) -> list[dict[str, Any]]:
    """The ``extra_fields`` of every real (non-padding) trajectory of a V1 ``KVBatchMeta``."""
    import transfer_queue as tq

    if not batch.keys:
        return []
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    tags = list(batch.tags or [{}] * len(batch.keys))
    out = []
    for tag, value in zip(tags, list(data["extra_fields"]), strict=True):
        if isinstance(tag, dict) and tag.get("is_padding", False):
            continue
        fields = getattr(value, "data", value)
        out.append(fields if isinstance(fields, dict) else {})
    return out


def log_samples(config: Any, records: list[dict[str, Any]], step: int) -> int:
    """``rlfactory.log_samples`` trajectories of the batch (every ``log_samples_every`` steps) as a wandb
    Table in verl's own wandb run (when there is one in this process) and as JSON lines in
    ``rlfactory_samples.jsonl`` next to verl's file logger (when ``VERL_FILE_LOGGER_PATH`` is set).
    Not in the metrics dict: the other backends take numbers only. Returns the rows logged."""
    import json
    import os
    import sys
    from pathlib import Path

    from rlfactory_plugins.rollout.samples import COLUMNS, sample_rows
    from rlfactory_plugins.verl.rows import TRAJECTORY_KEY
    from rlfactory_plugins.verl.section import section_of

    settings = section_of(config)
    if not settings.log_samples or step % settings.log_samples_every:
        return 0
    rows = sample_rows(step, [r.get(TRAJECTORY_KEY) for r in records],
                       [r.get("reward_extra_info") for r in records], settings.log_samples)
    if not rows:
        return 0
    wandb = sys.modules.get("wandb")  # only if verl's wandb backend imported it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        table = wandb.Table(columns=list(COLUMNS), data=[[row[c] for c in COLUMNS] for row in rows])
        wandb.run.log({"rlfactory/samples": table}, step=step)
    file_logger = os.environ.get("VERL_FILE_LOGGER_PATH")
    if file_logger:
        with open(Path(file_logger).parent / "rlfactory_samples.jsonl", "a") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return len(rows)


def compact_line(step: int, metrics: dict[str, Any]) -> str:
    """One short line of the step's rlfactory metrics, for the console."""
    parts = " ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in sorted(metrics.items())
                     if k.startswith("reward/") and k.endswith("/mean") and k != "reward/total/mean")
    line = f"[rlfactory] step {step}"
    if "reward/total/mean" in metrics:
        line += f" | reward {metrics['reward/total/mean']:.3f}" + (f" ({parts})" if parts else "")
    if "tool/all/calls" in metrics and metrics.get("rollout/trajectories"):
        line += (f" | calls/traj {metrics['tool/all/calls'] / metrics['rollout/trajectories']:.2f}"
                 f" ok {metrics['tool/all/ok_rate']:.2f}")
    stops = sorted(((v, k.rsplit("/", 1)[1]) for k, v in metrics.items() if k.startswith("rollout/stop_reason/") and v),
                   reverse=True)
    if stops:
        line += " | stop " + " ".join(f"{reason} {share:.2f}" for share, reason in stops)
    return line


def metrics_of(records: list[dict[str, Any]]) -> dict[str, float]:
    from rlfactory_plugins.rollout.batch_metrics import batch_metrics
    from rlfactory_plugins.verl.rows import STATS_KEY, TRAJECTORY_KEY

    return batch_metrics(
        (r.get(TRAJECTORY_KEY) for r in records),
        (r.get(STATS_KEY) for r in records),
        (r.get("reward_extra_info") for r in records),
    )


def _loggers(config: Any) -> list[str]:
    try:
        value = config["trainer"]["logger"]
    except (KeyError, TypeError):
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class TrainingMetrics:
    """Mixed in before a verl V1 trainer class: adds rlfactory's batch metrics to each step's metrics."""

    def _compute_metrics(self, batch: Any, metrics: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = super()._compute_metrics(batch, metrics, *args, **kwargs)  # type: ignore[misc]
        try:
            records = batch_records(batch)
            ours = metrics_of(records)
            metrics.update(ours)
            step = int(kwargs.get("global_steps", args[1] if len(args) > 1 else 0) or 0)
            config = getattr(self, "config", {})
            log_samples(config, records, step)
            if ours and "console" in _loggers(config):
                print(compact_line(step, ours), flush=True)
        except Exception as e:  # noqa: BLE001 - metrics must never stop a training run
            logger.warning("rlfactory: could not add its metrics to this step's: %s: %s", type(e).__name__, e)
        return result


def install(v1: Any = None) -> list[str]:
    """Wrap every trainer of verl's ``TRAINER_REGISTRY`` (the hook's argument: the ``verl.trainer.ppo.v1`` module).

    Runs inside verl's import of its trainers, so it never raises: a verl without the names it needs
    (:data:`~rlfactory_plugins.verl.compat.PRIVATE_NAMES`) gets a warning naming them and trains as
    it would without rlfactory's metrics."""
    try:
        compat.require(__name__)
    except compat.VerlCompatError as e:
        print(f"rlfactory: training metrics are off: {e}", file=sys.stderr, flush=True)
        return []
    from verl.trainer.ppo.v1 import trainer_base

    wrapped = []
    for name, cls in list(trainer_base.TRAINER_REGISTRY.items()):
        if getattr(cls, MARK, False):
            continue
        trainer_base.TRAINER_REGISTRY[name] = type(cls.__name__, (TrainingMetrics, cls), {
            MARK: True, "__module__": __name__, "__doc__": cls.__doc__,
            "__qualname__": f"TrainingMetrics+{cls.__qualname__}",
        })
        wrapped.append(name)
    return wrapped


def activate() -> None:
    """Have :func:`install` run when (or, if already imported, now that) verl's V1 trainers are imported."""
    import wrapt

    wrapt.register_post_import_hook(install, V1)
