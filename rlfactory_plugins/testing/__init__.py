"""pytest plugin for rlfactory and pack authors (entry point ``pytest11``), and the
conformance suites every pack's tests subclass.

Fixtures:

- ``rlfactory_plugins_fresh`` — a freshly loaded ``(plugin_manager, registry)`` pair
  that does not touch the process-wide one.
- ``rlfactory_register`` — ``rlfactory_register(plugin_obj, name="x")`` registers an
  object with ``@hookimpl`` methods for the current test only and returns the registry.

Conformance suites (see :mod:`rlfactory_plugins.testing.conformance`)::

    from rlfactory_plugins.testing import ToolPackTests

    class TestWeatherPack(ToolPackTests):
        tool_name = "weather"
        valid_arguments = {"city": "Paris"}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlfactory_plugins import plugins
from rlfactory_plugins.registry import Registry
from rlfactory_plugins.testing.conformance import RewardPackTests, ToolPackTests, call_tool

__all__ = ["RewardPackTests", "ToolPackTests", "call_tool", "rlfactory_plugins_fresh", "rlfactory_register"]


@pytest.fixture
def rlfactory_plugins_fresh() -> Iterator[tuple[Any, Registry]]:
    saved = plugins._cache
    try:
        yield plugins.load_plugins(fresh=True)
    finally:
        plugins._cache = saved


@pytest.fixture
def rlfactory_register(rlfactory_plugins_fresh: tuple[Any, Registry]) -> Callable[..., Registry]:
    pm, registry = rlfactory_plugins_fresh

    def register(plugin: Any, name: str = "test-plugin") -> Registry:
        plugins.register_plugin(pm, registry, plugin, name)
        return registry

    return register
