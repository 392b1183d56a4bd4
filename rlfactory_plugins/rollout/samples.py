"""A few of a batch's trajectories as flat rows, for a logger's table: what the agent actually did.

:func:`sample_rows` picks ``k`` trajectories spread over the batch (the batch is ordered by
prompt, so this covers several prompts rather than one group's siblings) and renders each as
one row of :data:`COLUMNS`; the verl adapter logs them as a wandb Table and as JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rlfactory_plugins.rewards.composite import SUMMARY_KEYS

#: the table's columns, in order
COLUMNS = ("step", "prompt", "turns", "answer", "reward", "reward_parts", "stop_reason", "calls")
MAX_CELL = 2000  # characters per text cell: a table is for reading, the dumps hold everything


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + f" [... {len(text) - MAX_CELL} more characters]"


def _prompt(record: Mapping[str, Any]) -> str:
    users = [m.get("content", "") for m in record.get("prompt") or () if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _turns(record: Mapping[str, Any]) -> str:
    lines = []
    for turn in record.get("turns") or ():
        lines.append(f"[assistant] {turn.get('assistant_text', '')}")
        for call in turn.get("tool_calls") or ():
            result = call.get("result") or {}
            status = result.get("status") or ("parse_error" if call.get("parse_error") else "not_run")
            shown = result.get("output") or result.get("error") or call.get("parse_error") or ""
            lines.append(f"[tool {call.get('name') or '?'} -> {status}] {shown}")
        if turn.get("env_message"):
            lines.append(f"[user] {turn['env_message']}")
    return "\n".join(lines)


def sample_row(step: int, record: Mapping[str, Any], reward_info: Mapping[str, Any] | None) -> dict[str, Any]:
    info = reward_info or {}
    parts = {k.removeprefix("reward/"): v for k, v in info.items()
             if k.startswith("reward/") and k.count("/") == 1 and k.removeprefix("reward/") not in SUMMARY_KEYS}
    calls = sum(len(t.get("tool_calls") or ()) for t in record.get("turns") or ())
    return {
        "step": step,
        "prompt": _cut(_prompt(record)),
        "turns": _cut(_turns(record)),
        "answer": record.get("final_answer") or "",
        "reward": info.get("reward/total"),
        "reward_parts": json.dumps(parts, sort_keys=True),
        "stop_reason": record.get("stop_reason") or "",
        "calls": calls,
    }


def sample_rows(
    step: int, records: Sequence[Mapping[str, Any] | None], reward_infos: Sequence[Mapping[str, Any] | None], k: int
) -> list[dict[str, Any]]:
    """``k`` rows spread evenly over the trajectories that have a record (fewer if the batch is smaller)."""
    have = [i for i, r in enumerate(records) if r]
    if k <= 0 or not have:
        return []
    k = min(k, len(have))
    picks = [have[(j * len(have)) // k] for j in range(k)]
    return [sample_row(step, records[i], reward_infos[i] if i < len(reward_infos) else None) for i in picks]
