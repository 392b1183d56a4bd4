"""A pids cgroup per run: a hard cap on processes that holds for root too, and a full list
of every process the run started (double-forked and ``setsid`` escapes included).

Works with cgroup v2 (``pids`` enabled in the root's ``cgroup.subtree_control``) and v1
(``/sys/fs/cgroup/pids``). Where neither is writable (not root, read-only ``/sys``),
:func:`create` returns ``None`` and the sandbox falls back to RLIMIT_NPROC.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")
PARENT = "rlfactory-sandbox"


@dataclass
class PidsCgroup:
    path: Path

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in self.procs_file.read_text().split()]
        except OSError:
            return []

    def remove(self) -> bool:
        """Remove the (emptied) cgroup; True when it is gone."""
        with contextlib.suppress(FileNotFoundError):
            try:
                self.path.rmdir()
            except OSError:
                return False
        return True


def _base() -> Path | None:
    if (V1_ROOT / "cgroup.procs").exists():
        return V1_ROOT
    controllers = V2_ROOT / "cgroup.subtree_control"
    if controllers.exists() and "pids" in controllers.read_text().split():
        return V2_ROOT
    return None


def create(max_pids: int) -> PidsCgroup | None:
    """A fresh cgroup with ``pids.max = max_pids``, or ``None`` where that is not possible."""
    if os.geteuid() != 0:
        return None
    base = _base()
    if base is None:
        return None
    try:
        parent = base / PARENT
        parent.mkdir(exist_ok=True)
        if base is V2_ROOT:
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+pids")
        path = parent / uuid.uuid4().hex[:16]
        path.mkdir()
        (path / "pids.max").write_text(str(max_pids))
    except OSError:
        return None
    return PidsCgroup(path)
