"""Where rewards find the answer: ``<answer>…</answer>`` tags and ground-truth shapes."""

from __future__ import annotations

import re
from typing import Any

from rlfactory_plugins.trajectory import Trajectory

_TAG_CACHE: dict[str, re.Pattern[str]] = {}


def extract_tagged(text: str, tag: str = "answer") -> str | None:
    """The content of the last ``<tag>…</tag>`` block in ``text`` (stripped), or None."""
    pattern = _TAG_CACHE.get(tag)
    if pattern is None:
        pattern = _TAG_CACHE[tag] = re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL)
    matches = pattern.findall(text or "")
    return matches[-1].strip() if matches else None


def answer_text(trajectory: Trajectory, tag: str = "answer") -> str | None:
    """The trajectory's answer: ``final_answer`` if the parser set one, else the last
    ``<tag>`` block of the last assistant text (or of the whole response)."""
    if trajectory.final_answer is not None:
        return trajectory.final_answer
    text = trajectory.last_assistant_text() or trajectory.response_text
    return extract_tagged(text, tag)


def plain(value: Any) -> Any:
    """numpy arrays/scalars (parquet rows) -> lists/Python scalars, recursively."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def gold_answers(ground_truth: Any) -> list[str]:
    """Ground truth as a list of acceptable answers: a str, a list, or ``{"target": [...]}``."""
    gt = plain(ground_truth)
    if isinstance(gt, dict):
        if "target" not in gt:
            raise ValueError(f"ground truth {gt!r} is a dict without 'target'; use {{'target': [answers]}}")
        gt = gt["target"]
    if gt is None:
        return []
    if isinstance(gt, str | int | float):
        return [str(gt)]
    return [str(g) for g in gt]
