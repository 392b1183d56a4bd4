"""A recorded trajectory with tool calls, for the reward tests: a good search call, a failed one, then the answer."""

from __future__ import annotations

from rlfactory_plugins.tools.base import ToolResult, ToolStatus
from rlfactory_plugins.trajectory import ToolCallRecord, Trajectory, TurnRecord


def make_trajectory(answer: str = "Paris", uid: str = "t1", judge_mode: str = "", **kw) -> Trajectory:
    """Two turns: a good search call and a failed one, then the answer."""
    ok = ToolResult(name="search", arguments={"q": "capital of France"}, output="Paris is the capital.")
    bad = ToolResult(name="search", arguments={"q": "x"}, status=ToolStatus.tool_error, error="backend down")
    final = f"<answer>{answer}</answer>"
    return Trajectory(
        uid=uid,
        prompt=[{"role": "user", "content": f"What is the capital of France? {judge_mode}".strip()}],
        response_text=f'<tool_call>...</tool_call> obs ... {final}',
        turns=[
            TurnRecord(index=0, assistant_text="<tool_call>...</tool_call>", tool_calls=[
                ToolCallRecord(turn=0, name="search", arguments={"q": "capital of France"}, result=ok),
                ToolCallRecord(turn=0, name="search", arguments={"q": "x"}, result=bad),
            ]),
            TurnRecord(index=1, assistant_text=final),
        ],
        stop_reason="answer",
        ground_truth={"target": ["Paris"]},
        data_source="nq",
        **kw,
    )
