"""Advantage attribution for branched groups: the math of the ``rlfactory_branch_grpo`` estimator.

A branched group (ARPO, arXiv 2507.19849) holds global samples and branches forked from a sample
after some of its response tokens; every sample is a full member of the group. A sample names its
origin with a :class:`Branch`: the batch row of the sample it was forked from (``parent``) and how
many response tokens it shares with it (``prefix``); a global sample has ``parent=None``.

Two samples share the tokens before their *common prefix* ``c(i, j)``: the smallest ``prefix``
on the tree path between them (``c(i, i)`` is the whole response). With ``A_i`` verl's GRPO
advantage of sample ``i`` (its group: verl's ``uid``, every global sample and branch together):

    A(i, t) = mean { A_j : j in the group of i, c(i, j) > t }

so a token shared by ``d`` samples gets the mean of their ``d`` advantages and a token only ``i``
has (past its last fork) gets ``A_i``: ARPO's hard advantage attribution. Without
branches every ``c(i, j)`` for ``i != j`` is 0 and this is exactly verl's ``grpo``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from rlfactory_plugins.verl.group_norm import AdvantageError, group_normalise


@dataclass(frozen=True)
class Branch:
    """Where a sample comes from: forked from batch row ``parent`` after ``prefix`` response tokens."""

    parent: int | None = None
    prefix: int = 0


ROOT = Branch()


def _check(branches: Sequence[Branch], index: Sequence[Hashable], width: int) -> None:
    for i, b in enumerate(branches):
        if b.parent is None:
            continue
        if not 0 <= b.parent < len(branches) or b.parent == i:
            raise AdvantageError(
                f"sample {i}: parent {b.parent} is not another row of this batch (0..{len(branches) - 1})"
            )
        if index[b.parent] != index[i]:
            raise AdvantageError(
                f"sample {i} (group {index[i]!r}) branches from row {b.parent} of group {index[b.parent]!r}: "
                "a branch belongs to its parent's group (same uid)"
            )
        if not 0 <= b.prefix <= width:
            raise AdvantageError(f"sample {i}: prefix {b.prefix} is outside 0..{width} (the response length)")
    for i in range(len(branches)):  # every chain of parents ends at a global sample
        seen, j = set(), i
        while branches[j].parent is not None:
            if j in seen:
                raise AdvantageError(f"sample {i}: its parents form a cycle through row {j}")
            seen.add(j)
            j = branches[j].parent  # type: ignore[assignment]


def _path_min(branches: Sequence[Branch], i: int) -> dict[int, float]:
    """Ancestor row -> smallest ``prefix`` on the way up from ``i`` (``i`` itself: infinity)."""
    out, low, j = {i: float("inf")}, float("inf"), i
    while branches[j].parent is not None:
        low = min(low, branches[j].prefix)
        j = branches[j].parent  # type: ignore[assignment]
        out[j] = low
    return out


def common_prefix(branches: Sequence[Branch], rows: Sequence[int]) -> torch.Tensor:
    """``c(i, j)`` for the samples ``rows`` of one group (an ``(n, n)`` float tensor, ``inf`` on the diagonal)."""
    up = {i: _path_min(branches, i) for i in rows}
    c = torch.zeros(len(rows), len(rows))
    for a, i in enumerate(rows):
        for b, j in enumerate(rows):
            shared = up[i].keys() & up[j].keys()  # common ancestors; the nearest has the largest minima
            c[a, b] = max((min(up[i][x], up[j][x]) for x in shared), default=0.0)
    return c


def branch_grpo_advantages(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Sequence[Hashable],
    branches: Sequence[Branch] | None = None, *, epsilon: float = 1e-6, by_std: bool = True,
) -> torch.Tensor:
    """``A(i, t)`` of the module docstring, shape ``(bs, response_length)``."""
    bs, width = response_mask.shape
    branches = list(branches) if branches is not None else [ROOT] * bs
    if len(branches) != bs:
        raise AdvantageError(
            f"{len(branches)} branch records for a batch of {bs}: give one per sample (ROOT for a global one)"
        )
    _check(branches, index, width)
    scores = group_normalise(token_level_rewards.float().sum(dim=-1), index, epsilon, by_std)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(index):
        members[g].append(i)
    positions = torch.arange(width, dtype=torch.float32)
    advantages = torch.zeros(bs, width, dtype=scores.dtype)
    for rows in members.values():
        c = common_prefix(branches, rows)  # (n, n)
        shares = c.unsqueeze(-1) > positions  # [a, b, t]: rows[b] shares token t of rows[a]
        mean = (shares * scores[rows].view(1, -1, 1)).sum(dim=1) / shares.sum(dim=1)
        advantages[rows] = mean
    return advantages.to(response_mask.device) * response_mask.to(advantages.dtype)
