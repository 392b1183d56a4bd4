"""JSONL dumps of trajectories and per-step metrics (one file per worker process per step)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from rlfactory_plugins.trajectory import Trajectory


def trajectory_path(directory: str | Path, step: int, pid: int | None = None) -> Path:
    return Path(directory) / f"step_{step:05d}.{pid or os.getpid()}.jsonl"


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


async def dump_trajectory(directory: str | Path, trajectory: Trajectory) -> Path:
    path = trajectory_path(directory, trajectory.step or 0)
    await asyncio.to_thread(_append, path, trajectory.model_dump_json())
    return path


def write_metrics_line(metrics_file: str | Path, step: int, metrics: dict[str, Any]) -> None:
    record = {"step": step, "pid": os.getpid(), **metrics}
    _append(Path(metrics_file), json.dumps(record, sort_keys=True))
