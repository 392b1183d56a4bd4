"""The small synthetic corpus and QA set shipped with the pack (see :mod:`.synthetic`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _data_file(name: str) -> Path:
    path = Path(str(resources.files("rlfactory_tool_search") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall rlfactory-tool-search (package data)")
    return path


def shipped_corpus() -> Path:
    """``data/corpus.jsonl``: 300 passages in Search-R1's ``{"id", "contents"}`` format."""
    return _data_file("corpus.jsonl")


def shipped_qa() -> Path:
    """``data/qa.jsonl``: 600 FlashRAG-style rows ``{"id", "question", "golden_answers", "split", "metadata"}``."""
    return _data_file("qa.jsonl")
