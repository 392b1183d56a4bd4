"""verl's ``main_ppo`` with ``+plugins=rlfactory`` on rows that each choose their tools, initial state and
user turns (tests/helpers/stateful_task.py): key-value-store rows (the kvstore pack, eager sessions), a
verl ``BaseTool`` row (verl's own ``multi_turn.tool_config_path``) and a sandboxed ``python_session``
row. Checked on what the run leaves: the trajectory dumps, rlfactory's metrics lines, the processes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers import stateful_task as task
from tests.helpers.e2e import REWARD_SOURCE, Workspace, grpo_overrides, read_dumps, run_main_ppo, with_settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]

STEPS, N = 2, 2
pytest.importorskip("rlfactory_tool_kvstore", reason="the kvstore pack (tool_plugins/rlfactory-tool-kvstore)")
pytest.importorskip("rlfactory_tool_python", reason="the python pack (tool_plugins/rlfactory-tool-python)")

SETTINGS = {  # replaces grpo_overrides' values of these keys
    "data.max_prompt_length": "64",
    "data.max_response_length": "192",
    "actor_rollout_ref.rollout.n": str(N),
    "actor_rollout_ref.actor.optim.lr": "1e-5",  # the run checks the environment, not learning: keep the taught policy
    # 4 rows x 2 samples over 2 workers: 4 sequences each, GRPO groups of 2 kept together
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "2",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "2",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Workspace, list[dict], list[dict]]:
    root = tmp_path_factory.mktemp("stateful")
    rows = task.rows()
    model, loss = task.build_model(root / "model", rows)
    assert loss < 0.05, f"the tiny model did not learn the rows' conversations (loss {loss:.3f})"
    train, val = task.write_rows(root, rows)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    ws = Workspace(root=root, model=model, train_file=train, val_file=val, reward_file=reward)
    sandbox_tmp = root / "sandbox_tmp"
    sandbox_tmp.mkdir()
    overrides = with_settings(grpo_overrides(ws, steps=STEPS, n_workers=2), SETTINGS) + [
        f"actor_rollout_ref.rollout.multi_turn.tool_config_path={task.write_tool_config(root)}",
        "rlfactory.parser=hermes",
        "rlfactory.tools=[kv_get, kv_set, kv_delete, kv_list, python_session, {name: counter, timeout: 10}]",
        # (task.TOOLS is this list's order: the tool manager's, in which a row's schemas are rendered)
        "rlfactory.rewards=[{name: kv_state, weight: 1.0}, {name: tool_verify, weight: 0.5}]",
        "rlfactory.rollout.max_turns=6",
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
        f"rlfactory.metrics_file={root / 'rlfactory_metrics.jsonl'}",
    ]
    result = run_main_ppo(ws, overrides, timeout=480, pythonpath=(str(root),), env_extra={"TMPDIR": str(sandbox_tmp)})
    result.succeeded()
    assert sorted(result.metrics) == list(range(1, STEPS + 1)), sorted(result.metrics)
    dumps = read_dumps(root / "trajectories")
    lines = [json.loads(line) for line in (root / "rlfactory_metrics.jsonl").read_text().splitlines() if line.strip()]
    return ws, dumps, lines


def by_kind(dumps: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in dumps:
        out.setdefault(t["extra_info"]["kind"], []).append(t)
    return out


def calls(t: dict) -> list[dict]:
    return [c for turn in t["turns"] for c in turn["tool_calls"]]


def test_every_trajectory_of_every_row_was_dumped(run):
    _, dumps, _ = run
    per_row = Counter((t["step"], t["extra_info"]["index"]) for t in dumps)
    assert per_row == {(s, i): N for s in range(1, STEPS + 1) for i in range(len(task.rows()))}, per_row
    assert all(t["stop_reason"] != "error" for t in dumps), [t["error"] for t in dumps if t["error"]]


def test_each_trajectory_sees_its_rows_own_tool_list(run):
    _, dumps, _ = run
    rows = task.rows()
    for t in dumps:
        row = rows[t["extra_info"]["index"]]
        assert sorted(t["tools"]) == sorted(row.tools), (t["key"], t["tools"])
        called = {c["name"] for c in calls(t) if c["name"]}
        outside = called - set(row.tools)
        for c in calls(t):
            if c["name"] in outside:  # a call outside the row's set never reaches a tool
                assert c["result"]["status"] == "unknown_tool", c
                assert "not available to this trajectory (allowed: " in c["result"]["error"], c


def test_each_trajectory_has_its_own_state(run):
    _, dumps, _ = run
    kinds = by_kind(dumps)
    rows = task.rows()
    for t in kinds["kv"]:  # eager: every kv trajectory's store was opened from its row and exported
        data = t["tool_state"]["kv"]["data"]
        initial = {p["key"]: p["value"] for p in rows[t["extra_info"]["index"]].extra["rlfactory"]["tool_kwargs"]["kv"]["initial"]}
        assert set(initial) <= set(data), (initial, data)  # nothing of the row's own start is lost
        if "shape" not in initial:  # row 0's stores never hold row 1's key (the model never sets it)
            assert "shape" not in data, data
    solved = [t for t in kinds["kv"] if t["tool_state"]["kv"]["data"] == {
        p["key"]: p["value"] for p in rows[t["extra_info"]["index"]].extra["kv_expected_state"]}]
    assert solved, "no kv trajectory reached its row's expected store"
    # the verl counter: one instance per trajectory, started from the row's tools_kwargs (start 10)
    counted = [t for t in kinds["counter"] if "counter" in t["tool_state"]]
    assert counted, "no counter trajectory called the verl tool"
    for t in counted:
        outputs = [c["result"]["output"] for c in calls(t) if c["name"] == "counter" and c["result"]["status"] == "ok"]
        assert outputs and outputs[0].startswith("count=1"), outputs  # 10 + by: the row's start, not a sibling's
        assert t["tool_state"]["counter"]["reward"] == float(outputs[-1].removeprefix("count="))
    # python_session: the first user turn's variable is there in the second
    persisted = [t for t in kinds["python"] if any(
        c["name"] == "python_session" and c["result"]["status"] == "ok" and c["result"]["output"].strip() == "43"
        for c in calls(t))]
    assert persisted, [[(c["name"], c["result"]) for c in calls(t)] for t in kinds["python"]]


def test_the_scripted_user_turn_is_in_every_trajectory_that_ended_its_first_turn(run):
    _, dumps, _ = run
    rows = task.rows()
    with_turn = [t for t in dumps if t["user_turns"] == 1]
    assert len(with_turn) >= len(dumps) // 2, Counter(t["stop_reason"] for t in dumps)
    for t in with_turn:
        second = rows[t["extra_info"]["index"]].user_turns[1]
        assert [turn["env_message"] for turn in t["turns"] if turn["env_message"]] == [second]
        assert any(m["role"] == "user" and m["content"] == second for m in t["messages"]), t["messages"]


def test_rewards_read_the_final_state(run):
    _, dumps, _ = run
    assert any(t["extra_info"]["kind"] == "kv" for t in dumps)
    ws, _, _ = run
    scores = [m["critic/score/max"] for m in run_metrics(ws).values()]
    assert max(scores) >= 1.0, scores  # kv_state (1.0) only when a store equals the expected one


def run_metrics(ws: Workspace) -> dict[int, dict[str, float]]:
    from tests.helpers.e2e import read_metrics

    return read_metrics(ws.metrics_file)


def test_no_session_left_open_and_no_sandbox_process_left(run):
    ws, dumps, lines = run
    # kv: a store's final state is exported when its session closes; every kv trajectory opened one (eager)
    assert all("kv" in t["tool_state"] and not t["close_errors"] for t in dumps if t["extra_info"]["kind"] == "kv")
    # the verl tool (in a Ray worker) logged each create and release: every instance was released
    events = [line.split() for line in (ws.root / "counter_events.txt").read_text().splitlines()]
    created = [i for kind, i in events if kind == "create"]
    assert created and sorted(created) == sorted(i for kind, i in events if kind == "release"), events
    assert len(created) == len([t for t in dumps if "counter" in t["tool_state"]])
    # rlfactory's own counters (the side file's line of each step but the last, written as the next starts)
    assert lines and all(line["tool_manager/sessions/failed"] == 0 for line in lines)
    # python_session: every sandbox process gone (found by the run dir in its command line), every dir removed
    marker = str(ws.root / "sandbox_tmp")
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    left.append(int(proc.name))
            except OSError:
                pass
    assert not left, f"sandbox processes left after the run: {left}"
    assert not list((ws.root / "sandbox_tmp").glob("rlf_python_*")), "sandbox run dirs left behind"
    assert any(t["tool_state"].get("python_session", {}).get("calls") for t in dumps), "no sandbox session ran"


def test_verls_logger_gets_rlfactorys_metrics_and_they_agree_with_the_dumps(run):
    """Every step's row of verl's file logger (what wandb/console get) holds the batch's reward parts, tools
    and stop reasons; recomputed from that step's trajectory dumps they agree."""
    import asyncio

    from rlfactory_tool_kvstore import kv_state

    from rlfactory_plugins.trajectory import Trajectory

    ws, dumps, _ = run
    for step, m in run_metrics(ws).items():
        trajs = [Trajectory.model_validate(t) for t in dumps if t["step"] == step]
        assert m["rollout/trajectories"] == len(trajs) == len(task.rows()) * N
        scores = [asyncio.run(kv_state.ascore(t, kv_state.parse_options({}))).score for t in trajs]
        assert m["reward/kv_state/mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
        calls = [c for t in trajs for c in t.tool_calls]
        assert m["tool/all/calls"] == len(calls)
        assert m["tool/all/ok_rate"] == pytest.approx(sum(c.ok for c in calls) / len(calls), abs=1e-6)
        env_done = sum(t.stop_reason == "env_done" for t in trajs) / len(trajs)
        assert m["rollout/stop_reason/env_done"] == pytest.approx(env_done, abs=1e-6)
        assert m["reward/total/mean"] == pytest.approx(m["critic/score/mean"], abs=1e-5)
