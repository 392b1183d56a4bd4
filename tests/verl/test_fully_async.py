"""``+plugins=rlfactory`` under verl's fully-async trainer: the composed config, the start-up refusals
(rlfactory_plugins/verl/fully_async_check.py), Ray's fake GPU count in CPU mode, the version-gated
substitution of rlfactory's agent-loop workers in verl's rollouter (rlfactory_plugins/verl/fully_async.py)
and rlfactory's metrics in its trainer's step metrics (rlfactory_plugins/verl/fully_async_metrics.py).
The trainer itself runs in tests/e2e/test_cpu_fully_async.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import verl.experimental.fully_async_policy as fully_async_policy
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.verl import fully_async
from rlfactory_plugins.verl.config_check import check_config
from rlfactory_plugins.verl.cpu import _ray_gpus

CONFIG_DIR = str(Path(fully_async_policy.__file__).parent / "config")
FULLY_ASYNC_MAIN = "verl.experimental.fully_async_policy.fully_async_main"


def fully_async_config(*overrides: str):
    """The config ``fully_async_main +plugins=rlfactory actor_rollout_ref.hybrid_engine=False <overrides>`` runs with."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name="fully_async_ppo_trainer",
                       overrides=["+plugins=rlfactory", "actor_rollout_ref.hybrid_engine=False", *overrides])


def test_check_config_composes_the_fully_async_trainers_config():
    from rlfactory_plugins.verl.compose import compose_config

    assert compose_config(["actor_rollout_ref.hybrid_engine=False"], "fully_async") == fully_async_config()
    with pytest.raises(ConfigError, match=r"trainer 'one_step': unknown; use one of main_ppo, fully_async"):
        compose_config([], "one_step")


def test_check_config_cli_checks_the_fully_async_line(venv_run):
    bad = venv_run("rlfactory", "check-config", "--trainer", "fully_async", "rlfactory.rollout.straggler_fraction=0.5")
    assert bad.returncode == 2
    assert "hybrid_engine=True: verl's fully-async trainer runs the rollout on its own devices" in bad.stderr
    ok = venv_run("rlfactory", "check-config", "--trainer", "fully_async", "actor_rollout_ref.hybrid_engine=False")
    assert ok.returncode == 0 and "ok: agent loop 'rlfactory_agent'" in ok.stdout


def test_plugin_selects_rlfactory_and_turns_multi_turn_on(venv_run):
    cfg = yaml.safe_load(venv_run(
        "python", "-m", FULLY_ASYNC_MAIN, "+plugins=rlfactory", "trainer.n_gpus_per_node=2", "rollout.n_gpus_per_node=1",
        "--cfg", "job", "--resolve", env={"RLFACTORY_CPU": "1"}, check=True,
    ).stdout)
    rollout = cfg["actor_rollout_ref"]["rollout"]
    assert rollout["agent"]["default_agent_loop"] == "rlfactory_agent"
    assert rollout["multi_turn"]["enable"] is True  # else verl's rollouter sends every row to single_turn_agent
    assert cfg["reward"]["reward_manager"]["name"] == "rlfactory"
    assert cfg["ray_kwargs"]["ray_init"]["num_gpus"] == 3  # 2 trainer workers + the separate rollout's 1


def test_ray_gpus_count_the_separate_rollout_only_under_the_fully_async_trainer():
    sync = OmegaConf.create({"trainer": {"n_gpus_per_node": 2, "nnodes": 1}})
    assert _ray_gpus(_root_=sync) == 2
    fa = OmegaConf.create({"trainer": {"n_gpus_per_node": 2, "nnodes": 1}, "async_training": {},
                           "rollout": {"nnodes": 1, "n_gpus_per_node": 3}})
    assert _ray_gpus(_root_=fa) == 5


def test_the_plugin_default_passes_the_check():
    assert check_config(fully_async_config()).rollout.max_turns == 4


