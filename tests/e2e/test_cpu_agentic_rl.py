"""verl's ``main_ppo`` with ``+plugins=rlfactory`` and rlfactory's agentic-RL options, 2 GRPO steps each:

(a) ``algorithm.adv_estimator=rlfactory_turn_grpo`` (per-turn rewards from ``tool_verify``), and
(b) ``rlfactory.rollout.branching`` with ``algorithm.adv_estimator=rlfactory_branch_grpo``,

on the tiny model taught to call a stateless tool and then answer right or wrong at random
(tests/helpers/branching_task.py). Checked on what the runs leave: verl's metrics, the trajectory
dumps (branches share their parent's prefix tokens and tool results) and the tool's own log of the
calls it ran (each call the trajectories wrote ran once; none of a branch's inherited ones).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers import branching_task as task
from tests.helpers.e2e import REWARD_SOURCE, RunResult, Workspace, grpo_overrides, read_dumps, run_main_ppo, with_settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(420),
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]
pytest.importorskip("rlfactory_reward_qa", reason="the qa reward pack (reward_plugins/rlfactory-reward-qa)")

STEPS, N = 2, 4
SETTINGS = {  # replaces grpo_overrides' values of these keys
    "data.max_prompt_length": "64",
    "data.max_response_length": "96",
    "actor_rollout_ref.rollout.n": str(N),
    "actor_rollout_ref.actor.optim.lr": "1e-4",
    # 4 rows x 4 samples over 2 workers: 8 sequences each, GRPO groups kept together
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "4",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "4",
}
COMMON = [
    "rlfactory.parser=hermes",
    "rlfactory.tool_manager.retries=0",  # (and no result cache, the default): a call written is a call run
    "rlfactory.rewards=[{name: qa_em, weight: 1.0}, {name: tool_verify, weight: 0.5}]",
    "rlfactory.rollout.max_turns=3",
]
BRANCHING = [
    "rlfactory.rollout.branching.enabled=true",
    "rlfactory.rollout.branching.global_samples=2",
    "rlfactory.rollout.branching.max_branches=2",
    "rlfactory.rollout.branching.entropy_tokens=2",
    "rlfactory.rollout.branching.margin=0.1",
]
RAN = {"ok", "tool_error", "timeout", "crashed"}  # the statuses of a call the tool ran (not invalid_args, unknown_tool)


@pytest.fixture(scope="module")
def taught(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("agentic_model")
    model, loss = task.build_model(root / "model")
    assert loss < 0.1, f"the tiny model did not learn the conversations (loss {loss:.3f})"
    train, val = task.write_rows(root)
    return model, train, val


def run(tmp_path_factory, taught, name: str, extra: list[str]) -> tuple[Workspace, RunResult, list[dict], list[str]]:
    model, train, val = taught
    root = tmp_path_factory.mktemp(name)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    ws = Workspace(root=root, model=model, train_file=train, val_file=val, reward_file=reward)
    tool = task.write_tool(root / "calc_tool.py", root / "calls.log")
    overrides = with_settings(grpo_overrides(ws, steps=STEPS, n_workers=2), SETTINGS) + COMMON + extra + [
        f"actor_rollout_ref.rollout.multi_turn.function_tool_path={tool}",
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
    ]
    result = run_main_ppo(ws, overrides, timeout=300)
    result.succeeded()
    assert sorted(result.metrics) == list(range(1, STEPS + 1)), sorted(result.metrics)
    dumps = read_dumps(root / "trajectories")
    log = root / "calls.log"
    return ws, result, dumps, log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def turn_run(tmp_path_factory, taught):
    return run(tmp_path_factory, taught, "turn_grpo", ["algorithm.adv_estimator=rlfactory_turn_grpo"])


@pytest.fixture(scope="module")
def branch_run(tmp_path_factory, taught):
    return run(tmp_path_factory, taught, "branch_grpo", ["algorithm.adv_estimator=rlfactory_branch_grpo", *BRANCHING])


def check_trained(result: RunResult) -> None:
    for step, m in result.metrics.items():
        grad = m["actor/grad_norm"]
        assert math.isfinite(grad) and grad > 0, f"step {step}: grad_norm={grad}"
        assert m["critic/rewards/max"] > m["critic/rewards/min"], f"step {step}: reward does not vary"
        # the taught model is peaked: its KV-cached rollout and the actor's full forward differ by ~4e-3 in
        # float32 on its rare tokens, with or without branching (test_cpu_grpo's random model: under 1e-3)
        assert m["training/rollout_probs_diff_max"] < 2e-2, f"step {step}: {m['training/rollout_probs_diff_max']}"


def ran(t: dict, turns: slice | None = None) -> list[str]:
    """The expressions of the calls run in trajectory ``t``'s ``turns`` (default: those after any it inherited)."""
    turns = turns or slice((t.get("branch") or {}).get("turn", 0), None)
    return [c["arguments"]["expression"] for turn in t["turns"][turns] for c in turn["tool_calls"]
            if c["result"] is not None and c["result"]["status"] in RAN]


