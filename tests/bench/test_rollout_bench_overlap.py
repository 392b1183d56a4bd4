"""The train_overlap scheduler's arithmetic (benchmarks/rollout_bench/overlap.py), on trajectories
of known length, and the server's pause of generation."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rollout_bench.outcome import Status, TrajectoryOutcome  # noqa: E402
from benchmarks.rollout_bench.overlap import MODES, ModeRun, OverlapPlan, Pool, run_mode  # noqa: E402

PLAN = OverlapPlan(steps=3, group_size=2, batch_groups=3, concurrency_per_replica=3)
TRAIN_S = 0.1
FAST_S, SLOW_S = 0.01, 0.2  # every batch's last group has one slow trajectory: the tail


class Weights:
    """What the scheduler needs of the server: the weights' version and a pause (no-op here)."""

    def __init__(self) -> None:
        self.version, self.paused = 0, 0

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        pass


def _pool(failing: frozenset[int] = frozenset()) -> Pool:
    def seconds(i: int) -> float:
        group = i // PLAN.group_size
        return SLOW_S if group % PLAN.batch_groups == PLAN.batch_groups - 1 and i % PLAN.group_size == 0 else FAST_S

    start = time.perf_counter()

    async def run_one(i: int):
        await asyncio.sleep(seconds(i))
        status = Status.failed if i in failing else Status.completed
        return TrajectoryOutcome(status, time.perf_counter() - start, answered=True), None

    return Pool(run_one, Weights(), PLAN.group_size)


async def _run(mode: str, failing: frozenset[int] = frozenset()) -> tuple[ModeRun, Pool]:
    pool = _pool(failing)
    wall, step_end, staleness, trained = await run_mode(mode, PLAN, pool, TRAIN_S)
    in_flight = await pool.close()
    run = ModeRun(mode, "fake", wall, len(trained) * PLAN.group_size, step_end, staleness, dropped=pool.dropped,
                  in_flight_at_end=in_flight)
    return run, pool


@pytest.mark.timeout(30)
async def test_sync_waits_for_the_tail_then_trains_with_nothing_in_flight():
    run, pool = await _run("sync")
    assert run.trained == PLAN.steps * PLAN.batch and run.in_flight_at_end == 0
    assert run.staleness == [0] * run.trained
    # every step: the batch's slowest trajectory, then the train step
    assert run.wall_s == pytest.approx(PLAN.steps * (SLOW_S + TRAIN_S), rel=0.25)
    assert pool.server.version == PLAN.steps and pool.server.paused == 0


@pytest.mark.timeout(30)
async def test_recycling_trains_the_first_complete_groups_and_carries_the_rest():
    sync, _ = await _run("sync")
    run, pool = await _run("recycle")
    assert run.trained == PLAN.steps * PLAN.batch and run.dropped == 0
    assert pool.server.paused == PLAN.steps  # colocated: generation paused for every train step
    # the fast groups are trained at once, the slow ones (the tail) a step or two later
    assert 0 in run.staleness and 0 < max(run.staleness) < PLAN.steps
    assert run.wall_s < sync.wall_s
    started = PLAN.warmup_batches * PLAN.batch_groups + PLAN.steps * PLAN.batch_groups
    assert pool.next_group == started


@pytest.mark.timeout(30)
async def test_fully_async_overlaps_training_within_the_staleness_bound():
    sync, _ = await _run("sync")
    run, pool = await _run("async")
    assert run.trained == PLAN.steps * PLAN.batch
    assert 0 < run.mean_staleness and max(run.staleness) <= PLAN.staleness + 1
    # steady state: the rollout of the next batch runs during the train step
    assert run.steady_per_s > 1.5 * sync.steady_per_s
    assert pool.next_group <= PLAN.steps * PLAN.batch_groups + (PLAN.staleness + 1) * PLAN.batch_groups


@pytest.mark.timeout(30)
async def test_recycling_waits_for_a_group_at_its_staleness_bound_and_drops_none():
    pool = _pool()
    plan = OverlapPlan(steps=3, group_size=2, batch_groups=3, concurrency_per_replica=3, max_staleness=1)
    _, _, staleness, trained = await run_mode("recycle", plan, pool, TRAIN_S)
    await pool.close()
    assert max(staleness) == 1 and len(trained) == plan.steps * plan.batch_groups
    assert pool.dropped == 0


@pytest.mark.timeout(30)
async def test_a_failed_trajectory_drops_its_group_and_a_new_prompt_replaces_it():
    run, pool = await _run("sync", failing=frozenset({0}))
    assert run.dropped == PLAN.group_size
    assert run.trained == PLAN.steps * PLAN.batch
    assert pool.next_group == PLAN.steps * PLAN.batch_groups + 1


def test_plan_sizes_the_workload_for_every_mode():
    assert PLAN.batch == 6
    assert [PLAN.groups_needed(m) for m in MODES] == [12, 15, 18]
    with pytest.raises(ValueError, match="unknown mode"):
        asyncio.run(run_mode("nope", PLAN, _pool(), TRAIN_S))


def test_limit_of_each_mode_from_the_sync_run():
    """Colocated recycling cannot beat W + T a step (W: the server's work per batch); fully-async after
    sync's first rollout trains back to back, a step taking max(W, T + sync pause)."""
    from benchmarks.rollout_bench.overlap_run import _limit_vs_sync

    plan = OverlapPlan(steps=4, sync_fraction=0.0)
    train_s, slots = 2.0, 2
    # sync: 4 steps of 3 s rollout + 2 s train = 20 s; the server worked 1 s per batch on each of its 2 slots
    sync = ModeRun("sync", "fake", 20.0, 4 * plan.batch, [5.0, 10.0, 15.0, 20.0], [0] * 4, server_busy_s=8.0)
    assert _limit_vs_sync("sync", sync, plan, train_s, slots) == 1.0
    assert _limit_vs_sync("recycle", sync, plan, train_s, slots) == round(20.0 / (4 * (1.0 + 2.0)), 3)
    assert _limit_vs_sync("async", sync, plan, train_s, slots) == round(20.0 / (3.0 + 4 * 2.0), 3)
    busy = ModeRun("sync", "fake", 20.0, 4 * plan.batch, [5.0, 10.0, 15.0, 20.0], [0] * 4, server_busy_s=24.0)
    assert _limit_vs_sync("async", busy, plan, train_s, slots) == round(20.0 / (3.0 + 2.0 + 3 * 3.0), 3)
    assert _limit_vs_sync("async", None, plan, train_s, slots) is None
