"""Recycling (``rlfactory.rollout.recycle``) on verl's ``main_ppo`` with ``+plugins=rlfactory``: the V1
trainer in ``colocate_async`` mode with rlfactory's ``RecyclingReplayBuffer``, on the tiny model taught to
call the logging ``calc`` tool and then answer (tests/helpers/branching_task.py).

The product row's tool call sleeps :data:`SLOW_S` seconds, so it is in flight while its step's generations
are aborted, the step trains and the weights are updated. ``oversample=1.0`` keeps a second batch of groups in flight: each step trains on the first complete
``train_batch_size`` groups, oldest first, and the others are aborted (or already done) while the step
trains and then resume on the new weights, to be trained in a later step. Checked on what the run leaves:
verl's metrics (rlfactory's ``training/recycle/*`` and verl's own staleness), the trajectory dumps (each
turn's weight versions) and the tool's log of the calls it ran.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers import branching_task as task
from tests.helpers.e2e import REWARD_SOURCE, Workspace, grpo_overrides, read_dumps, run_main_ppo, with_settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]
pytest.importorskip("rlfactory_reward_qa", reason="the qa reward pack (reward_plugins/rlfactory-reward-qa)")

STEPS, BATCH, N, MAX_TURNS = 3, 2, 2, 3
SETTINGS = {  # replaces grpo_overrides' values of these keys
    "data.train_batch_size": str(BATCH),
    "data.max_prompt_length": "64",
    "data.max_response_length": "96",
    "actor_rollout_ref.rollout.n": str(N),
    "actor_rollout_ref.actor.optim.lr": "1e-4",
    "actor_rollout_ref.actor.ppo_mini_batch_size": str(BATCH),
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "4",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "4",
}
RECYCLE = ["rlfactory.rollout.recycle.enabled=true", "rlfactory.rollout.recycle.oversample=1.0",
           # verl's off-policy correction on the rollout's own log-probs (calculate_log_probs=True in grpo_overrides)
           "algorithm.rollout_correction.rollout_is=token"]
RAN = {"ok", "tool_error", "timeout", "crashed"}  # the statuses of a call the tool ran
SLOW_S = 10.0  # a product's call outlasts the step it started in: it is in flight through the abort and the update


def write_slow_tool(path: Path, log: Path) -> Path:
    """branching_task's logging ``calc`` (same schema: the model's lessons), async and slow on a product."""
    source = task.TOOL_SOURCE.format(log=str(log))
    edits = [("import os\n", "import asyncio\nimport os\n"), ("def calc(", "async def calc("),
             ("    a, op, b = expression.split()\n",
              f"    a, op, b = expression.split()\n    if op == '*':\n        await asyncio.sleep({SLOW_S})\n")]
    for old, new in edits:
        assert source.count(old) == 1, f"branching_task.TOOL_SOURCE changed: {old!r}"
        source = source.replace(old, new)
    path.write_text(source)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("recycle")
    model, loss = task.build_model(root / "model")
    assert loss < 0.1, f"the tiny model did not learn the conversations (loss {loss:.3f})"
    train, val = task.write_rows(root)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    ws = Workspace(root=root, model=model, train_file=train, val_file=val, reward_file=reward)
    tool = write_slow_tool(root / "calc_tool.py", root / "calls.log")
    overrides = with_settings(grpo_overrides(ws, steps=STEPS, n_workers=1), SETTINGS) + RECYCLE + [
        "rlfactory.parser=hermes",
        "rlfactory.tool_manager.retries=0",  # (and no result cache, the default): a call written is a call run
        "rlfactory.rewards=[{name: qa_em, weight: 1.0}, {name: tool_verify, weight: 0.5}]",
        f"rlfactory.rollout.max_turns={MAX_TURNS}",
        "rlfactory.rollout.max_calls_per_turn=1",  # bounds the calls of a trajectory still running at exit
        f"actor_rollout_ref.rollout.multi_turn.function_tool_path={tool}",
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
    ]
    result = run_main_ppo(ws, overrides, timeout=240)
    result.succeeded()
    dumps = read_dumps(root / "trajectories")
    log = root / "calls.log"
    return {"result": result, "dumps": dumps, "calls": log.read_text().splitlines() if log.exists() else []}


def test_three_steps_on_colocate_async_with_recycled_trajectories_and_none_dropped(run):
    result = run["result"]
    metrics = result.metrics
    assert sorted(metrics) == list(range(1, STEPS + 1)), sorted(metrics)
    assert "RecyclingReplayBuffer" in result.log or "colocate_async" in result.log
    for step, m in metrics.items():
        assert math.isfinite(m["actor/grad_norm"]), step
        assert m["training/recycle/dropped_groups"] == 0, (step, m)
        assert m["rollout/trajectories"] == BATCH * N, (step, m["rollout/trajectories"])  # a full batch each step
        assert any(k.startswith("rollout_corr/rollout_is") for k in m), sorted(k for k in m if "rollout_corr" in k)
    assert metrics[1]["training/recycle/trajectories"] == 0  # nothing is older than the first weights
    # step 1 had 2 x train_batch_size groups (oversample=1.0): the ones it did not take are kept, none dropped
    carried = metrics[1]["training/recycle/in_flight_groups"] + metrics[1]["training/recycle/waiting_groups"]
    assert carried == BATCH, metrics[1]
    # the groups kept in flight at step 1 (oversample x train_batch_size) are trained in later steps
    recycled = sum(m["training/recycle/trajectories"] for m in metrics.values())
    assert recycled >= BATCH * N, {s: m["training/recycle/trajectories"] for s, m in metrics.items()}
    for step, m in metrics.items():
        if m["training/recycle/trajectories"]:
            assert 1 <= m["training/recycle/staleness/max"] <= 2, (step, m["training/recycle/staleness/max"])
            # verl's own staleness metric agrees: the oldest weights a trained trajectory used
            assert m["training/off_policy/trajectory_staleness_worst/max"] == m["training/recycle/staleness/max"]
    print("recycle e2e:", {s: {k.rsplit("/", 1)[-1] if "staleness" not in k else k.split("recycle/")[1]: m[k]
                              for k in m if k.startswith("training/recycle/")} for s, m in metrics.items()},
          f"{result.seconds:.0f}s")


def test_the_dumps_record_the_weight_versions_and_the_tool_ran_each_call_once(run):
    dumps, calls = run["dumps"], run["calls"]
    assert dumps, "no trajectory was dumped"
    for t in dumps:
        assert t["min_global_steps"] is not None and t["min_global_steps"] <= t["max_global_steps"]
    spanning = [t for t in dumps if t["max_global_steps"] > t["min_global_steps"]]
    print(f"recycle e2e dumps: {len(dumps)} trajectories, {len(spanning)} spanning weight versions")
    # the slow call of the product row ran while its step ended: aborted generations, sleep, training, the
    # weight update; the turn after it was generated on newer weights, and the call was not run again
    slow = [t for t in dumps if t["extra_info"]["index"] == 1 and len(t["turns"]) >= 2]
    assert slow, "no trajectory of the slow row called the tool and answered"
    assert any(t["turns"][1]["min_global_steps"] > t["turns"][0]["max_global_steps"] for t in slow), [
        [(turn["min_global_steps"], turn["max_global_steps"]) for turn in t["turns"]] for t in slow]
    recorded = Counter(c["arguments"]["expression"] for t in dumps for turn in t["turns"] for c in turn["tool_calls"]
                       if c["result"] is not None and c["result"]["status"] in RAN)
    ran = Counter(line.split(" ", 1)[1] for line in calls)
    assert recorded and not recorded - ran, (recorded, ran)  # every call a trajectory records ran
    # a call runs again only if a trajectory is re-run; those still running when the trainer exits are not
    # dumped, and each of them ran at most one call per turn
    dispatched = (STEPS + 1) * BATCH * N  # one batch per step + oversample=1.0 warm-up batch
    unfinished = dispatched - len(dumps)
    assert unfinished >= 0, (dispatched, len(dumps))
    assert sum((ran - recorded).values()) <= unfinished * MAX_TURNS, (ran - recorded, unfinished)
