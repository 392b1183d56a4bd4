"""rlfactory's advantage estimators, registered in verl's ``ADV_ESTIMATOR_REGISTRY`` when ``verl.plugins`` loads.

Selected with ``algorithm.adv_estimator=<name>`` (docs/agentic-rl.md):

- ``rlfactory_turn_grpo``: turn-level credit from per-turn rewards (:mod:`.turn_credit`); the
  rlfactory agent loop writes the composite's ``per_turn`` vector into ``rm_scores`` for it
  (:mod:`.turn_rewards`).
- ``rlfactory_branch_grpo``: advantage attribution over branched groups (:mod:`.branch_credit`).

verl's ``compute_advantage`` calls a registered estimator with ``token_level_rewards``,
``response_mask``, ``index`` (the ``uid`` of each sample), ``config`` (the ``algorithm`` node) and
nothing per sample besides. What else they need comes in a :func:`batch_context` that
:mod:`.advantage_context` opens around verl's V1 advantage step: the options (``rlfactory.credit``)
and the batch's branch records. Without one (verl's classic trainer, a direct call) the options
are ``algorithm.rlfactory_credit`` if given (``+algorithm.rlfactory_credit.turn_weight=0.5``), else
the defaults, and every sample is a global one. ``algorithm.norm_adv_by_std_in_grpo`` is honoured.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import pydantic
import torch

from rlfactory_plugins.config.credit import CreditConfig
from rlfactory_plugins.config.messages import format_validation_error
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.verl.branch_credit import Branch, branch_grpo_advantages
from rlfactory_plugins.verl.turn_credit import turn_grpo_advantages

TURN_GRPO = "rlfactory_turn_grpo"
BRANCH_GRPO = "rlfactory_branch_grpo"
#: the key of ``algorithm`` the estimators read their options from outside a batch context
OPTIONS_KEY = "rlfactory_credit"

_branches: contextvars.ContextVar[list[Branch] | None] = contextvars.ContextVar("rlfactory_branches", default=None)
_options: contextvars.ContextVar[CreditConfig | None] = contextvars.ContextVar("rlfactory_credit", default=None)


@contextlib.contextmanager
def batch_context(options: CreditConfig | None = None, branches: Sequence[Branch] | None = None) -> Iterator[None]:
    """The options, and the branch record of every row, of the batch whose advantages are computed inside."""
    tokens = (_options.set(options), _branches.set(list(branches) if branches is not None else None))
    try:
        yield
    finally:
        _options.reset(tokens[0])
        _branches.reset(tokens[1])


def credit_options(config: Any) -> CreditConfig:
    """The batch context's options, else ``algorithm.rlfactory_credit`` of verl's ``algorithm`` node, else defaults."""
    given = _options.get()
    if given is not None:
        return given
    raw = config.get(OPTIONS_KEY) if config is not None else None
    if raw is not None and not isinstance(raw, dict):
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw
    try:
        return CreditConfig.model_validate(raw or {})
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, f"algorithm.{OPTIONS_KEY}", CreditConfig, raw)) from None


def _by_std(config: Any) -> bool:
    return bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True


def turn_grpo(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any = None, **_: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's estimator signature around :func:`.turn_credit.turn_grpo_advantages` (advantages = returns)."""
    opts = credit_options(config)
    with torch.no_grad():
        adv = turn_grpo_advantages(token_level_rewards, response_mask, list(index), turn_weight=opts.turn_weight,
                                   epsilon=opts.epsilon, by_std=_by_std(config))
    return adv, adv


def branch_grpo(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any = None, **_: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's estimator signature around :func:`.branch_credit.branch_grpo_advantages` (advantages = returns)."""
    opts = credit_options(config)
    with torch.no_grad():
        adv = branch_grpo_advantages(token_level_rewards, response_mask, list(index), _branches.get(),
                                     epsilon=opts.epsilon, by_std=_by_std(config))
    return adv, adv


CORE_ALGOS = "verl.trainer.ppo.core_algos"


def register(core_algos: Any = None) -> None:
    """Register both estimators in verl's registry (idempotent: verl refuses only a *different* function)."""
    from rlfactory_plugins.verl import compat

    compat.require(__name__)
    if core_algos is None:
        import importlib

        core_algos = importlib.import_module(CORE_ALGOS)
    core_algos.register_adv_est(TURN_GRPO)(turn_grpo)
    core_algos.register_adv_est(BRANCH_GRPO)(branch_grpo)


def activate() -> None:
    """Have :func:`register` run when (or, if already imported, now that) verl's ``core_algos`` is imported:
    the trainer imports it; rollout and reward workers, which never estimate advantages, need not."""
    import wrapt

    wrapt.register_post_import_hook(register, CORE_ALGOS)
