import pytest

from rlfactory_plugins.trajectory import Trajectory, TurnRecord
from rlfactory_reward_qa import exact_match, normalize_answer, qa_em, qa_f1, qa_format, token_f1


def traj(text: str, gt, final_answer=None) -> Trajectory:
    return Trajectory(turns=[TurnRecord(index=0, assistant_text=text)], response_text=text, ground_truth=gt,
                      final_answer=final_answer)


def test_normalize_like_search_r1():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a day") == "apple day"


@pytest.mark.parametrize(
    "text,gt,expected",
    [
        ("<think>hm</think><answer>Paris</answer>", "paris", 1.0),
        ("<answer>the Paris.</answer>", ["Lyon", "Paris"], 1.0),
        ("<answer>Paris</answer>", {"target": ["Paris, France"]}, 0.0),
        ("Paris", "Paris", 0.0),  # no answer tag: Search-R1 gives 0
        ("<answer>x</answer> then <answer>Paris</answer>", "Paris", 1.0),  # the last block counts
    ],
)
async def test_qa_em(text, gt, expected):
    assert (await qa_em.ascore(traj(text, gt), qa_em.parse_options(None))).score == expected


async def test_qa_em_prefers_final_answer_and_substring_option():
    t = traj("<answer>wrong</answer>", "Paris", final_answer="Paris")
    assert (await qa_em.ascore(t, None)).score == 1.0
    t2 = traj("<answer>Paris, France</answer>", {"target": ["Paris"]})
    assert (await qa_em.ascore(t2, qa_em.parse_options({}))).score == 0.0
    assert (await qa_em.ascore(t2, qa_em.parse_options({"substring": True}))).score == 1.0


def test_numpy_ground_truth_from_parquet():
    np = pytest.importorskip("numpy")
    assert exact_match("Paris", [str(x) for x in np.array(["Paris"]).tolist()])
    from rlfactory_plugins.rewards.answer import gold_answers

    assert gold_answers({"target": np.array(["a", "b"])}) == ["a", "b"]


async def test_qa_f1():
    assert token_f1("barack obama", "Obama") == pytest.approx(2 * 0.5 * 1 / 1.5)
    out = await qa_f1.ascore(traj("<answer>Barack Obama</answer>", ["George Bush", "Obama"]), None)
    assert out.score == pytest.approx(2 / 3)
    assert (await qa_f1.ascore(traj("no tags", "Obama"), None)).score == 0.0


async def test_qa_format():
    assert (await qa_format.ascore(traj("<answer>x</answer>", None), None)).score == 1.0
    assert (await qa_format.ascore(traj("<answer> </answer>", None), None)).score == 0.0
    opts = qa_format.parse_options({"require_think": True})
    assert (await qa_format.ascore(traj("<answer>x</answer>", None), opts)).score == 0.0
    assert (await qa_format.ascore(traj("<think>a</think><answer>x</answer>", None), opts)).score == 1.0


def test_bad_option_is_named():
    from rlfactory_plugins.errors import PluginError

    with pytest.raises(PluginError, match="qa_em"):
        qa_em.parse_options({"substrng": True})


from rlfactory_plugins.testing import RewardPackTests  # noqa: E402


class TestQAPack(RewardPackTests):
    reward_name = "qa_em"
    entry_point = "qa"
    trajectory = traj("<answer>Paris</answer>", {"target": ["Paris"]})
    invalid_options = {"substrng": True}
    expected_score = 1.0
