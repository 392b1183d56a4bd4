"""Environment turns: a row's scripted user turns (or a plugin's environment) answer a turn without a
tool call with a user message, written as observation tokens (mask 0) in the chat template's user role."""

from __future__ import annotations

from typing import Any

import pytest

from rlfactory_plugins import hookimpl, plugins
from rlfactory_plugins.environments import Environment, EnvTurn
from rlfactory_plugins.trajectory import Trajectory
from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, section, spans

pytestmark = pytest.mark.timeout(60)


def traj_of(output) -> Trajectory:
    return Trajectory.model_validate(output.extra_fields["rlfactory_trajectory"])


def scripted(*turns: str, tools: list[str] | None = None) -> dict[str, Any]:
    own: dict[str, Any] = {"user_turns": list(turns)}
    if tools is not None:
        own["tools"] = tools
    return {"rlfactory": own}


async def test_scripted_user_turn_is_a_mask_0_user_message_as_the_template_renders_it(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["It is <answer>5</answer>", "Then <answer>10</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=scripted("Now double it.", tools=[]))
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.final_answer == "10" and traj.user_turns == 1
    assert [m["role"] for m in traj.messages] == ["user", "assistant", "user", "assistant"]
    assert traj.messages[2]["content"] == "Now double it." and traj.turns[0].env_message == "Now double it."
    t1, t2 = server.outputs
    ((start, end),) = spans(out.response_mask, 0)
    assert out.response_ids[:start] == t1 and out.response_ids[end:] == t2 and start == len(t1)
    assert out.response_logprobs[start:end] == [0.0] * (end - start)
    # token for token what the chat template renders for the same conversation
    conversation = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "It is <answer>5</answer>"},
        {"role": "user", "content": "Now double it."},
    ]
    expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(out.prompt_ids + out.response_ids[:end]) == expected
    assert server.calls[1]["prompt_ids"] == out.prompt_ids + out.response_ids[:end]
    assert traj.env_state == {"user_turns_sent": 1, "user_turns_scripted": 1}
    assert out.extra_fields["rlfactory_stats"]["user_turns"] == 1.0


async def test_script_exhausted_without_an_answer_is_env_done(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["Hmm.", "Still thinking."])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=scripted("Go on."))
    traj = traj_of(out)
    assert traj.stop_reason == "env_done" and traj.user_turns == 1 and len(server.calls) == 2


async def test_max_user_turns(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["a", "b", "c", "d"])
    loop = make_agent_loop(server, tokenizer, section(max_turns=8, max_user_turns=2))
    traj = traj_of(await run_loop(loop, extra_info=scripted("1", "2", "3", "4")))
    assert traj.stop_reason == "max_user_turns" and traj.user_turns == 2 and len(server.calls) == 3


async def test_tool_calls_still_run_between_user_turns(tools_plugin, tokenizer):
    add = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
    server = ScriptedServer(tokenizer, [add, "<answer>5</answer>", "<answer>10</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=scripted("Double it."))
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.final_answer == "10"
    assert [m["role"] for m in traj.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert len(spans(out.response_mask, 0)) == 2


async def test_max_turns_wins_over_a_user_turn_the_model_cannot_answer(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["a", "b"])
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section(max_turns=2)), extra_info=scripted("1", "2")))
    assert traj.stop_reason == "max_turns" and traj.user_turns == 1


async def test_rows_without_user_turns_end_as_before(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["<answer>5</answer>"])
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section())))
    assert traj.stop_reason == "answer" and traj.user_turns == 0 and traj.env_state is None


class Echoing(Environment):
    """Says back the model's text twice, then is done; records its close."""

    name_default = "echoing"
    closed: list[str] = []

    async def reset(self, ctx):
        return {"n": 0, "prefix": ctx.kwargs.get("prefix", "")}

    async def step(self, state, trajectory, turn):
        state["n"] += 1
        return EnvTurn(done=True) if state["n"] > 2 else EnvTurn(message=f"{state['prefix']}{turn.assistant_text}?")

    async def final_state(self, state):
        return {"steps": state["n"]}

    async def close(self, state, reason):
        self.closed.append(reason)


class EnvPlugin:
    @hookimpl
    def register_environments(self, register):
        register(Echoing)


async def test_a_plugin_environment_selected_by_the_row(tools_plugin, tokenizer):
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, EnvPlugin(), "env-test")
    assert registry.environments["echoing"].plugin.name == "env-test" and not registry.errors
    Echoing.closed.clear()
    server = ScriptedServer(tokenizer, ["x", "y", "z"])
    row = {"rlfactory": {"environment": {"name": "echoing", "kwargs": {"prefix": "You said "}}}}
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=row))
    assert traj.stop_reason == "env_done" and [t.env_message for t in traj.turns] == ["You said x?", "You said y?", None]
    assert traj.env_state == {"steps": 3} and Echoing.closed == ["env_done"]


async def test_unknown_environment_is_an_error_naming_the_installed(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["x"])
    row = {"rlfactory": {"environment": "scriptd"}}
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=row))
    assert traj.stop_reason == "error" and "unknown environment 'scriptd'" in traj.error and "'scripted'" in traj.error


class Revealing(Environment):
    """Adds the tools named in its kwargs with its first (and only) user message."""

    name_default = "revealing"

    async def reset(self, ctx):
        return {"sent": False, "add": tuple(ctx.kwargs["add"])}

    async def step(self, state, trajectory, turn):
        if state["sent"]:
            return EnvTurn(done=True)
        state["sent"] = True
        return EnvTurn(message="You may echo now.", add_tools=state["add"])


class RevealPlugin:
    @hookimpl
    def register_environments(self, register):
        register(Revealing)


def revealing_row(add: list[str]) -> dict[str, Any]:
    return {"rlfactory": {"tools": ["add"], "environment": {"name": "revealing", "kwargs": {"add": add}}}}


async def test_an_environment_turn_reveals_a_withheld_tool(tools_plugin, tokenizer):
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, RevealPlugin(), "reveal-test")
    echo = '<tool_call>{"name": "echo", "arguments": {"text": "hi"}}</tool_call>'
    server = ScriptedServer(tokenizer, [echo, "I cannot.", echo, "<answer>hi</answer>"])
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=revealing_row(["echo"])))
    before, after = traj.turns[0].tool_calls[0].result, traj.turns[2].tool_calls[0].result
    assert before.status == "unknown_tool" and after.ok and after.output == "hi"
    assert traj.turns[1].tools_added == ["echo"] and traj.turns[1].env_message == "You may echo now."
    assert traj.tools == ["add", "echo"] and traj.stop_reason == "answer"


async def test_revealing_a_tool_the_worker_lacks_ends_that_trajectory_with_an_error(tools_plugin, tokenizer):
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, RevealPlugin(), "reveal-test")
    server = ScriptedServer(tokenizer, ["Hello.", "<answer>x</answer>"])
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, section()), extra_info=revealing_row(["ecko"])))
    assert traj.stop_reason == "error" and "unknown tool 'ecko'" in traj.error and "'echo'" in traj.error
