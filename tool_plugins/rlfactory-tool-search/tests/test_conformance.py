"""The shared tool-pack conformance suite, run on the search pack with its defaults."""

from __future__ import annotations

import pytest

from rlfactory_plugins.testing.conformance import ToolPackTests


@pytest.fixture(autouse=True)
def _index_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the default cache root follows XDG


class TestSearchPack(ToolPackTests):
    tool_name = "search"
    valid_arguments = {"query": "In which year was the city of Rogan founded?", "topk": 1}
    invalid_arguments = {"query": "Rogan", "topk": 0}
    expected_in_output = 'Doc 1(Title: "Rogan") Rogan is a city on the river Krurthul. The city of Rogan was founded in 1865.'
