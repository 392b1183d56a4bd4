"""The training config exactly as ``python -m verl.trainer.main_ppo +plugins=rlfactory`` (or verl's
fully-async trainer) composes it, and the OmegaConf resolvers its ``plugins/rlfactory.yaml`` uses."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from hydra import compose, initialize_config_dir, initialize_config_module
from omegaconf import OmegaConf

from rlfactory_plugins.config.recycle import RESOLVER as RECYCLE_RESOLVER
from rlfactory_plugins.config.recycle import SECTION as RECYCLE_SECTION
from rlfactory_plugins.config.recycle import RecycleConfig, verl_value
from rlfactory_plugins.errors import ConfigError

#: verl's own trainer config, which ``+plugins=rlfactory`` extends
CONFIG_MODULE = "verl.trainer.config"
CONFIG_NAME = "ppo_trainer"
#: the fully-async trainer (``python -m verl.experimental.fully_async_policy.fully_async_main``): its package
#: and config name; the config folder has no ``__init__.py``, so it is found as a directory
FULLY_ASYNC_PACKAGE = "verl.experimental.fully_async_policy"
FULLY_ASYNC_CONFIG_NAME = "fully_async_ppo_trainer"
TRAINERS = ("main_ppo", "fully_async")


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


def compose_config(overrides: list[str], trainer: str = "main_ppo") -> Any:
    """verl's config for ``trainer`` (``main_ppo``: ppo_trainer; ``fully_async``: fully_async_ppo_trainer)
    + ``+plugins=rlfactory`` + the user's overrides (a DictConfig)."""
    register_resolvers()
    overrides = ["+plugins=rlfactory", *overrides]
    if trainer == "main_ppo":
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            return compose(config_name=CONFIG_NAME, overrides=overrides)
    if trainer == "fully_async":
        spec = importlib.util.find_spec(FULLY_ASYNC_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"trainer {trainer!r}: this verl has no {FULLY_ASYNC_PACKAGE} (verl>=0.9.1 ships it)")
        config_dir = os.path.join(spec.submodule_search_locations[0], "config")
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return compose(config_name=FULLY_ASYNC_CONFIG_NAME, overrides=overrides)
    raise ConfigError(f"trainer {trainer!r}: unknown; use one of {', '.join(TRAINERS)}")
