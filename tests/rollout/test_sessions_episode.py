"""Per-trajectory sessions through the real rlfactory_agent loop: every ending closes them.

A fake stateful key-value tool counts opens and closes (``counts``, tests/helpers/rollout.py); each scenario drives the loop with a
scripted server and asserts opens == closes (with the reason), the exported final state, and
that GRPO siblings (same uid) never share a session.
"""

from __future__ import annotations

import asyncio

import pytest

from rlfactory_plugins.rollout import runtime as runtime_module
from tests.helpers.rollout import ScriptedServer, call, kv_section, make_agent_loop, run_loop, section, traj_of

pytestmark = pytest.mark.timeout(60)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("script", "rollout", "stop"),
    [
        ([call("a", 7), call("a"), "<answer>7</answer>"], {}, "answer"),
        ([call("a", 7), "I do not know."], {}, "no_call"),
        ([call("a", 7), call("a", 8)], {"max_turns": 2}, "max_turns"),
        ([call("a", 7), "word " * 400], {"max_response_tokens": 80}, "max_length"),
        ([call("a", 7), call("boom"), "<answer>7</answer>"], {}, "answer"),  # a tool raising: a tool_error
        ([call("a", 7), call("crash"), call("a"), "<answer>?</answer>"], {}, "answer"),  # the session died
        ([call("a", 7), "<tool_call>not json</tool_call>", "<answer>7</answer>"], {}, "answer"),  # parse error
    ],
    ids=["answer", "no_call", "max_turns", "max_length", "tool_raises", "tool_crashes", "parse_error"],
)
async def test_every_ending_closes_the_session(counts, tokenizer, script, rollout, stop):
    out = await run_loop(make_agent_loop(ScriptedServer(tokenizer, script), tokenizer, kv_section(**rollout)))
    traj = traj_of(out)
    assert traj.stop_reason == stop, traj.error
    assert len(counts.opens) == 1 and counts.closes == [(traj.key, stop)]
    if stop == "tool_crashes" or "crash" in str(script):
        assert [c.result.status.value for c in traj.tool_calls] == ["ok", "crashed", "crashed"]
        assert "session lost" in traj.tool_calls[2].result.error
    else:
        assert traj.tool_state == {"kv": {"a": 7}}  # max_turns: the last turn's calls do not run
    assert traj.close_errors == {}
    if "boom" in str(script):
        assert traj.tool_calls[1].result.status.value == "tool_error"


async def test_first_call_reads_what_the_session_holds(counts, tokenizer):
    server = ScriptedServer(tokenizer, [call("a", 5), call("a"), "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, kv_section()))
    traj = traj_of(out)
    assert traj.tool_calls[1].result.output == '{"key": "a", "value": 5}'
    assert out.extra_fields["rlfactory_stats"]["sessions/exported"] == 1.0


async def test_server_error_closes_the_session(counts, tokenizer):
    server = ScriptedServer(tokenizer, [call("a", 1), "never"], fail_on=1)
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, kv_section())))
    assert traj.stop_reason == "error" and "rollout server went away" in traj.error
    assert counts.closes == [(traj.key, "error")] and traj.tool_state == {"kv": {"a": 1}}


async def test_trajectory_deadline_during_a_hung_call_closes_the_session(counts, tokenizer):
    server = ScriptedServer(tokenizer, [call("a", 1) + call("hang"), "never"])
    loop = make_agent_loop(server, tokenizer, kv_section(trajectory_timeout_s=0.5, max_calls_per_turn=2))
    traj = traj_of(await run_loop(loop))
    assert traj.stop_reason == "deadline" and "trajectory_timeout_s" in traj.error
    assert counts.closes == [(traj.key, "deadline")] and traj.tool_state == {"kv": {"a": 1}}


async def test_straggler_cut_closes_the_session(counts, tokenizer):
    cfg = kv_section(straggler_fraction=0.5, straggler_grace_s=0.2)
    fast = make_agent_loop(ScriptedServer(tokenizer, [call("a", 1), "<answer>1</answer>"]), tokenizer, cfg)
    slow = make_agent_loop(ScriptedServer(tokenizer, [call("a", 2), call("hang"), "x"]), tokenizer, cfg)
    outs = await asyncio.gather(run_loop(slow), run_loop(fast))
    slow_traj, fast_traj = (traj_of(o) for o in outs)
    assert (slow_traj.stop_reason, fast_traj.stop_reason) == ("deadline", "answer")
    assert "straggler policy" in slow_traj.error
    assert sorted(counts.closes) == sorted([(slow_traj.key, "deadline"), (fast_traj.key, "answer")])
    assert (slow_traj.tool_state, fast_traj.tool_state) == ({"kv": {"a": 2}}, {"kv": {"a": 1}})


