"""A corpus in Search-R1's format and how its passages are shown to the model.

A corpus is a JSONL file of ``{"id": ..., "contents": "\\"Title\\"\\ntext"}`` rows (the
format of Search-R1's wiki-18 dump). :class:`CorpusFile` reads passages by line offset,
so a corpus of millions of passages is never held in memory as Python objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfactory_plugins.errors import ConfigError


@dataclass(frozen=True)
class Hit:
    """One retrieved passage."""

    id: str
    contents: str
    score: float

    def to_wire(self, with_score: bool = True) -> dict[str, Any]:
        """The ``/retrieve`` response shape (Search-R1 compatible)."""
        doc = {"id": self.id, "contents": self.contents}
        return {"document": doc, "score": self.score} if with_score else doc

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> Hit:
        doc = item.get("document", item)  # return_scores=false returns the bare documents
        return cls(id=str(doc.get("id", "")), contents=str(doc.get("contents", "")), score=float(item.get("score", 0)))


def render_passages(hits: list[Hit]) -> str:
    """Search-R1's observation text: ``Doc 1(Title: "T") text`` one passage a line."""
    if not hits:
        return "No results found."
    lines = []
    for rank, hit in enumerate(hits, start=1):
        title, _, text = hit.contents.partition("\n")
        lines.append(f"Doc {rank}(Title: {title}) {text}\n")
    return "".join(lines)


def read_offsets(path: Path) -> np.ndarray:
    """Byte offset of every non-blank line (passage ``i`` is the ``i``-th), plus the file size."""
    starts, pos = [], 0
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                starts.append(pos)
            pos += len(line)
    starts.append(pos)
    return np.asarray(starts, dtype=np.int64)


class CorpusFile:
    """Random access to the passages of a JSONL corpus (thread-safe: ``os.pread``)."""

    def __init__(self, path: Path, offsets: np.ndarray | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"corpus file {str(self.path)!r} not found; pass a JSONL file of {{'id', 'contents'}} rows")
        self.offsets = read_offsets(self.path) if offsets is None else offsets
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _row(self, i: int) -> dict[str, Any]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        raw = os.pread(self._fd, end - start, start)
        try:
            row = json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"corpus {str(self.path)!r}: passage {i} is not valid JSON ({e})") from None
        if "contents" not in row:
            raise ConfigError(f"corpus {str(self.path)!r}: passage {i} has no 'contents' field: {raw[:120]!r}")
        return row

    def hit(self, i: int, score: float) -> Hit:
        row = self._row(i)
        return Hit(id=str(row.get("id", i)), contents=row["contents"], score=float(score))

    def texts(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self._row(i)["contents"]

    def close(self) -> None:
        os.close(self._fd)
