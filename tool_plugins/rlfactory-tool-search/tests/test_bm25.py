"""Embedded BM25: ranking, rendering, the on-disk cache and lazy, thread-safe loading."""

from __future__ import annotations

import os
import threading

import bm25s
import pytest

from rlfactory_plugins.errors import ConfigError
from rlfactory_tool_search.bm25 import BM25Retriever
from rlfactory_tool_search.corpus import Hit, render_passages

pytestmark = pytest.mark.timeout(60)


def test_ranks_the_matching_passage_first(fixture_corpus, cache_root):
    retriever = BM25Retriever(fixture_corpus, cache_root)
    (hits,) = retriever.search(["when was the copper mining town founded"], topk=3)
    assert hits[0].id == "d1"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].contents.startswith('"Copper Hill"\n')
    # "lake" is in two passages, "poets" in one: the one with both wins, then the other lake
    (lake,) = retriever.search(["lake poets"], topk=5)
    assert [h.id for h in lake[:2]] == ["d5", "d0"]


def test_topk_and_no_match(fixture_corpus, cache_root):
    retriever = BM25Retriever(fixture_corpus, cache_root)
    one, unknown, stopwords = retriever.search(["tin whistle", "zebra xylophone", "the a"], topk=1)
    assert [h.id for h in one] == ["d3"]
    assert unknown == [] and stopwords == []  # no shared word: nothing, not arbitrary passages
    (many,) = retriever.search(["lake"], 50)  # topk above the corpus size is fine
    assert {h.id for h in many} == {"d0", "d5"}


def test_render_is_search_r1_format():
    hits = [Hit("1", '"Copper Hill"\nA mining town.', 2.0), Hit("2", '"Tin"\nA metal.\nSoft.', 1.0)]
    assert render_passages(hits) == 'Doc 1(Title: "Copper Hill") A mining town.\nDoc 2(Title: "Tin") A metal.\nSoft.\n'
    assert render_passages([]) == "No results found."


def test_index_is_cached_and_reused(fixture_corpus, cache_root, monkeypatch):
    first = BM25Retriever(fixture_corpus, cache_root)
    first.load()
    assert first.built and first.cache_dir.is_dir() and first.cache_dir.parent == cache_root

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the index was rebuilt although a cached one exists")

    monkeypatch.setattr(bm25s.BM25, "index", no_rebuild)
    second = BM25Retriever(fixture_corpus, cache_root)
    assert second.cache_dir == first.cache_dir
    assert second.search(["copper"], 1)[0][0].id == "d1"
    assert second.built is False


def test_changed_corpus_gets_a_new_index(fixture_corpus, cache_root):
    old = BM25Retriever(fixture_corpus, cache_root)
    old.load()
    with fixture_corpus.open("a") as f:
        f.write('{"id": "d9", "contents": "\\"Zinc\\"\\nZinc is a metal."}\n')
    os.utime(fixture_corpus, ns=(0, old.corpus_path.stat().st_mtime_ns + 10**9))
    new = BM25Retriever(fixture_corpus, cache_root)
    assert new.cache_dir != old.cache_dir
    assert new.search(["zinc"], 1)[0][0].id == "d9"
    assert new.built


def test_concurrent_first_calls_build_once(fixture_corpus, cache_root, monkeypatch):
    calls = []
    real_index = bm25s.BM25.index

    def counting_index(self, *args, **kwargs):
        calls.append(1)
        return real_index(self, *args, **kwargs)

    monkeypatch.setattr(bm25s.BM25, "index", counting_index)
    retriever = BM25Retriever(fixture_corpus, cache_root)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(retriever.search(["cold"], 2))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 8 and all(r[0][0].id in {"d0", "d4"} for r in results)


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="corpus file .*nope.jsonl.* not found"):
        BM25Retriever(tmp_path / "nope.jsonl", tmp_path)
