"""rlfactory's agent-loop worker shares one rlfactory_agent object per worker: concurrent
trajectories on the shared object stay independent, other loops are built the verl way."""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopManager
from verl.workers.rollout.replica import TokenOutput

from rlfactory_plugins.verl.agent_loop import RLFactoryAgentLoop
from rlfactory_plugins.verl.shared_loops import SharedLoops, shareable_class
from rlfactory_plugins.verl.worker import ClassicAgentLoopManager, SharedLoopWorker, manager_class
from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.rollout import make_agent_loop, run_loop, section

pytestmark = pytest.mark.timeout(60)

OURS = {"_target_": "rlfactory_plugins.verl.agent_loop.RLFactoryAgentLoop"}
VERLS = {"_target_": "verl.experimental.agent_loop.tool_agent_loop.ToolAgentLoop"}


class EchoServer:
    """Turn 1: add(i, 1) for the prompt's "Question i"; turn 2: answer with the last tool response.
    Reads everything from the prompt, so concurrent trajectories cannot share answers by accident."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(0)

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kw):
        await asyncio.sleep(self.rng.random() / 100)  # interleave the trajectories
        text = self.tokenizer.decode(prompt_ids)
        responses = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", text, re.S)
        if responses:
            reply = f"<answer>{responses[-1]}</answer>"
        else:
            i = int(re.search(r"Question (\d+)", text).group(1))
            reply = f'<tool_call>{{"name": "add", "arguments": {{"a": {i}, "b": 1}}}}</tool_call>'
        ids = self.tokenizer.encode(reply, add_special_tokens=False) + [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        return TokenOutput(token_ids=ids, log_probs=[-1.0] * len(ids), stop_reason="completed", extra_fields={})


async def test_one_shared_object_runs_concurrent_trajectories_independently(tools_plugin, tokenizer):
    assert RLFactoryAgentLoop.shared_across_trajectories is True
    server = EchoServer(tokenizer)
    shared = make_agent_loop(server, tokenizer, section())
    outs = await asyncio.gather(*(run_loop(shared, f"Question {i}", uid=f"u{i}") for i in range(40)))
    for i, out in enumerate(outs):
        traj = Trajectory.model_validate(out.extra_fields["rlfactory_trajectory"])
        assert traj.stop_reason == "answer" and traj.final_answer == str(i + 1), i
        assert traj.uid == f"u{i}" and traj.prompt[0]["content"] == f"Question {i}"
    # the same tokens as a trajectory on its own object
    alone = await run_loop(make_agent_loop(EchoServer(tokenizer), tokenizer, section()), "Question 7", uid="u7")
    assert (alone.prompt_ids, alone.response_ids, alone.response_mask) == (
        outs[7].prompt_ids, outs[7].response_ids, outs[7].response_mask
    )


def test_only_flagged_classes_without_parameters_are_shared():
    assert shareable_class(OURS) is RLFactoryAgentLoop
    assert shareable_class(OmegaConf.create(OURS)) is RLFactoryAgentLoop
    assert shareable_class(VERLS) is None  # verl's loop keeps no promise: built per trajectory
    assert shareable_class({**OURS, "some_param": 1}) is None  # parameters stay verl's business

    built = []
    loops = SharedLoops({"ours": OURS, "verl": VERLS}, lambda entry: built.append(entry) or object())
    first = loops.get("ours")
    assert first is not None and loops.get("ours") is first and built == [OURS]
    assert loops.get("verl") is None and loops.get("verl") is None and loops.get("missing") is None
    assert built == [OURS]


class _VerlWorkerStandIn:
    """What SharedLoopWorker needs of verl's AgentLoopWorker: its attributes and two methods."""

    async def _run_agent_loop(self, sampling_params, trajectory, *, agent_name, trace=True, **kwargs):
        return ("built by verl", agent_name)

    async def _agent_loop_postprocess(self, output, validate, **kwargs):
        return ("postprocessed", output, validate, kwargs["uid"])


class _Worker(SharedLoopWorker, _VerlWorkerStandIn):
    def __init__(self, server, tokenizer) -> None:
        self.config = OmegaConf.create(
            {"actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": 256}},
             "data": {"continuous_token": {"enable": False}},  # a key verl 0.9.0 requires, 0.9.1 ignores
             "rlfactory": section()}
        )
        self.llm_client, self.tokenizer, self.processor = server, tokenizer, None
        self.hf_model_type, self.dataset_cls, self.tools = "qwen2", None, []


async def test_worker_runs_rlfactory_on_the_shared_object_and_others_the_verl_way(tools_plugin, tokenizer):
    worker = _Worker(EchoServer(tokenizer), tokenizer)
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    info = {"step": 3, "sample_index": 0, "rollout_n": 0, "validate": False}
    rows = [{"raw_prompt": [{"role": "user", "content": f"Question {i}"}], "uid": f"u{i}"} for i in range(2)]
    results = [await worker._run_agent_loop(params, info, agent_name="rlfactory_agent", **row) for row in rows]
    for i, (tag, output, validate, uid) in enumerate(results):
        assert (tag, validate, uid) == ("postprocessed", False, f"u{i}")
        assert output.extra_fields["rlfactory_trajectory"]["final_answer"] == str(i + 1)
    assert list(worker._shared_loops._loops) == ["rlfactory_agent"]
    assert await worker._run_agent_loop(params, info, agent_name="tool_agent", **rows[0]) == ("built by verl", "tool_agent")


def test_manager_follows_the_trainer():
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ

    v1 = manager_class(OmegaConf.create({"transfer_queue": {"enable": True}}))
    assert issubclass(v1, AgentLoopManagerTQ)
    for config in ({"transfer_queue": {"enable": False}}, {}):
        classic = manager_class(OmegaConf.create(config))
        assert classic is ClassicAgentLoopManager and issubclass(classic, AgentLoopManager)


async def test_worker_without_hf_model_type_still_builds_the_loop(tools_plugin, tokenizer):
    """verl 0.9.0's AgentLoopWorker has no ``hf_model_type``: the shared loop must still be built."""
    worker = _Worker(EchoServer(tokenizer), tokenizer)
    del worker.hf_model_type
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    info = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": False}
    row = {"raw_prompt": [{"role": "user", "content": "Question 0"}], "uid": "u0"}
    tag, output, _validate, _uid = await worker._run_agent_loop(params, info, agent_name="rlfactory_agent", **row)
    assert tag == "postprocessed" and output.extra_fields["rlfactory_trajectory"]["final_answer"] == "1"


async def test_prompt_without_a_continuous_token_builder_is_the_same(tools_plugin, tokenizer):
    """verl 0.9.0 with its default ``data.continuous_token.enable=false`` builds no builder: the
    loop renders the prompt itself, to the same ids the builder gives."""
    loop = make_agent_loop(EchoServer(tokenizer), tokenizer, section())
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"}]
    tools = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}]
    for tool_schemas in (None, tools):
        with_builder = await loop._initial_prompt_ids(messages, tool_schemas)
        builder, loop.continuous_token_builder = loop.continuous_token_builder, None
        try:
            without = await loop._initial_prompt_ids(messages, tool_schemas)
        finally:
            loop.continuous_token_builder = builder
        assert without == with_builder and len(without) > 5
