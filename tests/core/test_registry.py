"""The plugin manager and registry: registration, provenance, clashes, bad plugins."""

from __future__ import annotations

import pytest

from rlfactory_plugins import hookimpl, plugins, tool
from rlfactory_plugins.errors import UnknownNameError
from rlfactory_plugins.rewards.base import RewardOutput


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class ToolPlugin:
    @hookimpl
    def register_tools(self, register):
        register(add)

        def shout(text: str) -> str:
            """Upper-case a text."""
            return text.upper()

        register(shout)


class RewardPlugin:
    @hookimpl
    def register_rewards(self, register):
        register(lambda trajectory: 1.0, name="always_one")


def test_registered_tools_record_their_plugin(rlfactory_register):
    registry = rlfactory_register(ToolPlugin(), name="my-tools")
    assert registry.tool("add").spec.parameters["required"] == ["a", "b"]
    assert registry.tools["shout"].plugin.name == "my-tools"
    row = next(r for r in registry.summary()["plugins"] if r["name"] == "my-tools")
    assert row["tools"] == ["add", "shout"]


async def test_function_reward_is_wrapped(rlfactory_register):
    registry = rlfactory_register(RewardPlugin(), name="rw")
    out = await registry.reward("always_one").ascore(None, None)
    assert out == RewardOutput(score=1.0)


def test_duplicate_tool_name_is_rejected_with_both_plugins_named(rlfactory_register):
    rlfactory_register(ToolPlugin(), name="first")
    registry = rlfactory_register(ToolPlugin(), name="second")
    errors = [e for e in registry.errors if e.plugin == "second"]
    assert errors and "'add'" in errors[0].error and "'first'" in errors[0].error
    assert registry.tools["add"].plugin.name == "first"


def test_misspelt_hook_names_plugin_and_hook(rlfactory_register):
    class Misspelt:
        @hookimpl
        def register_tool(self, register):  # missing "s"
            raise AssertionError("never called")

    registry = rlfactory_register(Misspelt(), name="typo-pack")
    (err,) = [e for e in registry.errors if e.plugin == "typo-pack"]
    assert "register_tool" in err.error and "did you mean 'register_tools'" in err.error
    assert "typo-pack" not in registry.plugins


def test_invalid_tool_name_is_an_error_not_a_crash(rlfactory_register):
    class BadName:
        @hookimpl
        def register_tools(self, register):
            register(add, name="has space")

    registry = rlfactory_register(BadName(), name="bad-name")
    assert any("has space" in e.error for e in registry.errors)


def test_unknown_name_suggests_the_close_one(rlfactory_register):
    registry = rlfactory_register(ToolPlugin(), name="t")
    with pytest.raises(UnknownNameError, match="did you mean 'add'"):
        registry.tool("ad")


def test_deny_list_skips_entry_point(monkeypatch):
    monkeypatch.setenv(plugins.DENY_ENV, "anything")
    assert not plugins._plugin_allowed("anything")
    monkeypatch.setenv(plugins.ALLOW_ENV, "only-this")
    monkeypatch.delenv(plugins.DENY_ENV)
    assert plugins._plugin_allowed("only-this") and not plugins._plugin_allowed("other")
    assert plugins._plugin_allowed("rlfactory_plugins.builtin.parsers")  # built-ins always load


def test_builtins_load_without_errors():
    _, registry = plugins.load_plugins(fresh=True)
    core_errors = [e for e in registry.errors if e.plugin.startswith("rlfactory_plugins.builtin")]
    assert core_errors == []
    assert {"hermes", "search_r1", "llama3_json"} <= set(registry.parsers)
    assert "tool_verify" in registry.rewards
