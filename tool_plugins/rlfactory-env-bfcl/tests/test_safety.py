"""Nothing from a model reaches BFCL's ``eval`` except calls built from validated JSON: code in an
argument is ``invalid_args``, a function outside the row's tools is ``unknown_tool``, and neither
executes anything."""

from __future__ import annotations

import pytest

from rlfactory_env_bfcl import backend
from rlfactory_env_bfcl.calls import build_call, parse_call
from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.plugins import load_plugins
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.validation import InvalidArguments

INJECTIONS = [
    "__import__('os').system('touch /tmp/rlf_bfcl_pwned')",
    "x'); __import__('os').system('id'); ('",
    "hello os.system('id')",
    "ls(a=True)",
    "eval('1+1')",
]


@pytest.fixture
async def manager():
    _, registry = load_plugins(fresh=True)
    tm = await ToolManager.from_config(RLFactoryConfig(tools=["GorillaFileSystem_*", "MathAPI_*"]), registry)
    yield tm
    await tm.aclose()


@pytest.fixture
def executed(monkeypatch):
    """Every call string that reaches BFCL's executor."""
    seen: list[str] = []
    real = backend.multi_turn_utils.execute_multi_turn_func_call

    def spy(calls, *args, **kwargs):
        seen.extend(calls)
        return real(calls, *args, **kwargs)

    monkeypatch.setattr(backend.multi_turn_utils, "execute_multi_turn_func_call", spy)
    return seen


@pytest.mark.parametrize("text", INJECTIONS)
async def test_code_in_a_string_argument_is_invalid_args_and_never_executed(manager, executed, tmp_path, text):
    result = await manager.call("GorillaFileSystem_mkdir", {"dir_name": text})
    assert result.status.value == "invalid_args", result
    assert executed == []


async def test_nested_and_non_finite_values_are_refused(manager, executed):
    bad = {"numbers": [1.0, {"__class__": 1}]}
    assert (await manager.call("MathAPI_mean", bad)).status.value == "invalid_args"
    with pytest.raises(InvalidArguments, match="not a finite number"):
        build_call("mean", {"numbers": [float("inf")]})
    with pytest.raises(InvalidArguments, match="not an identifier"):
        build_call("mean", {"numbers=[1]), __import__('os').system('id'), mean(numbers": [1]})
    assert executed == []


async def test_a_function_outside_the_row_or_the_pack_is_unknown_tool(manager, executed):
    row = frozenset({"MathAPI_mean"})
    assert (await manager.call("GorillaFileSystem_rm", {"file_name": "x"}, allowed=row)).status.value == "unknown_tool"
    assert (await manager.call("__import__", {}, allowed=row)).status.value == "unknown_tool"
    assert (await manager.call("os.system", {"command": "id"})).status.value == "unknown_tool"
    assert executed == []


async def test_a_valid_call_runs_as_the_string_the_pack_built(manager, executed):
    result = await manager.call("MathAPI_mean", {"numbers": [1, 2, 4.5]})
    assert result.ok and result.output == '{"result": 2.5}'
    assert executed == ["mean(numbers=[1, 2, 4.5])"]
    assert backend.leftover_instances() == 0  # a call outside a trajectory releases its instance


def test_built_calls_round_trip_to_the_ground_truth_form():
    text = build_call("cd", {"folder": "it's \"quoted\"\n"})
    assert parse_call(text, ["GorillaFileSystem"]) == ("GorillaFileSystem_cd", {"folder": "it's \"quoted\"\n"})
    assert parse_call("sort('final_report.pdf')", ["GorillaFileSystem"]) == (
        "GorillaFileSystem_sort", {"file_name": "final_report.pdf"}
    )