@pytest.mark.parametrize(("override", "message"), [
    ("actor_rollout_ref.hybrid_engine=True", r"hybrid_engine=True: .* set actor_rollout_ref.hybrid_engine=False"),
    ("actor_rollout_ref.rollout.multi_turn.enable=False",
     r"multi_turn.enable=False: verl's fully-async rollouter then sends every row to single_turn_agent"),
    ("actor_rollout_ref.rollout.agent.agent_loop_manager_class=my.Manager",
     r"agent_loop_manager_class='my.Manager': verl's fully-async rollouter ignores this key"),
    ("rlfactory.rollout.straggler_fraction=0.9",
     r"straggler_fraction=0.9: .* rlfactory.rollout.trajectory_timeout_s, .* async_training.staleness_threshold"),
    ("rlfactory.rollout.branching.enabled=true", r"branching.enabled=true: .* use main_ppo"),
    ("trainer.v1.sampler.custom_sampler.name=OverSamplingReplayBuffer",
     r"custom_sampler.name=OverSamplingReplayBuffer: over-sampling drives the V1 sync trainer's replay buffer"),
])
def test_what_cannot_work_there_is_refused_with_the_alternative(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(fully_async_config(override))


def test_without_the_substitution_rlfactorys_manager_is_refused(monkeypatch):
    monkeypatch.setattr(fully_async, "substitution_supported", lambda: False)
    with pytest.raises(ConfigError, match=r"cannot be given rlfactory's agent-loop workers.*=null"):
        check_config(fully_async_config())
    check_config(fully_async_config("actor_rollout_ref.rollout.agent.agent_loop_manager_class=null"))


def test_the_rollouter_builds_rlfactorys_workers_when_the_config_names_rlfactorys_manager():
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.fully_async_policy import fully_async_rollouter

    from rlfactory_plugins.verl.worker import ClassicAgentLoopWorker

    manager_cls = fully_async_rollouter.FullyAsyncAgentLoopManager  # as the rollouter looks it up
    assert getattr(manager_cls, fully_async.MARK, False), "the import hook did not run (verl.plugins entry point)"
    assert fully_async.install(fully_async_rollouter) is False  # idempotent
    ours = manager_cls(config=fully_async_config(), llm_client=None)
    assert ours.agent_loop_workers_class.__ray_actor_class__ is ClassicAgentLoopWorker
    theirs = manager_cls(config=fully_async_config("actor_rollout_ref.rollout.agent.agent_loop_manager_class=null"),
                         llm_client=None)
    assert theirs.agent_loop_workers_class.__ray_actor_class__ is AgentLoopWorker
    assert hasattr(manager_cls, "generate_sequences_single")  # still verl's fully-async manager


def test_the_trainers_step_metrics_get_rlfactorys_from_the_batch():
    import numpy as np
    import torch
    from verl import DataProto
    from verl.experimental.separation import ray_trainer

    from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord
    from rlfactory_plugins.verl import fully_async_metrics
    from rlfactory_plugins.verl.rows import STATS_KEY, TRAJECTORY_KEY

    assert getattr(ray_trainer.SeparateRayPPOTrainer._fit_collect_metrics, fully_async_metrics.MARK, False)
    records = [Trajectory(stop_reason="answer", turns=[TurnRecord(index=0, tool_calls=[
        ToolCallRecord(turn=0, name="calc", arguments={"expression": "1 + 1"})])]).model_dump(mode="json"),
        Trajectory(stop_reason="no_call", turns=[TurnRecord(index=0)]).model_dump(mode="json")]
    batch = DataProto.from_dict(tensors={"responses": torch.zeros(2, 3)}, non_tensors={
        TRAJECTORY_KEY: np.array(records, dtype=object),
        STATS_KEY: np.array([{"turns": 1.0}, {"turns": 1.0}], dtype=object),
        "reward/qa_em": np.array([1.0, 0.0]),
    })
    rows = fully_async_metrics.batch_records(batch)
    assert [r["reward_extra_info"] for r in rows] == [{"reward/qa_em": 1.0}, {"reward/qa_em": 0.0}]
    from rlfactory_plugins.verl.training_metrics import metrics_of

    metrics = metrics_of(rows)
    assert metrics["reward/qa_em/mean"] == 0.5 and metrics["rollout/stop_reason/answer"] == 0.5
    assert metrics["tool/calc/calls"] == 1
