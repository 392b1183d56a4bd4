"""The composite reward: weights, per-part logging, fallbacks, timeouts, deadline override."""

import asyncio
import json

import pytest

from rlfactory_plugins.config import RewardEntry, validate_section
from rlfactory_plugins.errors import ConfigError, UnknownNameError
from rlfactory_plugins.rewards import RewardOutput, reward
from rlfactory_plugins.rewards.composite import CompositeReward
from tests.helpers.trajectories import make_trajectory

pytestmark = pytest.mark.timeout(60)


def section(judge_url: str, **extra):
    return validate_section({
        "rewards": [
            {"name": "qa_em", "weight": 1.0},
            {"name": "judge", "weight": 0.5, "options": {"base_url": judge_url, "timeout": 0.5, "retries": 0}},
            {"name": "tool_verify", "weight": 0.1},
        ],
        **extra,
    })


async def test_qa_em_judge_tool_verify_hand_computed(trajectory, judge_server):
    composite = CompositeReward.from_config(section(judge_server.base_url))
    result = await composite.score(trajectory)
    await composite.aclose()
    # qa_em: "Paris" in {"target": ["Paris"]} -> 1.0
    # judge: "Score: 6/10" -> 0.6
    # tool_verify: 2 calls, both parsed, 1 ok -> (0.5*2/2 + 0.5*1/2) = 0.75
    expected = 1.0 * 1.0 + 0.5 * 0.6 + 0.1 * 0.75
    assert result.total == pytest.approx(expected)
    info = result.extra_info()
    assert info["reward/total"] == pytest.approx(expected)
    assert info["reward/qa_em"] == 1.0
    assert info["reward/judge"] == pytest.approx(0.6)
    assert info["reward/tool_verify"] == pytest.approx(0.75)
    assert all(info[f"reward/{k}/failed"] == 0.0 for k in ("qa_em", "judge", "tool_verify"))
    # per-turn: only tool_verify has them: turn0 = 0.75, turn1 (no calls) = 1.0, weighted by 0.1
    assert json.loads(info["reward/per_turn"]) == pytest.approx([0.075, 0.1])
    assert info["reward/tool_verify/turn_mean"] == pytest.approx(0.875) and info["reward/qa_em/turn_mean"] is None
    assert judge_server.requests == 1


@pytest.mark.parametrize("mode", ["stall", "error", "garbage"])
async def test_judge_failure_uses_fallback_and_is_recorded(mode, judge_server):
    cfg = validate_section({"rewards": [
        {"name": "qa_em"},
        {"name": "judge", "weight": 0.5, "fallback": 0.2, "alias": "llm", "timeout": 1.0,
         "options": {"base_url": judge_server.base_url, "timeout": 0.3, "retries": 0}},
    ]})
    composite = CompositeReward.from_config(cfg)
    good, bad = make_trajectory(uid="a"), make_trajectory(uid="b", judge_mode=f"[[{mode}]]")
    results = await composite.score_many([good, bad])
    await composite.aclose()
    assert results[0].extra_info()["reward/llm"] == pytest.approx(0.6)
    assert results[0].extra_info()["reward/llm/failed"] == 0.0
    info = results[1].extra_info()
    assert info["reward/llm/failed"] == 1.0 and info["reward/llm"] == 0.2
    assert info["reward/total"] == pytest.approx(1.0 + 0.5 * 0.2)
    assert set(results[0].extra_info()) == set(info)  # verl needs the same keys for every sample
    assert results[1].parts[1].error


async def test_part_timeout_and_exception(rlfactory_register, trajectory):
    @reward(name="slow")
    async def slow(t):
        await asyncio.sleep(10)
        return 1.0

    @reward(name="broken")
    def broken(t):
        raise ValueError("no luck")

    class Plugin:
        from rlfactory_plugins import hookimpl

        @hookimpl
        def register_rewards(self, register):
            register(slow)
            register(broken)
            register(lambda t: RewardOutput(score=0.5, per_turn=[1.0, 0.0, 0.5]), name="turny")

    registry = rlfactory_register(Plugin())
    entries = [RewardEntry(name="slow", timeout=0.2, fallback=-1.0), RewardEntry(name="broken", weight=2.0),
               RewardEntry(name="turny", weight=2.0)]
    result = await CompositeReward(entries, registry).score(trajectory)
    slow_part, broken_part, turny = result.parts
    assert slow_part.failed and "timed out after 0.2s" in slow_part.error and slow_part.score == -1.0
    assert broken_part.failed and "ValueError: no luck" in broken_part.error and broken_part.score == 0.0
    assert result.total == pytest.approx(-1.0 + 0.0 + 2 * 0.5)
    assert result.per_turn == [2.0, 0.0, 1.0]


async def test_deadline_override(trajectory, judge_server):
    cut = trajectory.model_copy(update={"stop_reason": "deadline"})
    plain = CompositeReward.from_config(validate_section({"rewards": ["qa_em"]}))
    assert (await plain.score(cut)).total == 1.0
    fixed = CompositeReward.from_config(validate_section({"rewards": ["qa_em"], "reward_on_deadline": -0.5}))
    result = await fixed.score(cut)
    assert result.total == -0.5 and result.deadline_override and result.extra_info()["reward/qa_em"] == 1.0
    assert (await fixed.score(trajectory)).total == 1.0


def test_config_errors():
    with pytest.raises(ConfigError, match="rlfactory.rewards is empty"):
        CompositeReward([])
    with pytest.raises(UnknownNameError, match="did you mean 'qa_em'"):
        CompositeReward.from_config(validate_section({"rewards": ["qa_emm"]}))
    with pytest.raises(ConfigError, match="alias"):
        CompositeReward.from_config(validate_section({"rewards": ["qa_em", "qa_em"]}))
    with pytest.raises(ConfigError, match="reward_on_deadline"):
        validate_section({"rewards": ["qa_em"], "reward_on_deadline": "lots"})
