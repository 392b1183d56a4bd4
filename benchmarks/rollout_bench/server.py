"""A latency-modelled LLM server with verl's server-manager interface.

It stands where verl's ``LLMServerClient`` stands (the ``server_manager`` of an
``AgentLoopBase``): ``await generate(request_id, prompt_ids=..., sampling_params=...)``
returns a ``TokenOutput``. Instead of running a model it recognises the trajectory from
the user message in ``prompt_ids``, replays that trajectory's scripted turn (real token
ids), and holds one of ``slots`` batch slots for the modelled generation time: its prefill of the
prompt it is sent (the profile's cost per 1k tokens) and its decode.

``pausable=True`` (the ``train_overlap`` scenario) adds what a trainer does to the rollout:
:meth:`pause` stops generation (verl's ``abort_replicas`` / ``sleep_replicas``: a generation in
flight is aborted, keeps what it has generated, and is resumed after :meth:`resume`, paying its
prefill again, the KV cache having been dropped; new ones wait), and :attr:`version` is the
weights' version (the trainer's step) the server generates with.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from verl.workers.rollout.replica import TokenOutput

from benchmarks.rollout_bench.workload import Workload

_TASK_RE = re.compile(r"Task (\d+):")


class UnknownPrompt(LookupError):
    pass


class LatencyModelServer:
    def __init__(self, workload: Workload, tokenizer) -> None:
        self.workload = workload
        self.tokenizer = tokenizer
        self.im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
        self.im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self._slots = asyncio.Semaphore(workload.scenario.server.slots)
        self._segments: dict[tuple[int, ...], int] = {}  # message segment -> trajectory index, -1: none
        self.calls: Counter[int] = Counter()
        self.busy_s = 0.0
        self.pausable = False
        self.version = 0
        self._running = asyncio.Event()  # set: generating (only read when pausable)
        self._paused = asyncio.Event()  # set: paused
        self._running.set()

    def reset(self, *, pausable: bool = False) -> None:
        """Forget the turns served (call before each driver run)."""
        self._slots = asyncio.Semaphore(self.workload.scenario.server.slots)
        self.calls.clear()
        self.busy_s = 0.0
        self.pausable, self.version = pausable, 0
        self.resume()

    def pause(self) -> None:
        self._running.clear()
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._running.set()

    async def _hold(self, seconds: float, prefill_s: float) -> None:
        """Hold a slot for ``seconds``; when pausable, a pause aborts the generation, which waits for
        the resume and takes a slot again for the rest plus a new prefill."""
        loop = asyncio.get_running_loop()
        while True:
            await self._running.wait()
            async with self._slots:
                if self._paused.is_set():
                    continue  # paused while it waited for the slot
                start = loop.time()
                try:
                    async with asyncio.timeout(seconds):
                        await self._paused.wait()
                except TimeoutError:
                    self.busy_s += seconds
                    return
                spent = loop.time() - start
                self.busy_s += spent
                seconds = max(seconds - spent, 0.0) + prefill_s

    def trajectory_of(self, prompt_ids: list[int]) -> int:
        """Index of the trajectory whose user message is in ``prompt_ids``."""
        start = 0
        for _ in range(3):  # system, user: the task is in one of the first message segments
            try:
                start = prompt_ids.index(self.im_start, start) + 1
                end = prompt_ids.index(self.im_end, start)
            except ValueError:
                break
            segment = tuple(prompt_ids[start:end])
            index = self._segments.get(segment)
            if index is None:  # decoded once per distinct segment: the harness's cost is not the driver's
                match = _TASK_RE.search(self.tokenizer.decode(segment))
                index = self._segments[segment] = -1 if match is None else int(match.group(1))
            if index >= 0:
                return index
        raise UnknownPrompt("no 'Task <i>:' user message in the prompt; was it built from the benchmark's dataset rows?")

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        **kwargs: Any,
    ) -> TokenOutput:
        index = self.trajectory_of(prompt_ids)
        plan = self.workload.plans[index]
        turn = min(self.calls[index], len(plan.turns) - 1)  # asked again after its answer: answer again
        self.calls[index] += 1
        seconds = self.workload.generation_s(index, turn, prompt_tokens=len(prompt_ids))
        if self.pausable:
            model = self.workload.scenario.server
            await self._hold(seconds, model.prefill_s_per_1k * len(prompt_ids) / 1000)
        else:
            async with self._slots:
                await asyncio.sleep(seconds)
                self.busy_s += seconds
        ids = list(plan.turns[turn])
        log_probs = [-0.5] * len(ids) if sampling_params.get("logprobs") else None  # as vLLM: only when asked
        return TokenOutput(token_ids=ids, log_probs=log_probs, stop_reason="completed", num_preempted=0)
