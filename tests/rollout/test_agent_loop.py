"""The rlfactory_agent loop end to end: scripted scenarios with exact expectations."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers.rollout import STEP, ScriptedServer, make_agent_loop, run_loop, section, spans, traj_of

pytestmark = pytest.mark.timeout(60)

CALL_ADD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
CALL_ECHO = '<tool_call>{"name": "echo", "arguments": {"text": "hi {there}"}}</tool_call>'
CALL_BAD = "<tool_call>not json at all</tool_call>"


async def test_two_calls_and_a_malformed_one_then_answer(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, [f"Let me compute. {CALL_ADD}\n{CALL_ECHO}\n{CALL_BAD}", "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    traj = traj_of(out)

    assert traj.stop_reason == "answer" and traj.final_answer == "5" and traj.step == STEP
    calls = traj.tool_calls
    assert [c.name for c in calls] == ["add", "echo", None]
    assert [c.result.output for c in calls[:2]] == ["5", "hi {there}"]
    assert calls[2].error_kind == "parse_error" and calls[2].result is None
    assert sum(c.ok for c in calls) == 2 and traj.ground_truth == "5" and traj.data_source == "unit"
    assert [m["role"] for m in traj.messages] == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    assert out.extra_fields["rlfactory_stats"]["errors/parse_error"] == 1.0

    # token-in/token-out: the response is turn-1 ids, observation, turn-2 ids, exactly as generated
    ids, mask, logprobs = out.response_ids, out.response_mask, out.response_logprobs
    assert len(ids) == len(mask) == len(logprobs)
    t1, t2 = server.outputs
    (obs_start, obs_end), = spans(mask, 0)
    assert ids[:obs_start] == t1 and ids[obs_end:] == t2 and spans(mask, 1) == [(0, obs_start), (obs_end, len(ids))]
    observation = tokenizer.decode(ids[obs_start:obs_end])
    assert observation.count("<tool_response>") == 3 and "[parse_error]" in observation and "hi {there}" in observation
    assert observation.endswith("<|im_start|>assistant\n")
    # the second request saw exactly prompt + everything so far; the same sampling params every turn
    assert server.calls[1]["prompt_ids"] == out.prompt_ids + ids[:obs_end]
    first, second = (c["params"] for c in server.calls)
    assert {k: v for k, v in first.items() if k != "max_tokens"} == {k: v for k, v in second.items() if k != "max_tokens"}
    assert second["max_tokens"] == 256 - obs_end
    # logprobs: the server's values on model tokens, 0.0 on observation tokens
    assert logprobs[:obs_start] == [-(1 + i / 1000) for i in range(len(t1))]
    assert logprobs[obs_start:obs_end] == [0.0] * (obs_end - obs_start)
    assert logprobs[obs_end:] == [-(2 + i / 1000) for i in range(len(t2))]
    assert out.num_turns == 4 and out.metrics.tool_calls > 0


async def test_no_logprobs_requested(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, [CALL_ADD, "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), logprobs=False)
    assert out.response_logprobs is None and traj_of(out).stop_reason == "answer"


async def test_no_call_ends(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["I do not know."])
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    assert traj_of(out).stop_reason == "no_call" and len(server.calls) == 1 and set(out.response_mask) == {1}


async def test_max_turns_stops_without_running_the_last_calls(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, [CALL_ADD])
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_turns=2)))
    traj = traj_of(out)
    assert traj.stop_reason == "max_turns" and traj.num_turns == 2 and len(server.calls) == 2
    assert traj.tool_calls[0].ok and traj.tool_calls[1].error_kind == "not_run"
    # nothing after the last turn: the response ends with its generated tokens
    assert out.response_ids[-len(server.outputs[1]) :] == server.outputs[1]
    assert len(spans(out.response_mask, 0)) == 1 and out.response_mask[-len(server.outputs[1]) :] == [1] * len(server.outputs[1])


async def test_max_calls_per_turn_gives_an_error_observation(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, [CALL_ADD + CALL_ECHO + CALL_ADD, "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_calls_per_turn=1)))
    calls = traj_of(out).tool_calls
    assert [c.error_kind for c in calls] == [None, "over_limit", "over_limit"]
    assert calls[1].result is None
    (s, e), = spans(out.response_mask, 0)
    assert tokenizer.decode(out.response_ids[s:e]).count("[over_limit]") == 2


async def test_max_length_in_generation(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["blah " * 200 + CALL_ADD])
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_response_tokens=30)))
    traj = traj_of(out)
    assert traj.stop_reason == "max_length" and len(out.response_ids) == 30 and len(server.calls) == 1
    assert server.calls[0]["params"]["max_tokens"] == 30


async def test_truncated_call_at_length_limit_is_a_parse_error(tools_plugin, tokenizer):
    full = tokenizer.encode(CALL_ADD, add_special_tokens=False)
    server = ScriptedServer(tokenizer, [full[:-3]], eos=False)
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_response_tokens=len(full) - 3)))
    traj = traj_of(out)
    assert traj.stop_reason == "max_length" and traj.tool_calls[0].error_kind == "parse_error"
    assert "unterminated" in traj.tool_calls[0].parse_error


async def test_max_length_when_the_observation_does_not_fit(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ['<tool_call>{"name": "big", "arguments": {"n": 50}}</tool_call>'])
    n_turn = len(tokenizer.encode(server.turns[0], add_special_tokens=False)) + 1
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_response_tokens=n_turn + 20)))
    traj = traj_of(out)
    assert traj.stop_reason == "max_length" and len(server.calls) == 1
    assert out.response_ids == server.outputs[0] and set(out.response_mask) == {1}  # not cut silently
    assert traj.tool_calls[0].ok and traj.turns[0].observation_tokens == 0


async def test_long_observation_is_truncated_with_a_marker(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ['<tool_call>{"name": "big", "arguments": {"n": 300}}</tool_call>', "done"])
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_observation_tokens=16)))
    traj = traj_of(out)
    (s, e), = spans(out.response_mask, 0)
    assert "...[truncated]" in tokenizer.decode(out.response_ids[s:e]) and traj.turns[0].observation_truncated
    assert e - s < 60 and traj.stop_reason == "no_call"


async def test_hung_tool_times_out_without_stalling(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ['<tool_call>{"name": "slow", "arguments": {"seconds": 30}}</tool_call>', "ok"])
    start = time.perf_counter()
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    assert time.perf_counter() - start < 5
    call = traj_of(out).tool_calls[0]
    assert call.error_kind == "timeout" and traj_of(out).stop_reason == "no_call"


async def test_deadline_during_generation_keeps_the_tokens(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, [CALL_ADD], delay=0.3)
    start = time.perf_counter()
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_turns=10, trajectory_timeout_s=1.0)))
    traj = traj_of(out)
    assert time.perf_counter() - start < 2.5 and traj.stop_reason == "deadline"
    assert 1 <= traj.num_turns < 10 and len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    assert out.response_ids[: len(server.outputs[0])] == server.outputs[0]


async def test_deadline_during_tool_calls(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ['<tool_call>{"name": "slow", "arguments": {"seconds": 20}}</tool_call>'])
    loop = make_agent_loop(server, tokenizer, section(slow_timeout=60, trajectory_timeout_s=0.5))
    start = time.perf_counter()
    out = await run_loop(loop)
    traj = traj_of(out)
    assert time.perf_counter() - start < 3 and traj.stop_reason == "deadline"
    assert out.response_ids == server.outputs[0] and traj.tool_calls[0].error_kind == "not_run"


async def test_an_error_ends_only_its_trajectory(tools_plugin, tokenizer):
    broken = ScriptedServer(tokenizer, [CALL_ADD], fail_on=1)
    fine = ScriptedServer(tokenizer, [CALL_ADD, "<answer>5</answer>"])
    cfg = section()
    bad, good = await asyncio.gather(
        run_loop(make_agent_loop(broken, tokenizer, cfg)), run_loop(make_agent_loop(fine, tokenizer, cfg))
    )
    assert traj_of(good).stop_reason == "answer"
    traj = traj_of(bad)
    assert traj.stop_reason == "error" and "rollout server went away" in traj.error
    # the tokens it had are kept and aligned: turn 1 + its observation
    assert bad.response_ids[: len(broken.outputs[0])] == broken.outputs[0]
    assert len(bad.response_ids) == len(bad.response_mask) == len(bad.response_logprobs)


async def test_search_r1_cuts_at_stop_and_writes_raw_information(tools_plugin, tokenizer):
    # the server ignores stop strings and runs past </search>: the loop cuts there itself
    server = ScriptedServer(tokenizer, ["<search>capital of France</search> and then rambling", "<answer>Paris</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section(parser="search_r1")))
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.final_answer == "Paris"
    assert traj.tool_calls[0].result.output == "Doc about capital of France."
    assert server.calls[0]["params"]["stop"] == ["</search>", "</answer>"]
    (s, e), = spans(out.response_mask, 0)
    assert tokenizer.decode(out.response_ids[:s]).endswith("</search>")
    assert tokenizer.decode(out.response_ids[s:e]) == "\n\n<information>Doc about capital of France.</information>\n\n"
    assert out.response_ids[:s] == server.outputs[0][:s]  # a prefix of what was generated


async def test_step_straggler_policy_cuts_the_tail_only(tools_plugin, tokenizer):
    """9 of 10 trajectories answer at once; the 10th waits on a slow tool. With
    straggler_fraction=0.9 and grace 0.3 s it ends as 'deadline' ~0.3 s after the 9th."""
    cfg = section(straggler_fraction=0.9, straggler_grace_s=0.3, slow_timeout=30)
    fast = [make_agent_loop(ScriptedServer(tokenizer, ["<answer>5</answer>"], delay=0.05), tokenizer, cfg) for _ in range(9)]
    slow_server = ScriptedServer(tokenizer, ['<tool_call>{"name": "slow", "arguments": {"seconds": 20}}</tool_call>', "x"])
    slow = make_agent_loop(slow_server, tokenizer, cfg)
    start = time.perf_counter()
    outs = await asyncio.gather(*(run_loop(loop) for loop in [slow, *fast]))
    elapsed = time.perf_counter() - start
    trajs = [traj_of(o) for o in outs]
    assert [t.stop_reason for t in trajs] == ["deadline"] + ["answer"] * 9
    assert "straggler policy" in trajs[0].error and elapsed < 3
    assert outs[0].response_ids == slow_server.outputs[0]  # kept what it had


async def test_straggler_policy_off_by_default_waits_for_everyone(tools_plugin, tokenizer):
    cfg = section(slow_timeout=30)
    fast = make_agent_loop(ScriptedServer(tokenizer, ["<answer>5</answer>"]), tokenizer, cfg)
    slowish = make_agent_loop(
        ScriptedServer(tokenizer, ['<tool_call>{"name": "slow", "arguments": {"seconds": 0.6}}</tool_call>', "<answer>1</answer>"]),
        tokenizer,
        cfg,
    )
    outs = await asyncio.gather(run_loop(slowish), run_loop(fast))
    assert [traj_of(o).stop_reason for o in outs] == ["answer", "answer"]


async def test_cut_running_ends_every_running_trajectory_keeping_its_tokens(tools_plugin, tokenizer):
    """What the over-sampling replay buffer asks each worker once it has its batch."""
    from rlfactory_plugins.rollout.runtime import cut_running

    cfg = section(slow_timeout=30)
    done = make_agent_loop(ScriptedServer(tokenizer, ["<answer>5</answer>"]), tokenizer, cfg)
    waiting = [
        ScriptedServer(tokenizer, ['<tool_call>{"name": "slow", "arguments": {"seconds": 20}}</tool_call>', "x"])
        for _ in range(3)
    ]
    finished = await run_loop(done)
    tasks = [asyncio.create_task(run_loop(make_agent_loop(s, tokenizer, cfg))) for s in waiting]
    while not all(s.outputs for s in waiting):  # all three are in their slow tool call
        await asyncio.sleep(0.01)
    start = time.perf_counter()
    assert cut_running("over-sampling: the step's batch is complete") == 3
    outs = await asyncio.gather(*tasks)
    assert time.perf_counter() - start < 2
    for out, server in zip(outs, waiting, strict=True):
        traj = traj_of(out)
        assert traj.stop_reason == "deadline" and traj.error.startswith("over-sampling: the step's batch is complete")
        assert out.response_ids == server.outputs[0]  # kept what it had
    assert traj_of(finished).stop_reason == "answer"
    assert cut_running("nothing left") == 0
