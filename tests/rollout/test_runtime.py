"""The per-process runtime: shared across trajectories, lifecycle hooks, JSONL dumps,
per-step metrics, and the agent loop's registration in verl."""

from __future__ import annotations

import json
import os

import pytest

from rlfactory_plugins import hookimpl, plugins
from rlfactory_plugins.config import validate_section
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.rollout.runtime import close_runtimes, get_runtime
from tests.helpers.rollout import STEP, ScriptedServer, make_agent_loop, run_loop, section

pytestmark = pytest.mark.timeout(60)
CALL = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'


async def test_one_runtime_per_process_and_config(tools_plugin, tokenizer):
    cfg = validate_section(section())
    first, again = await get_runtime(cfg, tokenizer), await get_runtime(cfg, tokenizer)
    other = await get_runtime(validate_section(section(max_turns=2)), tokenizer)
    assert first is again and other is not first
    assert sorted(s["function"]["name"] for s in first.tool_schemas) == ["add", "big", "echo", "search", "slow"]


async def test_hooks_run_and_a_failing_hook_is_only_logged(tools_plugin, tokenizer, caplog):
    seen = []

    class Watcher:
        @hookimpl
        def on_turn_finished(self, trajectory, turn):
            seen.append(("turn", turn.index))
            raise RuntimeError("plugin bug")

        @hookimpl
        def on_trajectory_finished(self, trajectory):
            seen.append(("done", trajectory.stop_reason))

    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, Watcher(), "watcher")
    out = await run_loop(make_agent_loop(ScriptedServer(tokenizer, [CALL, "<answer>5</answer>"]), tokenizer, section()))
    assert out.extra_fields["rlfactory_trajectory"]["stop_reason"] == "answer"
    assert seen == [("turn", 0), ("turn", 1), ("done", "answer")]
    assert "plugin bug" in caplog.text or "raised in on_turn_finished" in caplog.text


async def test_dump_and_step_metrics(tools_plugin, tokenizer, tmp_path):
    cfg = section(max_turns=3)
    cfg.update(trajectory_dir=str(tmp_path / "traj"), metrics_file=str(tmp_path / "metrics.jsonl"))
    for script in ([CALL, "<answer>5</answer>"], ["no tools"]):
        await run_loop(make_agent_loop(ScriptedServer(tokenizer, script), tokenizer, cfg))
    dump = tmp_path / "traj" / f"step_{STEP:05d}.{os.getpid()}.jsonl"
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [r["stop_reason"] for r in rows] == ["answer", "no_call"] and rows[0]["turns"][0]["tool_calls"][0]["result"]

    await close_runtimes()  # flushes the step
    (line,) = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert line["step"] == STEP and line["rollout/trajectories"] == 2
    assert line["rollout/turns/mean"] == 1.5 and line["rollout/calls/total"] == 1
    assert line["rollout/stop_reason/answer"] == 0.5 and line["rollout/stop_reason/deadline"] == 0.0
    assert any(k.startswith("tool_manager/") for k in line)


async def test_max_response_tokens_above_response_length_is_a_config_error(tools_plugin, tokenizer):
    with pytest.raises(ConfigError, match="response_length"):
        make_agent_loop(ScriptedServer(tokenizer, ["x"]), tokenizer, section(max_response_tokens=999), response_length=64)


def test_registered_in_verl():
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    import rlfactory_plugins.verl.agent_loop as agent_loop

    assert _agent_loop_registry["rlfactory_agent"]["_target_"] == "rlfactory_plugins.verl.agent_loop.RLFactoryAgentLoop"
    assert agent_loop.AGENT_LOOP_NAME == "rlfactory_agent"
