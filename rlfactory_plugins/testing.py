"""pytest plugin for rlfactory and pack authors (entry point ``pytest11``).

Fixtures:

- ``rlfactory_plugins_fresh`` — a freshly loaded ``(plugin_manager, registry)`` pair
  that does not touch the process-wide one.
- ``rlfactory_register`` — ``rlfactory_register(plugin_obj, name="x")`` registers an
  object with ``@hookimpl`` methods for the current test only and returns the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlfactory_plugins import plugins
from rlfactory_plugins.registry import Registry


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
