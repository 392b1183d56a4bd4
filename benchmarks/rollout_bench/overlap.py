"""The ``train_overlap`` scheduler: a modelled trainer behind the rollout, three ways.

The rollout is real (an agent loop, the latency-modelled server, the long-tail tools); the trainer
is a sleep of ``train_s`` per batch. Trajectories come in GRPO groups of ``group_size``; a batch is
``batch_groups`` complete groups. Per mode (benchmarks/README.md, "train_overlap"):

* ``sync``: roll a batch out completely, then train it; the server is idle while training
  (verl's hybrid engine: the rollout sleeps while the actor trains).
* ``recycle`` (sync + recycling; verl's ``trainer_mode=colocate_async`` as ``rlfactory.rollout.recycle``
  sets it up, with its defaults): the trainer is colocated.
  ``warmup_batches`` extra batches of prompts are in flight from the start and one batch more is
  added every step; the step trains the first complete groups (oldest first, as verl's replay
  buffer orders them); during training generation is paused (``abort_replicas``/``sleep_replicas``)
  and the unfinished trajectories keep going into the next batch (partial rollout: their tools run
  on, their generations resume after the weight update). A group is trained ``max_staleness`` steps
  after its start at the latest: sampling waits for it (``max_off_policy_strategy=wait``), none is dropped.
* ``async`` (fully async, staleness 1; verl's ``fully_async_policy``): the trainer has its own
  devices. The rollouter keeps ``concurrency`` groups in flight and starts no new group once
  ``(staleness + 1) * batch_groups`` have started since the last weight sync (verl's
  ``max_required_samples``; the count is reset to the groups in flight or queued after each sync).
  After each step the weights sync: generation pauses ``sync_s`` (in-flight generations resume).

A trajectory's staleness is the step it is trained in minus the weights' version when it started.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.rollout_bench.outcome import Status, TrajectoryOutcome

MODES = ("sync", "recycle", "async")


@dataclass(frozen=True)
class OverlapPlan:
    """Sizes of ``train_overlap`` (small: the scenario is most of ``make bench``'s ~21 minutes, see
    benchmarks/README.md): 5 steps of 8 groups of 4, every duration (server, tools, so the
    trainer's step too) times ``time_scale``."""

    steps: int = 5
    group_size: int = 4
    batch_groups: int = 8
    time_scale: float = 0.5
    #: recycle: batches of prompts in flight besides the step's own (verl's colocate_async.num_warmup_batches)
    warmup_batches: int = 1
    #: recycle: rlfactory.rollout.recycle.max_staleness (default 2): a group started at step s is trained
    #: at step s + 2 at the latest; sampling waits for it (verl's max_off_policy_strategy=wait), never drops
    max_staleness: int = 2
    #: async: verl's async_training.staleness_threshold
    staleness: int = 1
    #: async: groups in flight at most, verl's default max_concurrent_samples: concurrent_samples_per_replica
    #: (16) x replicas (1), capped at max_required_samples = (staleness + 1) x batch_groups
    #: (fully_async_rollouter.py, set_max_required_samples)
    concurrency_per_replica: int = 16
    replicas: int = 1
    #: async: the weight sync's pause of generation, as a share of the train step
    sync_fraction: float = 0.05

    @property
    def concurrency(self) -> int:
        return min(self.concurrency_per_replica * self.replicas, (self.staleness + 1) * self.batch_groups)

    @property
    def batch(self) -> int:
        return self.group_size * self.batch_groups

    def groups_needed(self, mode: str) -> int:
        """Groups the mode can start at most: every step's batch plus what may be in flight at the end."""
        extra = {"sync": 0, "recycle": self.warmup_batches * self.batch_groups,
                 "async": (self.staleness + 1) * self.batch_groups}[mode]
        return self.steps * self.batch_groups + extra + self.batch_groups  # + replacements of dropped groups


@dataclass
class ModeRun:
    mode: str
    loop: str
    wall_s: float
    trained: int
    step_end_s: list[float]
    staleness: list[int]
    dropped: int = 0
    truncated: int = 0
    in_flight_at_end: int = 0
    started: int = 0
    server_busy_s: float = 0.0

    @property
    def trained_per_s(self) -> float:
        return self.trained / self.wall_s

    @property
    def steady_per_s(self) -> float | None:
        """Trained trajectories per second after the first step (its rollout has nothing to overlap)."""
        if len(self.step_end_s) < 2:
            return None
        steps = len(self.step_end_s)
        return (self.trained * (steps - 1) / steps) / (self.step_end_s[-1] - self.step_end_s[0])

    @property
    def mean_staleness(self) -> float:
        return statistics.fmean(self.staleness) if self.staleness else 0.0


RunOne = Callable[[int], Awaitable[tuple[TrajectoryOutcome, Any]]]


@dataclass
class Pool:
    """The trajectories in flight, by group: complete groups queue in ``ready``."""

    run_one: RunOne
    server: Any
    group_size: int
    next_group: int = 0
    ready: list[int] = field(default_factory=list)
    version_of: dict[int, int] = field(default_factory=dict)  # group -> weights' version at its start
    results: dict[int, tuple[TrajectoryOutcome, Any]] = field(default_factory=dict)
    dropped: int = 0
    finished_groups: int = 0
    tasks: set[asyncio.Task] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _left: dict[int, int] = field(default_factory=dict)

    def start_group(self) -> int:
        g, self.next_group = self.next_group, self.next_group + 1
        self.version_of[g] = self.server.version
        self._left[g] = self.group_size
        for i in range(g * self.group_size, (g + 1) * self.group_size):
            task = asyncio.create_task(self._one(g, i))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return g

    async def _one(self, g: int, index: int) -> None:
        self.results[index] = result = await self.run_one(index)
        if result[0].status is not Status.completed and self._left[g] > 0:
            self._left[g] = -1  # a failed trajectory drops its group (the rest still run)
            self.dropped += self.group_size
            self.finished_groups += 1
            self.start_group()  # and a new prompt replaces it, as dynamic sampling refills a batch
        elif self._left[g] > 0:
            self._left[g] -= 1
            if self._left[g] == 0:
                self.ready.append(g)
                self.finished_groups += 1
        self.changed.set()

    @property
    def in_flight_groups(self) -> int:
        return self.next_group - self.finished_groups

    def _overdue(self, step: int, max_staleness: int) -> bool:
        """A group still running that must be trained at ``step`` (verl's dropless ``wait``: sampling
        blocks while an in-flight prompt has reached the threshold)."""
        return any(left > 0 and step - self.version_of[g] >= max_staleness for g, left in self._left.items())

    async def take(self, count: int, step: int = 0, max_staleness: int | None = None) -> list[int]:
        """The first ``count`` complete groups, oldest weights first (verl's replay buffer order)."""
        while len(self.ready) < count or (max_staleness is not None and self._overdue(step, max_staleness)):
            self.changed.clear()
            await self.changed.wait()
        self.ready.sort(key=lambda g: self.version_of[g])  # stable: completion order within a version
        taken, self.ready = self.ready[:count], self.ready[count:]
        return taken

    async def close(self) -> int:
        """Cancel what is still running (the run is over); how many trajectories that was."""
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)


