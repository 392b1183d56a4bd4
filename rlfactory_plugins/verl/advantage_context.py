"""What rlfactory's advantage estimators need from verl's V1 trainers: the options and the branch records.

verl hands a registered estimator nothing per sample but rewards, mask and ``uid``, and its
``config`` is the ``algorithm`` node (the ``rlfactory:`` section is not in it); the V1 trainer's
``_compute_advantage(batch, metrics)`` reads only fixed fields back from its TransferQueue. When
``algorithm.adv_estimator`` is ``rlfactory_turn_grpo`` or ``rlfactory_branch_grpo``,
:class:`AdvantageContext`, mixed in before each trainer class of ``TRAINER_REGISTRY`` (as
:mod:`.training_metrics` does), runs verl's step inside
:func:`~rlfactory_plugins.verl.estimators.batch_context` with ``rlfactory.credit`` and, for
``rlfactory_branch_grpo``, every row's branch record. A branched sample says where it comes from in its loop
output's ``extra_fields[BRANCH_KEY] = {"parent": <session_id of the sample it was forked from>, "prefix":
<response tokens shared with it>}`` (a global sample has none); the batch's keys
(``{uid}_{session_id}_{index}``) turn each parent's session into its batch row. Every other
estimator runs verl's step untouched, and so does verl's classic trainer (not hooked).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rlfactory_plugins.verl import compat
from rlfactory_plugins.verl.branch_credit import ROOT, Branch
from rlfactory_plugins.verl.estimators import BRANCH_GRPO, TURN_GRPO, batch_context
from rlfactory_plugins.verl.group_norm import AdvantageError

V1 = "verl.trainer.ppo.v1"
BRANCH_KEY = "rlfactory_branch"
MARK = "_rlfactory_advantage_context"


def _uid_session(key: str) -> tuple[str, str]:
    fields = key.rsplit("_", 2)
    if len(fields) != 3:
        raise AdvantageError(f"batch key {key!r} is not {{uid}}_{{session_id}}_{{index}} (verl's V1 trainer keys)")
    return fields[0], fields[1]


def branches_of(keys: Sequence[str], records: Sequence[Mapping[str, Any] | None]) -> list[Branch]:
    """One :class:`Branch` per batch row, its parent given as the row of the parent's session."""
    rows: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        rows.setdefault(_uid_session(key), i)
    out = []
    for key, record in zip(keys, records, strict=True):
        link = record.get(BRANCH_KEY) if isinstance(record, Mapping) else None
        if not isinstance(link, Mapping) or link.get("parent") is None:
            out.append(ROOT)
            continue
        uid, _ = _uid_session(key)
        parent = rows.get((uid, str(link["parent"])))
        if parent is None:
            raise AdvantageError(
                f"{key}: its parent session {link['parent']!r} is not in this batch; a branch trains with its group"
            )
        out.append(Branch(parent=parent, prefix=int(link.get("prefix", 0))))
    return out


def fetch_records(batch: Any) -> list[Mapping[str, Any] | None]:
    """The ``extra_fields`` of every row of a V1 ``KVBatchMeta`` (padding rows included: rows stay aligned)."""
    import transfer_queue as tq

    if not batch.keys:
        return []
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    return [getattr(v, "data", v) for v in list(data["extra_fields"])]


class AdvantageContext:
    """Mixed in before a verl V1 trainer class: rlfactory's estimators see the options and the branch records."""

    def _compute_advantage(self, batch: Any, metrics: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        config = getattr(self, "config", None)
        estimator = str(config["algorithm"]["adv_estimator"]) if config is not None else None
        if estimator not in (TURN_GRPO, BRANCH_GRPO):
            return super()._compute_advantage(batch, metrics, *args, **kwargs)  # type: ignore[misc]
        from rlfactory_plugins.verl.section import section_of

        branches = branches_of(list(batch.keys), fetch_records(batch)) if estimator == BRANCH_GRPO else None
        if branches is not None:  # in verl's logger: how many of the step's samples were attributed as branches
            forked = [b for b in branches if b.parent is not None]
            metrics["rlfactory/credit/branched_samples"] = float(len(forked))
            metrics["rlfactory/credit/shared_prefix_tokens/mean"] = (
                sum(b.prefix for b in forked) / len(forked) if forked else 0.0
            )
        with batch_context(section_of(config).credit, branches):
            return super()._compute_advantage(batch, metrics, *args, **kwargs)  # type: ignore[misc]


def install(v1: Any = None) -> list[str]:
    """Wrap every trainer of verl's ``TRAINER_REGISTRY`` (run by the post-import hook of :func:`activate`)."""
    try:
        compat.require(__name__)
    except compat.VerlCompatError as e:
        print(f"rlfactory: rlfactory_turn_grpo/rlfactory_branch_grpo get default options and no branches: {e}",
              file=sys.stderr, flush=True)
        return []
    from verl.trainer.ppo.v1 import trainer_base

    wrapped = []
    for name, cls in list(trainer_base.TRAINER_REGISTRY.items()):
        if getattr(cls, MARK, False):
            continue
        trainer_base.TRAINER_REGISTRY[name] = type(cls.__name__, (AdvantageContext, cls), {
            MARK: True, "__module__": __name__, "__doc__": cls.__doc__,
            "__qualname__": f"AdvantageContext+{cls.__qualname__}",
        })
        wrapped.append(name)
    return wrapped


def activate() -> None:
    """Have :func:`install` run when (or, if already imported, now that) verl's V1 trainers are imported."""
    import wrapt

    wrapt.register_post_import_hook(install, V1)
