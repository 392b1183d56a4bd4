"""Parser tags that the tokenizer flags as special tokens survive decoding (issue 18, item 0).

The test tokenizers are built the usual way: the tiny tokenizer with the tags added through
``add_special_tokens({"additional_special_tokens": [...]})``; then the real loop runs."""

from __future__ import annotations

import random

import pytest
from tokenizers import normalizers
from transformers import AutoTokenizer

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.rollout.codec import Codec
from rlfactory_plugins.rollout.parsers import BUILTIN_PARSERS
from rlfactory_plugins.rollout.turn_text import TurnDecoder, special_ids
from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, section

pytestmark = pytest.mark.timeout(60)


def special_tokenizer(tiny_dir, tags):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.add_special_tokens({"additional_special_tokens": list(tags)})
    return tok


def traj_of(output) -> Trajectory:
    return Trajectory.model_validate(output.extra_fields["rlfactory_trajectory"])


def test_the_test_tokenizer_really_drops_the_tags(tiny_dir):
    """The premise: a plain skip_special_tokens decode deletes the tags."""
    tok = special_tokenizer(tiny_dir, ["<tool_call>", "</tool_call>"])
    ids = tok.encode('<tool_call>{"name": "add"}</tool_call>', add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == '{"name": "add"}'


async def test_hermes_loop_runs_calls_whose_tags_are_special_tokens(tools_plugin, tiny_dir):
    tok = special_tokenizer(tiny_dir, ["<tool_call>", "</tool_call>"])
    call = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
    server = ScriptedServer(tok, [f"Let me add. {call}", "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tok, section()))
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.final_answer == "5"
    assert [(c.name, c.result.output) for c in traj.tool_calls] == [("add", "5")]
    # the parser saw the tags; EOS (<|im_end|>) is still dropped from the turn's text
    assert traj.turns[0].assistant_text == f"Let me add. {call}"
    assert out.response_ids[: len(server.outputs[0])] == server.outputs[0]  # token-in/token-out unchanged


async def test_search_r1_loop_with_special_tags(tools_plugin, tiny_dir):
    tok = special_tokenizer(tiny_dir, ["<search>", "</search>", "<answer>", "</answer>"])
    # the server runs past the stop string: the client-side cut must still find </search>
    server = ScriptedServer(tok, ["<search> capital of France </search> and more", "<answer> Paris </answer>"])
    out = await run_loop(make_agent_loop(server, tok, section("search_r1")))
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.final_answer == "Paris"
    assert traj.tool_calls[0].result.output == "Doc about capital of France."
    assert traj.turns[0].assistant_text == "<search> capital of France </search>"


async def test_llama3_json_loop_with_a_special_python_tag(tools_plugin, tiny_dir):
    tok = special_tokenizer(tiny_dir, ["<|python_tag|>"])
    turn = '<|python_tag|>{"name": "add", "parameters": {"a": 1, "b": 2}}'
    server = ScriptedServer(tok, [turn, "<answer>3</answer>"])
    traj = traj_of(await run_loop(make_agent_loop(server, tok, section("llama3_json"))))
    assert traj.stop_reason == "answer" and [(c.name, c.result.output) for c in traj.tool_calls] == [("add", "3")]
    assert traj.turns[0].assistant_text.startswith("<|python_tag|>{")


@pytest.mark.parametrize("parser_cls", BUILTIN_PARSERS, ids=lambda c: c.name)
def test_turn_decode_equals_the_decode_with_the_tags_not_special(tiny_dir, tokenizer, parser_cls):
    """Same ids, same text as the tokenizer where the tags are ordinary added tokens,
    for every built-in parser's tags made special (through the backend fast path)."""
    tags = parser_cls.text_tags()
    tok = special_tokenizer(tiny_dir, tags)
    plain = AutoTokenizer.from_pretrained(tiny_dir)
    plain.add_tokens([t for t in tags if t not in plain.get_vocab()])
    assert [tok.convert_tokens_to_ids(t) for t in tags] == [plain.convert_tokens_to_ids(t) for t in tags]
    decoder = TurnDecoder(Codec(tok), tags)
    assert decoder.kept and decoder.kept <= special_ids(tok) and Codec(tok)._decode_backend() is not None
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(len(tok)) for _ in range(rng.randrange(0, 40))]
        assert decoder.decode(ids) == plain.decode(ids, skip_special_tokens=True)


def test_tags_that_are_not_special_keep_the_plain_decode(tokenizer):
    decoder = TurnDecoder(Codec(tokenizer), BUILTIN_PARSERS[0].text_tags())
    assert decoder._drop is None  # no per-turn filtering for the usual tokenizer
    ids = tokenizer.encode('<tool_call>{"a": 1}</tool_call><|im_end|><|endoftext|>', add_special_tokens=False)
    assert decoder.decode(ids) == tokenizer.decode(ids, skip_special_tokens=True) == '<tool_call>{"a": 1}</tool_call>'


def test_python_tokenizers_drop_their_all_special_ids():
    class Slow:
        all_special_ids = [0, 7]
        unk_token_id = None

        def encode(self, text, add_special_tokens):
            return [7] if text == "<t>" else [ord(c) for c in text]

        def decode(self, ids, skip_special_tokens):
            names = {0: "<eos>", 7: "<t>"}
            return "".join(names.get(i, chr(i)) for i in ids if not (skip_special_tokens and i in names))

    decoder = TurnDecoder(Codec(Slow()), ["<t>"])
    assert decoder.kept == {7} and decoder.decode([7, 104, 105, 0]) == "<t>hi"


async def test_start_up_fails_naming_a_tag_the_tokenizer_loses(tools_plugin, tiny_dir):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.backend_tokenizer.normalizer = normalizers.Replace("search", "find")  # "<search>" comes back "<find>"
    server = ScriptedServer(tok, ["<search>x</search>"])
    with pytest.raises(ConfigError, match=r"tag '<search>' of the 'search_r1' parser") as info:
        await run_loop(make_agent_loop(server, tok, section("search_r1")))
    assert str(tiny_dir) in str(info.value) and not server.calls  # nothing was generated