async def _take_batch(
    pool: Pool, plan: OverlapPlan, step: int, staleness: list[int], trained: list[int],
    max_staleness: int | None = None,
) -> None:
    groups = await pool.take(plan.batch_groups, step, max_staleness)
    staleness.extend(step - pool.version_of[g] for g in groups for _ in range(plan.group_size))
    trained.extend(groups)


async def run_mode(
    mode: str, plan: OverlapPlan, pool: Pool, train_s: float
) -> tuple[float, list[float], list[int], list[int]]:
    """Run ``plan.steps`` training steps in ``mode``; (wall, step end times, staleness per trained
    trajectory, trained groups)."""
    server, start = pool.server, time.perf_counter()
    step_end: list[float] = []
    staleness: list[int] = []
    trained: list[int] = []
    if mode == "sync":
        for step in range(plan.steps):
            for _ in range(plan.batch_groups):
                pool.start_group()
            await _take_batch(pool, plan, step, staleness, trained)
            await asyncio.sleep(train_s)  # nothing is in flight: the server is idle
            server.version += 1
            step_end.append(time.perf_counter() - start)
    elif mode == "recycle":
        for _ in range(plan.warmup_batches * plan.batch_groups):
            pool.start_group()
        for step in range(plan.steps):
            for _ in range(plan.batch_groups):  # verl's prepare_step: one batch of prompts per step
                pool.start_group()
            await _take_batch(pool, plan, step, staleness, trained, plan.max_staleness)
            server.pause()  # colocated: the actor takes the devices, generation stops
            await asyncio.sleep(train_s)
            server.version += 1
            server.resume()
            step_end.append(time.perf_counter() - start)
    elif mode == "async":
        limit = (plan.staleness + 1) * plan.batch_groups
        since_sync = 0

        async def rollouter() -> None:
            nonlocal since_sync
            while True:
                while pool.in_flight_groups < plan.concurrency and since_sync < limit:
                    pool.start_group()
                    since_sync += 1
                pool.changed.clear()
                await pool.changed.wait()  # a group ended, or the weights synced

        feeder = asyncio.create_task(rollouter())
        try:
            for step in range(plan.steps):
                await _take_batch(pool, plan, step, staleness, trained)
                await asyncio.sleep(train_s)  # the rollout goes on: the trainer has its own devices
                server.pause()  # weight sync
                await asyncio.sleep(plan.sync_fraction * train_s)
                server.version += 1
                since_sync = pool.in_flight_groups + len(pool.ready)
                server.resume()
                pool.changed.set()
                step_end.append(time.perf_counter() - start)
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
    else:
        raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    return time.perf_counter() - start, step_end, staleness, trained