async def test_over_sampling_cut_all_closes_every_session(counts, tokenizer):
    cfg = kv_section()
    servers = [ScriptedServer(tokenizer, [call("a", i) + call("hang"), "x"]) for i in range(3)]
    loop_cfg = {**cfg, "rollout": {**cfg["rollout"], "max_calls_per_turn": 2}}
    tasks = [asyncio.create_task(run_loop(make_agent_loop(s, tokenizer, loop_cfg))) for s in servers]
    await wait_for(lambda: len(counts.opens) == 3)
    assert runtime_module.cut_running("over-sampling: the step's batch is complete") == 3
    trajs = [traj_of(o) for o in await asyncio.gather(*tasks)]
    assert all(t.stop_reason == "deadline" and t.error.startswith("over-sampling") for t in trajs)
    assert sorted(counts.closes) == sorted((t.key, "deadline") for t in trajs) and counts.balanced()
    assert sorted(t.tool_state["kv"]["a"] for t in trajs) == [0, 1, 2]


async def test_cancelled_trajectory_still_closes_its_session(counts, tokenizer):
    server = ScriptedServer(tokenizer, [call("hang"), "x"])
    task = asyncio.create_task(run_loop(make_agent_loop(server, tokenizer, kv_section())))
    await wait_for(lambda: counts.opens)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: counts.closes)  # the shielded close finishes in the background
    assert counts.closes == [(counts.opens[0], "cancelled")]


async def test_runtime_close_sweeps_the_sessions_of_running_trajectories(counts, tokenizer):
    servers = [ScriptedServer(tokenizer, [call("a", i) + call("hang"), "x"]) for i in range(2)]
    cfg = kv_section(max_calls_per_turn=2)
    tasks = [asyncio.create_task(run_loop(make_agent_loop(s, tokenizer, cfg))) for s in servers]
    await wait_for(lambda: len(counts.opens) == 2)
    await runtime_module.close_runtimes()
    assert sorted(counts.closes) == sorted((k, "shutdown") for k in counts.opens)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(counts.closes) == 2  # the episodes' own close found them closed: not closed twice


async def test_grpo_siblings_get_separate_sessions(counts, tokenizer):
    """Same uid (one prompt, n samples): each sibling writes and reads its own store."""
    cfg = kv_section()
    servers = [ScriptedServer(tokenizer, [call("a", i), call("a"), "<answer>x</answer>"], delay=0.01) for i in range(4)]
    outs = await asyncio.gather(*(run_loop(make_agent_loop(s, tokenizer, cfg)) for s in servers))
    trajs = [traj_of(o) for o in outs]
    assert {t.uid for t in trajs} == {"u1"} and len({t.key for t in trajs}) == 4
    assert [t.tool_calls[1].result.output for t in trajs] == [f'{{"key": "a", "value": {i}}}' for i in range(4)]
    assert [t.tool_state for t in trajs] == [{"kv": {"a": i}} for i in range(4)]
    assert all(c.uid == "u1" for c in counts.contexts) and counts.balanced()


async def test_v1_session_id_keys_the_session_on_uid_and_sample(counts, tokenizer):
    cfg = kv_section()
    servers = [ScriptedServer(tokenizer, [call("a", i), "<answer>x</answer>"]) for i in range(2)]
    outs = await asyncio.gather(
        *(run_loop(make_agent_loop(s, tokenizer, cfg), session_id=i) for i, s in enumerate(servers))
    )
    assert [traj_of(o).key for o in outs] == ["u1/0", "u1/1"]
    assert sorted(counts.opens) == ["u1/0", "u1/1"]


async def test_eager_sessions_open_before_the_first_turn(counts, tokenizer):
    server = ScriptedServer(tokenizer, ["<answer>5</answer>"])
    extra = {"rlfactory": {"open_sessions": "eager", "tool_kwargs": {"kv": {"initial": {"seed": 3}}}}}
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, kv_section()), extra_info=extra))
    assert traj.stop_reason == "answer" and counts.opens == [traj.key]
    assert counts.closes == [(traj.key, "answer")] and traj.tool_state == {"kv": {"seed": 3}}
    assert dict(counts.contexts[0].kwargs) == {"initial": {"seed": 3}}


async def test_stateless_rows_open_no_sessions(tools_plugin, tokenizer):
    """Without a stateful tool nothing about sessions shows: no key in the stats, no registry entry."""
    server = ScriptedServer(tokenizer, ['<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>', "<answer>5</answer>"])
    loop = make_agent_loop(server, tokenizer, section())
    out = await run_loop(loop)
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.tool_state == {} and traj.tools is None
    assert not any(k.startswith("sessions/") or k == "user_turns" for k in out.extra_fields["rlfactory_stats"])
    rt = await runtime_module.get_runtime(loop.rlf_config, tokenizer, loop.apply_chat_template_kwargs)
    assert len(rt.sessions) == 0 and not rt.sessions.used and rt.running == {}
