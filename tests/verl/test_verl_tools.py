"""verl's own tools as rlfactory tools: a ``BaseTool`` subclass (tests/helpers/servers/verl_counter_tool.py,
written against verl's documented interface only) and ``@function_tool`` functions
(tests/helpers/servers/verl_function_tools.py), loaded from verl's config files by verl's own loader, run
through the tool manager with sessions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("verl")  # the adapter's tests: the [verl] extra (the light-core CI has no verl)

from rlfactory_plugins.config.tools import ToolManagerConfig  # noqa: E402
from rlfactory_plugins.config import RLFactoryConfig, ToolEntry  # noqa: E402
from rlfactory_plugins.errors import ConfigError, PluginError  # noqa: E402
from rlfactory_plugins.tools import ToolStatus  # noqa: E402
from rlfactory_plugins.tools.manager import ToolManager  # noqa: E402
from rlfactory_plugins.tools.session import SessionContext, StatefulTool  # noqa: E402
from rlfactory_plugins.verl.config_check import check_config  # noqa: E402
from rlfactory_plugins.verl.verl_tools import VerlBaseTool, VerlFunctionTool, load_verl_tools  # noqa: E402
from tests.helpers.mcp import SERVERS  # noqa: E402

pytestmark = pytest.mark.timeout(60)

FUNCTIONS = str(SERVERS / "verl_function_tools.py")
SCHEMA = {"type": "function", "function": {
    "name": "counter", "description": "Add to this trajectory's counter.",
    "parameters": {"type": "object", "properties": {"by": {"type": "integer", "description": "how much"}},
                   "required": ["by"]}}}


@pytest.fixture
def tool_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """verl's multi_turn.tool_config_path file for the counter tool (class importable by its path)."""
    import yaml

    monkeypatch.syspath_prepend(str(SERVERS))
    from verl_counter_tool import CounterTool

    CounterTool.events.clear()
    path = tmp_path / "tool_config.yaml"
    path.write_text(yaml.safe_dump({"tools": [{"class_name": "verl_counter_tool.CounterTool",
                                               "config": {"type": "native", "step_reward": 0.5},
                                               "tool_schema": SCHEMA}]}))
    return str(path)


def events() -> list[tuple[str, str]]:
    from verl_counter_tool import CounterTool

    return list(CounterTool.events)


def open_for(manager: ToolManager, key: str, kwargs: dict | None = None):
    return manager.sessions.open(key, lambda tool: SessionContext(key=key, uid="u", kwargs=kwargs or {}))


async def test_tools_and_schemas_come_from_verls_config(tool_config: str) -> None:
    tools = load_verl_tools(tool_config, FUNCTIONS)
    assert sorted(tools) == ["counter", "verl_multiply", "verl_shout"]
    assert isinstance(tools["counter"], VerlBaseTool) and isinstance(tools["counter"], StatefulTool)
    assert isinstance(tools["verl_multiply"], VerlFunctionTool) and not tools["verl_multiply"].stateful
    async with ToolManager(tools, ToolManagerConfig()) as manager:
        schemas = {s.name: s.openai_schema() for s in manager.specs()}
    assert schemas["counter"] == {"type": "function", "function": {
        "name": "counter", "description": "Add to this trajectory's counter.",
        "parameters": {"type": "object", "required": ["by"],
                       "properties": {"by": {"type": "integer", "description": "how much"}}}}}
    # @function_tool: the schema verl inferred from the docstring and type hints
    multiply = schemas["verl_multiply"]["function"]
    assert multiply["parameters"]["properties"]["a"] == {"type": "integer", "description": "The first factor."}
    assert multiply["parameters"]["required"] == ["a", "b"] and multiply["description"] == "Multiply two integers."


async def test_two_sessions_keep_separate_instances_and_every_one_is_released(tool_config: str) -> None:
    tools = load_verl_tools(tool_config)
    async with ToolManager(tools, ToolManagerConfig()) as manager:
        t1 = open_for(manager, "t1", {"start": 10})  # rlfactory's tool_kwargs: the create_kwargs themselves
        t2 = open_for(manager, "t2", {"create_kwargs": {"start": 100}})  # verl's tools_kwargs shape
        r = await asyncio.gather(manager.call("counter", {"by": 1}, sessions=t1),
                                 manager.call("counter", {"by": 5}, sessions=t2))
        assert [x.output for x in r] == ["count=11", "count=105"]
        assert (await manager.call("counter", {"by": 2}, sessions=t1)).output == "count=13"
        assert (await manager.call("counter", {"by": 1}, sessions=t2)).output == "count=106"
        created = [i for kind, i in events() if kind == "create"]
        assert len(created) == 2 and not [e for e in events() if e[0] == "release"]  # one instance per trajectory
        s1, s2 = await t1.aclose("answer"), await t2.aclose("max_turns")
        assert s1["counter"]["reward"] == 13.0 and s1["counter"]["step_rewards"] == [0.5, 0.5]
        assert s1["counter"]["metrics"] == [{"value": 11}, {"value": 13}]
        assert s2["counter"]["reward"] == 106.0 and s2["counter"]["instance_id"] in created
        assert sorted(i for kind, i in events() if kind == "release") == sorted(created)
        await t1.aclose("again")  # idempotent: no second release
        assert len([e for e in events() if e[0] == "release"]) == 2


