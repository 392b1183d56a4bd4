"""Observation wrappers derived once from the chat template render exactly what the
template renders for the whole conversation."""

from __future__ import annotations

import pytest

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.rollout.codec import Codec
from rlfactory_plugins.rollout.observation import ObservationFormat
from rlfactory_plugins.rollout.parsers import HermesParser

pytestmark = pytest.mark.timeout(60)


def test_delta_matches_full_template_render(tokenizer):
    fmt = HermesParser().observation_format(tokenizer)
    tools = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}}}]
    prompt = [{"role": "user", "content": "What is 2 + 3?"}]
    call = {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    assistant = {"role": "assistant", "content": "Adding.", "tool_calls": [call, call]}
    results = [{"role": "tool", "content": "5"}, {"role": "tool", "content": "x y"}]

    full = tokenizer.apply_chat_template([*prompt, assistant, *results], tools=tools, tokenize=False, add_generation_prompt=True)
    head = tokenizer.apply_chat_template([*prompt, assistant], tools=tools, tokenize=False)
    head = head[: head.rindex("<|im_end|>")]  # what the model generated (it then emits <|im_end|>)
    generated = tokenizer.encode(head, add_special_tokens=False)
    for ends_with_eos in (True, False):
        response = generated + ([tokenizer.convert_tokens_to_ids("<|im_end|>")] if ends_with_eos else [])
        obs, truncated = fmt.render(Codec(tokenizer), response, ["5", "x y"], max_tokens=64)
        assert tokenizer.decode(response + obs) == full and not truncated


def test_truncation_marks_and_counts(tokenizer):
    fmt = ObservationFormat.from_text(tokenizer, first="<i>", between="|", last="</i>")
    ids, cut = fmt.content_ids(Codec(tokenizer), "abc " * 100, max_tokens=10)
    assert cut and ids[:10] == tokenizer.encode("abc " * 100, add_special_tokens=False)[:10]
    assert tokenizer.decode(ids).endswith("...[truncated]")
    assert tokenizer.decode(fmt.render(Codec(tokenizer), [], ["a", "b"], 10)[0]) == "<i>a|b</i>"


def test_template_without_tool_role_is_a_config_error(tokenizer):
    class NoTools:
        def apply_chat_template(self, messages, **kw):
            if any(m["role"] == "tool" for m in messages):
                raise ValueError("unsupported role tool")
            return "".join(m["content"] or "" for m in messages)

    with pytest.raises(ConfigError, match="search_r1"):
        ObservationFormat.from_chat_template(NoTools())
