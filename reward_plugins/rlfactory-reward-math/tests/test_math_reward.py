import pytest

from rlfactory_plugins.trajectory import Trajectory, TurnRecord
from rlfactory_reward_math import math_equiv


def traj(text: str, gt) -> Trajectory:
    return Trajectory(turns=[TurnRecord(index=0, assistant_text=text)], response_text=text, ground_truth=gt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text,gt,expected",
    [
        ("So the result is \\boxed{0.5}", "\\frac{1}{2}", 1.0),
        ("<answer>1/2</answer>", "0.5", 1.0),
        ("<answer>x^2 + 1</answer>", "$1+x^2$", 1.0),
        ("\\boxed{4}", "3", 0.0),
        ("\\boxed{4}", ["3", "4"], 1.0),
        ("\\boxed{4}", {"target": ["4"]}, 1.0),
        ("I don't know", "7", 0.0),
    ],
)
async def test_math_equiv(text, gt, expected):
    assert (await math_equiv.ascore(traj(text, gt), math_equiv.parse_options(None))).score == expected


from rlfactory_plugins.testing import RewardPackTests  # noqa: E402


class TestMathPack(RewardPackTests):
    reward_name = "math_equiv"
    entry_point = "math"
    trajectory = traj("\\boxed{\\frac{1}{2}}", "0.5")
    invalid_options = {"rounding": 3}
    expected_score = 1.0