async def test_release_runs_when_a_trajectory_ends_on_a_tool_error(tool_config: str) -> None:
    tools = load_verl_tools(tool_config)
    async with ToolManager(tools, ToolManagerConfig()) as manager:
        t1 = open_for(manager, "t1")
        bad = await manager.call("counter", {"by": "x"}, sessions=t1)  # schema check: never reaches execute
        assert bad.status is ToolStatus.invalid_args
        ok = await manager.call("counter", {"by": 3}, sessions=t1)
        assert ok.ok and ok.output == "count=3"
        await t1.aclose("error")
    assert [kind for kind, _ in events()] == ["create", "release"]


async def test_without_sessions_a_call_is_verls_own_per_call_lifecycle(tool_config: str) -> None:
    tools = load_verl_tools(tool_config)
    async with ToolManager(tools, ToolManagerConfig()) as manager:
        assert (await manager.call("counter", {"by": 4})).output == "count=4"
        assert (await manager.call("counter", {"by": 4})).output == "count=4"
    assert [kind for kind, _ in events()] == ["create", "release", "create", "release"]


async def test_function_tools_run_and_their_returns_are_normalised_as_verl_does(tool_config: str) -> None:
    tools = load_verl_tools(function_tool_path=FUNCTIONS)
    async with ToolManager(tools, ToolManagerConfig()) as manager:
        assert (await manager.call("verl_multiply", {"a": 6, "b": 7})).output == "42"
        assert (await manager.call("verl_shout", {"text": "hi"})).output == "HI"  # (text, reward) tuple


def test_the_errors_name_verls_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"multi_turn.tool_config_path: no such file '.*nope.yaml'"):
        load_verl_tools(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"multi_turn.function_tool_path: no such file 'nope.py'; point it at"):
        load_verl_tools(function_tool_path="nope.py")
    assert load_verl_tools() == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("tools:\n  - class_name: no_such_module.Tool\n    config: {type: native}\n")
    with pytest.raises(ConfigError, match=r"tools\[0\].class_name=.no_such_module.Tool.: no module .no_such_module. can be imported"):
        load_verl_tools(str(bad))


def test_verls_own_loader_errors_keep_its_message(tool_config: str, tmp_path: Path) -> None:
    clash = tmp_path / "clash.py"
    clash.write_text("from verl.tools.function_tool import function_tool\n\n\n@function_tool\n"
                     "def counter(by: int) -> str:\n    \"\"\"Count.\n\n    Args:\n        by: how much\n    \"\"\"\n"
                     "    return str(by)\n")
    with pytest.raises(ConfigError, match=r"multi_turn: verl could not load the tools \(ValueError: .*\['counter'\] collide"):
        load_verl_tools(tool_config, str(clash))


async def test_the_worker_adds_verl_tools_and_an_entry_sets_their_overrides(tool_config: str) -> None:
    """ToolManager.from_config with the verl tools the agent loop hands it: they join the registry tools,
    an rlfactory.tools entry naming one sets only overrides, options are refused."""
    verl_tools = load_verl_tools(tool_config, FUNCTIONS)
    cfg = RLFactoryConfig(tools=[ToolEntry(name="calculator"), ToolEntry(name="counter", timeout=3.0)])
    async with await ToolManager.from_config(cfg, verl_tools=verl_tools) as manager:
        assert sorted(manager.names) == ["calculator", "counter", "verl_multiply", "verl_shout"]
        assert manager._slots["counter"].timeout == 3.0
        assert (await manager.call("verl_multiply", {"a": 2, "b": 3})).output == "6"
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[counter\]: 'counter' is a verl tool; 'options'"):
        await ToolManager.from_config(RLFactoryConfig(tools=[{"name": "counter", "options": {"x": 1}}]),
                                      verl_tools=verl_tools)


async def test_a_verl_tool_named_like_a_listed_registry_tool_is_refused(tool_config: str, tmp_path: Path) -> None:
    import yaml

    clash = tmp_path / "clash.yaml"
    schema = {**SCHEMA, "function": {**SCHEMA["function"], "name": "calculator"}}
    clash.write_text(yaml.safe_dump({"tools": [{"class_name": "verl_counter_tool.CounterTool",
                                                "config": {"type": "native"}, "tool_schema": schema}]}))
    with pytest.raises(PluginError, match=r"'calculator' is both a registry tool .* and a verl tool; rename it"):
        await ToolManager.from_config(RLFactoryConfig(tools=["calculator"]), verl_tools=load_verl_tools(str(clash)))


def test_check_config_loads_verls_tool_files(tool_config: str, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    def cfg(**multi_turn: str) -> object:
        return OmegaConf.create({"actor_rollout_ref": {"rollout": {"response_length": 64, "multi_turn": multi_turn}},
                                 "rlfactory": {"tools": ["calculator", {"name": "counter", "timeout": 2}]}})

    assert [t.name for t in check_config(cfg(tool_config_path=tool_config)).tools] == ["calculator", "counter"]
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[counter\]: .*unknown tool 'counter'"):
        check_config(cfg())  # without verl's file the entry names nothing
    with pytest.raises(ConfigError, match="multi_turn.tool_config_path: no such file"):
        check_config(cfg(tool_config_path=str(tmp_path / "gone.yaml")))
