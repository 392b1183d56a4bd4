"""Fixtures for the rollout tests (tiny_dir, tokenizer and tools_plugin are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from rlfactory_plugins import plugins
from tests.helpers.rollout import CountingKVPlugin, SessionCounts


@pytest.fixture
def counts(tools_plugin) -> SessionCounts:
    """The rollout test tools plus the stateful ``kv`` (its opens and closes)."""
    counts = SessionCounts()
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, CountingKVPlugin(counts), "kv-test-tools")
    assert not registry.errors, registry.errors
    return counts
