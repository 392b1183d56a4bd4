"""The rollout's direct backend encode/decode gives exactly what the tokenizer's own methods give."""

from __future__ import annotations

import random

import pytest

from rlfactory_plugins.rollout.codec import Codec

pytestmark = pytest.mark.timeout(60)

TEXTS = [
    "",
    "Paris is the capital of France.",
    '<tool_call>\n{"name": "search", "arguments": {"query": "boiling point"}}\n</tool_call><|im_end|>',
    "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
    "  leading and trailing spaces , punctuation ! ünïcödé 数字 \t tabs\n\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_encode_matches_tokenizer(tokenizer, text):
    codec = Codec(tokenizer)
    assert codec._encode_backend() is not None  # the fast path is the one under test
    assert codec.encode(text) == tokenizer.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("skip", [True, False])
def test_decode_matches_tokenizer(tokenizer, skip):
    codec = Codec(tokenizer)
    assert codec._decode_backend() is not None
    rng = random.Random(0)
    for _ in range(50):
        ids = [rng.randrange(len(tokenizer)) for _ in range(rng.randrange(0, 40))]
        assert codec.decode(ids, skip_special_tokens=skip) == tokenizer.decode(ids, skip_special_tokens=skip)
    ids = tokenizer.encode(TEXTS[3], add_special_tokens=False)
    assert codec.decode(ids, skip_special_tokens=skip) == tokenizer.decode(ids, skip_special_tokens=skip)


def test_falls_back_when_the_tokenizer_post_processes(tokenizer):
    codec = Codec(tokenizer)
    tokenizer.clean_up_tokenization_spaces = True
    try:
        assert codec._decode_backend() is None
        ids = tokenizer.encode("a , b .", add_special_tokens=False)
        assert codec.decode(ids, skip_special_tokens=True) == tokenizer.decode(ids, skip_special_tokens=True)
    finally:
        tokenizer.clean_up_tokenization_spaces = False
    tokenizer.backend_tokenizer.enable_truncation(max_length=3)
    try:
        assert codec._encode_backend() is None
        assert codec.encode(TEXTS[1]) == tokenizer.encode(TEXTS[1], add_special_tokens=False)
    finally:
        tokenizer.backend_tokenizer.no_truncation()


def test_slow_tokenizer_uses_its_own_methods():
    class Slow:
        def encode(self, text, add_special_tokens):
            assert add_special_tokens is False
            return [len(w) for w in text.split()]

        def decode(self, ids, skip_special_tokens):
            return " ".join("x" * i for i in ids) + ("!" if skip_special_tokens else "")

    codec = Codec(Slow())
    assert codec.encode("ab cde") == [2, 3]
    assert codec.decode([1, 2], skip_special_tokens=True) == "x xx!"
