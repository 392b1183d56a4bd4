"""`+plugins=rlfactory` wired into verl 0.9.1's own entry points, Hydra config and registries."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.timeout(300)


def test_cfg_job_selects_rlfactory(venv_run):
    proc = venv_run("python", "-m", "verl.trainer.main_ppo", "+plugins=rlfactory", "--cfg", "job", check=True)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] == "rlfactory_agent"
    assert cfg["reward"]["reward_manager"]["name"] == "rlfactory"
    assert cfg["rlfactory"]["parser"] == "hermes"
    assert "could not register" not in proc.stderr, proc.stderr


def test_check_config_ok_and_bad_key(venv_run):
    ok = venv_run("rlfactory", "check-config")
    assert ok.returncode == 0, ok.stderr
    bad = venv_run("rlfactory", "check-config", "+rlfactory.no_such_key=1")
    assert bad.returncode != 0
    assert "rlfactory.no_such_key: unknown key" in bad.stderr and "allowed keys" in bad.stderr
    bad = venv_run("rlfactory", "check-config", "rlfactory.no_such_key=1")
    assert bad.returncode != 0 and "rlfactory.no_such_key" in bad.stderr


def test_main_ppo_with_bad_key_fails_before_ray(venv_run, tmp_path):
    proc = venv_run(
        "python",
        "-m",
        "verl.trainer.main_ppo",
        "+plugins=rlfactory",
        "+rlfactory.rollout.max_turnz=3",
        "actor_rollout_ref.rollout.name=vllm",
        f"hydra.run.dir={tmp_path}",
        timeout=120,
    )
    assert proc.returncode != 0
    assert "rlfactory.rollout.max_turnz: unknown key" in proc.stderr
    assert "ray init kwargs" not in proc.stdout  # verl prints this right before ray.init()


def test_agent_loop_registered_inside_ray_worker():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote
        def registered():
            import verl  # noqa: F401 - loads verl.plugins entry points
            from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
            from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

            return sorted(_agent_loop_registry), sorted(REWARD_MANAGER)

        agent_loops, reward_managers = ray.get(registered.remote(), timeout=180)
    finally:
        ray.shutdown()
    assert "rlfactory_agent" in agent_loops
    assert "rlfactory" in reward_managers


def test_without_cpu_mode_only_rlfactory_choices_change(venv_run):
    """On a machine with an accelerator (CPU mode off), +plugins=rlfactory changes nothing of
    verl's config but the agent loop (and its manager), multi_turn.enable, the reward manager and the added
    rlfactory section."""
    env = {"RLFACTORY_CPU": "0"}
    plain = yaml.safe_load(venv_run("python", "-m", "verl.trainer.main_ppo", "--cfg", "job", env=env, check=True).stdout)
    ours = yaml.safe_load(
        venv_run("python", "-m", "verl.trainer.main_ppo", "+plugins=rlfactory", "--cfg", "job", env=env, check=True).stdout
    )
    assert ours.pop("rlfactory")
    ours["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] = "single_turn_agent"
    manager = ours["actor_rollout_ref"]["rollout"]["agent"].pop("agent_loop_manager_class")  # not in verl's yaml
    assert manager == "rlfactory_plugins.verl.worker.AgentLoopManager"
    ours["reward"]["reward_manager"]["name"] = "naive"
    # set so verl's fully-async trainer runs rlfactory_agent (docs/fully-async.md); the sync trainers
    # only copy it into the batch's meta_info
    assert ours["actor_rollout_ref"]["rollout"]["multi_turn"]["enable"] is True
    ours["actor_rollout_ref"]["rollout"]["multi_turn"]["enable"] = False
    # rlfactory.rollout.recycle's keys (docs/recycling.md): interpolations whose values, recycling off, are verl's own
    from rlfactory_plugins.config.recycle import OFF_VALUES

    v1, verl_v1 = ours["trainer"]["v1"], plain["trainer"]["v1"]
    recycle_keys = {"trainer_mode": (v1, verl_v1, "trainer_mode"),
                    "num_warmup_batches": (v1["colocate_async"], verl_v1["colocate_async"], "num_warmup_batches"),
                    "max_off_policy_threshold": (v1["sampler"], verl_v1["sampler"], "max_off_policy_threshold"),
                    "max_off_policy_strategy": (v1["sampler"], verl_v1["sampler"], "max_off_policy_strategy"),
                    "sampler_path": (v1["sampler"]["custom_sampler"], verl_v1["sampler"]["custom_sampler"], "path"),
                    "sampler_name": (v1["sampler"]["custom_sampler"], verl_v1["sampler"]["custom_sampler"], "name")}
    for name, (node, verl_node, key) in recycle_keys.items():
        assert node[key] == f"${{rlfactory_recycle:{name}}}" and OFF_VALUES[name] == verl_node[key], name
        node[key] = verl_node[key]
    assert ours == plain


def test_cpu_mode_adds_the_cpu_backend_settings(venv_run):
    cfg = yaml.safe_load(
        venv_run(
            "python", "-m", "verl.trainer.main_ppo", "+plugins=rlfactory", "--cfg", "job",
            env={"RLFACTORY_CPU": "1"}, check=True,
        ).stdout
    )
    assert cfg["actor_rollout_ref"]["actor"]["strategy"] == "fsdp2"
    assert cfg["actor_rollout_ref"]["model"]["override_config"]["attn_implementation"] == "sdpa"
    # the trainer's workers, plus the separate rollout's under the fully-async trainer (tests/verl/test_fully_async.py)
    assert cfg["ray_kwargs"]["ray_init"]["num_gpus"] == "${rlfactory_cpu_ray_gpus:}"
