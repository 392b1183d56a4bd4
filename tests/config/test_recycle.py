"""``rlfactory.rollout.recycle``: its model, the verl keys ``+plugins=rlfactory`` sets from it, and what
``check-config`` (and the launch-time callback) refuse with it on, each naming the key and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from rlfactory_plugins.cli import app
from rlfactory_plugins.config.recycle import OFF_VALUES, RecycleConfig, check_recycle, verl_value
from rlfactory_plugins.config.rollout import RolloutConfig
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.verl.compose import compose_config
from rlfactory_plugins.verl.config_check import check_config

pytestmark = pytest.mark.timeout(120)
ON = "rlfactory.rollout.recycle.enabled=true"


def test_the_model_bounds_its_values_and_forbids_unknown_keys():
    assert RolloutConfig().recycle == RecycleConfig(enabled=False, oversample=1.0, max_staleness=2)
    for bad in ({"oversample": 0}, {"max_staleness": 0}, {"oversampel": 1.0}):
        with pytest.raises(ValidationError):
            RecycleConfig.model_validate(bad)


def test_off_is_verls_defaults_and_on_is_colocate_async_with_the_recycling_buffer():
    off = RecycleConfig()
    assert {key: verl_value(key, off) for key in OFF_VALUES} == OFF_VALUES
    on = RecycleConfig(enabled=True, oversample=0.5, max_staleness=3)
    assert verl_value("trainer_mode", on) == "colocate_async"
    assert verl_value("sampler_path", on) == "pkg://rlfactory_plugins.verl.recycle"
    assert verl_value("sampler_name", on) == "RecyclingReplayBuffer"
    assert verl_value("max_off_policy_threshold", on) == 4  # verl counts the start step's version too
    assert verl_value("max_off_policy_strategy", on) == "wait"
    assert verl_value("num_warmup_batches", on) == 0.5
    assert verl_value("max_off_policy_threshold", RecycleConfig(enabled=True, max_staleness=None)) is None
    with pytest.raises(KeyError, match="unknown key"):
        verl_value("trainer_mod", on)


def test_plugins_rlfactory_composes_the_verl_keys_from_the_option():
    v1 = compose_config([]).trainer.v1  # off: verl's own values
    assert (v1.trainer_mode, v1.sampler.custom_sampler.path, v1.sampler.max_off_policy_strategy) == ("sync", None, "drop")
    v1 = compose_config([ON, "rlfactory.rollout.recycle.max_staleness=1"]).trainer.v1
    assert v1.trainer_mode == "colocate_async" and v1.colocate_async.num_warmup_batches == 1.0
    assert v1.sampler.custom_sampler.name == "RecyclingReplayBuffer"
    assert (v1.sampler.max_off_policy_threshold, v1.sampler.max_off_policy_strategy) == (2, "wait")
    assert check_config(compose_config([ON])).rollout.recycle.enabled


@pytest.mark.parametrize(("overrides", "match"), [
    (["trainer.v1.trainer_mode=sync"], r"trainer_mode='sync'.*colocate_async.*drop the trainer_mode override"),
    (["trainer.v1.sampler.custom_sampler.path=pkg://rlfactory_plugins.verl.oversample",
      "trainer.v1.sampler.custom_sampler.name=OverSamplingReplayBuffer"],
     r"custom_sampler.name='OverSamplingReplayBuffer'.*over-sampling cuts and drops.*turn recycling off"),
    (["trainer.v1.sampler.max_off_policy_strategy=drop"], r"max_off_policy_strategy='drop'.*max_staleness"),
    (["rlfactory.rollout.straggler_fraction=0.5"], r"straggler_fraction=0.5.*drop it"),
    (["rlfactory.rollout.trajectory_timeout_s=30"], r"trajectory_timeout_s=30.0.*tool_manager.default_timeout"),
    (["rlfactory.rollout.branching.enabled=true"], r"branching.enabled=true.*turn one of them off"),
    (["rlfactory.rollout.recycle.oversample=0.25", "data.train_batch_size=8"],
     r"oversample=0.25.*less than one data.gen_batch_size=8 chunk.*data.gen_batch_size=1"),
    (["trainer.use_v1=false"], r"trainer.use_v1=true"),
])
def test_what_recycling_cannot_serve_is_refused_with_the_fix(overrides, match):
    with pytest.raises(ConfigError, match=match):
        check_config(compose_config([ON, *overrides]))
    if not any(o.startswith(("trainer.use_v1", "rlfactory.rollout.branching")) for o in overrides):
        check_config(compose_config(overrides))  # the same keys without recycling: no refusal of its


def test_fully_async_trainers_config_is_refused_on_plain_data():
    with pytest.raises(ConfigError, match=r"fully-async trainer.*partial_rollout"):
        check_recycle({"async_training": {"partial_rollout": True}}, RecycleConfig(enabled=True))
    check_recycle({"async_training": {}}, RecycleConfig())  # off: nothing checked
    check_recycle({"trainer": {"v1": {"trainer_mode": "colocate_async"}}, "data": {"train_batch_size": 4,
                   "gen_batch_size": 1}}, RecycleConfig(enabled=True, oversample=0.25))


def test_check_config_cli_says_the_refusal():
    result = CliRunner().invoke(app, ["check-config", ON, "rlfactory.rollout.straggler_fraction=0.5"])
    assert result.exit_code == 2 and "straggler_fraction=0.5" in result.stderr
    result = CliRunner().invoke(app, ["check-config", ON])
    assert result.exit_code == 0, result.output
