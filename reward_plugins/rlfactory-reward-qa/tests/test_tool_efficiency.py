"""qa_otc: exact match times the tool-efficiency multiplier."""

import math

import pytest

from rlfactory_plugins.errors import OptionsError
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord
from rlfactory_reward_qa import qa_otc


def traj(calls: int, answer: str = "Paris", extra_info=None) -> Trajectory:
    turns = [TurnRecord(index=i, tool_calls=[ToolCallRecord(turn=i, name="search", arguments={"q": str(i)})])
             for i in range(calls)]
    turns.append(TurnRecord(index=calls, assistant_text=f"<answer>{answer}</answer>"))
    return Trajectory(turns=turns, response_text=f"<answer>{answer}</answer>", ground_truth="Paris",
                      extra_info=extra_info or {})


async def score(t: Trajectory, **options) -> float:
    return (await qa_otc.ascore(t, qa_otc.parse_options(options))).score


async def test_correct_answers_score_more_with_fewer_calls_beyond_the_need():
    # need 1 (the row), c = 2: 1 call -> 1; 2 calls -> cos(pi/4); 3 calls -> cos(2pi/6) = 0.5
    row = {"min_calls": 1}
    assert await score(traj(1, extra_info=row)) == pytest.approx(1.0)
    assert await score(traj(2, extra_info=row)) == pytest.approx(math.cos(math.pi / 4))
    assert await score(traj(3, extra_info=row)) == pytest.approx(0.5)


async def test_zero_calls_on_a_task_that_needs_one_scores_zero_even_when_correct():
    assert await score(traj(0, extra_info={"min_calls": 1})) == 0.0
    assert await score(traj(0), min_calls=1) == 0.0
    assert await score(traj(0)) == 1.0  # a task that needs no call: answering without one is best (OTC-PPO)


async def test_wrong_answers_score_zero_and_options_shape_the_decay():
    assert await score(traj(1, answer="Lyon"), min_calls=1) == 0.0
    # optimal_calls 2: the second call is free; smoothing 4: 3 calls -> cos(pi/6)
    assert await score(traj(2), min_calls=1, optimal_calls=2) == pytest.approx(1.0)
    assert await score(traj(3), min_calls=1, optimal_calls=2, smoothing=4.0) == pytest.approx(math.cos(math.pi / 6))
    out = await qa_otc.ascore(traj(2, extra_info={"need": 1}), qa_otc.parse_options({"min_calls_field": "need"}))
    assert out.info == {"calls": 2, "min_calls": 1, "optimal_calls": 1, "multiplier": pytest.approx(out.score),
                        "correct": 1.0}


async def test_a_bad_row_field_and_a_bad_option_are_refused_by_name():
    from rlfactory_plugins.rewards.tool_efficiency import EfficiencyError

    with pytest.raises(EfficiencyError, match=r"extra_info.min_calls='two'"):
        await score(traj(1, extra_info={"min_calls": "two"}))
    with pytest.raises(OptionsError, match="smoothing"):
        qa_otc.parse_options({"smoothing": 0})
