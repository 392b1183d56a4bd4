"""Each turn's weight version on the trajectory, and the span verl's fully-async trainer reads.

verl's ``FullyAsyncLLMServerClient.generate`` resumes a generation aborted by a weight sync inside one
call and reports the versions it ran on as ``min_global_steps``/``max_global_steps`` next to
``global_steps`` (the last); a plain ``LLMServerClient`` reports ``global_steps`` only. The server
here answers as each of those would.
"""

from __future__ import annotations

import pytest
from verl.workers.rollout.replica import TokenOutput

from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, section, traj_of

pytestmark = pytest.mark.timeout(60)

CALL_ADD = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'


class VersionedServer(ScriptedServer):
    """Turn ``i`` reports the ``extra_fields`` of ``versions[i]``."""

    versions: list[dict[str, int]] = []

    async def generate(self, request_id: str, **kwargs) -> TokenOutput:
        out = await super().generate(request_id, **kwargs)
        out.extra_fields = dict(self.versions[len(self.calls) - 1])
        return out


async def test_a_resumed_turn_spans_the_versions_it_ran_on(tools_plugin, tokenizer):
    server = VersionedServer(tokenizer, [f"Let me add. {CALL_ADD}", "<answer>5</answer>"])
    server.versions = [  # turn 0 aborted by the sync to version 2 and resumed on it; turn 1 on version 3
        {"global_steps": 2, "min_global_steps": 1, "max_global_steps": 2},
        {"global_steps": 3, "min_global_steps": 3, "max_global_steps": 3},
    ]
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    traj = traj_of(out)
    assert [(t.min_global_steps, t.max_global_steps) for t in traj.turns] == [(1, 2), (3, 3)]
    assert (traj.min_global_steps, traj.max_global_steps) == (1, 3)
    # what verl's fully-async trainer reads (detach_utils.assemble_batch_from_rollout_samples): the whole span
    assert (out.extra_fields["min_global_steps"], out.extra_fields["max_global_steps"]) == (1, 3)
    assert traj.step == 1  # the dump's step: the version the trajectory started on


async def test_a_plain_client_reports_only_global_steps(tools_plugin, tokenizer):
    server = VersionedServer(tokenizer, [f"Let me add. {CALL_ADD}", "<answer>5</answer>"])
    server.versions = [{"global_steps": 4}, {"global_steps": 5}]
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    traj = traj_of(out)
    assert [(t.min_global_steps, t.max_global_steps) for t in traj.turns] == [(4, 4), (5, 5)]
    assert (out.extra_fields["min_global_steps"], out.extra_fields["max_global_steps"]) == (4, 5)


async def test_no_versions_where_the_server_reports_none(tools_plugin, tokenizer):
    server = VersionedServer(tokenizer, ["<answer>5</answer>"])
    server.versions = [{}]
    out = await run_loop(make_agent_loop(server, tokenizer, section()))
    traj = traj_of(out)
    assert traj.turns[0].min_global_steps is None and traj.min_global_steps is None
    assert out.extra_fields["min_global_steps"] is None
