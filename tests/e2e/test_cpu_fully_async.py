"""verl's fully-async trainer (``python -m verl.experimental.fully_async_policy.fully_async_main``) with
``+plugins=rlfactory`` on CPU: one trainer process and a separate rollout, weights synced over the CPU
mode's gloo checkpoint engine after every trainer step, rlfactory's agent loop and workers running a
tool-calling model.

The tiny model is taught to call a ``logged_calc`` tool (a verl ``@function_tool`` of the run's own, enabled
through ``multi_turn.function_tool_path``; it logs every call it runs) and then answer. A product
(``12 * 5``) makes the tool sleep :data:`SLOW_S` seconds: meanwhile the other rows complete, the trainer
trains on them and syncs, so that trajectory's second turn is generated on newer weights than its first,
without relying on a sync landing mid-generation (whether one does is timing: nothing asserts it).
Checked on what the run leaves: verl's metrics, the rollout server's log of each weight load, the
trajectory dumps and the tool's log.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers.e2e import read_dumps, run_verl
from tests.helpers.teach import build_taught_model

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]
pytest.importorskip("rlfactory_reward_qa", reason="the qa reward pack (reward_plugins/rlfactory-reward-qa)")

MAIN = "verl.experimental.fully_async_policy.fully_async_main"
SLOW_S = 8.0
#: (question, expression, answer); 4 rows x 2 epochs = 8 prompts, 2 per trainer step: 4 steps, a sync after each
ROWS = [("What is 3 + 4?", "3 + 4", "7"), ("Compute 12 * 5.", "12 * 5", "60"),
        ("What is 10 - 3?", "10 - 3", "7"), ("What is 2 + 2?", "2 + 2", "4")]
STEPS = 4
TOOL_SOURCE = '''"""The fully-async e2e run's tool: a verl @function_tool that logs every call it runs."""
import asyncio
import os

from verl.tools.function_tool import function_tool


