"""The benchmark's own parts: the workload's lower bound, the scripted server and tool."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rollout_bench.scenarios import PROFILES, Scenario, ServerModel, all_scenarios  # noqa: E402
from benchmarks.rollout_bench.server import LatencyModelServer, UnknownPrompt  # noqa: E402
from benchmarks.rollout_bench.tools import (  # noqa: E402
    SPEC,
    RLFactoryKernel,
    ScriptedBackend,
    ScriptedSearchFailed,
    VerlKernel,
    VerlSearchWithTimeout,
)
from benchmarks.rollout_bench.workload import Workload, query_for  # noqa: E402
from rlfactory_plugins.tools.session import SessionContext  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def test_same_seed_same_batch_for_every_driver(tokenizer):
    scenario = Scenario(name="t", n=16, hang_rate=0.1, fail_rate=0.1)
    assert Workload(scenario, tokenizer).plans == Workload(scenario, tokenizer).plans
    assert Workload(replace(scenario, seed=1), tokenizer).plans != Workload(scenario, tokenizer).plans


def test_lower_bound_counts_the_server_capacity(tokenizer):
    one_slot = Scenario(name="t", n=8, tool_median_s=1e-9, tool_sigma=0.0, server=ServerModel(slots=1))
    work = Workload(one_slot, tokenizer)
    total_gen = sum(work.generation_s(p.index, t) for p in work.plans for t in range(len(p.turns)))
    assert work.lower_bound_s() == pytest.approx(total_gen, rel=1e-6)
    wide = Workload(replace(one_slot, server=ServerModel(slots=64), tool_median_s=0.1, tool_sigma=1.0), tokenizer)
    assert wide.lower_bound_s() == pytest.approx(max(wide.trajectory_s(i) for i in range(8)))


@pytest.mark.timeout(30)
async def test_server_replays_each_trajectory_in_turn(tokenizer):
    work = Workload(Scenario(name="t", n=4, zero_latency=True), tokenizer)
    server = LatencyModelServer(work, tokenizer)
    plan = work.plans[2]
    prompt = tokenizer.apply_chat_template(
        work.messages(2), tools=[SPEC.openai_schema()], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    for turn in range(len(plan.turns)):
        out = await server.generate("r", prompt_ids=list(prompt), sampling_params={"logprobs": True})
        assert out.token_ids == list(plan.turns[turn]) and len(out.log_probs) == len(out.token_ids)
    with pytest.raises(UnknownPrompt):
        await server.generate("r", prompt_ids=tokenizer.encode("no task here"), sampling_params={})


@pytest.mark.timeout(30)
async def test_scripted_tool_hangs_and_fails_as_planned(tokenizer):
    work = Workload(Scenario(name="t", n=64, tool_median_s=0.001, hang_rate=0.1, fail_rate=0.1), tokenizer)
    backend = ScriptedBackend()
    backend.workload = work
    steps = [(p.index, j, s) for p in work.plans for j, s in enumerate(p.tools)]
    hang = next((i, j) for i, j, s in steps if s.hangs)
    fail = next((i, j) for i, j, s in steps if s.fails)
    ok = next((i, j) for i, j, s in steps if not s.hangs and not s.fails)
    assert "Result" in await backend.search(query_for(*ok))
    with pytest.raises(ScriptedSearchFailed):
        await backend.search(query_for(*fail))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend.search(query_for(*hang)), 0.2)


def test_stateful_scenario_names_its_own_tool_and_scales_the_open_cost(tokenizer):
    scenarios = {s.name: s for s in all_scenarios(8, profiles=("light",))}
    stateful = scenarios["stateful"]
    assert (stateful.tool_name, scenarios["no_faults"].tool_name) == ("bench_kernel", "bench_search")
    assert stateful.session_open_s == 0.1 and stateful.scaled(0.1).session_open_s == pytest.approx(0.01)
    with pytest.raises(ValueError, match="stateful tool only"):
        Scenario(name="t", session_open_s=0.1)
    work = Workload(stateful, tokenizer)
    assert "bench_kernel" in work.plans[0].question and "bench_kernel" in tokenizer.decode(work.plans[0].turns[0])
    row = work.dataset_row(3)
    assert row["tools_kwargs"] == {"bench_kernel": {"create_kwargs": {"index": 3}}}
    assert Workload(scenarios["no_faults"], tokenizer).dataset_row(3)["tools_kwargs"] == {}


def test_row_create_kwargs_reach_the_session_context(tokenizer):
    """rlfactory maps verl's tools_kwargs[name].create_kwargs onto the session's ctx.kwargs."""
    from rlfactory_plugins.verl.rows import row_settings

    work = Workload(Scenario(name="t", n=8, stateful=True, session_open_s=0.1), tokenizer)
    assert row_settings(work.dataset_row(5)).kwargs_for("bench_kernel", "bench_kernel") == {"index": 5}


def test_lower_bound_counts_one_session_open_per_trajectory(tokenizer):
    plain = Scenario(name="t", n=8, tool_median_s=0.05, tool_sigma=0.0)
    open_s = 0.5  # far longer than any first generation: every first call waits for it
    stateful = replace(plain, stateful=True, session_open_s=open_s)
    a, b = Workload(plain, tokenizer), Workload(stateful, tokenizer)
    for i in range(8):
        first = b.generation_s(i, 0)
        gen = sum(b.generation_s(i, t) for t in range(len(b.plans[i].turns)))
        assert b.trajectory_s(i) == pytest.approx(gen + (open_s - first) + 0.05 * b.plans[i].tool_turns)
    assert b.lower_bound_s() == pytest.approx(max(b.trajectory_s(i) for i in range(8)))
    assert b.lower_bound_s() > a.lower_bound_s()


@pytest.mark.timeout(30)
async def test_stateful_backend_keeps_state_per_trajectory_and_counts_violations(tokenizer):
    work = Workload(Scenario(name="t", n=4, tool_median_s=0.001, stateful=True, session_open_s=0.01), tokenizer)
    backend = ScriptedBackend()
    backend.workload = work
    plan = max(work.plans, key=lambda p: p.tool_turns)
    i = plan.index

    # rlfactory: one session from the row's create_kwargs, its calls numbered in the observation
    tool = RLFactoryKernel(backend)
    session = await tool.open_session(SessionContext(key="k", kwargs={"index": i}))
    texts = [await tool.acall_in(session, {"query": query_for(i, j)}) for j in range(plan.tool_turns)]
    assert [f"(session call {j + 1})" in t for j, t in enumerate(texts)] == [True] * plan.tool_turns
    assert await tool.session_state(session) == {"index": i, "calls": plan.tool_turns}
    await tool.close_session(session, "answer")
    assert (backend.counts.sessions_opened, backend.counts.sessions_closed, backend.counts.state_errors) == (1, 1, 0)
    other = (i + 1) % 4
    foreign = await tool.open_session(SessionContext(key="k2", kwargs={"index": other}))
    await tool.acall_in(foreign, {"query": query_for(i, 0)})
    assert backend.counts.state_errors == 1  # another trajectory's query in this session

    # verl: create (the open) / execute / release per call: a new session each time, earlier state lost
    backend.reset()
    verl = VerlKernel(backend)
    for j in range(plan.tool_turns):
        instance, _ = await verl.create(create_kwargs={"index": i})
        await verl.execute(instance, {"query": query_for(i, j)})
        await verl.release(instance)
    counts = backend.counts
    assert counts.sessions_opened == counts.sessions_closed == counts.tool_calls == plan.tool_turns
    assert (backend.counts.state_errors, backend.counts.state_lost) == (0, plan.tool_turns - 1)
    assert not verl.instances

    # turn-sync: the trajectory's session opens on its first call, inside the backend
    backend.reset()
    for j in range(plan.tool_turns):
        await backend.lazy_call(i, query_for(i, j))
    await backend.close_lazy()
    assert (backend.counts.sessions_opened, backend.counts.sessions_closed) == (1, 1)
    assert (backend.counts.state_errors, backend.counts.state_lost) == (0, 0)


def test_every_scenario_runs_under_both_profiles():
    both = all_scenarios(8)
    light = [s.name for s in both if s.profile == "light"]
    assert light == [s.name for s in both if s.profile == "saturated"]
    assert {"no_faults", "hangs", "long_tail_deadline", "long_tail_straggler", "train_overlap"} <= set(light)
    saturated = PROFILES["saturated"]
    assert saturated.slots < PROFILES["light"].slots and saturated.prefill_s_per_1k > 0 and saturated.hidden_tokens > 0
    straggler = next(s for s in both if s.name == "long_tail_straggler")
    assert straggler.straggler_policy and straggler.deadline_s is None and straggler.same_workload_as == "long_tail"


def test_saturated_profile_costs_prefill_and_reasoning_tokens(tokenizer):
    model = ServerModel(request_s=0.01, token_s=0.002, prefill_s_per_1k=0.1, hidden_tokens=50)
    assert model.generation_s(2000, 100) == pytest.approx(0.01 + 0.2 + 0.2)
    light = Workload(Scenario(name="t", n=8), tokenizer)
    heavy = Workload(Scenario(name="t", n=8, server=replace(model, slots=2)), tokenizer)
    for a, b in zip(light.plans, heavy.plans, strict=True):
        assert a.tools == b.tools  # the same tool latencies under both profiles
        for ta, tb in zip(a.turns, b.turns, strict=True):
            assert len(tb) - len(ta) >= 50 and "<think>" in tokenizer.decode(tb)
    assert light.context_tokens == []  # no prefill cost: nothing to estimate
    for i, plan in enumerate(heavy.plans):
        context = heavy.context_tokens[i]
        assert context[0] > 100 and all(b > a + len(t) for a, b, t in zip(context, context[1:], plan.turns))
        assert heavy.generation_s(i, 1) == pytest.approx(model.generation_s(context[1], len(plan.turns[1])))
    total = sum(heavy.generation_s(p.index, t) for p in heavy.plans for t in range(len(p.turns)))
    assert heavy.lower_bound_s() >= total / 2 - 1e-9  # two slots: at least half the generation time


@pytest.mark.timeout(30)
async def test_a_paused_server_resumes_the_generation_with_a_new_prefill(tokenizer):
    model = ServerModel(slots=1, request_s=0.2, token_s=0.0, prefill_s_per_1k=0.1)
    work = Workload(Scenario(name="t", n=2, tool_median_s=0.001, server=model), tokenizer)
    server = LatencyModelServer(work, tokenizer)
    server.reset(pausable=True)
    prompt = tokenizer.apply_chat_template(
        work.messages(0), tools=[SPEC.openai_schema()], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    prefill = 0.1 * len(prompt) / 1000
    t0 = time.perf_counter()
    task = asyncio.create_task(server.generate("r", prompt_ids=list(prompt), sampling_params={}))
    await asyncio.sleep(0.05)
    server.pause()
    await asyncio.sleep(0.2)  # no progress while paused
    server.resume()
    out = await task
    assert out.token_ids == list(work.plans[0].turns[0])
    elapsed = time.perf_counter() - t0
    assert elapsed == pytest.approx(0.2 + 0.2 + 2 * prefill, abs=0.06)
    assert server.busy_s == pytest.approx(0.2 + 2 * prefill, abs=0.03)


@pytest.mark.timeout(30)
async def test_verl_tool_with_timeout_answers_an_error_for_a_hung_call(tokenizer):
    work = Workload(Scenario(name="t", n=64, tool_median_s=0.001, hang_rate=0.1), tokenizer)
    backend = ScriptedBackend()
    backend.workload = work
    hang = next((p.index, j) for p in work.plans for j, s in enumerate(p.tools) if s.hangs)
    tool = VerlSearchWithTimeout(0.1, backend)
    t0 = time.perf_counter()
    response, _, _ = await tool.execute("i", {"query": query_for(*hang)})
    assert response.text == "error: no result within 0.1s" and time.perf_counter() - t0 < 1.0
