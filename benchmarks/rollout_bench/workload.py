"""The pre-sampled plan of every trajectory: its prompt, its scripted model turns (real token
ids), and the latency / hang / failure of each of its tool calls.

Sampled once per scenario from a fixed seed, so every driver sees exactly the same batch.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from dataclasses import dataclass

from benchmarks.rollout_bench.scenarios import STATELESS_TOOL, Scenario

#: the stateless scenarios' tool (a scenario's own is ``Scenario.tool_name``)
TOOL_NAME = STATELESS_TOOL
_FILLER = (
    "Let me think step by step. First, find the facts. Then, check the answer. "
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France. "
).split()
_OBSERVATION = (
    "Paris is the capital of France. Water boils at 100 degrees. The answer is 42. "
    "The sum of 3 and 4 is 7. Compute 12 * 5 = 60. "
)
_QUERY_RE = re.compile(r"task (\d+) step (\d+)")
#: a tool result as the next prompt carries it (hermes): the bound's context estimate
_OBSERVATION_TURN = "\n<|im_start|>user\n<tool_response>\n{}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class ToolStep:
    latency_s: float
    hangs: bool
    fails: bool


@dataclass(frozen=True)
class TrajectoryPlan:
    index: int
    question: str
    answer: str
    #: token ids the model "generates" at each assistant turn (the last one answers)
    turns: tuple[tuple[int, ...], ...]
    tools: tuple[ToolStep, ...]

    @property
    def tool_turns(self) -> int:
        return len(self.tools)


def query_for(index: int, step: int) -> str:
    return f"task {index} step {step}"


def parse_query(query: str) -> tuple[int, int]:
    """(trajectory index, tool step) from a scripted query; ValueError for anything else."""
    match = _QUERY_RE.search(query)
    if match is None:
        raise ValueError(f"query {query!r} is not a scripted benchmark query ('task <i> step <j>')")
    return int(match.group(1)), int(match.group(2))


def observation(index: int, step: int, session_call: int | None = None) -> str:
    """The tool's result; a stateful tool's names the call's number in its session (1, 2, ...)."""
    if session_call is None:
        return f"Result {step} for task {index}: {_OBSERVATION}"
    return f"Result {step} for task {index} (session call {session_call}): {_OBSERVATION}"


def _assistant_text(rng: random.Random, tool: str, index: int, step: int, final: bool, answer: str) -> str:
    thought = " ".join(rng.choice(_FILLER) for _ in range(rng.randint(8, 24)))
    if final:
        return f"{thought}\n<answer>{answer}</answer>"
    call = f'{{"name": "{tool}", "arguments": {{"query": "{query_for(index, step)}"}}}}'
    return f"{thought}\n<tool_call>\n{call}\n</tool_call>"


def _reasoning(tokenizer, tokens: int, seed: int) -> list[tuple[int, ...]]:
    """A few ``<think>`` blocks of ~``tokens`` reasoning tokens each (none for ``tokens=0``)."""
    if tokens <= 0:
        return [()]
    rng = random.Random(seed + 1)  # its own stream: the tool latencies stay the light profile's
    blocks = []
    for _ in range(8):
        words = " ".join(rng.choice(_FILLER) for _ in range(tokens))
        body = tokenizer.encode(words, add_special_tokens=False)[:tokens]
        blocks.append(tuple(tokenizer.encode("<think>\n", add_special_tokens=False)) + tuple(body)
                      + tuple(tokenizer.encode("\n</think>\n", add_special_tokens=False)))
    return blocks


