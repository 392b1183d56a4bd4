"""Per-row tool sets and per-row tool kwargs: the row fields, verl's own row fields, the prompt's schemas."""

from __future__ import annotations

import pytest

from rlfactory_plugins.config.row import RowError
from rlfactory_plugins.verl.rows import row_settings, trajectory_key
from tests.helpers.rollout import ScriptedServer, call, kv_section, make_agent_loop, run_loop, section, traj_of

pytestmark = pytest.mark.timeout(60)


def test_row_fields_parse():
    s = row_settings({"extra_info": {"rlfactory": {"tools": ["add", "kv"], "tool_kwargs": {"kv": {"initial": {"a": 1}}}}}})
    assert s.tools == frozenset({"add", "kv"}) and s.kwargs_for("kv", "kv") == {"initial": {"a": 1}}
    assert s.open_sessions == "lazy" and s.environment is None
    assert row_settings({}).tools is None and row_settings({"extra_info": {"other": 1}}).tool_kwargs == {}


def test_verl_row_fields_map():
    row = {
        "extra_info": {"tool_selection": ["kv"], "tools_kwargs": {"kv": {"create_kwargs": {"initial": {"a": 2}}}}},
        "tools_kwargs": {"echo": {"create_kwargs": {"x": 1}, "execute_kwargs": {}}},
    }
    s = row_settings(row)
    assert s.tools == frozenset({"kv"})
    assert s.tool_kwargs == {"kv": {"initial": {"a": 2}}, "echo": {"x": 1}}
    # rlfactory's own field wins over verl's
    own = {**row, "extra_info": {**row["extra_info"], "rlfactory": {"tools": ["add"], "tool_kwargs": {"kv": {"b": 1}}}}}
    assert row_settings(own).tools == frozenset({"add"}) and row_settings(own).tool_kwargs["kv"] == {"b": 1}


def test_parquet_nones_are_absent_keys():
    s = row_settings({"extra_info": {"rlfactory": {"tools": None, "user_turns": None, "tool_kwargs": {"kv": None}}}})
    assert s.tools is None and s.environment is None and s.tool_kwargs == {}


def test_misspelt_row_key_is_named():
    with pytest.raises(RowError, match=r"extra_info\.rlfactory\.tool: unknown key .*did you mean 'tools'"):
        row_settings({"extra_info": {"rlfactory": {"tool": ["add"]}}})


def test_tool_env_name_explains_the_conversion():
    with pytest.raises(RowError, match=r"tool_env_name='sandbox'.*extra_info\.rlfactory\.tools: \[tool_a, tool_b\]"):
        row_settings({"extra_info": {"tool_env_name": "sandbox"}})


def test_trajectory_key():
    assert trajectory_key({"uid": "u", "session_id": 2}, "req") == "u/2"
    assert trajectory_key({"uid": "u"}, "req") == "req"


async def test_prompt_shows_only_the_rows_tools(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["<answer>5</answer>"])
    loop = make_agent_loop(server, tokenizer, section())
    out = await run_loop(loop, extra_info={"rlfactory": {"tools": ["add", "search"]}})
    prompt = tokenizer.decode(out.prompt_ids)
    assert '"name": "add"' in prompt and '"name": "search"' in prompt
    assert all(f'"name": "{n}"' not in prompt for n in ("echo", "big", "slow"))
    assert traj_of(out).tools == ["add", "search"]
    full = tokenizer.decode((await run_loop(make_agent_loop(ScriptedServer(tokenizer, ["x"]), tokenizer, section()))).prompt_ids)
    assert all(f'"name": "{n}"' in full for n in ("add", "echo", "search", "big", "slow"))


async def test_schemas_for_keeps_manager_order_and_caches(tools_plugin, tokenizer):
    from rlfactory_plugins.rollout.runtime import get_runtime

    loop = make_agent_loop(ScriptedServer(tokenizer, ["x"]), tokenizer, section())
    rt = await get_runtime(loop.rlf_config, tokenizer, loop.apply_chat_template_kwargs)
    picked = rt.schemas_for(frozenset({"slow", "add"}))
    assert [s["function"]["name"] for s in picked] == ["add", "slow"]
    assert rt.schemas_for(frozenset({"add", "slow"})) is picked and rt.schemas_for(None) is rt.tool_schemas


async def test_call_outside_the_rows_set_is_unknown_tool_naming_the_allowed(tools_plugin, tokenizer):
    echo = '<tool_call>{"name": "echo", "arguments": {"text": "x"}}</tool_call>'
    server = ScriptedServer(tokenizer, [echo, "<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info={"rlfactory": {"tools": ["add"]}})
    (result,) = [c.result for c in traj_of(out).tool_calls]
    assert result.status.value == "unknown_tool" and "allowed: add" in result.error


async def test_row_naming_an_unknown_tool_ends_with_a_did_you_mean(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info={"rlfactory": {"tools": ["ad"]}})
    traj = traj_of(out)
    assert traj.stop_reason == "error" and "unknown tool 'ad'" in traj.error and "did you mean 'add'" in traj.error
    assert server.calls == []


async def test_bad_row_ends_only_its_trajectory(tools_plugin, tokenizer):
    server = ScriptedServer(tokenizer, ["<answer>5</answer>"])
    out = await run_loop(make_agent_loop(server, tokenizer, section()), extra_info={"tool_env_name": "sandbox"})
    traj = traj_of(out)
    assert traj.stop_reason == "error" and "tool_env_name" in traj.error and out.response_ids == []


async def test_row_kwargs_seed_the_session(counts, tokenizer):  # noqa: F811
    server = ScriptedServer(tokenizer, [call("a"), "<answer>1</answer>"])
    extra = {"tools_kwargs": {"kv": {"create_kwargs": {"initial": {"a": 41}}}}}
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, kv_section()), extra_info=extra))
    assert traj.tool_calls[0].result.output == '{"key": "a", "value": 41}' and traj.tool_state == {"kv": {"a": 41}}


async def test_row_without_the_stateful_tool_opens_no_session(counts, tokenizer):  # noqa: F811
    server = ScriptedServer(tokenizer, [call("a", 1), "<answer>1</answer>"])
    extra = {"rlfactory": {"tools": ["add"], "open_sessions": "eager"}}
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, kv_section()), extra_info=extra))
    assert traj.tool_calls[0].result.status.value == "unknown_tool" and counts.opens == [] and traj.tool_state == {}
