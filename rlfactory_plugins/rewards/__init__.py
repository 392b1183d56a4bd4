"""Rewards: the reward model, the composite reward manager, tool verification."""

from rlfactory_plugins.rewards.base import FunctionReward, Reward, RewardOutput, as_reward, reward

__all__ = ["FunctionReward", "Reward", "RewardOutput", "as_reward", "reward"]