class Workload:
    """N trajectory plans for one scenario, tokenised with ``tokenizer``."""

    def __init__(self, scenario: Scenario, tokenizer) -> None:
        self.scenario = scenario
        rng = random.Random(scenario.seed)
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        mu = math.log(scenario.tool_median_s)
        think = _reasoning(tokenizer, scenario.server.hidden_tokens, scenario.seed)
        plans = []
        for i in range(scenario.n):
            k = rng.randint(1, scenario.max_tool_turns)
            answer = str(rng.randint(0, 999))
            texts = [_assistant_text(rng, scenario.tool_name, i, t, t == k, answer) for t in range(k + 1)]
            turns = tuple(
                think[(i + t) % len(think)] + tuple(tokenizer.encode(text, add_special_tokens=False)) + (eos,)
                for t, text in enumerate(texts)
            )
            tools = []
            for _ in range(k):
                latency = 0.0 if scenario.zero_latency else rng.lognormvariate(mu, scenario.tool_sigma)
                latency = min(latency, scenario.tool_max_s)
                hangs = rng.random() < scenario.hang_rate
                fails = not hangs and rng.random() < scenario.fail_rate
                tools.append(ToolStep(latency, hangs, fails))
            question = f"Task {i}: what is the answer? Use the {scenario.tool_name} tool."
            plans.append(TrajectoryPlan(i, question, answer, turns, tuple(tools)))
        self.plans: list[TrajectoryPlan] = plans
        #: per trajectory, the prompt tokens of each assistant turn (the bound's prefill; the server
        #: charges the prompt it is sent): the chat-templated prompt, then every earlier turn and result
        self.context_tokens: list[list[int]] = (
            self._context_tokens(tokenizer) if scenario.server.prefill_s_per_1k else []
        )

    def _context_tokens(self, tokenizer) -> list[list[int]]:
        from benchmarks.rollout_bench.tools import spec_for  # tools imports this module

        tools = [spec_for(self.scenario.tool_name).openai_schema()]
        out = []
        for plan in self.plans:
            n = len(tokenizer.apply_chat_template(
                self.messages(plan.index), tools=tools, add_generation_prompt=True, tokenize=True, return_dict=False))
            lengths = []
            for t, turn in enumerate(plan.turns):
                lengths.append(n)
                if t < plan.tool_turns:
                    result = _OBSERVATION_TURN.format(observation(plan.index, t))
                    n += len(turn) + len(tokenizer.encode(result, add_special_tokens=False))
            out.append(lengths)
        return out

    def generation_s(self, index: int, turn: int, prompt_tokens: int | None = None) -> float:
        """Server time of one assistant turn when it holds a slot (its prefill of ``prompt_tokens``,
        by default the turn's estimated context, then its decode)."""
        if self.scenario.zero_latency:
            return 0.0
        if prompt_tokens is None:
            prompt_tokens = self.context_tokens[index][turn] if self.context_tokens else 0
        return self.scenario.server.generation_s(prompt_tokens, len(self.plans[index].turns[turn]))

    @property
    def tool_calls(self) -> int:
        """Tool calls the script makes over the batch (one per tool turn)."""
        return sum(p.tool_turns for p in self.plans)

    def _tool_start_s(self, turn: int, ready_s: float) -> float:
        """When the call after assistant turn ``turn`` can start at the earliest: a stateful tool's
        session, opened at the batch's start at the earliest (an eager open overlapping the first
        generation), must be open before the trajectory's first call."""
        return max(ready_s, self.scenario.session_open_s) if turn == 0 else ready_s

    def trajectory_s(self, index: int) -> float:
        """The trajectory's own critical path: its generations and tool calls back to back
        (a hung call counts 0 here: the tool timeout is the driver's to add)."""
        plan = self.plans[index]
        gen = sum(self.generation_s(index, t) for t in range(len(plan.turns)))
        first = self.generation_s(index, 0)
        wait = self._tool_start_s(0, first) - first if plan.tools else 0.0  # for the session to open
        return gen + wait + sum(0.0 if step.hangs else step.latency_s for step in plan.tools)

    def lower_bound_s(self) -> float:
        """No driver can finish the batch sooner: every trajectory's turns back to back with no
        driver overhead at all, each generation waiting (first come, first served) for one of the
        server's slots, tools never waiting. At least the slowest trajectory's critical path."""
        slots = self.scenario.server.slots
        ready: list[tuple[float, int, int]] = [(0.0, i, 0) for i in range(len(self.plans))]  # (ready at, traj, turn)
        heapq.heapify(ready)
        free_at = [0.0] * slots  # heap of the times the slots become free
        end = 0.0
        while ready:
            at, index, turn = heapq.heappop(ready)
            start = max(at, heapq.heappop(free_at))
            done = start + self.generation_s(index, turn)
            heapq.heappush(free_at, done)
            plan = self.plans[index]
            if turn < plan.tool_turns:
                step = plan.tools[turn]
                tool_s = 0.0 if step.hangs else step.latency_s
                heapq.heappush(ready, (self._tool_start_s(turn, done) + tool_s, index, turn + 1))
            else:
                end = max(end, done)
        return max(end, max(self.trajectory_s(i) for i in range(len(self.plans))))

    def messages(self, index: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.plans[index].question}]

    def dataset_row(self, index: int) -> dict:
        """The fields verl's RLHFDataset gives an agent loop's ``run(**kwargs)``."""
        plan = self.plans[index]
        tool = self.scenario.tool_name
        return {
            "raw_prompt": self.messages(index),
            "data_source": "rollout_bench",
            "reward_model": {"style": "rule", "ground_truth": plan.answer},
            "extra_info": {"index": index},
            # verl's per-row tool kwargs: its ToolAgentLoop passes create_kwargs to BaseTool.create,
            # rlfactory maps them onto the session's SessionContext.kwargs
            "tools_kwargs": {tool: {"create_kwargs": {"index": index}}} if self.scenario.stateful else {},
            "index": index,
        }
