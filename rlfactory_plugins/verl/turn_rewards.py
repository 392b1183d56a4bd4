"""The composite's per-turn rewards, written into verl's ``rm_scores`` for ``rlfactory_turn_grpo``.

verl hands a registered advantage estimator ``token_level_rewards`` (``rm_scores``, minus the
KL penalty when ``algorithm.use_kl_in_reward``), ``response_mask``, the group ``index`` and the
``algorithm`` config; nothing else of the sample (the V1 trainer reads only those fields back from
its TransferQueue). So the per-turn vector (``reward/per_turn`` of the reward's extra info) travels
in ``rm_scores`` itself, in a layout that keeps each row's sum the composite total:

    rm_scores[e_k - 1] = per_turn[k]                      for turns k = 0 .. K-2 (e_k: the end of turn k)
    rm_scores[-1]      = total - sum_{k < K-1} per_turn[k]

Turns are the runs of ``response_mask == 1``; the last turn's own value is not carried (its credit
is the outcome). Every consumer of the row sum (verl's ``grpo``, ``critic/score``, validation) sees
the total unchanged; only an estimator that reads token positions (``gae``, ``reinforce_plus_plus``)
would see the layout, which is why it is written only when ``algorithm.adv_estimator`` is
``rlfactory_turn_grpo``. Where the record's turns and the mask's runs disagree (a turn of zero
tokens), the row keeps verl's layout and a warning says so.

Written by :class:`TurnRewardOutput` (the V1 trainer's worker turns a loop's output into tensors
with ``as_dict`` after scoring it) and :func:`rewrite_rm_scores` (the classic worker's ``_postprocess``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rlfactory_plugins.verl import compat

compat.require(__name__)

import torch  # noqa: E402
from verl.experimental.agent_loop.agent_loop import AgentLoopOutput  # noqa: E402

from rlfactory_plugins.verl.estimators import TURN_GRPO  # noqa: E402
from rlfactory_plugins.verl.rows import TRAJECTORY_KEY  # noqa: E402

logger = logging.getLogger("rlfactory")

#: the key of the composite's per-turn vector (a JSON list, or "null") in ``reward_extra_info``
PER_TURN_KEY = "reward/per_turn"


def wanted(config: Any) -> bool:
    """Whether the run trains with ``rlfactory_turn_grpo`` (``config``: the full training config)."""
    try:
        return str(config["algorithm"]["adv_estimator"]) == TURN_GRPO
    except (KeyError, TypeError):
        return False


def turn_spans(mask: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of every run of ones (the assistant turns)."""
    spans, start = [], None
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    return spans


def token_rewards(total: float, per_turn: Sequence[float] | None, mask: Sequence[int]) -> list[float]:
    """The row of the module docstring (``len(mask)`` values summing to ``total``)."""
    out = [0.0] * len(mask)
    if not out:
        return out
    carried = 0.0
    for k, (_, end) in enumerate(turn_spans(mask)[:-1]):
        value = float(per_turn[k]) if per_turn is not None and k < len(per_turn) else 0.0
        out[end - 1] = value
        carried += value
    out[-1] += float(total) - carried
    return out


def per_turn_of(extra_fields: Mapping[str, Any]) -> list[float] | None:
    """The composite's per-turn vector of a scored sample, if it has one."""
    info = extra_fields.get("reward_extra_info")
    raw = info.get(PER_TURN_KEY) if isinstance(info, Mapping) else None
    value = json.loads(raw) if isinstance(raw, str) else raw
    return [float(v) for v in value] if isinstance(value, list) else None


def _recorded_turns(extra_fields: Mapping[str, Any]) -> int | None:
    record = extra_fields.get(TRAJECTORY_KEY)
    turns = record.get("turns") if isinstance(record, Mapping) else None
    return len(turns) if isinstance(turns, list) else None


def row_for(total: float, extra_fields: Mapping[str, Any], mask: Sequence[int]) -> list[float] | None:
    """The row for one scored sample, or ``None`` to keep verl's (no per-turn vector, or turns that do not line up)."""
    per_turn = per_turn_of(extra_fields)
    if per_turn is None:
        return None
    turns, runs = _recorded_turns(extra_fields), len(turn_spans(mask))
    if turns is not None and turns != runs:
        logger.warning(
            "rlfactory: %d turns recorded but %d runs of response_mask; this sample trains on its total only",
            turns, runs,
        )
        return None
    return token_rewards(total, per_turn, mask)


class TurnRewardOutput(AgentLoopOutput):
    """A loop output whose ``rm_scores`` carries the per-turn rewards (see the module docstring)."""

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if "rm_scores" in out and self.reward_score is not None:
            row = row_for(self.reward_score, self.extra_fields, self.response_mask)
            if row is not None:
                out["rm_scores"] = torch.tensor(row, dtype=out["rm_scores"].dtype)
        return out


def rewrite_rm_scores(batch: Any, inputs: Sequence[Any]) -> None:
    """The classic worker's padded batch: rewrite each scored row of ``batch["rm_scores"]`` in place."""
    rm_scores, mask = batch["rm_scores"], batch["response_mask"]
    prompt_length = batch["prompts"].shape[1]
    lengths = batch["attention_mask"][:, prompt_length:].sum(dim=1)
    for i, item in enumerate(inputs):
        if item.reward_score is None:
            continue
        n = int(lengths[i])
        row = row_for(item.reward_score, item.extra_fields, [int(m) for m in mask[i, :n]])
        if row is not None:
            rm_scores[i].zero_()
            rm_scores[i, :n] = torch.tensor(row, dtype=rm_scores.dtype)
