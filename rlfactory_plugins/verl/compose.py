"""The training config exactly as ``python -m verl.trainer.main_ppo +plugins=rlfactory`` composes it,
and the OmegaConf resolvers its ``plugins/rlfactory.yaml`` uses."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from rlfactory_plugins.config.recycle import RESOLVER as RECYCLE_RESOLVER
from rlfactory_plugins.config.recycle import SECTION as RECYCLE_SECTION
from rlfactory_plugins.config.recycle import RecycleConfig, verl_value

#: verl's own trainer config, which ``+plugins=rlfactory`` extends
CONFIG_MODULE = "verl.trainer.config"
CONFIG_NAME = "ppo_trainer"


def _recycle(key: str, *, _root_: Any) -> Any:
    """``${rlfactory_recycle:<key>}``: the verl key recycling sets (``rlfactory.rollout.recycle``; off: verl's default)."""
    node = OmegaConf.select(_root_, RECYCLE_SECTION, default=None)
    plain = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    return verl_value(key, RecycleConfig.model_validate(plain or {}))


def register_resolvers() -> None:
    """Register the resolvers of ``plugins/rlfactory.yaml`` (idempotent): in every process that resolves the
    config, as ``import verl`` loads the entry point (:mod:`rlfactory_plugins.verl.entry`)."""
    if not OmegaConf.has_resolver(RECYCLE_RESOLVER):
        OmegaConf.register_new_resolver(RECYCLE_RESOLVER, _recycle)


activate = register_resolvers


def compose_config(overrides: list[str]) -> Any:
    """verl's ppo_trainer config + ``+plugins=rlfactory`` + the user's overrides (a DictConfig)."""
    register_resolvers()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
        return compose(config_name=CONFIG_NAME, overrides=["+plugins=rlfactory", *overrides])
