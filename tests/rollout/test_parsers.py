"""Table-driven tests of the built-in tool-call parsers, adversarial text included,
plus a property test: parse never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlfactory_plugins.plugins import load_plugins
from rlfactory_plugins.rollout.parsers import BUILTIN_PARSERS, HermesParser, Llama3JsonParser, SearchR1Parser

pytestmark = pytest.mark.timeout(60)


def summary(result):
    return [(c.name, c.arguments, c.error is not None, c.repaired) for c in result.calls]


HERMES = [
    ("plain text", "The answer is 4.", []),
    ("one call", '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>', [("add", {"a": 1, "b": 2}, False, False)]),
    (
        "two calls",
        '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>',
        [("a", {}, False, False), ("b", {"x": 1}, False, False)],
    ),
    ("braces in strings", '<tool_call>{"name": "py", "arguments": {"code": "d = {\\"k\\": [1, 2]}}"}}</tool_call>',
     [("py", {"code": 'd = {"k": [1, 2]}}'}, False, False)]),
    ("unicode", '<tool_call>{"name": "search", "arguments": {"query": "北京 café 🚀"}}</tool_call>',
     [("search", {"query": "北京 café 🚀"}, False, False)]),
    ("arguments as a JSON string", '<tool_call>{"name": "add", "arguments": "{\\"a\\": 1}"}</tool_call>', [("add", {"a": 1}, False, False)]),
    ("parameters key", '<tool_call>{"name": "add", "parameters": {"a": 1}}</tool_call>', [("add", {"a": 1}, False, False)]),
    ("not JSON", "<tool_call>call add please</tool_call>", [(None, None, True, False)]),
    ("no name", '<tool_call>{"arguments": {}}</tool_call>', [(None, None, True, False)]),
    ("arguments not an object", '<tool_call>{"name": "f", "arguments": [1]}</tool_call>', [("f", None, True, False)]),
    ("empty", "<tool_call>  </tool_call>", [(None, None, True, False)]),
    ("nested tags", '<tool_call><tool_call>{"name": "f", "arguments": {}}</tool_call>', [(None, None, True, False)]),
    ("truncated at the length limit", '<tool_call>{"name": "add", "argu', [(None, None, True, False)]),
    ("almost JSON is repaired", "<tool_call>{'name': 'add', 'arguments': {'a': 1,}}</tool_call>", [("add", {"a": 1}, False, True)]),
    ("trailing text then a call", 'ok <tool_call>{"name": "f", "arguments": {}}</tool_call> after', [("f", {}, False, False)]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in HERMES], ids=[c[0] for c in HERMES])
def test_hermes(text, expected):
    assert summary(HermesParser().parse(text)) == expected


def test_hermes_content_and_answer():
    result = HermesParser().parse('Think. <tool_call>{"name": "f", "arguments": {}}</tool_call> <answer> 42 </answer>')
    assert result.content == "Think.  <answer> 42 </answer>" and result.final_answer == "42"


def test_repair_can_be_turned_off():
    result = HermesParser(repair_json=False).parse("<tool_call>{'name': 'add', 'arguments': {}}</tool_call>")
    assert result.calls[0].error.startswith("invalid JSON")


SEARCH_R1 = [
    ("query", "I need <search> capital of France </search>", [("search", {"query": "capital of France"}, False, False)]),
    ("unicode", "<search>Zürich 人口</search>", [("search", {"query": "Zürich 人口"}, False, False)]),
    ("empty", "<search>  </search>", [(None, None, True, False)]),
    ("unterminated", "<search>who won the", [(None, None, True, False)]),
    ("nested", "<search><search>x</search>", [(None, None, True, False)]),
    ("answer only", "<answer>Paris</answer>", []),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in SEARCH_R1], ids=[c[0] for c in SEARCH_R1])
def test_search_r1(text, expected):
    assert summary(SearchR1Parser().parse(text)) == expected


def test_search_r1_answer():
    assert SearchR1Parser().parse("<think>x</think><answer> Paris </answer>").final_answer == "Paris"
    assert SearchR1Parser().parse("<answer>unclosed").final_answer is None


LLAMA = [
    ("plain", "No tools needed {really}.", []),
    ("python tag", '<|python_tag|>{"name": "add", "parameters": {"a": 1, "b": 2}}', [("add", {"a": 1, "b": 2}, False, False)]),
    ("two with ;", '{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"q": "x;y"}}',
     [("a", {}, False, False), ("b", {"q": "x;y"}, False, False)]),
    ("braces in strings", '{"name": "py", "parameters": {"code": "{}}{"}}', [("py", {"code": "{}}{"}, False, False)]),
    ("JSON that is not a call", 'Here: {"x": 1}', []),
    ("truncated call", '{"name": "add", "parameters": {"a": 1', [("add", {"a": 1}, False, True)]),
    ("arguments key", '{"name": "f", "arguments": {"k": "ü"}}', [("f", {"k": "ü"}, False, False)]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in LLAMA], ids=[c[0] for c in LLAMA])
def test_llama3_json(text, expected):
    assert summary(Llama3JsonParser().parse(text)) == expected


def test_llama3_truncated_without_repair_is_an_error():
    result = Llama3JsonParser(repair_json=False).parse('{"name": "add", "parameters": {"a": 1')
    assert result.calls[0].error is not None and result.calls[0].name is None


def test_llama3_content_keeps_text_around_calls():
    result = Llama3JsonParser().parse('Let me add; {"name": "add", "parameters": {"a": 1}}')
    assert result.content == "Let me add;" and len(result.calls) == 1


def test_builtin_parsers_are_registered():
    _, registry = load_plugins()
    for parser_cls in BUILTIN_PARSERS:
        assert registry.parser(parser_cls.name) is parser_cls


TAGS = st.sampled_from(
    ["<tool_call>", "</tool_call>", "<search>", "</search>", "<answer>", "</answer>", "<|python_tag|>",
     '{"name": "f", "arguments": {', '{"name": ', '"parameters": ', "{", "}", "[", "]", '"', "\\", ";", "\n"]
)
TEXT = st.lists(st.one_of(TAGS, st.text(max_size=12)), max_size=25).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_parse_never_raises(text):
    for parser_cls in BUILTIN_PARSERS:
        result = parser_cls().parse(text)
        for call in result.calls:
            if call.error is None:  # a call either runs (name + object arguments) or carries its error
                assert call.name and isinstance(call.arguments, dict)
