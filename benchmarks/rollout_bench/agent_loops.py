"""Drive a verl agent-loop class over the batch as the worker that runs it in training does,
all N trajectories as tasks on one event loop, ``await loop.run(sampling_params, **dataset_row)``:

* ``worker="verl"``: verl's ``AgentLoopWorker``, one ``hydra.utils.instantiate`` of the
  registered loop per trajectory;
* ``worker="rlfactory"``: rlfactory's worker (``+plugins=rlfactory`` sets it as verl's
  ``agent_loop_manager_class``), the same instantiate once per worker for loops that are
  ``shared_across_trajectories`` (:class:`rlfactory_plugins.verl.shared_loops.SharedLoops`,
  the code the worker runs), per trajectory for the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig
from verl.experimental.agent_loop.agent_loop import (
    AgentLoopOutput,
    DictConfigWrap,
    ToolListWrap,
    _agent_loop_registry,
)
from verl.utils.dataset.rl_dataset import RLHFDataset

from benchmarks.rollout_bench.outcome import DriverRun, Status, TrajectoryOutcome
from benchmarks.rollout_bench.workload import Workload
from rlfactory_plugins.verl.shared_loops import SharedLoops

#: tells whether the loop's straggler policy ended a trajectory (rlfactory: stop_reason=deadline)
CutTest = Callable[[AgentLoopOutput], bool]


def sampling_params(config: DictConfig) -> dict[str, Any]:
    """As ``AgentLoopWorker.generate_sequences`` builds them for training."""
    rollout = config.actor_rollout_ref.rollout
    return dict(
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        top_k=rollout.top_k,
        repetition_penalty=1.0,
        logprobs=rollout.calculate_log_probs,
    )


def never_cut(output: AgentLoopOutput) -> bool:
    return False


class LoopRunner:
    """Runs trajectories of ``workload`` one at a time through the agent loop ``agent_name``, built as
    the ``worker`` builds it (see the module doc); :func:`run_agent_loop` runs a whole batch, the
    ``train_overlap`` scheduler starts trajectories as its trainer wants them."""

    def __init__(
        self, agent_name: str, config: DictConfig, workload: Workload, server: Any, tokenizer: Any, tools: list[Any],
        *, worker: str = "verl", is_cut: CutTest = never_cut,
    ) -> None:
        if agent_name not in _agent_loop_registry:
            known = sorted(_agent_loop_registry)
            raise LookupError(f"agent loop {agent_name!r} is not registered (registered: {known})")
        if worker not in ("verl", "rlfactory"):
            raise ValueError(f"unknown worker {worker!r} (known: verl, rlfactory)")
        self.agent_name, self.config, self.workload = agent_name, config, workload
        self.server, self.tokenizer, self.tools, self.is_cut = server, tokenizer, tools, is_cut
        self.loop_config = _agent_loop_registry[agent_name]
        self.params = sampling_params(config)
        self.instantiate_s = 0.0
        self.built = 0
        self.shared = SharedLoops(_agent_loop_registry, self._build) if worker == "rlfactory" else None

    def _build(self, entry: Any) -> Any:
        self.built += 1
        return hydra.utils.instantiate(
            config=entry,
            trainer_config=DictConfigWrap(config=self.config),
            server_manager=self.server,
            tokenizer=self.tokenizer,
            processor=None,
            hf_model_type="qwen2",
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(self.config.data),
            tools=ToolListWrap(self.tools),
        )

    async def run_one(self, index: int, start: float) -> tuple[TrajectoryOutcome, AgentLoopOutput | None]:
        """One trajectory; its outcome's time counts from ``start`` (``time.perf_counter``)."""
        t0 = time.perf_counter()
        agent_loop = self.shared.get(self.agent_name) if self.shared is not None else None
        if agent_loop is None:
            agent_loop = self._build(self.loop_config)
        self.instantiate_s += time.perf_counter() - t0
        try:
            output: AgentLoopOutput = await agent_loop.run(dict(self.params), **self.workload.dataset_row(index))
        except Exception as e:
            return TrajectoryOutcome(Status.failed, time.perf_counter() - start, error=f"{type(e).__name__}: {e}"), None
        return TrajectoryOutcome(Status.completed, time.perf_counter() - start), output

    def judge(self, outcome: TrajectoryOutcome, output: AgentLoopOutput) -> None:
        """Fill in ``answered`` / ``cut`` (after the clock has stopped: decoding is the harness's cost)."""
        outcome.answered = "<answer>" in self.tokenizer.decode(output.response_ids)
        outcome.cut = self.is_cut(output)


async def run_agent_loop(
    name: str,
    agent_name: str,
    config: DictConfig,
    workload: Workload,
    server: Any,
    tokenizer: Any,
    tools: list[Any],
    *,
    wall_budget_s: float | None = None,
    is_cut: CutTest = never_cut,
    worker: str = "verl",
) -> DriverRun:
    runner = LoopRunner(agent_name, config, workload, server, tokenizer, tools, worker=worker, is_cut=is_cut)
    start = time.perf_counter()
    outcomes: dict[int, TrajectoryOutcome] = {}
    outputs: dict[int, AgentLoopOutput] = {}

    async def one(index: int) -> None:
        outcome, output = await runner.run_one(index, start)
        outcomes[index] = outcome
        if output is not None:
            outputs[index] = output

    cpu0 = time.process_time()
    tasks = [asyncio.create_task(one(i)) for i in range(len(workload.plans))]
    _, pending = await asyncio.wait(tasks, timeout=wall_budget_s)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for index, output in outputs.items():  # checked after the clock stopped
        runner.judge(outcomes[index], output)
    for index in range(len(workload.plans)):
        outcomes.setdefault(index, TrajectoryOutcome(Status.stuck, wall, error=f"still running after {wall_budget_s}s"))
    ordered = [outcomes[i] for i in range(len(workload.plans))]
    return DriverRun(name, wall, cpu, ordered, runner.instantiate_s, runner.built)
