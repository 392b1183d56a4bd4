"""The verl reward manager ``rlfactory`` (selected by ``+plugins=rlfactory``).

verl's reward loop builds it as ``cls(config=full_config, tokenizer=..., compute_score=...,
**kwargs)`` in each reward worker and awaits :meth:`run_single` once per sample. It
rebuilds the sample's :class:`Trajectory` (see :mod:`.from_data`), scores it with the
weighted ``rlfactory.rewards`` (see :mod:`.composite`) and returns the total plus every
part in ``reward_extra_info`` (``reward/<part>``, ``reward/<part>/failed``,
``reward/total``, ...), which verl logs.

With ``rlfactory.rewards`` empty it scores with verl's own ``compute_score`` (the
default by ``data_source``, or ``reward.custom_reward_function``) as the single part
``verl``, like verl's ``naive`` manager.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register
from verl.utils.reward_score import default_compute_score

from rlfactory_plugins.config import RewardEntry, RLFactoryConfig, validate_section
from rlfactory_plugins.registry import PluginInfo, Registered, Registry
from rlfactory_plugins.rewards.base import Reward, RewardOutput, coerce_output
from rlfactory_plugins.rewards.composite import CompositeReward
from rlfactory_plugins.rewards.from_data import trajectory_from_item
from rlfactory_plugins.trajectory import Trajectory

#: the name ``reward.reward_manager.name`` selects (same as verl_plugin.REWARD_MANAGER_NAME)
NAME = "rlfactory"


class VerlScoreReward(Reward):
    """verl's ``compute_score(data_source, solution_str, ground_truth, extra_info)`` as a reward."""

    def __init__(self, compute_score: Any) -> None:
        super().__init__("verl", "verl's compute_score on the decoded response")
        self.compute_score = compute_score or default_compute_score

    async def ascore(self, trajectory: Trajectory, options: Any) -> RewardOutput:
        kwargs = dict(data_source=trajectory.data_source, solution_str=trajectory.response_text,
                      ground_truth=trajectory.ground_truth, extra_info=trajectory.extra_info)
        if inspect.iscoroutinefunction(self.compute_score):
            value = await self.compute_score(**kwargs)
        else:
            value = await asyncio.to_thread(lambda: self.compute_score(**kwargs))
        return coerce_output(value, self.name)


def section_of(config: Any) -> RLFactoryConfig:
    """The validated ``rlfactory:`` section of a full verl config (DictConfig or dict)."""
    section = config.get("rlfactory") if config is not None else None
    if OmegaConf.is_config(section):
        section = OmegaConf.to_container(section, resolve=True)
    return validate_section(section)


def build_composite(settings: RLFactoryConfig, compute_score: Any = None) -> CompositeReward:
    if settings.rewards:
        return CompositeReward.from_config(settings)
    registry = Registry()
    registry.rewards["verl"] = Registered("verl", VerlScoreReward(compute_score), PluginInfo("verl", "verl", None))
    return CompositeReward([RewardEntry(name="verl")], registry, settings.reward_on_deadline)


@register(NAME)
class RLFactoryRewardManager(RewardManagerBase):
    """Composite reward over the trajectory record; see the module docstring."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **kwargs: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.settings = section_of(config)
        self.composite = build_composite(self.settings, compute_score)

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        item = data[-1:][0]  # multi-output samples: the last one carries the whole trajectory
        trajectory = await asyncio.to_thread(trajectory_from_item, item, self.tokenizer)
        result = await self.composite.score(trajectory)
        return {"reward_score": result.total, "reward_extra_info": result.extra_info()}