def inherited(t: dict) -> list[str]:
    """The calls of the turns a branch inherited from its parent (run by the parent)."""
    return ran(t, slice(0, t["branch"]["turn"])) if t.get("branch") else []


def test_turn_credit_trains_on_tool_calls(turn_run):
    _, result, dumps, _ = turn_run
    check_trained(result)
    assert all(t["branch"] is None and not t["forks"] for t in dumps)
    assert sum(len(ran(t)) for t in dumps) > len(dumps) / 2  # the taught model calls the tool


def test_branching_trains_with_branch_attribution(branch_run):
    _, result, _, _ = branch_run
    check_trained(result)
    for step, m in result.metrics.items():
        assert m["rlfactory/credit/branched_samples"] > 0, f"step {step}: no branch reached the estimator"
        assert m["rlfactory/credit/shared_prefix_tokens/mean"] > 0


def test_branches_share_their_parents_prefix_tokens_and_tool_results(branch_run):
    _, _, dumps, _ = branch_run
    by_key = {t["key"]: t for t in dumps}
    branches = [t for t in dumps if t["branch"] is not None]
    assert branches, "no trajectory was branched"
    for step in range(1, STEPS + 1):
        groups = Counter(t["uid"] for t in dumps if t["step"] == step)
        assert set(groups.values()) == {N}, f"step {step}: groups of {sorted(set(groups.values()))}, not {N}"
    for b in branches:
        link = b["branch"]
        parent = by_key[link["parent_key"]]
        assert parent["uid"] == b["uid"] and link["parent_key"] == f"{b['uid']}/{link['parent']}"
        fork = next(f for f in parent["forks"] if b["key"].rsplit("/", 1)[1] in f["sessions"])
        # the branch's final response starts with exactly the tokens the parent had at the fork
        assert link["prefix_sha256"] == fork["prefix_sha256"] and link["prefix"] == fork["prefix"] > 0
        assert link["turn"] == fork["turn"] >= 1 and fork["entropy"] - fork["initial_entropy"] > 0.1
        # the turns before the fork, tool calls and results included, are the parent's
        assert b["turns"][: link["turn"]] == parent["turns"][: link["turn"]]
    assert any(inherited(b) for b in branches), "no branch inherited a tool result"


def test_each_tool_call_ran_once(branch_run):
    _, _, dumps, log = branch_run
    written = sorted(e for t in dumps for e in ran(t))
    assert sorted(line.split(" ", 1)[1] for line in log) == written  # the tool's own log of what it ran
    reused = [e for t in dumps for e in inherited(t)]
    assert reused, "no branch inherited a call"
    assert len(log) == len(written) < len(written) + len(reused)  # the branches' inherited calls did not run
