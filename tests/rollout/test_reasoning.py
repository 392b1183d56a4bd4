"""Tool calls written inside a reasoning block (``<think>…</think>``) do not run by
default; ``rollout.calls_in_think`` runs them (issue 18; verl issue 4757)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlfactory_plugins.config import validate_section
from rlfactory_plugins.rollout.parsers import HermesParser, SearchR1Parser
from rlfactory_plugins.rollout.parsers.reasoning import outside_reasoning
from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, section

pytestmark = pytest.mark.timeout(60)


def call(name: str) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {{}}}}</tool_call>'


CASES = [
    ("closed think", f"<think>maybe {call('draft')}</think>", [], ["draft"]),
    ("unclosed think", f"<think>let me try {call('draft')}", [], ["draft"]),
    ("call after the think block", f"<think>plan {call('draft')}</think>\n{call('real')}", ["real"], ["draft", "real"]),
    ("plain answer after </think>", f"<think>I will add.</think>\n{call('real')}", ["real"], ["real"]),
    ("think opened by the prompt", f"reasoning {call('draft')}</think>\n{call('real')}", ["real"], ["draft", "real"]),
    ("no think at all", f"{call('a')} {call('b')}", ["a", "b"], ["a", "b"]),
    ("two think blocks", f"<think>{call('x')}</think>{call('a')}<think>{call('y')}</think>{call('b')}",
     ["a", "b"], ["x", "a", "y", "b"]),
]


@pytest.mark.parametrize("text,default,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hermes_calls_in_think(text, default, allowed):
    assert [c.name for c in HermesParser().parse(text).calls] == default
    assert [c.name for c in HermesParser().parse(text, calls_in_think=True).calls] == allowed


def test_the_answer_is_found_in_the_whole_text():
    result = HermesParser().parse(f"<think>{call('draft')}</think><answer>4</answer>")
    assert result.calls == [] and result.final_answer == "4"


def test_search_r1_searches_from_inside_think():
    """Search-R1 models search from inside <think>; its parser has no reasoning tags."""
    assert [c.arguments for c in SearchR1Parser().parse("<think>I need <search>x</search>").calls] == [{"query": "x"}]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<think>", "</think>", "a", "b", "<", "\n"]), max_size=20).map("".join))
def test_outside_reasoning_keeps_only_text_outside_blocks(text):
    out = outside_reasoning(text, "<think>", "</think>")
    assert "<think>" not in out and len(out) <= len(text)
    if "<think>" not in text and "</think>" not in text:
        assert out is text


def test_config_default_and_validation():
    assert validate_section({"parser": "hermes"}).rollout.calls_in_think is False
    assert validate_section({"parser": "hermes", "rollout": {"calls_in_think": True}}).rollout.calls_in_think is True


@pytest.mark.parametrize("calls_in_think", [False, True])
async def test_loop_calls_in_think(tools_plugin, tokenizer, calls_in_think):
    turn = '<think>try <tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call></think>'
    server = ScriptedServer(tokenizer, [turn, "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section(calls_in_think=calls_in_think)))
    traj = Trajectory.model_validate(out.extra_fields["rlfactory_trajectory"])
    if calls_in_think:
        assert traj.stop_reason == "answer" and [c.result.output for c in traj.tool_calls] == ["5"]
    else:
        assert traj.stop_reason == "no_call" and traj.tool_calls == [] and len(server.calls) == 1
