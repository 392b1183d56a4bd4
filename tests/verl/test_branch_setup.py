"""``+plugins=rlfactory``'s start-up check refuses trainer configs the branching rollout cannot serve."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.verl.config_check import check_config


def config(n: int, use_v1: bool = True, enabled: bool = True) -> object:
    return OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"n": n, "response_length": 64}},
        "trainer": {"use_v1": use_v1},
        "rlfactory": {"rollout": {"branching": {"enabled": enabled, "global_samples": 2}}},
    })


def test_branching_needs_samples_left_to_branch_and_the_v1_trainer():
    with pytest.raises(ConfigError, match=r"global_samples=2 leaves no sample of a group of actor_rollout_ref.rollout.n=2"):
        check_config(config(2))
    with pytest.raises(ConfigError, match=r"needs verl's V1 trainer"):
        check_config(config(4, use_v1=False))
    assert check_config(config(4)).rollout.branching.enabled
    assert not check_config(config(1, enabled=False)).rollout.branching.enabled  # off: nothing checked
