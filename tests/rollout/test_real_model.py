"""The agent loop on a real tiny model (random weights) behind a real in-process server:
the logprobs the server returned line up with the final token sequence."""

from __future__ import annotations

import pytest

from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.rollout import HFServerManager, make_agent_loop, run_loop, section

pytestmark = pytest.mark.timeout(120)


async def test_logprobs_align_with_the_final_sequence(tools_plugin, tiny_dir, tokenizer):
    # turn 1 is a scripted call scored by the model; turn 2 is sampled by the model
    server = HFServerManager(tiny_dir, tokenizer, forced=['<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'])
    out = await run_loop(make_agent_loop(server, tokenizer, section(max_turns=2), response_length=96))
    traj = Trajectory.model_validate(out.extra_fields["rlfactory_trajectory"])
    assert traj.tool_calls[0].result.output == "5" and traj.stop_reason in {"max_turns", "max_length", "no_call", "answer"}

    ids, mask, logprobs = out.response_ids, out.response_mask, out.response_logprobs
    assert len(ids) == len(mask) == len(logprobs) <= 96 and 0 in mask and mask[-1] == 1
    # what the model saw for turn 2 is exactly the final sequence's prefix
    n_obs_end = len(server.calls[1]) - len(out.prompt_ids)
    assert server.calls[1] == out.prompt_ids + ids[:n_obs_end]
    # teacher-forced logprobs of the final sequence equal the rollout's on every model token
    scored = server.score(out.prompt_ids + ids, len(out.prompt_ids))
    for i, (m, lp, ref) in enumerate(zip(mask, logprobs, scored)):
        if m:
            assert lp == pytest.approx(ref, abs=2e-4), i
        else:
            assert lp == 0.0