@function_tool
async def logged_calc(expression: str) -> str:
    """Evaluate a sum of two integers.

    Args:
        expression: Like "3 + 4" (+, - or *).
    """
    with open({log!r}, "a") as f:  # first: a call that then fails ran too
        f.write(f"{{os.getpid()}} {{expression}}\\n")
    a, op, b = expression.split()
    if op == "*":  # outlasts a trainer step and a weight sync
        await asyncio.sleep({slow})
    return str({{"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}}[op])
'''


# -- the task ---------------------------------------------------------------------------------------
def write_tool(path: Path, log: Path) -> Path:
    path.write_text(TOOL_SOURCE.format(log=str(log), slow=SLOW_S))
    return path


def schemas(tool: Path) -> list[dict[str, Any]]:
    # (loads the tool in this process: verl's function-tool registry is global, hence a name no other test uses)
    from rlfactory_plugins.verl.verl_tools import load_verl_tools

    return [load_verl_tools(function_tool_path=str(tool))["logged_calc"].spec.openai_schema()]


def conversation(question: str, expression: str, answer: str) -> list[dict[str, Any]]:
    value = str(eval(expression))  # noqa: S307 - the test's own constant expressions
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "logged_calc", "arguments": {"expression": expression}}}]},
        {"role": "tool", "content": value},
        {"role": "assistant", "content": f"<answer>{answer}</answer>"},
    ]


def build_model(model_dir: Path, tool: Path, *, steps: int = 250) -> float:
    """The tiny model taught the conversations (tests/helpers/teach.py); returns the final loss."""
    tools = schemas(tool)
    return build_taught_model(model_dir, [(conversation(*row), tools) for row in ROWS], steps=steps)


def write_rows(root: Path) -> Path:
    import pandas as pd

    train = root / "train.parquet"
    pd.DataFrame([{
        "data_source": "rlfactory_fully_async_e2e", "prompt": [{"role": "user", "content": q}], "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": a}, "extra_info": {"index": i},
    } for i, (q, _, a) in enumerate(ROWS)]).to_parquet(train)
    return train


# -- the run ----------------------------------------------------------------------------------------
def overrides(root: Path, model: Path, train: Path, tool: Path) -> list[str]:
    """The GPU launch line of a tiny fully-async run (rollout.name=vllm; no CPU-only key)."""
    return [
        "+plugins=rlfactory",
        "algorithm.adv_estimator=grpo",
        f"data.train_files={train}", f"data.val_files={train}",
        "data.train_batch_size=0", "data.gen_batch_size=1",  # the fully-async trainer's data settings
        "data.max_prompt_length=64", "data.max_response_length=96", "data.dataloader_num_workers=0",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.hybrid_engine=False",
        "actor_rollout_ref.actor.optim.lr=1e-4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",  # prompts per trainer step (x rollout.n trajectories)
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.actor.use_kl_loss=False",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        f"actor_rollout_ref.rollout.multi_turn.function_tool_path={tool}",
        "trainer.logger=[console,file]", "trainer.project_name=rlfactory_cpu_e2e", "trainer.experiment_name=fully_async",
        "trainer.nnodes=1", "trainer.n_gpus_per_node=1",
        "rollout.nnodes=1", "rollout.n_gpus_per_node=1",
        f"rollout.total_rollout_steps={2 * len(ROWS)}", "trainer.total_epochs=2",
        "trainer.val_before_train=False",
        "trainer.test_freq=1000",  # -1 drops the last sync cycle's metrics (verl 0.9.1's fully-async trainer)
        "trainer.save_freq=-1", f"trainer.default_local_dir={root / 'ckpt'}",
        "async_training.trigger_parameter_sync_step=1", "async_training.require_batches=1",
        "async_training.staleness_threshold=1.0",
        "rlfactory.parser=hermes", "rlfactory.rollout.max_turns=3",
        # two parts summing to 1.5 at most: a score above 1 was rlfactory's composite reward manager
        "rlfactory.rewards=[{name: qa_em, weight: 1.0}, {name: tool_verify, weight: 0.5}]",
        f"rlfactory.metrics_file={root / 'rlfactory_metrics.jsonl'}",
        "rlfactory.tool_manager.retries=0",  # (and no result cache, the default): a call written is a call run
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fully_async")
    tool = write_tool(root / "calc_tool.py", root / "calls.log")
    loss = build_model(root / "model", tool)
    assert loss < 0.1, f"the tiny model did not learn the conversations (loss {loss:.3f})"
    result = run_verl(MAIN, root, overrides(root, root / "model", write_rows(root), tool), timeout=240).succeeded()
    seconds, log = result.seconds, result.log
    dumps = read_dumps(root / "trajectories")
    calls_log = root / "calls.log"
    # one record per line: verl 0.9.1's fully-async trainer logs two sync cycles under one logger step at the end
    records = [json.loads(line)["data"] for line in (root / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"seconds": seconds, "log": log, "metrics": records, "dumps": dumps,
            "calls": calls_log.read_text().splitlines() if calls_log.exists() else []}


def test_trains_every_step_on_rlfactorys_workers(run):
    # verl 0.9.1 logs a sync cycle's training metrics at a later logger step: count training/global_step
    trained = {int(m["training/global_step"]): m for m in run["metrics"] if "training/global_step" in m}
    assert sorted(trained) == list(range(1, STEPS + 1)), sorted(trained)
    for step, m in trained.items():  # (a group's two samples may score alike: no gradient asked for)
        assert math.isfinite(m["actor/grad_norm"]) and m["actor/loss"] is not None, step
    assert max(m["critic/score/max"] for m in trained.values()) > 1.0  # qa_em + tool_verify
    for step, m in trained.items():  # rlfactory's batch metrics in verl's own logger (fully_async_metrics.py)
        assert m["rollout/trajectories"] == 4, (step, m["rollout/trajectories"])  # 2 prompts x rollout.n
        assert {"reward/qa_em/mean", "reward/tool_verify/mean", "tool/logged_calc/calls", "rollout/stop_reason/answer"} <= set(m)
    assert "one shared rlfactory_plugins.verl.agent_loop.RLFactoryAgentLoop object serves" in run["log"]
    assert "ClassicAgentLoopWorker" in run["log"]  # rlfactory's worker, in verl's fully-async rollouter
    print(f"fully-async e2e: {len(trained)} trainer steps in {run['seconds']:.0f}s")


def test_each_sync_loads_new_weights_into_the_separate_rollout(run):
    loads = re.findall(r"rlfactory CPU rollout: weights loaded \(\d+ tensors, version (\d+), checksum (\S+)\)", run["log"])
    versions = {int(v): c for v, c in loads}
    assert sorted(versions) == list(range(STEPS + 1)), loads  # the sync before training, then one per step
    assert len(set(versions.values())) == len(versions), f"a sync left the weights unchanged: {versions}"


def test_the_dumps_record_each_turns_weight_version(run):
    dumps = run["dumps"]
    assert len(dumps) == 2 * 2 * len(ROWS), len(dumps)  # 8 prompts x rollout.n=2
    for t in dumps:
        versions = [(turn["min_global_steps"], turn["max_global_steps"]) for turn in t["turns"]]
        assert all(lo is not None and lo <= hi for lo, hi in versions), versions
        assert t["min_global_steps"] == min(lo for lo, _ in versions)
        assert t["max_global_steps"] == max(hi for _, hi in versions)
    # the slow tool outlasts a trainer step and its sync: an answer turn came from newer weights (not every
    # one: a slow call of the first step can end before the other rows of its step have trained)
    slow = [t for t in dumps if t["extra_info"]["index"] == 1 and len(t["turns"]) == 2]
    assert slow, "no trajectory of the slow row called the tool"
    assert any(t["turns"][1]["min_global_steps"] > t["turns"][0]["max_global_steps"] for t in slow), [
        [(turn["min_global_steps"], turn["max_global_steps"]) for turn in t["turns"]] for t in slow]


def test_each_tool_call_ran_exactly_once(run):
    # every call that reached the tool (one that then raised, e.g. on "2 +  + 3", ran too)
    recorded = Counter(c["arguments"]["expression"] for t in run["dumps"] for turn in t["turns"] for c in turn["tool_calls"]
                       if c["result"] is not None and c["result"]["status"] not in ("invalid_args", "unknown_tool"))
    ran = Counter(line.split(" ", 1)[1] for line in run["calls"])
    assert recorded and ran == recorded
    assert recorded["12 * 5"] >= 2  # the slow calls too


def test_within_the_time_budget(run):
    assert run["seconds"] < 180, f"{run['seconds']:.0f}s"
