"""Recycling for verl's V1 colocated trainer: groups a step does not need keep running into later steps.

Over-sampling (:mod:`.oversample`) starts extra groups, trains on the first complete ones and cuts and
drops the rest. Recycling (``rlfactory.rollout.recycle.enabled=true``, docs/recycling.md) keeps them:
``+plugins=rlfactory`` then runs verl's ``colocate_async`` trainer mode (the ``sync`` layout; after
sampling it aborts the generations in flight and sleeps the rollout, after the update it loads the new
weights and resumes them: verl's ``FullyAsyncLLMServerClient`` re-sends an aborted request with the
tokens it already has, inside the one ``generate`` call the agent loop made, so a trajectory goes on
where it stopped and a tool call in flight simply finishes) with ``oversample x train_batch_size``
extra groups in flight (``num_warmup_batches``), and this replay buffer: verl's ``ReplayBufferAsync``
(the first complete groups, oldest first; with ``max_off_policy_strategy=wait`` it waits for a group
about to exceed ``max_staleness`` instead of dropping it), plus per-step metrics of what was recycled.

A trajectory is *recycled* when its batch is a later step's than the weights it started on: at step
``s`` the rollout runs weights version ``s - 1`` (verl's ``update_weights(global_steps)`` after each
step), so one whose ``min_global_steps`` (the oldest version any turn ran on, reported by the rollout
server and carried by rlfactory's agent loop) is below ``s - 1`` started in an earlier step. Its log-probs
are its own per-turn ones (``response_logprobs``), so verl's off-policy correction applies as usual.
"""

from __future__ import annotations

from typing import Any

from rlfactory_plugins.verl import compat

compat.require(__name__)

import transfer_queue as tq  # noqa: E402
from verl.trainer.ppo.v1.replay_buffer import ReplayBufferAsync  # noqa: E402

from rlfactory_plugins.config.recycle import RECYCLER_NAME, TRAINER_MODE  # noqa: E402
from rlfactory_plugins.errors import ConfigError  # noqa: E402
from rlfactory_plugins.verl.rows import TRAJECTORY_KEY  # noqa: E402

__all__ = ["RecyclingReplayBuffer", "recycled_stats", "saved_work"]

PREFIX = "training/recycle"


def saved_work(trajectory: dict[str, Any], version: int) -> tuple[int, int]:
    """(response tokens, tool calls) of a trajectory's turns generated wholly on weights older than
    ``version``: the work over-sampling would have cut and thrown away. A turn aborted mid-generation and
    resumed on ``version`` counts 0, so this is a lower bound."""
    tokens = calls = 0
    for turn in trajectory.get("turns", ()):
        newest = turn.get("max_global_steps")
        if newest is not None and newest < version:
            tokens += int(turn.get("response_tokens") or 0)
            calls += len(turn.get("tool_calls") or ())
    return tokens, calls


def recycled_stats(tags: list[dict[str, Any]], keys: list[str], global_steps: int) -> tuple[list[str], dict[str, float]]:
    """The keys of the recycled trajectories of a batch (its tags, as the V1 worker wrote them) and
    their count, groups and staleness in steps (``global_steps - 1 - min_global_steps``)."""
    version = global_steps - 1
    recycled, staleness = [], []
    for key, tag in zip(keys, tags, strict=True):
        oldest = tag.get("min_global_steps")
        if tag.get("is_padding", False) or oldest is None or oldest >= version:
            continue
        recycled.append(key)
        staleness.append(version - int(oldest))
    return recycled, {
        f"{PREFIX}/trajectories": len(recycled),
        f"{PREFIX}/groups": len({key.split("_")[0] for key in recycled}),
        f"{PREFIX}/staleness/mean": sum(staleness) / len(staleness) if staleness else 0.0,
        f"{PREFIX}/staleness/max": max(staleness, default=0),
    }


def _values(column: Any) -> list[Any]:
    """A TransferQueue column as a list (verl reads ``extra_fields`` with ``.tolist()``, as here where it can)."""
    return column.tolist() if hasattr(column, "tolist") else list(column)


class RecyclingReplayBuffer(ReplayBufferAsync):
    """verl's ``ReplayBufferAsync`` for ``trainer.v1.trainer_mode=colocate_async``, with recycling metrics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.trainer_mode != TRAINER_MODE:
            raise ConfigError(
                f"{RECYCLER_NAME} works with trainer.v1.trainer_mode={TRAINER_MODE}, not {self.trainer_mode!r}: "
                "set rlfactory.rollout.recycle.enabled=true and leave trainer_mode and custom_sampler to it"
            )
        if self.sampler_kwargs:
            raise ConfigError(
                f"trainer.v1.sampler.sampler_kwargs={dict(self.sampler_kwargs)!r}: {RECYCLER_NAME} takes no "
                "sampler_kwargs; its settings are rlfactory.rollout.recycle.{oversample,max_staleness}"
            )
        if self.max_off_policy_threshold is not None and self.max_off_policy_strategy != "wait":
            raise ConfigError(
                f"trainer.v1.sampler.max_off_policy_strategy={self.max_off_policy_strategy!r}: recycling never "
                "drops a group for its age; leave the key to rlfactory.rollout.recycle (it sets wait)"
            )

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[Any, dict]:
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id == "val":
            return batch, metrics
        recycled, stats = recycled_stats(list(batch.tags), list(batch.keys), global_steps)
        tokens = calls = 0
        if recycled:
            data = tq.kv_batch_get(keys=recycled, partition_id=partition_id, select_fields=["extra_fields"])
            for extra in _values(data.pop("extra_fields")):
                t, c = saved_work((extra or {}).get(TRAJECTORY_KEY) or {}, global_steps - 1)
                tokens, calls = tokens + t, calls + c
        taken = {key.split("_")[0] for key in batch.keys}
        dropped = sum(v for k, v in metrics.items() if k.endswith("/evicted_samples"))
        metrics.update(stats)
        metrics.update({
            f"{PREFIX}/tokens_saved": tokens,
            f"{PREFIX}/tool_calls_saved": calls,
            f"{PREFIX}/dropped_groups": dropped,
            # groups left for the next steps (the last poll's counts): still generating, and complete but not taken
            f"{PREFIX}/in_flight_groups": len(self.pending_keys[partition_id]) + len(self.running_keys[partition_id]),
            f"{PREFIX}/waiting_groups": len(self.finished_keys[partition_id] - taken),
        })
        return batch, metrics
