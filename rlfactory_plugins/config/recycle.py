"""Config of recycling (``rlfactory.rollout.recycle``): groups not needed by a step keep running and
enter a later step's batch, instead of being cut and dropped as over-sampling does. See docs/recycling.md.

On, ``+plugins=rlfactory`` runs verl's V1 trainer in its ``colocate_async`` mode (same colocated
layout as ``sync``; generation is aborted while the step trains and resumed on the new weights) with
rlfactory's :class:`~rlfactory_plugins.verl.recycle.RecyclingReplayBuffer`. The verl keys it sets are
interpolations of ``${rlfactory_recycle:<key>}`` in ``plugins/rlfactory.yaml``, whose values are
:func:`verl_value`'s (off: verl's own defaults); the resolver is registered by the adapter
(:func:`rlfactory_plugins.verl.compose.register_resolvers`) on ``import verl``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RECYCLER_MODULE = "rlfactory_plugins.verl.recycle"
RECYCLER_NAME = "RecyclingReplayBuffer"
TRAINER_MODE = "colocate_async"
RESOLVER = "rlfactory_recycle"
#: ``rlfactory.rollout.recycle`` in the composed config
SECTION = "rlfactory.rollout.recycle"


class RecycleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="keep groups a step did not need running into later steps (verl's colocate_async trainer) "
        "instead of cutting and dropping them",
    )
    oversample: float = Field(
        default=1.0, gt=0.0, le=8.0,
        description="groups kept in flight beyond the step's batch, as a fraction of data.train_batch_size "
        "(verl's trainer.v1.colocate_async.num_warmup_batches); rounded down to whole data.gen_batch_size chunks",
    )
    max_staleness: int | None = Field(
        default=2, ge=1,
        description="a group started at step s is trained at step s + max_staleness at the latest: sampling waits "
        "for it (never dropped; verl's max_off_policy_strategy=wait); null: no bound",
    )


#: the verl keys recycling sets, and their value when it is off (verl 0.9's defaults)
OFF_VALUES: dict[str, Any] = {
    "trainer_mode": "sync",
    "sampler_path": None,
    "sampler_name": None,
    "max_off_policy_threshold": 8,
    "max_off_policy_strategy": "drop",
    "num_warmup_batches": 1,
}


def verl_value(key: str, recycle: RecycleConfig) -> Any:
    """The value of verl key ``key`` (a name of :data:`OFF_VALUES`) that ``recycle`` asks for."""
    if key not in OFF_VALUES:
        raise KeyError(f"${{{RESOLVER}:{key}}}: unknown key (known: {', '.join(OFF_VALUES)})")
    if not recycle.enabled:
        return OFF_VALUES[key]
    on = {
        "trainer_mode": TRAINER_MODE,
        "sampler_path": f"pkg://{RECYCLER_MODULE}",
        "sampler_name": RECYCLER_NAME,
        # verl's threshold counts the versions a group spans (its start step included)
        "max_off_policy_threshold": None if recycle.max_staleness is None else recycle.max_staleness + 1,
        "max_off_policy_strategy": "wait",
        "num_warmup_batches": recycle.oversample,
    }
    return on[key]


def check_recycle(cfg: Any, recycle: RecycleConfig, rollout: Any = None) -> None:
    """Raise :class:`~rlfactory_plugins.errors.ConfigError` where recycling is on and the training config
    (verl's, DictConfig or plain mapping) cannot recycle: each names the key, why, and what to do instead.
    ``rollout``: the ``rlfactory.rollout`` model (its straggler, deadline and branching options)."""
    from rlfactory_plugins.config.check import get_key
    from rlfactory_plugins.errors import ConfigError

    if not recycle.enabled:
        return
    on = "rlfactory.rollout.recycle.enabled=true"
    if get_key(cfg, "async_training") is not None:
        raise ConfigError(
            f"{on}: verl's fully-async trainer already keeps unfinished trajectories running across weight syncs "
            "(async_training.partial_rollout); drop rlfactory.rollout.recycle there"
        )
    if get_key(cfg, "trainer.use_v1") is False:
        raise ConfigError(f"{on} needs verl's V1 trainer (trainer.use_v1=true, verl's default): set trainer.use_v1=true")
    mode = get_key(cfg, "trainer.v1.trainer_mode")
    if mode is not None and mode != TRAINER_MODE:
        raise ConfigError(
            f"trainer.v1.trainer_mode={mode!r}: recycling runs verl's {TRAINER_MODE} mode (it aborts generation "
            f"while the step trains and resumes it after); drop the trainer_mode override ({on} sets it)"
        )
    name = get_key(cfg, "trainer.v1.sampler.custom_sampler.name")
    if name is not None and name != RECYCLER_NAME:
        raise ConfigError(
            f"trainer.v1.sampler.custom_sampler.name={name!r}: {on} uses {RECYCLER_NAME}, which keeps the groups "
            "a step does not need for later steps (over-sampling cuts and drops them); drop "
            "trainer.v1.sampler.custom_sampler (and its sampler_kwargs), or turn recycling off to over-sample"
        )
    strategy = get_key(cfg, "trainer.v1.sampler.max_off_policy_strategy")
    if strategy is not None and strategy != "wait" and get_key(cfg, "trainer.v1.sampler.max_off_policy_threshold"):
        raise ConfigError(
            f"trainer.v1.sampler.max_off_policy_strategy={strategy!r}: recycling never drops a group for its age; "
            "drop the override and bound the age with rlfactory.rollout.recycle.max_staleness"
        )
    batch = get_key(cfg, "data.train_batch_size")
    gen = get_key(cfg, "data.gen_batch_size") or batch
    if batch and gen and int(recycle.oversample * int(batch) // int(gen)) == 0:
        raise ConfigError(
            f"rlfactory.rollout.recycle.oversample={recycle.oversample}: {recycle.oversample} x data.train_batch_size="
            f"{batch} is less than one data.gen_batch_size={gen} chunk, so no group would be kept in flight "
            "(verl fetches prompts in whole gen_batch_size chunks); set data.gen_batch_size=1 or raise oversample"
        )
    if rollout is None:
        return
    if rollout.straggler_fraction is not None:
        raise ConfigError(
            f"rlfactory.rollout.straggler_fraction={rollout.straggler_fraction}: the straggler policy ends a step's "
            f"slowest trajectories, which recycling lets run on into a later step instead; drop it ({on} bounds "
            "how late a group is trained with rlfactory.rollout.recycle.max_staleness)"
        )
    if rollout.trajectory_timeout_s is not None:
        raise ConfigError(
            f"rlfactory.rollout.trajectory_timeout_s={rollout.trajectory_timeout_s}: a recycled trajectory waits "
            "while every later step trains, so a wall-time budget would cut exactly the trajectories recycling "
            "keeps; drop it (bound a tool call with rlfactory.tool_manager.default_timeout, a group's age with "
            "rlfactory.rollout.recycle.max_staleness)"
        )
    if rollout.branching.enabled:
        raise ConfigError(
            f"rlfactory.rollout.branching.enabled=true with {on}: the branching rollout is not tested with "
            "generations aborted and resumed across steps; turn one of them off"
        )
