"""The turn-synchronous batch loop (the Search-R1 / RL-Factory-fork design): every turn,
the whole batch generates, then the whole batch's tool calls run, and no trajectory starts
its next turn before the slowest one of the batch has finished this one.

Written the way such loops are: token ids concatenated in place (the prompt rendered once
with the chat template, observations tokenised in one batched call per turn), tool calls
under a per-call timeout. A stateful tool's session (the ``stateful`` scenario) is the
backend's: it opens a trajectory's on its first call and closes them all after the batch.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from benchmarks.rollout_bench.outcome import DriverRun, Status, TrajectoryOutcome
from benchmarks.rollout_bench.tools import ScriptedBackend, spec_for
from benchmarks.rollout_bench.workload import Workload

_TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_OBSERVATION = "\n<|im_start|>user\n<tool_response>\n{}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"


def _query(text: str) -> str | None:
    match = _TOOL_CALL_RE.search(text)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))["arguments"]["query"]
    except (ValueError, KeyError, TypeError):
        return None


async def _call(backend: ScriptedBackend, trajectory: int, query: str | None, timeout_s: float, stateful: bool) -> str:
    if query is None:
        return "error: could not parse the tool call"
    call = backend.lazy_call(trajectory, query) if stateful else backend.search(query)
    try:
        return await asyncio.wait_for(call, timeout_s)
    except TimeoutError:
        return f"error: no result within {timeout_s:g}s"
    except Exception as e:
        return f"error: {e}"


async def run_turn_sync(
    workload: Workload, server: Any, tokenizer: Any, backend: ScriptedBackend, *, tool_timeout_s: float
) -> DriverRun:
    n, max_turns = len(workload.plans), workload.scenario.max_turns
    stateful = workload.scenario.stateful
    start = time.perf_counter()
    cpu0 = time.process_time()
    prompts: list[list[int]] = tokenizer.apply_chat_template(
        [workload.messages(i) for i in range(n)],
        tools=[spec_for(workload.scenario.tool_name).openai_schema()],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    prompts = [list(p) for p in prompts]
    outcomes: list[TrajectoryOutcome | None] = [None] * n
    last_text = [""] * n
    active = list(range(n))
    for turn in range(max_turns):
        outs = await asyncio.gather(
            *(server.generate(f"ts-{i}", prompt_ids=prompts[i], sampling_params={}) for i in active)
        )
        texts = tokenizer.batch_decode([o.token_ids for o in outs])
        now = time.perf_counter() - start
        calling: list[tuple[int, str | None]] = []
        for i, out, text in zip(active, outs, texts, strict=True):
            prompts[i].extend(out.token_ids)
            last_text[i] = text
            if "<tool_call>" in text and turn + 1 < max_turns:
                calling.append((i, _query(text)))
            else:
                outcomes[i] = TrajectoryOutcome(Status.completed, now)
        if not calling:
            break
        results = await asyncio.gather(*(_call(backend, i, q, tool_timeout_s, stateful) for i, q in calling))
        encoded = tokenizer([_OBSERVATION.format(r) for r in results], add_special_tokens=False)["input_ids"]
        for (i, _), ids in zip(calling, encoded, strict=True):
            prompts[i].extend(ids)
        active = [i for i, _ in calling]
    if stateful:
        await backend.close_lazy()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    final: list[TrajectoryOutcome] = []
    for i, outcome in enumerate(outcomes):
        outcome = outcome or TrajectoryOutcome(Status.completed, wall)
        outcome.answered = "<answer>" in last_text[i]
        final.append(outcome)
    return DriverRun("turn_sync", wall, cpu, final)
