"""verl's real ``ppo_trainer`` config, composed with ``+plugins=rlfactory`` as ``main_ppo``
would compose it, with the benchmark's model, lengths and per-scenario limits."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from rlfactory_plugins.verl.compose import compose_config
from benchmarks.rollout_bench.scenarios import Scenario


def overrides_for(scenario: Scenario, model_dir: Path) -> list[str]:
    deadline = "null" if scenario.deadline_s is None else repr(scenario.deadline_s)
    fraction = "null" if scenario.straggler_fraction is None else repr(scenario.straggler_fraction)
    return [
        f"actor_rollout_ref.model.path={model_dir}",
        "actor_rollout_ref.rollout.prompt_length=1024",
        "actor_rollout_ref.rollout.response_length=4096",
        # verl's ToolAgentLoop: hermes tool calls, its defaults otherwise (max_parallel_calls=1,
        # max_tool_response_length=256), and as many assistant turns as the script needs
        "actor_rollout_ref.rollout.multi_turn.enable=true",
        "actor_rollout_ref.rollout.multi_turn.format=hermes",
        f"actor_rollout_ref.rollout.multi_turn.max_assistant_turns={scenario.max_turns}",
        # rlfactory's agent loop
        f"rlfactory.tools=[{scenario.tool_name}]",
        "rlfactory.parser=hermes",
        f"rlfactory.rollout.max_turns={scenario.max_turns}",
        f"rlfactory.rollout.trajectory_timeout_s={deadline}",
        f"rlfactory.rollout.straggler_fraction={fraction}",
        f"rlfactory.rollout.straggler_grace_s={scenario.straggler_grace_s!r}",
        f"rlfactory.tool_manager.default_timeout={scenario.tool_timeout_s!r}",
        "rlfactory.tool_manager.retries=0",
    ]


def compose(scenario: Scenario, model_dir: Path) -> DictConfig:
    return compose_config(overrides_for(scenario, model_dir))
