"""Conformance suites for packs: subclass, set two or three attributes, done.

Every check runs the real thing: the pack is found through its installed ``rlfactory``
entry point, loaded by :func:`rlfactory_plugins.plugins.load_plugins`, and called through
a real :class:`~rlfactory_plugins.tools.manager.ToolManager` (tools) or ``ascore``
(rewards). Naming conventions: distribution ``rlfactory-tool-<x>`` (or
``rlfactory-reward-<x>``, or ``rlfactory-env-<x>`` for tools that come with an environment: set
``family = "env"``), module ``rlfactory_tool_<x>``, entry-point name ``<x>``.
"""

from __future__ import annotations

import math
import re
from importlib import metadata
from typing import Any, ClassVar

import jsonschema
import pytest

from rlfactory_plugins.config.tools import ToolManagerConfig
from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.plugins import ENTRY_POINT_GROUP
from rlfactory_plugins.registry import Registered, Registry
from rlfactory_plugins.rewards.base import Reward, RewardOutput
from rlfactory_plugins.tools.base import Tool, ToolResult, ToolStatus
from rlfactory_plugins.trajectory import Trajectory

#: what OpenAI-style function calling accepts as a function name
OPENAI_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def call_tool(tool: Tool, arguments: Any, config: ToolManagerConfig | None = None) -> ToolResult:
    """Call ``tool`` once through a real ``ToolManager`` (validation, timeout, error mapping)."""
    from rlfactory_plugins.tools.manager import ToolManager

    manager = ToolManager({tool.name: tool}, config or ToolManagerConfig())
    try:
        return await manager.call(tool.name, arguments)
    finally:
        await manager.aclose()


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


class _PackTests:
    """What tool and reward packs share: entry point, naming, provenance."""

    kind: ClassVar[str]
    entry_point: ClassVar[str | None] = None
    """the ``rlfactory`` entry-point name; defaults to the tool / reward name"""
    distribution: ClassVar[str | None] = None
    """defaults to ``rlfactory-<family>-<entry_point>``"""
    family: ClassVar[str | None] = None
    """the naming family: ``tool``/``reward`` (the kind, by default) or ``env`` for a pack whose
    tools come with an environment (``rlfactory-env-<x>``, module ``rlfactory_env_<x>``)"""

    def _name(self) -> str:
        raise NotImplementedError

    def _ep_name(self) -> str:
        return self.entry_point or self._name()

    def _family(self) -> str:
        return self.family or self.kind

    def _dist_name(self) -> str:
        return self.distribution or f"rlfactory-{self._family()}-{self._ep_name()}"

    def _entry_point(self) -> metadata.EntryPoint:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP, name=self._ep_name())
        if not eps:
            pytest.fail(
                f"no {ENTRY_POINT_GROUP!r} entry point named {self._ep_name()!r} is installed; add "
                f'[project.entry-points.{ENTRY_POINT_GROUP}] {self._ep_name()} = "<module>" to pyproject.toml '
                "and `pip install -e .`"
            )
        return next(iter(eps))

    @pytest.fixture
    def registry(self, rlfactory_plugins_fresh: tuple[Any, Registry]) -> Registry:
        return rlfactory_plugins_fresh[1]

    def test_entry_point_belongs_to_distribution(self) -> None:
        ep = self._entry_point()
        assert ep.dist is not None, f"entry point {ep.name!r} has no distribution"
        assert _normalize(ep.dist.metadata["Name"]) == _normalize(self._dist_name()), (
            f"entry point {ep.name!r} comes from {ep.dist.metadata['Name']!r}, expected {self._dist_name()!r}"
        )

    def test_naming_convention(self) -> None:
        ep = self._entry_point()
        x = ep.name
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", x), f"entry-point name {x!r}: use lower case, digits, '-', '_'"
        family = self._family()
        assert _normalize(self._dist_name()) == f"rlfactory-{family}-{_normalize(x)}", (
            f"distribution {self._dist_name()!r} should be named 'rlfactory-{family}-{x}'"
        )
        module = ep.value.split(":")[0].split(".")[0]
        expected = f"rlfactory_{family}_{x.replace('-', '_')}"
        assert module == expected, f"entry point {x!r} points to module {module!r}; name the module {expected!r}"

    def _registered(self, registry: Registry, table: dict[str, Registered[Any]]) -> Registered[Any]:
        ours = [e for e in registry.errors if e.plugin == self._ep_name()]
        assert not ours, f"plugin {self._ep_name()!r} failed to load: {ours[0].error}"
        assert self._name() in table, f"{self.kind} {self._name()!r} is not registered (have: {sorted(table)})"
        entry = table[self._name()]
        assert entry.plugin.name == self._ep_name(), (
            f"{self.kind} {self._name()!r} is registered by plugin {entry.plugin.name!r}, not {self._ep_name()!r}"
        )
        assert _normalize(entry.plugin.distribution or "") == _normalize(self._dist_name())
        return entry


