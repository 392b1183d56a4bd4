"""A Hydra callback (installed by ``+plugins=rlfactory``) that validates the
``rlfactory:`` section before ``main_ppo`` starts Ray or any worker."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rlfactory_plugins.errors import RLFactoryError


def check_rlfactory_config(cfg: DictConfig) -> Any:
    """Validate ``cfg.rlfactory`` (schema and installed names); return the pydantic model."""
    from rlfactory_plugins.config import check_names, validate_section

    section = OmegaConf.to_container(cfg.get("rlfactory"), resolve=True) if "rlfactory" in cfg else None
    model = validate_section(section)
    check_names(model)
    return model


class CheckRLFactoryConfig(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_rlfactory_config(config)
        except RLFactoryError as e:
            print(f"rlfactory: {e}", file=sys.stderr)
            raise SystemExit(2) from None
