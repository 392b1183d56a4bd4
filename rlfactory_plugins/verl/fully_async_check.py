"""Start-up checks for verl's fully-async trainer (``verl.experimental.fully_async_policy.fully_async_main``).

Run by ``+plugins=rlfactory``'s Hydra callback (through :func:`rlfactory_plugins.verl.config_check.check_config`)
before Ray starts. Each refusal names the key, its value, why it cannot work under that trainer and
what to use instead; docs/fully-async.md has the full list.
"""

from __future__ import annotations

from typing import Any

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.config.check import get_key
from rlfactory_plugins.config.oversample import OVERSAMPLER_NAME
from rlfactory_plugins.errors import ConfigError

#: the top-level section only verl's fully-async trainer config has
FULLY_ASYNC_KEY = "async_training"
MULTI_TURN_KEY = "actor_rollout_ref.rollout.multi_turn.enable"
MANAGER_KEY = "actor_rollout_ref.rollout.agent.agent_loop_manager_class"
HYBRID_KEY = "actor_rollout_ref.hybrid_engine"
#: the manager ``+plugins=rlfactory`` sets (rlfactory_plugins/verl/worker.py)
RLFACTORY_MANAGER = "rlfactory_plugins.verl.worker.AgentLoopManager"


def is_fully_async(cfg: Any) -> bool:
    """Whether ``cfg`` is the fully-async trainer's (it alone has an ``async_training`` section)."""
    return get_key(cfg, FULLY_ASYNC_KEY) is not None


def check_fully_async(cfg: Any, model: RLFactoryConfig, *, manager_substituted: bool) -> None:
    """Raise :class:`ConfigError` for what rlfactory cannot do under the fully-async trainer.

    ``manager_substituted``: whether this verl's rollouter gets rlfactory's agent-loop workers
    (:func:`rlfactory_plugins.verl.fully_async.substitution_supported`).
    """
    if get_key(cfg, MULTI_TURN_KEY) is not True:
        raise ConfigError(
            f"{MULTI_TURN_KEY}={get_key(cfg, MULTI_TURN_KEY)!r}: verl's fully-async rollouter then sends every row "
            "to single_turn_agent (fully_async_policy/detach_utils.py, prepare_single_generation_data), so "
            f"rlfactory_agent would never run; set {MULTI_TURN_KEY}=True (+plugins=rlfactory sets it)"
        )
    if get_key(cfg, HYBRID_KEY) is not False:
        raise ConfigError(
            f"{HYBRID_KEY}={get_key(cfg, HYBRID_KEY)!r}: verl's fully-async trainer runs the rollout on its own "
            "devices and asserts it off once Ray has started (fully_async_rollouter.py, fully_async_trainer.py); "
            f"set {HYBRID_KEY}=False"
        )
    manager = get_key(cfg, MANAGER_KEY)
    if manager and manager != RLFACTORY_MANAGER:
        raise ConfigError(
            f"{MANAGER_KEY}={manager!r}: verl's fully-async rollouter ignores this key (it builds "
            f"FullyAsyncAgentLoopManager itself); set it to null or to {RLFACTORY_MANAGER}"
        )
    if manager and not manager_substituted:
        raise ConfigError(
            f"{MANAGER_KEY}={manager!r}: this verl's fully-async rollouter cannot be given rlfactory's agent-loop "
            f"workers (see docs/fully-async.md); set {MANAGER_KEY}=null (rlfactory_agent then runs in verl's "
            "worker, one loop object per trajectory)"
        )
    rollout = model.rollout
    if rollout.straggler_fraction is not None:
        raise ConfigError(
            f"rlfactory.rollout.straggler_fraction={rollout.straggler_fraction}: the straggler policy cuts the "
            "slowest trajectories of a step once most of it finished, but the fully-async rollouter never waits "
            "for a step (the trainer takes samples as they complete); drop it, and bound a trajectory with "
            "rlfactory.rollout.trajectory_timeout_s, the samples' age with async_training.staleness_threshold"
        )
    if rollout.branching.enabled:
        raise ConfigError(
            "rlfactory.rollout.branching.enabled=true: the branching rollout coordinates a group's sessions "
            "through verl's V1 sync worker (session_id, uid), which the fully-async trainer does not run; "
            "use main_ppo (trainer.use_v1=true) or drop branching"
        )
    if get_key(cfg, "trainer.v1.sampler.custom_sampler.name") == OVERSAMPLER_NAME:
        raise ConfigError(
            f"trainer.v1.sampler.custom_sampler.name={OVERSAMPLER_NAME}: over-sampling drives the V1 sync "
            "trainer's replay buffer, which the fully-async trainer does not use (its rollouter already "
            "generates ahead of the trainer, up to async_training.staleness_threshold); drop "
            "trainer.v1.sampler.custom_sampler"
        )
