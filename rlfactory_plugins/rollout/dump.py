"""JSONL dumps of trajectories and per-step metrics (one file per worker process per step).

Images tool calls returned are dumped as references (``ToolResult.images``: size, type,
SHA-256), never as pixels in the JSONL; their bytes are written once each to
``<trajectory_dir>/images/<sha256>.<format>`` (content-addressed, so every step and worker shares them).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from rlfactory_plugins.tools.base import ImageRef
from rlfactory_plugins.trajectory import Trajectory


def trajectory_path(directory: str | Path, step: int, pid: int | None = None) -> Path:
    return Path(directory) / f"step_{step:05d}.{pid or os.getpid()}.jsonl"


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def image_path(directory: str | Path, ref: ImageRef) -> Path:
    """Where the bytes of a dumped image reference are."""
    return Path(directory) / "images" / ref.filename


def _write_images(directory: str | Path, trajectory: Trajectory) -> None:
    for call in trajectory.tool_calls:
        for ref in call.result.images if call.result is not None else ():
            path = image_path(directory, ref)
            if path.exists():
                continue
            try:
                data = ref.data
            except LookupError:  # a reference read back from a dump: its bytes are already on disk
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # workers may write the same image at once
            tmp.write_bytes(data)
            os.replace(tmp, path)


def _dump(path: Path, directory: str | Path, trajectory: Trajectory) -> None:
    _write_images(directory, trajectory)
    _append(path, trajectory.model_dump_json())


async def dump_trajectory(directory: str | Path, trajectory: Trajectory) -> Path:
    path = trajectory_path(directory, trajectory.step or 0)
    await asyncio.to_thread(_dump, path, directory, trajectory)
    return path


def write_metrics_line(metrics_file: str | Path, step: int, metrics: dict[str, Any]) -> None:
    record = {"step": step, "pid": os.getpid(), **metrics}
    _append(Path(metrics_file), json.dumps(record, sort_keys=True))
