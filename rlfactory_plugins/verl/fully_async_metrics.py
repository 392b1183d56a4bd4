"""rlfactory's batch metrics in the per-step metrics of verl's fully-async trainer.

:mod:`rlfactory_plugins.verl.training_metrics` extends verl's V1 trainers; the fully-async trainer is
built on ``SeparateRayPPOTrainer`` (``verl.experimental.separation.ray_trainer``), whose
``_fit_collect_metrics(batch)`` fills the step's ``self.metrics`` from the step's training batch, a
``DataProto`` whose ``non_tensor_batch`` holds every trajectory's ``extra_fields`` (rlfactory's record
and statistics) and its reward parts (the ``reward/<part>`` columns of ``reward_extra_info``). When
that module is imported (a post-import hook registered by the ``verl.plugins`` entry point), this wraps
the method so it then adds :func:`~rlfactory_plugins.verl.training_metrics.metrics_of` of the batch:
``reward/<part>/mean``, ``tool/<name>/...``, ``rollout/stop_reason/...`` reach every ``trainer.logger``.

Guarded like :mod:`rlfactory_plugins.verl.fully_async`: verl 0.9 only, the names it touches checked,
never raises (a failure is logged and the step keeps verl's metrics).
"""

from __future__ import annotations

import functools
import logging
import sys
from types import ModuleType
from typing import Any

from rlfactory_plugins.verl import compat
from rlfactory_plugins.verl.fully_async import SUBSTITUTED_IN

logger = logging.getLogger("rlfactory")

SEPARATION_MODULE = "verl.experimental.separation.ray_trainer"
MARK = "_rlfactory_fully_async_metrics"
REWARD_PREFIX = "reward/"


def batch_records(batch: Any) -> list[dict[str, Any]]:
    """Per trajectory of a ``DataProto``: its rlfactory record, statistics and reward parts."""
    from rlfactory_plugins.verl.rows import STATS_KEY, TRAJECTORY_KEY

    columns = batch.non_tensor_batch
    rewards = [k for k in columns if k.startswith(REWARD_PREFIX)]
    return [{
        TRAJECTORY_KEY: columns[TRAJECTORY_KEY][i] if TRAJECTORY_KEY in columns else None,
        STATS_KEY: columns[STATS_KEY][i] if STATS_KEY in columns else None,
        "reward_extra_info": {k: columns[k][i] for k in rewards},
    } for i in range(len(batch))]


def supported() -> bool:
    return compat.installed_version().split("+")[0] in SUBSTITUTED_IN and not compat.missing(
        [n for n in compat.PRIVATE_NAMES if n.used_by == __name__]
    )


def install(module: ModuleType) -> bool:
    """Wrap ``module.SeparateRayPPOTrainer._fit_collect_metrics`` (the hook's argument); never raises."""
    cls = getattr(module, "SeparateRayPPOTrainer", None)
    original = getattr(cls, "_fit_collect_metrics", None)
    if original is None or getattr(original, MARK, False):
        return False
    if not supported():
        print(f"rlfactory: verl {compat.installed_version()}'s fully-async trainer logs no rlfactory metrics "
              f"(written for verl {SUBSTITUTED_IN})", file=sys.stderr, flush=True)
        return False

    @functools.wraps(original)
    def _fit_collect_metrics(self: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, batch, *args, **kwargs)
        try:
            from rlfactory_plugins.verl.training_metrics import metrics_of

            self.metrics.update(metrics_of(batch_records(batch)))
        except Exception as e:  # noqa: BLE001 - never fail a training step over metrics
            logger.warning("rlfactory: no rlfactory metrics for this step: %s: %s", type(e).__name__, e)
        return result

    setattr(_fit_collect_metrics, MARK, True)
    cls._fit_collect_metrics = _fit_collect_metrics  # type: ignore[union-attr]
    return True


def activate() -> None:
    """Have :func:`install` run when (or, if already imported, now that) verl's separation trainer is imported."""
    import wrapt

    wrapt.register_post_import_hook(install, SEPARATION_MODULE)
