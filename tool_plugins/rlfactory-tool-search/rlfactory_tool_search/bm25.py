"""Embedded BM25 (``bm25s``): built once per corpus file, cached on disk, memory-mapped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from rlfactory_tool_search.cache import build_once, default_cache_root, index_dir
from rlfactory_tool_search.corpus import CorpusFile, Hit, read_offsets
from rlfactory_tool_search.retriever import LocalRetriever

logger = logging.getLogger("rlfactory.search")

OFFSETS_FILE = "offsets.npy"


def tokenize(texts: list[str]) -> list[list[str]]:
    """The one tokenizer for passages and queries: lowercase words, English stopwords removed."""
    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


class BM25Retriever(LocalRetriever):
    """BM25 over a JSONL corpus. ``k1``/``b`` default to Pyserini's, which Search-R1's BM25 baseline uses."""

    name = "bm25"

    def __init__(self, corpus: Path, cache_root: Path | None = None, k1: float = 0.9, b: float = 0.4) -> None:
        super().__init__()
        self.corpus_path = Path(corpus)
        self.corpus = CorpusFile(self.corpus_path)  # checks the file exists now, not on first call
        self.params = {"k1": k1, "b": b, "tokenizer": "bm25s-en-stopwords"}
        self.cache_dir = index_dir(cache_root or default_cache_root("bm25"), self.corpus_path, self.params)
        self.built = False
        self._index: bm25s.BM25 | None = None

    def _build(self, out: Path) -> None:
        logger.info("building BM25 index of %s (%d passages) in %s", self.corpus_path, len(self.corpus), self.cache_dir)
        index = bm25s.BM25(k1=self.params["k1"], b=self.params["b"])
        index.index(tokenize(list(self.corpus.texts())), show_progress=False)
        index.save(str(out), show_progress=False)
        np.save(out / OFFSETS_FILE, read_offsets(self.corpus_path))

    def _load(self) -> None:
        self.built = build_once(self.cache_dir, self._build)
        self._index = bm25s.BM25.load(str(self.cache_dir), mmap=True, show_progress=False)
        self.corpus = CorpusFile(self.corpus_path, np.load(self.cache_dir / OFFSETS_FILE))

    def _search(self, queries: list[str], topk: int) -> list[list[Hit]]:
        assert self._index is not None
        k = max(1, min(topk, len(self.corpus)))
        ids, scores = self._index.retrieve(tokenize(queries), k=k, show_progress=False, n_threads=0)
        # a passage sharing no word with the query scores 0: it is not a result
        return [
            [self.corpus.hit(int(i), float(s)) for i, s in zip(row_ids, row_scores) if s > 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "corpus": str(self.corpus_path), "passages": len(self.corpus),
                "index": str(self.cache_dir)}
