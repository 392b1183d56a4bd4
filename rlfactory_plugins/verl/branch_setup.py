"""What the branching rollout (``rlfactory.rollout.branching``) needs from verl: its trainer and group size.

The coordination itself is verl-free (:mod:`rlfactory_plugins.rollout.branching`); it relies on verl's V1
worker, which runs the ``rollout.n`` sessions of a prompt (``session_id`` 0..n-1, one ``uid``) in one
process, and on the V1 trainer, whose advantage step hands ``rlfactory_branch_grpo`` the branch records
(:mod:`.advantage_context`).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from rlfactory_plugins.config.branching import BranchingConfig
from rlfactory_plugins.config.check import get_key
from rlfactory_plugins.errors import ConfigError

#: whether the trajectory being run is a validation one: set by rlfactory's worker around a shared loop's
#: ``run`` (verl's worker knows it, a loop's keyword arguments do not say); None elsewhere (verl's own worker)
VALIDATING: ContextVar[bool | None] = ContextVar("rlfactory_validating", default=None)


def check_branching(config: Any, branching: BranchingConfig) -> None:
    """Raise :class:`ConfigError` for a trainer config (verl's, DictConfig or mapping) the branching rollout
    cannot serve. Run by the agent loop and by ``+plugins=rlfactory``'s start-up check."""
    if get_key(config, "trainer.use_v1") is False:
        raise ConfigError(
            "rlfactory.rollout.branching.enabled=true needs verl's V1 trainer (trainer.use_v1=true, verl's default): "
            "the classic trainer's worker runs a group's samples as unrelated rows (no session_id), so they "
            "cannot wait for a fork, and its advantage step passes no branch records to rlfactory_branch_grpo"
        )
    n = get_key(config, "actor_rollout_ref.rollout.n")
    if n is not None and int(n) <= branching.global_samples:
        raise ConfigError(
            f"rlfactory.rollout.branching.global_samples={branching.global_samples} leaves no sample of a "
            f"group of actor_rollout_ref.rollout.n={n} to branch; set it below rollout.n (ARPO: n/2 or fewer)"
        )


def validating() -> bool:
    """True while rlfactory's worker runs a validation trajectory (validation samples never branch)."""
    return VALIDATING.get() is True
