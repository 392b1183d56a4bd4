"""The `rlfactory:` section: pydantic validation, messages, and the packaged yaml."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from rlfactory_plugins.config import RLFactoryConfig, validate_section
from rlfactory_plugins.errors import ConfigError


def test_defaults_validate():
    cfg = validate_section({})
    assert cfg.parser == "hermes" and cfg.rollout.max_turns >= 1


def test_unknown_key_is_named_with_allowed_keys():
    with pytest.raises(ConfigError) as e:
        validate_section({"rollout": {"max_turnz": 3}})
    msg = str(e.value)
    assert "rlfactory.rollout.max_turnz: unknown key" in msg and "max_turns" in msg


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"rlfactory.tool_manager.default_timeout"):
        validate_section({"tool_manager": {"default_timeout": -1}})


def test_string_shorthand_for_tools_and_rewards():
    cfg = validate_section({"tools": ["search"], "rewards": "qa_em"})
    assert cfg.tools[0].name == "search" and cfg.rewards[0].weight == 1.0


def test_packaged_yaml_matches_model_defaults():
    text = resources.files("rlfactory_plugins.verl.hydra_config").joinpath("plugins/rlfactory.yaml").read_text()
    section = yaml.safe_load(text)["rlfactory"]
    assert section == RLFactoryConfig().model_dump(mode="json")
