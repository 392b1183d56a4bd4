"""The offline tiny-model factory: tokenizer, chat template with tools, model forward, determinism."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.testing.tiny_model import IM_END, IM_START, PAD, TOOL_TOKENS, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", corpus=["extra words for the tokenizer"])
    return path, AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)


def test_tokenizer_round_trip(tiny):
    _, tok, _ = tiny
    for text in ["Hello world 42", "naïve café ✓ 日本", '<tool_call>{"name": "x"}</tool_call>', "  spaced\n\ttext "]:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_special_and_tool_tokens_are_single_tokens(tiny):
    _, tok, model = tiny
    for token in (IM_START, IM_END, PAD, *TOOL_TOKENS):
        ids = tok.encode(token, add_special_tokens=False)
        assert len(ids) == 1, (token, ids)
    assert tok.eos_token == IM_END and tok.pad_token == PAD
    assert model.config.eos_token_id == tok.convert_tokens_to_ids(IM_END)
    assert model.config.vocab_size == len(tok)


def test_chat_template_renders_tools(tiny):
    _, tok, _ = tiny
    tools = [
        {
            "type": "function",
            "function": {
                "name": "calc",
                "description": "Evaluate arithmetic.",
                "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": "what is 2+2"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": {"expression": "2+2"}}}],
        },
        {"role": "tool", "content": "4"},
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": "The answer is 4."},
    ]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert "<tools>\n" + json.dumps(tools[0]) + "\n</tools>" in text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "calc", "arguments": {"expression": "2+2"}}\n</tool_call>' in text
    # consecutive tool results share one user turn
    assert "<|im_start|>user\n<tool_response>\n4\n</tool_response>\n<tool_response>\nok\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nThe answer is 4.<|im_end|>\n<|im_start|>assistant\n")
    plain = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert plain == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"


def test_model_forward(tiny):
    _, tok, model = tiny
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))
    assert torch.isfinite(logits).all()


def test_deterministic_for_a_seed(tmp_path):
    a = build_tiny_model(tmp_path / "a", seed=3)
    b = build_tiny_model(tmp_path / "b", seed=3)
    c = build_tiny_model(tmp_path / "c", seed=4)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_vocab_too_small(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size=100"):
        build_tiny_model(tmp_path / "x", vocab_size=100)


def test_module_entry(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rlfactory_plugins.testing.tiny_model", str(tmp_path / "cli"), "--vocab-size", "300"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert out.stdout.strip().endswith("cli")
    assert len(AutoTokenizer.from_pretrained(tmp_path / "cli")) == 300 + len(TOOL_TOKENS)
