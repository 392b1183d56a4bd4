"""The recycling replay buffer (a real ``ReplayBufferAsync`` subclass): what it refuses at construction,
and its metrics from the tags verl's V1 worker writes and the trajectories rlfactory's loop dumps. The whole
sampler (TransferQueue, abort and resume) runs in tests/e2e/test_cpu_recycle.py."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord
from rlfactory_plugins.verl.recycle import RecyclingReplayBuffer, recycled_stats, saved_work

pytestmark = pytest.mark.timeout(120)


def buffer(mode: str = "colocate_async", strategy: str = "wait", threshold: int | None = 3, **kwargs):
    return RecyclingReplayBuffer(
        trainer_mode=mode, trainer_config={}, max_off_policy_threshold=threshold, max_off_policy_strategy=strategy,
        sampler_kwargs=OmegaConf.create(kwargs), refill_fn=lambda n: n,
    )


def test_it_refuses_what_would_not_recycle():
    assert buffer().max_off_policy_strategy == "wait"
    assert buffer(strategy="drop", threshold=None).max_off_policy_threshold is None  # no bound: nothing dropped
    with pytest.raises(ConfigError, match=r"trainer_mode=colocate_async, not 'sync'"):
        buffer(mode="sync")
    with pytest.raises(ConfigError, match=r"takes no sampler_kwargs.*recycle.\{oversample,max_staleness\}"):
        buffer(oversample=0.5)
    with pytest.raises(ConfigError, match=r"max_off_policy_strategy='drop'"):
        buffer(strategy="drop")


def tag(oldest: int | None, newest: int | None = None, **extra) -> dict:
    return {"status": "success", "global_steps": 1, "min_global_steps": oldest,
            "max_global_steps": oldest if newest is None else newest, **extra}


def test_a_trajectory_is_recycled_when_it_started_on_older_weights_than_the_steps():
    # step 3 samples on weights version 2: versions 0 and 1 started in steps 1 and 2
    keys = ["a_0_0", "a_1_0", "b_0_0", "c_0_0", "d_0_0", "e_0_0"]
    tags = [tag(0, 2), tag(1), tag(2), tag(None), tag(0, is_padding=True), tag(1, 2)]
    recycled, stats = recycled_stats(tags, keys, global_steps=3)
    assert recycled == ["a_0_0", "a_1_0", "e_0_0"]
    assert stats == {"training/recycle/trajectories": 3, "training/recycle/groups": 2,
                     "training/recycle/staleness/mean": (2 + 1 + 1) / 3, "training/recycle/staleness/max": 2}
    assert recycled_stats(tags, keys, global_steps=1)[1]["training/recycle/trajectories"] == 0


def test_saved_work_counts_the_turns_done_on_older_weights():
    call = ToolCallRecord(turn=0, name="calc", arguments={"expression": "3 + 4"})
    t = Trajectory(turns=[
        TurnRecord(index=0, response_tokens=20, tool_calls=[call], min_global_steps=0, max_global_steps=0),
        # aborted mid-generation at the step's end and resumed on version 1: not counted (a lower bound)
        TurnRecord(index=1, response_tokens=9, tool_calls=[call], min_global_steps=0, max_global_steps=1),
        TurnRecord(index=2, response_tokens=7, min_global_steps=1, max_global_steps=1),
    ])
    dumped = t.model_dump(mode="json")  # as rlfactory's loop puts it in extra_fields
    assert saved_work(dumped, version=1) == (20, 1)
    assert saved_work(dumped, version=2) == (36, 2)
    assert saved_work(dumped, version=0) == (0, 0)
    assert saved_work({}, version=3) == (0, 0)
