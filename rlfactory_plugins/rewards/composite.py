"""The composite reward: score a trajectory with a weighted list of rewards.

``total = sum(weight_i * score_i)`` over the parts of ``rlfactory.rewards``. A part that
raises or runs past its ``timeout`` is marked failed and scores its ``fallback``; the
step never crashes because of one reward. Parts of one trajectory run concurrently.

Per-turn (process) rewards: a part may return ``RewardOutput.per_turn``; the composite's
``per_turn[i]`` is ``sum(weight_p * per_turn_p[i])`` over the parts that returned one
(missing turns count 0). verl 0.9.1's reward loop carries one scalar per sample (placed on
the last response token), so ``per_turn`` goes to the logs (``reward/per_turn`` as a JSON list,
``reward/<part>/turn_mean``) and to the CLI; it is trained on only with the advantage estimator
``rlfactory_turn_grpo``, for which the rollout worker writes it into ``rm_scores``
(:mod:`rlfactory_plugins.verl.turn_rewards`). Otherwise a reward that wants its process signal
in the gradient folds it into ``score``.

``reward_on_deadline``: a trajectory cut by the straggler policy (``stop_reason ==
"deadline"``) gets this fixed total instead (parts are still scored and logged). Null
scores it normally, which biases against slow-but-correct behaviour when cut answers are
usually wrong; a fixed value removes that signal but also rewards stalling if set high.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rlfactory_plugins.config import RewardEntry, RLFactoryConfig
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.registry import Registry
from rlfactory_plugins.rewards.base import BoundReward, RewardOutput
from rlfactory_plugins.trajectory import Trajectory

logger = logging.getLogger("rlfactory.rewards")


#: the ``reward/<key>`` entries of :meth:`CompositeScore.extra_info` that are not parts (a part's alias never is one)
SUMMARY_KEYS = ("total", "per_turn", "deadline_override")


@dataclass
class PartScore:
    """One part's outcome: ``score`` is what entered the total (the fallback if it failed)."""

    key: str
    name: str
    weight: float
    score: float
    failed: bool = False
    error: str | None = None
    per_turn: list[float] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class CompositeScore:
    total: float
    parts: list[PartScore]
    per_turn: list[float] | None = None
    deadline_override: bool = False

    def extra_info(self) -> dict[str, Any]:
        """Flat, same-keys-every-sample dict for verl's ``reward_extra_info`` (reaches wandb)."""
        out: dict[str, Any] = {"reward/total": self.total}
        for p in self.parts:
            out[f"reward/{p.key}"] = p.score
            out[f"reward/{p.key}/failed"] = float(p.failed)
            out[f"reward/{p.key}/turn_mean"] = sum(p.per_turn) / len(p.per_turn) if p.per_turn else None
        out["reward/per_turn"] = json.dumps(self.per_turn)
        out["reward/deadline_override"] = float(self.deadline_override)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Everything, for ``rlfactory rewards score --json``."""
        return {
            "total": self.total,
            "deadline_override": self.deadline_override,
            "per_turn": self.per_turn,
            "parts": {
                p.key: {"name": p.name, "weight": p.weight, "score": p.score, "failed": p.failed, "error": p.error,
                        "per_turn": p.per_turn, "info": p.info, "seconds": round(p.seconds, 4)}
                for p in self.parts
            },
        }


@dataclass
class _Part:
    entry: RewardEntry
    bound: BoundReward


def _combine_per_turn(parts: list[PartScore]) -> list[float] | None:
    with_turns = [p for p in parts if p.per_turn]
    if not with_turns:
        return None
    length = max(len(p.per_turn or []) for p in with_turns)
    combined = [0.0] * length
    for p in with_turns:
        for i, value in enumerate(p.per_turn or []):
            combined[i] += p.weight * value
    return combined


class RewardTimeoutError(RuntimeError):
    """A reward's own timeout (e.g. its HTTP call), told apart from the part's ``timeout``."""


async def _own_timeouts_as_errors(part: _Part, trajectory: Trajectory) -> RewardOutput:
    try:
        return await part.bound.ascore(trajectory)
    except asyncio.TimeoutError as e:
        raise RewardTimeoutError(f"reward raised a timeout: {e or 'TimeoutError'}") from e


class CompositeReward:
    """A resolved ``rlfactory.rewards`` list: reward objects and parsed options, checked once."""

    def __init__(
        self, entries: list[RewardEntry], registry: Registry | None = None, reward_on_deadline: float | None = None
    ) -> None:
        if not entries:
            raise ConfigError(
                "rlfactory.rewards is empty; name at least one reward, e.g. "
                "'rlfactory.rewards=[{name: qa_em, weight: 1.0}]' (see `rlfactory plugins` for installed ones)"
            )
        if registry is None:
            from rlfactory_plugins.plugins import get_registry

            registry = get_registry()
        keys = [e.key for e in entries]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ConfigError(f"rlfactory.rewards names {dupes} more than once; give each an 'alias'")
        self.parts = [_Part(e, registry.reward(e.name).bind(e.options)) for e in entries]
        self.reward_on_deadline = reward_on_deadline

    @classmethod
    def from_config(cls, cfg: RLFactoryConfig, registry: Registry | None = None) -> CompositeReward:
        return cls(cfg.rewards, registry, cfg.reward_on_deadline)

    async def _score_part(self, part: _Part, trajectory: Trajectory) -> PartScore:
        entry = part.entry
        start = time.perf_counter()
        try:
            out = await asyncio.wait_for(_own_timeouts_as_errors(part, trajectory), entry.timeout)
        except Exception as e:  # noqa: BLE001 - a failing part is recorded and scored by its fallback
            error = f"timed out after {entry.timeout}s" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__}: {e}"
            logger.warning("reward %r failed on trajectory %r: %s; using fallback %s", entry.key, trajectory.uid,
                           error, entry.fallback)
            return PartScore(entry.key, entry.name, entry.weight, entry.fallback, failed=True, error=error,
                             seconds=time.perf_counter() - start)
        return PartScore(entry.key, entry.name, entry.weight, float(out.score), per_turn=out.per_turn,
                         info=out.info, seconds=time.perf_counter() - start)

    async def score(self, trajectory: Trajectory) -> CompositeScore:
        parts = list(await asyncio.gather(*(self._score_part(p, trajectory) for p in self.parts)))
        total = sum(p.weight * p.score for p in parts)
        override = trajectory.stop_reason == "deadline" and self.reward_on_deadline is not None
        if override:
            total = float(self.reward_on_deadline)  # type: ignore[arg-type]
        return CompositeScore(total=total, parts=parts, per_turn=_combine_per_turn(parts), deadline_override=override)

    async def aclose(self) -> None:
        """Close every part's reward (HTTP sessions) on the running loop."""
        for reward in {id(p.bound.reward): p.bound.reward for p in self.parts}.values():
            await reward.aclose()

    async def score_many(self, trajectories: list[Trajectory]) -> list[CompositeScore]:
        """Score trajectories concurrently (rewards that batch, like the judge, coalesce them)."""
        return list(await asyncio.gather(*(self.score(t) for t in trajectories)))
