import pytest

from rlfactory_plugins.rewards.tool_verify import ToolVerifyReward
from rlfactory_plugins.tools.base import ToolResult, ToolStatus
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord

TV = ToolVerifyReward()


def call(turn, name="search", args=None, status=ToolStatus.ok, parse_error=None):
    result = None if parse_error else ToolResult(name=name, arguments=args or {}, status=status)
    return ToolCallRecord(turn=turn, name=None if parse_error else name, arguments=args, raw="...",
                          parse_error=parse_error, result=result)


def traj(*turns):
    return Trajectory(turns=[TurnRecord(index=i, tool_calls=list(calls)) for i, calls in enumerate(turns)])


async def score(t, **opts):
    return await TV.ascore(t, TV.parse_options(opts))


async def test_all_good_calls_score_one():
    out = await score(traj([call(0, args={"q": "a"})], [call(1, args={"q": "b"})], []))
    assert out.score == 1.0 and out.per_turn == [1.0, 1.0, 1.0] and out.info["calls"] == 2


async def test_parse_error_and_tool_error_formula():
    # 4 calls: 3 parsed, 2 ok -> (0.5*3/4 + 0.5*2/4) / 1 = 0.625
    t = traj([call(0, args={"q": "a"}), call(0, parse_error="bad json")],
             [call(1, args={"q": "b"}, status=ToolStatus.timeout), call(1, args={"q": "c"})])
    out = await score(t)
    assert out.score == pytest.approx(0.625)
    assert out.per_turn == [pytest.approx(0.5 * 1 / 2 + 0.5 * 1 / 2), pytest.approx(0.5 + 0.25)]
    assert out.info == {"calls": 4, "parse_errors": 1, "failed": 2, "repeats": 0, "over_budget": 0}
    weighted = await score(t, parse_weight=0.0, success_weight=1.0)
    assert weighted.score == pytest.approx(0.5)


async def test_repeats_and_budget_are_penalised():
    same = {"q": "paris", "k": 3}
    reordered = {"k": 3, "q": "paris"}  # same call, keys in another order
    t = traj([call(0, args=same)], [call(1, args=reordered)], [call(2, args={"q": "other"})])
    assert (await score(t)).score == pytest.approx(0.75)  # one repeat
    assert (await score(t, max_calls=2)).score == pytest.approx(0.5)  # + one call over budget
    assert (await score(t, repeat_penalty=0.0, max_calls=1, over_budget_penalty=0.6)).score == 0.0  # clipped


async def test_no_calls():
    assert (await score(traj([]))).score == 1.0
    assert (await score(traj([]), require_call=True)).score == 0.0
    assert (await score(traj([]), no_call_score=0.3)).score == pytest.approx(0.3)


def test_registered_as_builtin(rlfactory_plugins_fresh):
    _, registry = rlfactory_plugins_fresh
    assert registry.rewards["tool_verify"].plugin.distribution == "rlfactory"
