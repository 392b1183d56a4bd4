"""Where built indexes live on disk, keyed by the corpus file's path, mtime and size."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: bump when the on-disk layout of an index changes
LAYOUT_VERSION = 1


def default_cache_root(kind: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rlfactory" / kind


def index_dir(root: Path, corpus: Path, params: dict[str, Any]) -> Path:
    """``root/<corpus stem>-<hash of path, mtime, size, params>``: a changed corpus gets a new index."""
    stat = corpus.stat()
    key = json.dumps(
        {"path": str(corpus.resolve()), "mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "params": params,
         "layout": LAYOUT_VERSION},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(root) / f"{corpus.stem}-{digest}"


def build_once(target: Path, build: Callable[[Path], None]) -> bool:
    """Run ``build(tmp_dir)`` and move the result to ``target`` unless it already exists.

    The rename is atomic, so processes racing to build the same index never see a half
    written one; the loser's copy is discarded. Returns whether this call built it.
    """
    if target.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            return False
        return True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
