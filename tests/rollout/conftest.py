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


@pytest.fixture(scope="module")
def vl(tmp_path_factory):
    """The tiny Qwen2-VL's processor, loaded by verl's own ``hf_processor`` (the vision-language tests)."""
    from verl.utils.tokenizer import hf_processor

    from rlfactory_plugins.testing.tiny_vl_model import build_tiny_vl_model

    path = build_tiny_vl_model(tmp_path_factory.mktemp("tiny_vl") / "m")
    processor = hf_processor(str(path), trust_remote_code=True)  # what verl's trainer gives the agent loop
    assert processor is not None and hasattr(processor, "get_rope_index")
    return processor