class ToolPackTests(_PackTests):
    """Subclass as ``TestXPack(ToolPackTests)`` and set ``tool_name`` and ``valid_arguments``.

    Optional: ``invalid_arguments`` (default: ``{}`` when the tool has required
    arguments), ``tool_options`` (passed to ``tool.configure``), ``expected_in_output``.
    """

    kind = "tool"
    tool_name: ClassVar[str]
    valid_arguments: ClassVar[dict[str, Any]]
    invalid_arguments: ClassVar[dict[str, Any] | None] = None
    tool_options: ClassVar[dict[str, Any] | None] = None
    expected_in_output: ClassVar[str | None] = None

    def _name(self) -> str:
        return self.tool_name

    @pytest.fixture
    def pack_tool(self, registry: Registry) -> Tool:
        self._registered(registry, registry.tools)
        return registry.tool(self.tool_name).configure(self.tool_options)

    def test_registered_through_entry_point(self, registry: Registry) -> None:
        self._registered(registry, registry.tools)

    def test_spec_is_openai_function_schema(self, pack_tool: Tool) -> None:
        schema = pack_tool.spec.openai_schema()
        assert schema["type"] == "function"
        fn = schema["function"]
        assert fn["name"] == self.tool_name and OPENAI_NAME_RE.match(fn["name"]), f"bad function name {fn['name']!r}"
        assert isinstance(fn["description"], str) and fn["description"].strip(), "the model needs a description"
        params = fn["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        assert params.get("type") == "object", "parameters must be a JSON schema of type 'object'"
        props = params.get("properties", {})
        assert isinstance(props, dict)
        missing = set(params.get("required", [])) - set(props)
        assert not missing, f"required arguments without a property: {sorted(missing)}"
        jsonschema.validate(self.valid_arguments, params)

    async def test_valid_arguments_give_ok(self, pack_tool: Tool) -> None:
        result = await call_tool(pack_tool, dict(self.valid_arguments))
        assert result.status is ToolStatus.ok, f"expected ok, got {result.status.value}: {result.error}"
        assert isinstance(result.output, str) and result.render() == result.output
        if self.expected_in_output is not None:
            assert self.expected_in_output in result.output
        ToolResult.model_validate_json(result.model_dump_json())

    async def test_invalid_arguments_give_invalid_args(self, pack_tool: Tool) -> None:
        bad = self.invalid_arguments
        if bad is None:
            if not pack_tool.spec.parameters.get("required"):
                pytest.skip("the tool has no required arguments; set invalid_arguments to test rejection")
            bad = {}
        result = await call_tool(pack_tool, bad)
        assert result.status is ToolStatus.invalid_args, f"expected invalid_args, got {result.status.value}"
        assert result.error and result.render().startswith("[invalid_args]")

    async def test_aclose_is_safe(self, pack_tool: Tool) -> None:
        await pack_tool.aclose()


class RewardPackTests(_PackTests):
    """Subclass as ``TestXPack(RewardPackTests)`` and set ``reward_name`` and ``trajectory``.

    Optional: ``options``, ``invalid_options``, ``expected_score``.
    """

    kind = "reward"
    reward_name: ClassVar[str]
    trajectory: ClassVar[Trajectory | dict[str, Any]]
    options: ClassVar[dict[str, Any] | None] = None
    invalid_options: ClassVar[dict[str, Any] | None] = None
    expected_score: ClassVar[float | None] = None

    def _name(self) -> str:
        return self.reward_name

    def _trajectory(self) -> Trajectory:
        return Trajectory.model_validate(self.trajectory)

    @pytest.fixture
    def pack_reward(self, registry: Registry) -> Reward:
        self._registered(registry, registry.rewards)
        return registry.reward(self.reward_name)

    def test_registered_through_entry_point(self, registry: Registry) -> None:
        self._registered(registry, registry.rewards)

    async def test_scores_a_trajectory(self, pack_reward: Reward) -> None:
        out = await pack_reward.ascore(self._trajectory(), pack_reward.parse_options(self.options))
        assert isinstance(out, RewardOutput) and math.isfinite(out.score), f"bad reward output {out!r}"
        if self.expected_score is not None:
            assert out.score == pytest.approx(self.expected_score)

    async def test_scores_a_batch(self, pack_reward: Reward) -> None:
        options = pack_reward.parse_options(self.options)
        single = await pack_reward.ascore(self._trajectory(), options)
        batch = await pack_reward.ascore_batch([self._trajectory()] * 3, options)
        assert [o.score for o in batch] == pytest.approx([single.score] * 3)

    def test_rejects_invalid_options(self, pack_reward: Reward) -> None:
        if self.invalid_options is None:
            pytest.skip("set invalid_options to test that bad options are rejected")
        with pytest.raises(PluginError):
            pack_reward.parse_options(self.invalid_options)
